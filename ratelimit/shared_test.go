package ratelimit

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/internal/testlog"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// flakyStore is a Store that fails while down is set.
type flakyStore struct {
	Store
	down atomic.Bool
}

var errStoreDown = errors.New("store down")

func (s *flakyStore) Get(ctx context.Context, key string) (BucketState, uint64, error) {
	if s.down.Load() {
		return BucketState{}, 0, errStoreDown
	}
	return s.Store.Get(ctx, key)
}

func (s *flakyStore) CompareAndSwap(ctx context.Context, key string, st BucketState, rev uint64) (bool, error) {
	if s.down.Load() {
		return false, errStoreDown
	}
	return s.Store.CompareAndSwap(ctx, key, st, rev)
}

func sharedReplicas(t *testing.T, n int, cfg SharedConfig, limits map[string]Limit, opts ...heddle.Option) []*SharedLimiter {
	t.Helper()
	out := make([]*SharedLimiter, n)
	for i := range out {
		l, err := NewShared(cfg, opts...)
		if err != nil {
			t.Fatal(err)
		}
		l.Update(limits)
		out[i] = l
	}
	return out
}

// offer calls Allow tries times on every replica, from one goroutine per
// replica at once, and returns how many were granted in all.
func offer(replicas []*SharedLimiter, tier string, tries int) int {
	var granted atomic.Int64
	var wg sync.WaitGroup
	for _, l := range replicas {
		wg.Go(func() {
			for range tries {
				if l.Allow(tier) {
					granted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(granted.Load())
}

func TestSharedReplicasAdmitTheConfiguredRateInTotal(t *testing.T) {
	clock := newFakeClock()
	limits := map[string]Limit{"standard": {RatePerSecond: 2, Burst: 5}}
	replicas := sharedReplicas(t, 3, SharedConfig{Store: NewMemoryStore(), Replicas: 3, Now: clock.Now, MaxAttempts: 10000}, limits)

	// At one instant: the burst, once, not once per replica.
	if got := offer(replicas, "standard", 50); got != 5 {
		t.Fatalf("three replicas admitted %d tasks at one instant, want the burst of 5 in all", got)
	}
	// Over a 10 s window at 2/s: 20 more, in all.
	for range 10 {
		clock.Add(time.Second)
		if got := offer(replicas, "standard", 50); got != 2 {
			t.Fatalf("three replicas admitted %d tasks in one second at 2/s, want 2 in all", got)
		}
	}
	// A tier without a limit is not limited, and touches no bucket.
	if got := offer(replicas, "local", 10); got != 30 {
		t.Fatalf("admitted %d of 30 tasks of an unlimited tier", got)
	}
	var s SharedStats
	for _, l := range replicas {
		st := l.Stats()
		s.StoreDecisions += st.StoreDecisions
		s.LocalDecisions += st.LocalDecisions
		s.Contended += st.Contended
	}
	if s.StoreDecisions != 11*150 || s.LocalDecisions != 0 || s.Contended != 0 {
		t.Fatalf("stats %+v: want %d store decisions, none local, none contended", s, 11*150)
	}
}

func TestSharedLimiterOwnBucketsWouldAdmitThreeTimes(t *testing.T) {
	// The same offer to three limiters with a store each: the baseline the
	// shared store divides by three.
	clock := newFakeClock()
	limits := map[string]Limit{"standard": {RatePerSecond: 2, Burst: 5}}
	var replicas []*SharedLimiter
	for range 3 {
		replicas = append(replicas, sharedReplicas(t, 1, SharedConfig{Store: NewMemoryStore(), Now: clock.Now}, limits)...)
	}
	if got := offer(replicas, "standard", 50); got != 15 {
		t.Fatalf("three unshared limiters admitted %d, want 15", got)
	}
}

func TestSharedLimiterContentionNeverExceedsTheLimit(t *testing.T) {
	clock := newFakeClock()
	limits := map[string]Limit{"standard": {RatePerSecond: 1, Burst: 40}}
	// One attempt each: most lose the race and are refused, none is
	// admitted beyond the burst.
	replicas := sharedReplicas(t, 3, SharedConfig{Store: NewMemoryStore(), Now: clock.Now, MaxAttempts: 1}, limits)
	got := offer(replicas, "standard", 100)
	if got > 40 || got < 1 {
		t.Fatalf("admitted %d under contention, want between 1 and the burst of 40", got)
	}
	var st SharedStats
	for _, l := range replicas {
		s := l.Stats()
		st.Conflicts += s.Conflicts
		st.Contended += s.Contended
	}
	if st.Conflicts != st.Contended {
		t.Fatalf("with one attempt each conflict is a refusal: %+v", st)
	}
}

func TestSharedReserveQueuesAcrossReplicas(t *testing.T) {
	clock := newFakeClock()
	limits := map[string]Limit{"frontier": {RatePerSecond: 10, Burst: 1}} // a token every 100ms
	r := sharedReplicas(t, 2, SharedConfig{Store: NewMemoryStore(), Now: clock.Now}, limits)
	start := clock.Now()

	if res, ok := r[0].Reserve("frontier", time.Second); !ok || !res.Due().Equal(start) {
		t.Fatalf("first Reserve = %v, %v; want the full bucket's token at once", res.Due(), ok)
	}
	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond} {
		res, ok := r[(i+1)%2].Reserve("frontier", 300*time.Millisecond)
		if !ok || res.Due().Sub(start).Round(time.Millisecond) != want {
			t.Fatalf("Reserve %d = %v after start, %v; want %v, true", i+2, res.Due().Sub(start), ok, want)
		}
	}
	// The next is due at 400ms, beyond the wait: refused, taking nothing.
	if _, ok := r[0].Reserve("frontier", 300*time.Millisecond); ok {
		t.Fatal("a Reserve due beyond its maximum wait was granted")
	}
	if r[1].Allow("frontier") {
		t.Fatal("Allow was granted with three reservations outstanding")
	}
	clock.Add(300 * time.Millisecond)
	if _, ok := r[1].Reserve("frontier", 99*time.Millisecond); ok {
		t.Fatal("the refused Reserve took a token: the next is due sooner than 100ms")
	}
	if res, ok := r[1].Reserve("frontier", 100*time.Millisecond); !ok || res.Due().Sub(start).Round(time.Millisecond) != 400*time.Millisecond {
		t.Fatalf("Reserve after 300ms = %v, %v; want the token due at 400ms", res.Due().Sub(start), ok)
	}
}

func TestSharedLimiterFallsBackWhenTheStoreIsUnreachable(t *testing.T) {
	clock := newFakeClock()
	store := &flakyStore{Store: NewMemoryStore()}
	rec := testlog.New()
	limits := map[string]Limit{"standard": {RatePerSecond: 3, Burst: 6}}
	replicas := sharedReplicas(t, 3, SharedConfig{Store: store, Replicas: 3, Now: clock.Now, RetryAfter: 5 * time.Second},
		limits, heddle.WithLogger(rec.Logger()))
	if got := offer(replicas, "standard", 2); got != 6 {
		t.Fatalf("admitted %d with the store up, want 6", got)
	}

	store.down.Store(true)
	// Each replica's own bucket holds a third of the burst (2), so the
	// three admit the configured burst in all, and a third of the rate
	// each afterwards.
	if got := offer(replicas, "standard", 10); got != 6 {
		t.Fatalf("admitted %d with the store down, want 3 replicas x 2", got)
	}
	clock.Add(time.Second)
	if got := offer(replicas, "standard", 10); got != 3 {
		t.Fatalf("admitted %d in a second with the store down, want 3 replicas x 1", got)
	}
	if n := len(rec.All("ratelimit.store_unreachable")); n != 3 {
		t.Fatalf("ratelimit.store_unreachable logged %d times, want once per replica", n)
	}
	r0 := replicas[0].Stats()
	if r0.StoreErrors != 1 || r0.LocalDecisions != 20 {
		t.Fatalf("replica stats %+v: want 1 store error (then the store is not tried for RetryAfter) and 20 local decisions", r0)
	}

	// Back after RetryAfter: the store decides again, with the tokens it
	// kept, and each replica logs its recovery once.
	store.down.Store(false)
	clock.Add(4 * time.Second)
	if got := offer(replicas, "standard", 10); got != 6 {
		t.Fatalf("admitted %d after the store came back (5 s at 3/s, capped at the burst), want 6", got)
	}
	if n := len(rec.All("ratelimit.store_recovered")); n != 3 {
		t.Fatalf("ratelimit.store_recovered logged %d times, want once per replica", n)
	}
	if n := len(rec.All("ratelimit.store_unreachable")); n != 3 {
		t.Fatalf("ratelimit.store_unreachable logged %d times in all, want 3", n)
	}
}

func TestSharedUpdateKeepsStoredTokens(t *testing.T) {
	clock := newFakeClock()
	l := sharedReplicas(t, 1, SharedConfig{Store: NewMemoryStore(), Now: clock.Now}, map[string]Limit{"standard": {RatePerSecond: 1, Burst: 4}})[0]
	if got := offer([]*SharedLimiter{l}, "standard", 3); got != 3 {
		t.Fatalf("admitted %d, want 3", got)
	}
	l.Update(map[string]Limit{"standard": {RatePerSecond: 1, Burst: 10}})
	if got := offer([]*SharedLimiter{l}, "standard", 10); got != 1 {
		t.Fatalf("after a reload admitted %d, want the 1 token left: a reload hands out no fresh burst", got)
	}
	l.Update(map[string]Limit{"standard": {RatePerSecond: 1, Burst: 0}})
	clock.Add(time.Hour)
	if l.Allow("standard") {
		t.Fatal("a burst of 0 admitted a task")
	}
	l.Update(nil)
	if !l.Allow("standard") {
		t.Fatal("a tier whose limit was removed is still limited")
	}
}

func TestNewSharedRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg   SharedConfig
		field string
	}{
		{SharedConfig{}, "Store"},
		{SharedConfig{Store: NewMemoryStore(), Replicas: -1}, "Replicas"},
		{SharedConfig{Store: NewMemoryStore(), StoreTimeout: -1}, "StoreTimeout"},
		{SharedConfig{Store: NewMemoryStore(), RetryAfter: -1}, "RetryAfter"},
		{SharedConfig{Store: NewMemoryStore(), MaxAttempts: -1}, "MaxAttempts"},
	} {
		_, err := NewShared(tc.cfg)
		if !errors.Is(err, heddle.ErrConfig) || !strings.Contains(err.Error(), "SharedConfig."+tc.field) {
			t.Errorf("NewShared with a bad %s = %v, want heddle.ErrConfig naming it", tc.field, err)
		}
	}
}
