package faultbus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/faultbus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/worker"
)

const wait = 15 * time.Second

// collector gathers the payloads delivered to one subscription.
type collector struct {
	mu   sync.Mutex
	got  []string
	more chan struct{}
}

func collect(t *testing.T, b bus.Bus, subject string, opts ...bus.SubscribeOption) (*collector, bus.Subscription) {
	t.Helper()
	c := &collector{more: make(chan struct{}, 1)}
	sub, err := b.Subscribe(context.Background(), subject, func(_ context.Context, m *bus.Msg) error {
		c.mu.Lock()
		c.got = append(c.got, string(m.Data))
		c.mu.Unlock()
		select {
		case c.more <- struct{}{}:
		default:
		}
		return nil
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, sub
}

func (c *collector) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

// waitFor waits until the collector holds a message equal to last.
func (c *collector) waitFor(t *testing.T, last string) []string {
	t.Helper()
	deadline := time.After(wait)
	for {
		if got := c.list(); slices.Contains(got, last) {
			return got
		}
		select {
		case <-c.more:
		case <-deadline:
			t.Fatalf("%q never came; got %v", last, c.list())
		}
	}
}

func wrap(t *testing.T, b bus.Bus, cfg faultbus.Config) *faultbus.Bus {
	t.Helper()
	fb, err := faultbus.Wrap(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fb.Close() })
	return fb
}

func publish(t *testing.T, b bus.Bus, subject, data string) {
	t.Helper()
	if err := b.Publish(context.Background(), &bus.Msg{Subject: subject, Data: []byte(data)}); err != nil {
		t.Fatal(err)
	}
}

// run publishes n numbered messages on subject through a fresh wrapper
// with cfg, then an unfaulted "end" marker, and returns what a subscriber
// received and the faults.
func run(t *testing.T, cfg faultbus.Config, subject string, n int) ([]string, []faultbus.Fault, faultbus.Stats) {
	t.Helper()
	b := membus.New()
	t.Cleanup(func() { _ = b.Close() })
	c, _ := collect(t, b, ">")
	fb := wrap(t, b.Connect(), cfg)
	for i := range n {
		publish(t, fb, subject, fmt.Sprint(i))
	}
	if err := fb.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	publish(t, fb, "end", "end")
	got := c.waitFor(t, "end")
	return got[:len(got)-1], fb.Faults(), fb.Stats()
}

func TestTheSameSeedGivesTheSameFaults(t *testing.T) {
	cfg := faultbus.Config{Seed: 42, Rules: []faultbus.Rule{
		{Subject: "x.tasks.>", Drop: 0.2, Duplicate: 0.1, Delay: 0.1, Reorder: 0.1},
	}}
	got1, faults1, stats1 := run(t, cfg, "x.tasks.a", 300)
	got2, faults2, _ := run(t, cfg, "x.tasks.a", 300)
	if !slices.Equal(got1, got2) {
		t.Errorf("two runs with seed 42 delivered different messages:\n%v\n%v", got1, got2)
	}
	if !slices.Equal(faults1, faults2) {
		t.Errorf("two runs with seed 42 made different faults:\n%v\n%v", faults1, faults2)
	}
	// Every kind of fault happened, and the counts add up.
	if stats1.Dropped == 0 || stats1.Duplicated == 0 || stats1.Delayed == 0 || stats1.Reordered == 0 {
		t.Errorf("stats %+v: want every kind of fault among 300 messages", stats1)
	}
	if want := 300 - int(stats1.Dropped) + int(stats1.Duplicated); len(got1) != want {
		t.Errorf("delivered %d messages, want 300 - %d dropped + %d duplicated = %d", len(got1), stats1.Dropped, stats1.Duplicated, want)
	}
	if int(stats1.Dropped+stats1.Duplicated+stats1.Delayed+stats1.Reordered) != len(faults1) {
		t.Errorf("stats %+v do not add up to the %d faults recorded", stats1, len(faults1))
	}

	cfg.Seed = 43
	got3, faults3, _ := run(t, cfg, "x.tasks.a", 300)
	if slices.Equal(faults1, faults3) || slices.Equal(got1, got3) {
		t.Error("seeds 42 and 43 made the same faults")
	}
}

func TestADecisionDependsOnlyOnSeedSubjectAndCount(t *testing.T) {
	cfg := faultbus.Config{Seed: 9, Rules: []faultbus.Rule{{Subject: "x.>", Drop: 0.5}}}
	// The faults of x.a do not change when messages on x.b are mixed in.
	_, alone, _ := run(t, cfg, "x.a", 100)
	b := membus.New()
	t.Cleanup(func() { _ = b.Close() })
	fb := wrap(t, b, cfg)
	for i := range 100 {
		publish(t, fb, "x.b", "b")
		publish(t, fb, "x.a", fmt.Sprint(i))
	}
	var mixed []faultbus.Fault
	for _, f := range fb.Faults() {
		if f.Subject == "x.a" {
			mixed = append(mixed, f)
		}
	}
	if !slices.Equal(alone, mixed) {
		t.Errorf("faults on x.a alone %v, mixed with x.b %v", alone, mixed)
	}
}

func TestTheFirstMatchingRuleApplies(t *testing.T) {
	got, faults, _ := run(t, faultbus.Config{Rules: []faultbus.Rule{
		{Subject: "x.keep", Drop: 0},
		{Subject: "x.*", Drop: 1},
	}}, "x.keep", 5)
	if len(got) != 5 || len(faults) != 0 {
		t.Errorf("x.keep: delivered %v, faults %v; the first rule drops nothing", got, faults)
	}
	got, faults, _ = run(t, faultbus.Config{Rules: []faultbus.Rule{
		{Subject: "x.keep", Drop: 0},
		{Subject: "x.*", Drop: 1},
	}}, "x.lose", 5)
	if len(got) != 0 || len(faults) != 5 || faults[4] != (faultbus.Fault{Subject: "x.lose", N: 5, Kind: faultbus.Dropped}) {
		t.Errorf("x.lose: delivered %v, faults %v; want all five dropped", got, faults)
	}
}

func TestADelayedMessageWaitsForRelease(t *testing.T) {
	b := membus.New()
	t.Cleanup(func() { _ = b.Close() })
	c, _ := collect(t, b, "x.>")
	fb := wrap(t, b.Connect(), faultbus.Config{Rules: []faultbus.Rule{{Subject: "x.slow", Delay: 1}}})
	publish(t, fb, "x.slow", "late")
	publish(t, fb, "x.fast", "first")
	// One publisher, one subscription: in order, so "late" was held.
	if got := c.waitFor(t, "first"); slices.Contains(got, "late") {
		t.Fatalf("got %v: the delayed message came before Release", got)
	}
	if s := fb.Stats(); s.Held != 1 || s.Delayed != 1 {
		t.Errorf("Stats %+v, want one delayed and held", s)
	}
	if err := fb.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := c.waitFor(t, "late"); !slices.Equal(got, []string{"first", "late"}) {
		t.Errorf("got %v, want first then late", got)
	}
}

func TestADelayRunsOnFakeTimeInASynctestBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := membus.New()
		defer b.Close()
		c, _ := collect(t, b, "x.>")
		fb, err := faultbus.Wrap(b.Connect(), faultbus.Config{Rules: []faultbus.Rule{{Subject: "x.slow", Delay: 1, DelayFor: time.Minute}}})
		if err != nil {
			t.Fatal(err)
		}
		defer fb.Close()
		publish(t, fb, "x.slow", "late")
		synctest.Wait()
		if got := c.list(); len(got) != 0 {
			t.Fatalf("got %v before the delay passed", got)
		}
		time.Sleep(59 * time.Second) // sleep-ok: inside a synctest bubble, this advances the fake clock to a second before the delay ends
		synctest.Wait()
		if got := c.list(); len(got) != 0 {
			t.Fatalf("got %v a second before the delay passed", got)
		}
		time.Sleep(time.Second) // sleep-ok: fake clock, to the delay's end
		synctest.Wait()
		if got := c.list(); !slices.Equal(got, []string{"late"}) {
			t.Fatalf("got %v once the delay passed, want the message", got)
		}
	})
}

func TestAReorderedMessageGoesAfterTheNextOne(t *testing.T) {
	got, faults, _ := run(t, faultbus.Config{Seed: 3, Rules: []faultbus.Rule{{Subject: "x.a", Reorder: 0.3}}}, "x.a", 50)
	if len(got) != 50 {
		t.Fatalf("delivered %d of 50: reordering lost messages", len(got))
	}
	sorted := slices.Clone(got)
	slices.SortFunc(sorted, func(a, b string) int {
		var x, y int
		fmt.Sscan(a, &x)
		fmt.Sscan(b, &y)
		return x - y
	})
	if slices.Equal(got, sorted) {
		t.Fatal("nothing was reordered")
	}
	// Each reordered message whose successor was not reordered went out
	// right after it.
	pos := map[string]int{}
	for i, s := range got {
		pos[s] = i
	}
	reordered := map[uint64]bool{}
	for _, f := range faults {
		reordered[f.N] = true
	}
	for _, f := range faults {
		n := fmt.Sprint(f.N - 1)
		next := fmt.Sprint(f.N)
		if f.N < 50 && !reordered[f.N+1] && pos[n] != pos[next]+1 {
			t.Errorf("message %s was reordered but came before %s: %v", n, next, got)
		}
	}
}

func TestAPausedConnectionHoldsBothWaysAndResumeLetsThemFlow(t *testing.T) {
	b := membus.New()
	t.Cleanup(func() { _ = b.Close() })
	fb := wrap(t, b.Connect(), faultbus.Config{})
	in, _ := collect(t, fb, "in.>")
	out, _ := collect(t, b, "out.>")
	fb.Pause()
	publish(t, b, "in.a", "to the paused")
	publish(t, fb, "out.a", "from the paused")
	publish(t, b, "out.z", "marker")
	if got := out.waitFor(t, "marker"); len(got) != 1 {
		t.Fatalf("the paused connection's publish went out: %v", got)
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := in.list(); len(got) != 0 {
		t.Fatalf("the paused connection got %v", got)
	}
	if err := fb.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "from the paused")
	in.waitFor(t, "to the paused")
}

func TestAPausedSubscriberBecomesASlowConsumer(t *testing.T) {
	b := membus.New()
	t.Cleanup(func() { _ = b.Close() })
	fb := wrap(t, b.Connect(), faultbus.Config{})
	in, sub := collect(t, fb, "in.a", bus.PendingLimits(2, 0))
	fb.Pause()
	for i := range 10 {
		publish(t, b, "in.a", fmt.Sprint(i))
	}
	if sub.Dropped() < 7 {
		t.Fatalf("Dropped = %d while paused with 10 messages and room for 2 (+1 in hand), want at least 7", sub.Dropped())
	}
	if err := fb.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	// What was held comes once resumed: every message is delivered or
	// counted dropped.
	deadline := time.After(wait)
	for len(in.list())+sub.Dropped() != 10 {
		select {
		case <-in.more:
		case <-deadline:
			t.Fatalf("got %v and %d dropped after Resume, want the 10 accounted for", in.list(), sub.Dropped())
		}
	}
}

type echoIn struct {
	Text string `json:"text"`
}
type echoOut struct {
	Echo string `json:"echo"`
}

func TestACutConnectionEndsItsActorsWithErrClosed(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		fb := wrap(t, connect(), faultbus.Config{})
		w, err := worker.New(fb, "echo", func(_ context.Context, in echoIn) (echoOut, error) {
			return echoOut{Echo: in.Text}, nil
		}, worker.Config{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		group, err := heddle.Start(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		caller := connect()
		if _, err := dispatch.Call[echoIn, echoOut](ctx, caller, "echo", echoIn{Text: "hi"}, dispatch.Direct()); err != nil {
			t.Fatalf("before the cut: %v", err)
		}
		fb.Cut()
		select {
		case <-group.Done():
		case <-ctx.Done():
			t.Fatal("the worker did not stop after its connection was cut")
		}
		err = group.Err()
		if !errors.Is(err, bus.ErrClosed) || !errors.Is(err, faultbus.ErrCut) {
			t.Errorf("Run returned %v, want an error wrapping bus.ErrClosed and faultbus.ErrCut", err)
		}
		if err := fb.Publish(ctx, &bus.Msg{Subject: "x", Data: []byte("x")}); !errors.Is(err, bus.ErrClosed) {
			t.Errorf("Publish after Cut = %v, want bus.ErrClosed", err)
		}
		// Nothing serves the worker's subject any more.
		_, err = dispatch.Call[echoIn, echoOut](ctx, caller, "echo", echoIn{Text: "hi"}, dispatch.Direct())
		if !errors.Is(err, dispatch.ErrNoWorker) {
			t.Errorf("a call after the cut = %v, want ErrNoWorker", err)
		}
	})
}

func TestWrapRefusesABadConfigNamingTheRule(t *testing.T) {
	for _, tc := range []struct {
		rule faultbus.Rule
		want string
	}{
		{faultbus.Rule{Subject: "a.>", Drop: 1.5}, "Rules[0].Drop"},
		{faultbus.Rule{Subject: "a.>", Reorder: -0.1}, "Rules[0].Reorder"},
		{faultbus.Rule{Subject: "a..b"}, "Rules[0].Subject"},
		{faultbus.Rule{Subject: "a", DelayFor: -time.Second}, "Rules[0].DelayFor"},
	} {
		_, err := faultbus.Wrap(membus.New(), faultbus.Config{Rules: []faultbus.Rule{tc.rule}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Wrap(%+v) = %v, want an error naming %s", tc.rule, err, tc.want)
		}
	}
}
