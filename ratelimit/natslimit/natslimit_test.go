package natslimit_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/ratelimit"
	"github.com/heddle-go/heddle/ratelimit/natslimit"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

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

func connect(t testing.TB, url string) *natsbus.Bus {
	t.Helper()
	b, err := natsbus.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// replicas opens n SharedLimiters, each on a connection and a Store of
// its own, on one bucket.
func replicas(t *testing.T, url string, n int, cfg ratelimit.SharedConfig, opts ...heddle.Option) []*ratelimit.SharedLimiter {
	t.Helper()
	out := make([]*ratelimit.SharedLimiter, n)
	for i := range out {
		s, err := natslimit.Open(testkit.Context(t), connect(t, url), natslimit.Config{})
		if err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.Store = s
		l, err := ratelimit.NewShared(c, opts...)
		if err != nil {
			t.Fatal(err)
		}
		l.Update(map[string]ratelimit.Limit{"standard": {RatePerSecond: 2, Burst: 5}})
		out[i] = l
	}
	return out
}

func offer(ls []*ratelimit.SharedLimiter, tier string, tries int) int {
	var granted atomic.Int64
	var wg sync.WaitGroup
	for _, l := range ls {
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

func TestReplicasShareOneBucketOnJetStream(t *testing.T) {
	url := natstest.RunServer(t)
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	ls := replicas(t, url, 3, ratelimit.SharedConfig{Replicas: 3, Now: clock.Now, MaxAttempts: 1000, StoreTimeout: testkit.Wait})
	if got := offer(ls, "standard", 20); got != 5 {
		t.Fatalf("three replicas admitted %d at one instant, want the burst of 5 in all", got)
	}
	for range 3 {
		clock.Add(time.Second)
		if got := offer(ls, "standard", 20); got != 2 {
			t.Fatalf("three replicas admitted %d in a second at 2/s, want 2 in all", got)
		}
	}
	for i, l := range ls {
		if s := l.Stats(); s.LocalDecisions != 0 || s.StoreErrors != 0 || s.Contended != 0 {
			t.Fatalf("replica %d stats %+v: want every decision made on the store", i, s)
		}
	}
}

func TestStoreCompareAndSwap(t *testing.T) {
	url := natstest.RunServer(t)
	ctx := testkit.Context(t)
	s, err := natslimit.Open(ctx, connect(t, url), natslimit.Config{Bucket: "cas"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tier := range []string{"standard", "a tier with spaces.and.dots"} {
		if _, rev, err := s.Get(ctx, tier); err != nil || rev != 0 {
			t.Fatalf("Get of a new key = rev %d, %v; want 0, nil", rev, err)
		}
		at := time.Unix(1, 5)
		if ok, err := s.CompareAndSwap(ctx, tier, ratelimit.BucketState{Tokens: 2.5, At: at}, 0); !ok || err != nil {
			t.Fatalf("create = %v, %v", ok, err)
		}
		if ok, err := s.CompareAndSwap(ctx, tier, ratelimit.BucketState{Tokens: 1}, 0); ok || err != nil {
			t.Fatalf("a second create = %v, %v; want false, nil", ok, err)
		}
		st, rev, err := s.Get(ctx, tier)
		if err != nil || st.Tokens != 2.5 || !st.At.Equal(at) || rev == 0 {
			t.Fatalf("Get = %+v rev %d, %v; want 2.5 tokens at %v", st, rev, err, at)
		}
		if ok, err := s.CompareAndSwap(ctx, tier, ratelimit.BucketState{Tokens: -1, At: at}, rev); !ok || err != nil {
			t.Fatalf("update at the current revision = %v, %v", ok, err)
		}
		if ok, err := s.CompareAndSwap(ctx, tier, ratelimit.BucketState{Tokens: 9, At: at}, rev); ok || err != nil {
			t.Fatalf("update at a stale revision = %v, %v; want false, nil", ok, err)
		}
		if st, _, _ := s.Get(ctx, tier); st.Tokens != -1 {
			t.Fatalf("after a lost update the key holds %v tokens, want -1", st.Tokens)
		}
	}
}

func TestFallbackWhenTheServerIsDown(t *testing.T) {
	srv := natstest.StartJetStreamServer(t, nil)
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	rec := testlog.New()
	ls := replicas(t, srv.ClientURL(), 3, ratelimit.SharedConfig{Replicas: 3, Now: clock.Now, RetryAfter: time.Minute,
		StoreTimeout: 200 * time.Millisecond}, heddle.WithLogger(rec.Logger()))
	if got := offer(ls, "standard", 1); got != 3 {
		t.Fatalf("admitted %d with the server up, want 3", got)
	}
	srv.Stop()
	// Each replica's bucket is a third of the limit: burst 2 (5/3 rounded
	// up), 2/3 per second.
	if got := offer(ls, "standard", 10); got != 6 {
		t.Fatalf("admitted %d with the server down, want 3 replicas x 2", got)
	}
	if n := len(rec.All("ratelimit.store_unreachable")); n != 3 {
		t.Fatalf("ratelimit.store_unreachable logged %d times, want once per replica", n)
	}
	for i, l := range ls {
		if s := l.Stats(); s.StoreErrors != 1 || s.LocalDecisions != 10 {
			t.Fatalf("replica %d stats %+v: want 1 store error and 10 local decisions", i, s)
		}
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	if _, err := natslimit.Open(t.Context(), nil, natslimit.Config{}); !errors.Is(err, heddle.ErrConfig) {
		t.Fatalf("Open with a nil bus = %v, want heddle.ErrConfig", err)
	}
	url := natstest.RunServer(t)
	if _, err := natslimit.Open(t.Context(), connect(t, url), natslimit.Config{Replicas: -1}); !errors.Is(err, heddle.ErrConfig) {
		t.Fatalf("Open with Replicas -1 = %v, want heddle.ErrConfig", err)
	}
}

// BenchmarkSharedAllow measures one admission on an embedded server: a KV
// get and a compare-and-set, two round trips.
func BenchmarkSharedAllow(b *testing.B) {
	url := natstest.RunServer(b)
	s, err := natslimit.Open(b.Context(), connect(b, url), natslimit.Config{})
	if err != nil {
		b.Fatal(err)
	}
	l, err := ratelimit.NewShared(ratelimit.SharedConfig{Store: s})
	if err != nil {
		b.Fatal(err)
	}
	l.Update(map[string]ratelimit.Limit{"standard": {RatePerSecond: 1e9, Burst: 1 << 20}})
	b.ReportAllocs()
	for b.Loop() {
		if !l.Allow("standard") {
			b.Fatal("refused")
		}
	}
	if s := l.Stats(); s.StoreErrors != 0 {
		b.Fatalf("store errors: %+v", s)
	}
}
