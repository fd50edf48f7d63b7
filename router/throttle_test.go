package router_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/wire"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/router"
)

// The tests with a fake clock run a router on membus inside a
// testing/synctest bubble: time stands still while anything in the bubble
// can run, and moves when everything waits, so a task held 15 s reaches its
// worker exactly 15 s of bubble time after the burst, at once in real
// time. (natsbus talks to a server outside the bubble, which a bubble
// cannot wait for; TestRouterOnNATSForwardsTheHeldTasksOfABurstAndDeadLettersTheRest
// runs the same burst there on the real clock.)

// seen is one message or event a throttle test saw: what, for which
// task, and when, as the time since the mesh started.
type seen struct {
	what   string // "delivered", "dead letter", "answer", or an event name
	task   string
	at     time.Duration
	detail string // the dead letter's or answer's reason; the worker subject
}

// throttleMesh is a router on membus with a worker for every subject,
// recording, with their time, the deliveries, dead letters, answers and
// the router's events.
type throttleMesh struct {
	t      *testing.T
	start  time.Time
	rt     *router.Router
	caller bus.Bus
	cancel context.CancelFunc
	done   chan error

	mu   sync.Mutex
	seen []seen
}

// newThrottleMesh starts a router on membus with cfg. Inside a bubble
// every time it records is bubble time.
func newThrottleMesh(t *testing.T, cfg router.Config) *throttleMesh {
	t.Helper()
	first := membus.New()
	conns := []*membus.Bus{first, first.Connect(), first.Connect()}
	t.Cleanup(func() {
		for _, c := range slices.Backward(conns) {
			_ = c.Close()
		}
	})
	m := &throttleMesh{t: t, start: time.Now(), caller: conns[1], done: make(chan error, 1)}
	rt, err := router.New(conns[0], cfg, heddle.WithObserver(event.ObserverFunc(func(_ context.Context, e event.Event) {
		m.record(seen{what: e.Name, task: e.TaskID, detail: e.Reason})
	})))
	if err != nil {
		t.Fatal(err)
	}
	m.rt = rt
	watcher := conns[2]
	for _, w := range []struct{ subject, what string }{
		{"heddle.tasks.*.*", "delivered"}, // worker subjects only: incoming has three tokens
		{heddle.SubjectDeadLetter, "dead letter"},
		{heddle.SubjectResultsDefault, "answer"},
	} {
		if _, err := watcher.Subscribe(t.Context(), w.subject, func(_ context.Context, msg *bus.Msg) error {
			s := seen{what: w.what}
			s.task, _ = wire.PeekString(msg.Data, "task_id")
			switch w.what {
			case "delivered":
				s.detail = msg.Subject
			case "dead letter":
				s.detail, _ = wire.PeekString(msg.Data, "reason")
			case "answer":
				s.detail, _ = wire.PeekString(msg.Data, "error")
			}
			m.record(s)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() { m.done <- rt.Run(ctx) }()
	select {
	case <-rt.Ready():
	case err := <-m.done:
		t.Fatalf("Run returned before it was ready: %v", err)
	}
	t.Cleanup(func() { m.stop() })
	return m
}

func (m *throttleMesh) record(s seen) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s.at = time.Since(m.start)
	m.seen = append(m.seen, s)
}

// publish sends one task per id, in order, for workerType at tier.
func (m *throttleMesh) publish(workerType string, tier heddle.ModelTier, ids ...string) {
	m.t.Helper()
	for _, id := range ids {
		task := heddle.NewTaskMessage(workerType, map[string]any{"id": id})
		task.TaskID, task.ModelTier = id, tier
		data, err := task.Encode()
		if err != nil {
			m.t.Fatal(err)
		}
		testkit.Publish(m.t, m.caller, heddle.SubjectTasksIncoming, data, nil)
	}
}

// stop ends Run and returns its error; it may be called more than once.
func (m *throttleMesh) stop() error {
	m.cancel()
	err, ok := <-m.done
	if ok {
		close(m.done)
	}
	return err
}

// of returns, in the order they came, what was seen of kind what.
func (m *throttleMesh) of(what string) []seen {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []seen
	for _, s := range m.seen {
		if s.what == what {
			out = append(out, s)
		}
	}
	return out
}

// tasksAt lists "task@time" for each s, to compare in one line.
func tasksAt(s []seen) string {
	var b strings.Builder
	for i, x := range s {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s@%v", x.task, x.at)
	}
	return b.String()
}

// ids returns the ids "<prefix>0" to "<prefix>n-1".
func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(prefix, i)
	}
	return out
}

func mustParseRules(t *testing.T, yaml string) router.RulesSource {
	t.Helper()
	rules, err := router.ParseRules([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if w := rules.Warnings(); len(w) > 0 {
		t.Fatalf("the rules have warnings: %v", w)
	}
	return router.StaticRules(rules)
}

const rateLimitedLocal = "rate_limited: tier 'local' has no available capacity"

// The Python rules for the local tier, four at once then one per 15 s,
// with a maximum wait of 40 s: of a burst of 8, the four in the bucket go
// at once, the next two are held until their tokens come, 15 s and 30 s
// later, and the last two, whose tokens would come after 45 s and 60 s,
// are dead-lettered and answered at once.
func TestRouterHoldsTheTasksOfABurstWhoseTokensComeWithinTheMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newThrottleMesh(t, router.Config{Rules: mustParseRules(t,
			"rate_limits:\n  local:\n    max_concurrent: 4\n    tokens_per_minute: 100000\n    max_wait_seconds: 40\n")})
		m.publish("echo", heddle.TierLocal, ids("t", 8)...)
		synctest.Wait()
		if got, want := tasksAt(m.of("delivered")), "t0@0s t1@0s t2@0s t3@0s"; got != want {
			t.Errorf("at once, delivered %s; want %s", got, want)
		}
		if got, want := tasksAt(m.of("router.throttled")), "t4@0s t5@0s"; got != want {
			t.Errorf("router.throttled for %s; want %s", got, want)
		}
		for _, what := range []string{"dead letter", "answer"} {
			got := m.of(what)
			if tasksAt(got) != "t6@0s t7@0s" {
				t.Errorf("%ss %s; want t6 and t7 at once", what, tasksAt(got))
			}
			for _, s := range got {
				if s.detail != rateLimitedLocal {
					t.Errorf("%s of %s says %q; want %q", what, s.task, s.detail, rateLimitedLocal)
				}
			}
		}

		time.Sleep(time.Minute) // sleep-ok: moves the bubble's clock past every token
		if got, want := tasksAt(m.of("delivered")), "t0@0s t1@0s t2@0s t3@0s t4@15s t5@30s"; got != want {
			t.Errorf("delivered %s; want %s", got, want)
		}
		if err := m.stop(); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		s := m.rt.Stats()
		if s.Routed != 6 || s.Throttled != 2 || s.RateLimited != 2 || s.DeadLettered != 2 || s.Answered != 2 || s.Shutdown != 0 {
			t.Errorf("Stats() = %+v; want 6 routed, 2 throttled, 2 rate-limited and answered", s)
		}
		if n := len(m.of("router.routed")); uint64(n) != s.Routed {
			t.Errorf("%d router.routed events for %d routed", n, s.Routed)
		}
		if n := len(m.of("router.dead_lettered")); uint64(n) != s.DeadLettered {
			t.Errorf("%d router.dead_lettered events for %d dead-lettered", n, s.DeadLettered)
		}
	})
}

// Without max_wait_seconds the Python router's behaviour stays: every task
// over the limit is dead-lettered at once, and nothing is held.
func TestRouterWithoutAMaxWaitDeadLettersEveryTaskOverTheLimitAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newThrottleMesh(t, router.Config{Rules: mustParseRules(t,
			"rate_limits:\n  local:\n    max_concurrent: 4\n    tokens_per_minute: 100000\n")})
		m.publish("echo", heddle.TierLocal, ids("t", 8)...)
		time.Sleep(time.Minute) // sleep-ok: moves the bubble's clock past the tokens a hold would wait for
		if got, want := tasksAt(m.of("delivered")), "t0@0s t1@0s t2@0s t3@0s"; got != want {
			t.Errorf("delivered %s; want %s", got, want)
		}
		if got, want := tasksAt(m.of("answer")), "t4@0s t5@0s t6@0s t7@0s"; got != want {
			t.Errorf("answered %s; want %s", got, want)
		}
		if got := m.of("router.throttled"); len(got) != 0 {
			t.Errorf("router.throttled for %s; want none", tasksAt(got))
		}
		if err := m.stop(); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		if s := m.rt.Stats(); s.Routed != 4 || s.RateLimited != 4 || s.Throttled != 0 {
			t.Errorf("Stats() = %+v; want 4 routed, 4 rate-limited, none throttled", s)
		}
	})
}

// Tasks held for one tier hold up nothing else: the tasks of another tier
// published behind them reach their workers at once, and the held tasks of
// two tiers each go when their own tier's token comes.
func TestRouterHoldingTasksOfOneTierDelaysNoOtherTier(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newThrottleMesh(t, router.Config{Rules: mustParseRules(t, `
rate_limits:
  local:    {max_concurrent: 4, burst: 1, max_wait_seconds: 60}
  standard: {rate_per_second: 0.1, burst: 1, max_wait_seconds: 60}
`)})
		m.publish("echo", heddle.TierLocal, "l0", "l1", "l2")
		m.publish("echo", heddle.TierStandard, "s0", "s1", "s2")
		m.publish("echo", heddle.TierFrontier, "f0", "f1")
		synctest.Wait()
		if got, want := tasksAt(m.of("delivered")), "l0@0s s0@0s f0@0s f1@0s"; got != want {
			t.Errorf("at once, delivered %s; want the first of each limited tier and every frontier task: %s", got, want)
		}
		time.Sleep(time.Minute) // sleep-ok: moves the bubble's clock past every token
		if got, want := tasksAt(m.of("delivered")), "l0@0s s0@0s f0@0s f1@0s s1@10s l1@15s s2@20s l2@30s"; got != want {
			t.Errorf("delivered %s; want %s", got, want)
		}
		if got := m.of("dead letter"); len(got) != 0 {
			t.Errorf("dead letters for %s; want none", tasksAt(got))
		}
	})
}

// The bounds on held tasks: past Config.MaxHeld, or Config.HoldBudget, a
// task that would wait is dead-lettered as rate_limited at once.
func TestRouterDeadLettersATaskThatWouldWaitWhenTheHoldIsFull(t *testing.T) {
	rules := "rate_limits:\n  local: {rate_per_second: 1, burst: 1, max_wait_seconds: 3600}\n"
	for _, tt := range []struct {
		name      string
		cfg       router.Config
		delivered string
	}{
		{"MaxHeld", router.Config{MaxHeld: 2}, "t0@0s t1@1s t2@2s"},
		{"HoldBudget", router.Config{HoldBudget: 1}, "t0@0s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := tt.cfg
				cfg.Rules = mustParseRules(t, rules)
				m := newThrottleMesh(t, cfg)
				m.publish("echo", heddle.TierLocal, ids("t", 5)...)
				time.Sleep(time.Minute) // sleep-ok: moves the bubble's clock past the held tasks' tokens
				if got := tasksAt(m.of("delivered")); got != tt.delivered {
					t.Errorf("delivered %s; want %s", got, tt.delivered)
				}
				held := strings.Count(tt.delivered, "@") - 1
				answers := m.of("answer")
				if len(answers) != 4-held {
					t.Fatalf("answered %s; want the %d tasks beyond the hold", tasksAt(answers), 4-held)
				}
				for _, a := range answers {
					if a.at != 0 || a.detail != rateLimitedLocal {
						t.Errorf("%s answered %q after %v; want %q at once", a.task, a.detail, a.at, rateLimitedLocal)
					}
				}
			})
		})
	}
}

func TestRouterRefusesNegativeHoldBounds(t *testing.T) {
	for _, cfg := range []router.Config{{MaxHeld: -1}, {HoldBudget: -1}} {
		_, err := router.New(membus.New(), cfg)
		if !errors.Is(err, heddle.ErrConfig) {
			t.Errorf("New(%+v) = %v, want heddle.ErrConfig", cfg, err)
		}
	}
}

// When Run's context ends, every held task is answered: one whose token
// comes within the drain timeout is forwarded when it comes; the others
// are dead-lettered at once with ReasonShutdown, and their callers told.
func TestRouterAnswersEveryHeldTaskWhenItStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newThrottleMesh(t, router.Config{
			DrainTimeout: 20 * time.Second,
			Rules:        mustParseRules(t, "rate_limits:\n  local: {max_concurrent: 4, max_wait_seconds: 100}\n"),
		})
		// t0-t3 at once; t4-t7 held, due after 15, 30, 45 and 60 s.
		m.publish("echo", heddle.TierLocal, ids("t", 8)...)
		time.Sleep(5 * time.Second) // sleep-ok: moves the bubble's clock; the drain ends at 25 s
		stopped := make(chan error, 1)
		go func() { stopped <- m.stop() }()
		synctest.Wait()
		const reason = "shutdown: the router stopped while the task waited for capacity on tier 'local'"
		for _, what := range []string{"dead letter", "answer"} {
			got := m.of(what)
			if tasksAt(got) != "t5@5s t6@5s t7@5s" {
				t.Errorf("%ss %s; want t5, t6 and t7 as Run's context ends, at 5s", what, tasksAt(got))
			}
			for _, s := range got {
				if s.detail != reason {
					t.Errorf("%s of %s says %q; want %q", what, s.task, s.detail, reason)
				}
			}
		}
		if err := <-stopped; err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		synctest.Wait() // the watcher has what Run published
		if got, want := tasksAt(m.of("delivered")), "t0@0s t1@0s t2@0s t3@0s t4@15s"; got != want {
			t.Errorf("delivered %s; want %s: t4's token came within the drain", got, want)
		}
		s := m.rt.Stats()
		if s.Routed != 5 || s.Throttled != 4 || s.Shutdown != 3 || s.DeadLettered != 3 || s.Answered != 3 {
			t.Errorf("Stats() = %+v; want 5 routed, 4 throttled, 3 dead-lettered for shutdown and answered", s)
		}
		if n := len(m.of("router.dead_lettered")); uint64(n) != s.DeadLettered {
			t.Errorf("%d router.dead_lettered events for %d dead-lettered", n, s.DeadLettered)
		}
	})
}

// A router whose bus closes under it accounts for the tasks it held: each
// is dead-lettered (the dead letter and the answer are lost with the bus,
// and counted so).
func TestRouterCountsEveryHeldTaskWhenItsBusCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		first := membus.New()
		b := &closerBus{Bus: first.Connect(), done: make(chan struct{})}
		defer first.Close()
		defer b.Close() // ends Run, should the test fail before it does
		rt, err := router.New(b, router.Config{Rules: mustParseRules(t, "rate_limits:\n  local: {max_concurrent: 1, max_wait_seconds: 600}\n")})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- rt.Run(context.Background()) }()
		<-rt.Ready()
		caller := first.Connect()
		defer caller.Close()
		if _, err := caller.Subscribe(t.Context(), heddle.WorkerSubjectAllTiers("echo"), func(context.Context, *bus.Msg) error { return nil }); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			task := heddle.NewTaskMessage("echo", map[string]any{})
			task.TaskID, task.ModelTier = fmt.Sprint("t", i), heddle.TierLocal
			data, err := task.Encode()
			if err != nil {
				t.Fatal(err)
			}
			testkit.Publish(t, caller, heddle.SubjectTasksIncoming, data, nil)
		}
		synctest.Wait()
		if s := rt.Stats(); s.Throttled != 2 {
			t.Fatalf("Stats() = %+v; want 2 held", s)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, bus.ErrClosed) {
			t.Fatalf("Run = %v, want an error wrapping bus.ErrClosed", err)
		}
		if s := rt.Stats(); s.Shutdown != 2 || s.DeadLettered != 2 || s.DeadLetterErrors != 2 || s.AnswerErrors != 2 {
			t.Errorf("Stats() = %+v; want both held tasks dead-lettered for shutdown, their publishes failed", s)
		}
	})
}

// reloadableRules is a RulesSource whose document a test changes between
// reloads.
type reloadableRules struct {
	mu  sync.Mutex
	doc string
}

func (r *reloadableRules) source(context.Context) (router.Rules, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return router.ParseRules([]byte(r.doc))
}

// reload makes rt load doc.
func (r *reloadableRules) reload(t *testing.T, rt *router.Router, doc string) {
	t.Helper()
	r.mu.Lock()
	r.doc = doc
	r.mu.Unlock()
	if err := rt.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// A reload applies its maximum waits to the tasks that come after it; a
// task held already keeps its token and goes when it comes.
func TestRouterAppliesAReloadedMaxWaitToTheTasksAfterIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = "rate_limits:\n  local: {rate_per_second: 0.125, burst: 4, max_wait_seconds: %s}\n" // a token per 8 s
		rules := &reloadableRules{doc: fmt.Sprintf(limit, "60")}
		m := newThrottleMesh(t, router.Config{Rules: rules.source})
		m.publish("echo", heddle.TierLocal, ids("a", 5)...) // a4 held, due at 8 s
		synctest.Wait()
		rules.reload(t, m.rt, fmt.Sprintf(limit, "0"))
		m.publish("echo", heddle.TierLocal, "b0") // no wait: dead-lettered at once
		time.Sleep(10 * time.Second)              // sleep-ok: moves the bubble's clock past a4's token
		rules.reload(t, m.rt, fmt.Sprintf(limit, "10"))
		// A quarter token is left at 10 s: c0's token comes at 16 s, c1's
		// at 24 s, past its 10 s wait.
		m.publish("echo", heddle.TierLocal, "c0", "c1")
		time.Sleep(time.Minute) // sleep-ok: moves the bubble's clock past every token
		if got, want := tasksAt(m.of("delivered")), "a0@0s a1@0s a2@0s a3@0s a4@8s c0@16s"; got != want {
			t.Errorf("delivered %s; want %s", got, want)
		}
		if got, want := tasksAt(m.of("answer")), "b0@0s c1@10s"; got != want {
			t.Errorf("answered %s; want %s", got, want)
		}
		if got, want := tasksAt(m.of("router.throttled")), "a4@0s c0@10s"; got != want {
			t.Errorf("router.throttled for %s; want %s", got, want)
		}
	})
}

// A tier's tasks reach their worker in the order they came: a task whose
// own token is free, after a reload gave its tier a new, full bucket,
// still waits behind the tasks of its tier held before it.
func TestRouterKeepsATiersOrderWhenAReloadFreesItsBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rules := &reloadableRules{doc: "rate_limits:\n  local: {rate_per_second: 0.125, burst: 1, max_wait_seconds: 60}\n"}
		m := newThrottleMesh(t, router.Config{Rules: rules.source})
		m.publish("echo", heddle.TierLocal, "x0", "x1", "x2") // x1 and x2 held, due at 8 s and 16 s
		synctest.Wait()
		rules.reload(t, m.rt, "rate_limits:\n  local: {rate_per_second: 0.125, burst: 5, max_wait_seconds: 60}\n")
		m.publish("echo", heddle.TierLocal, "x3")
		time.Sleep(time.Minute) // sleep-ok: moves the bubble's clock past every token
		if got, want := tasksAt(m.of("delivered")), "x0@0s x1@8s x2@16s x3@16s"; got != want {
			t.Errorf("delivered %s; want %s", got, want)
		}
	})
}

// On natsbus, with the real clock: a burst of 5 against a bucket of 2
// refilled one a second, with a maximum wait of 2.4 s. The two in the
// bucket go at once, the next two are held for their tokens (due 1 s and
// 2 s after the burst) and then forwarded in order, and the fifth (due
// after 3 s) is dead-lettered at once, before the held ones go. The test
// asserts outcomes and their order, not times: each wait is bounded by a
// deadline.
func TestRouterOnNATSForwardsTheHeldTasksOfABurstAndDeadLettersTheRest(t *testing.T) {
	for _, tr := range natstest.Transports() {
		if tr.Name != "natsbus" {
			continue
		}
		connect := tr.Connector(t)
		events := make(chan event.Event, 64)
		rt, err := router.New(connect(), router.Config{
			Rules: mustParseRules(t, "rate_limits:\n  local: {rate_per_second: 1, burst: 2, max_wait_seconds: 2.4}\n"),
		}, heddle.WithLogger(slog.New(slog.DiscardHandler)), heddle.WithObserver(event.ObserverFunc(func(_ context.Context, e event.Event) {
			if e.Name == "router.throttled" || e.Name == "router.dead_lettered" {
				events <- e.Clone()
			}
		})))
		if err != nil {
			t.Fatal(err)
		}
		stop := testkit.StartActor(t, rt.Run, rt.Ready())
		watcher, caller := connect(), connect()
		// One subscription sees deliveries and answers in the order the
		// router published them; it also serves the worker subject, so the
		// forwarded tasks count as routed.
		outcomes, _ := testkit.Subscribe(t, watcher, "heddle.>")
		if err := watcher.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			_, data := testkit.Task(t, "echo", heddle.TierLocal)
			task, _ := heddle.DecodeTaskMessage(data)
			task.TaskID = fmt.Sprint("n", i)
			if data, err = task.Encode(); err != nil {
				t.Fatal(err)
			}
			testkit.Publish(t, caller, heddle.SubjectTasksIncoming, data, nil)
		}
		var got []string
		for len(got) < 5 {
			msg := testkit.Recv(t, outcomes, "the burst's deliveries and answers")
			id, _ := wire.PeekString(msg.Data, "task_id")
			switch msg.Subject {
			case heddle.WorkerSubject("echo", heddle.TierLocal):
				got = append(got, "delivered "+id)
			case heddle.SubjectResultsDefault:
				errText, _ := wire.PeekString(msg.Data, "error")
				got = append(got, "answered "+id+": "+errText)
			}
		}
		want := []string{"delivered n0", "delivered n1", "answered n4: " + rateLimitedLocal, "delivered n2", "delivered n3"}
		if !slices.Equal(got, want) {
			t.Errorf("outcomes in order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		stop()
		close(events)
		var names []string
		for e := range events {
			names = append(names, e.Name+" "+e.TaskID)
		}
		if w := []string{"router.throttled n2", "router.throttled n3", "router.dead_lettered n4"}; !slices.Equal(names, w) {
			t.Errorf("events %v, want %v", names, w)
		}
		if s := rt.Stats(); s.Routed != 4 || s.Throttled != 2 || s.RateLimited != 1 || s.Answered != 1 {
			t.Errorf("Stats() = %+v; want 4 routed, 2 throttled, 1 rate-limited and answered", s)
		}
	}
}
