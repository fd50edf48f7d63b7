package metrics_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/deadletter"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/metrics"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// script is one mesh whose every actor reports to one Metrics and to an
// event counter.
type script struct {
	t      *testing.T
	reg    *prometheus.Registry
	m      *metrics.Metrics
	evs    *events
	opts   []heddle.Option
	pub    bus.Bus // publishes what the script sends by hand
	sentIn int     // messages published to heddle.tasks.incoming
}

func newScript(t *testing.T, connect func() bus.Bus) *script {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	evs := newEvents()
	var pub bus.Bus
	if connect != nil {
		pub = connect()
	}
	return &script{t: t, reg: reg, m: m, evs: evs, pub: pub,
		opts: []heddle.Option{m.Option(), heddle.WithObserver(evs), heddle.WithLogger(slog.New(slog.DiscardHandler))}}
}

// worker makes a dynamic worker of workerType on b, watched by the
// metrics.
func (s *script) worker(b bus.Bus, workerType string, cfg worker.Config, h func(context.Context, map[string]any) (map[string]any, error)) *worker.Worker {
	s.t.Helper()
	cfg.NoHeartbeat = true
	cfg.RetryBackoff = time.Millisecond
	w, err := worker.NewDynamic(b, workerType, h, cfg, s.opts...)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.m.WatchWorker(w); err != nil {
		s.t.Fatal(err)
	}
	return w
}

// task returns the wire form of a task for workerType at tier whose
// result goes to heddle.results.script, where no caller waits.
func (s *script) task(workerType string, tier heddle.ModelTier, payload map[string]any) []byte {
	s.t.Helper()
	m := heddle.NewTaskMessage(workerType, payload)
	m.ModelTier, m.ParentTaskID = tier, "script"
	data, err := m.Encode()
	if err != nil {
		s.t.Fatal(err)
	}
	return data
}

// send publishes data on subject and flushes, so that it reached the
// server (natsbus) before the script goes on.
func (s *script) send(subject string, data []byte) {
	s.t.Helper()
	testkit.Publish(s.t, s.pub, subject, data, nil)
	if subject == heddle.SubjectTasksIncoming {
		s.sentIn++
	}
	if err := s.pub.Flush(testkit.Context(s.t)); err != nil {
		s.t.Fatal(err)
	}
}

func (s *script) value(name string, labels ...string) float64 {
	s.t.Helper()
	return sample(s.t, s.reg, name, labels...)
}

func TestAScriptedRunCountsEveryOutcomeExactly(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		s := newScript(t, connect)
		ctx := testkit.Context(t)

		// The dead-letter store holds three entries, so that the run
		// evicts some.
		dl, err := deadletter.New(connect(), deadletter.Config{Capacity: 3}, s.opts...)
		if err != nil {
			t.Fatal(err)
		}
		stopDL := testkit.StartActor(t, dl.Run, dl.Ready())

		contract, err := contracts.FromJSON([]byte(`{"type":"object","required":["text"],"properties":{"text":{"type":"string"}}}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		echo := s.worker(connect(), "echo", worker.Config{Contract: contract}, func(_ context.Context, in map[string]any) (map[string]any, error) {
			return in, nil
		})
		var flakyMu sync.Mutex
		flakySeen := map[string]bool{}
		flaky := s.worker(connect(), "flaky", worker.Config{}, func(ctx context.Context, in map[string]any) (map[string]any, error) {
			task, _ := worker.TaskFromContext(ctx)
			flakyMu.Lock()
			defer flakyMu.Unlock()
			if !flakySeen[task.TaskID] {
				flakySeen[task.TaskID] = true
				return nil, errors.New("first attempts fail")
			}
			return in, nil
		})
		bad := s.worker(connect(), "bad", worker.Config{}, func(context.Context, map[string]any) (map[string]any, error) {
			return nil, worker.Permanent(errors.New("refused"))
		})
		releaseLate := make(chan struct{})
		late := s.worker(connect(), "late", worker.Config{}, func(ctx context.Context, in map[string]any) (map[string]any, error) {
			<-releaseLate
			return in, nil
		})
		slowStarted, releaseSlow := make(chan struct{}, 1), make(chan struct{})
		slow := s.worker(connect(), "slow", worker.Config{Concurrency: 1, PendingMsgs: 1}, func(ctx context.Context, in map[string]any) (map[string]any, error) {
			select {
			case slowStarted <- struct{}{}:
			default:
			}
			<-releaseSlow
			return in, nil
		})
		workers := []*worker.Worker{echo, flaky, bad, late, slow}
		var stopWorkers []func()
		for _, w := range workers {
			stopWorkers = append(stopWorkers, testkit.StartActor(t, w.Run, w.Ready()))
		}

		// local admits one task in 1000 s, frontier too, but holds the
		// second for up to an hour.
		rt, err := router.New(connect(), router.Config{Rules: router.StaticRules(router.Rules{RateLimits: map[string]router.TierRateLimit{
			"local":    {RatePerSecond: 0.001, Burst: 1},
			"frontier": {RatePerSecond: 0.001, Burst: 1, MaxWaitSeconds: 3600},
		}})}, s.opts...)
		if err != nil {
			t.Fatal(err)
		}
		stopRouter := testkit.StartActor(t, rt.Run, rt.Ready())

		caller, err := dispatch.NewCaller(ctx, connect(), heddle.SubjectResultsDefault, dispatch.With(s.opts...))
		if err != nil {
			t.Fatal(err)
		}
		defer caller.Close()
		request := func(workerType string, payload map[string]any, opts ...dispatch.Option) (*heddle.TaskResult, error) {
			s.sentIn++
			return caller.Request(ctx, heddle.NewTaskMessage(workerType, payload), opts...)
		}

		// Completed, a contract violation, a retry, a failure.
		done, err := request("echo", map[string]any{"text": "hi"})
		if err != nil || done.Status != heddle.StatusCompleted {
			t.Fatalf("echo: %+v, %v", done, err)
		}
		if res, err := request("echo", map[string]any{"n": 1.0}); err != nil || res.Status != heddle.StatusFailed {
			t.Fatalf("echo without text: %+v, %v; want a failed result", res, err)
		}
		if res, err := request("flaky", map[string]any{"text": "again"}); err != nil || res.Status != heddle.StatusCompleted {
			t.Fatalf("flaky: %+v, %v", res, err)
		}
		if res, err := request("bad", map[string]any{}); err != nil || res.Status != heddle.StatusFailed {
			t.Fatalf("bad: %+v, %v; want a failed result", res, err)
		}

		// A duplicate, an ignored result, a message that is no result.
		again, err := done.Encode()
		if err != nil {
			t.Fatal(err)
		}
		s.send(heddle.SubjectResultsDefault, again)
		s.evs.wait(t, key(event.ResultStreamDuplicate), 1)
		stranger := heddle.NewTaskResult("no-such-task", "echo", heddle.StatusCompleted)
		data, err := stranger.Encode()
		if err != nil {
			t.Fatal(err)
		}
		s.send(heddle.SubjectResultsDefault, data)
		s.evs.wait(t, key(event.ResultStreamIgnored), 1)
		s.send(heddle.SubjectResultsDefault, []byte(`{"status":`))
		s.evs.wait(t, key(event.ResultStreamParseError), 1)

		// A wait that times out, and its result that comes late.
		var te *dispatch.TimeoutError
		if _, err := request("late", map[string]any{}, dispatch.Timeout(50*time.Millisecond)); !errors.As(err, &te) {
			t.Fatalf("late: %v, want a *dispatch.TimeoutError", err)
		}
		close(releaseLate)
		s.evs.wait(t, key(event.ResultStreamLate), 1)

		// A message on a worker subject that is no task.
		s.send(heddle.WorkerSubject("echo", heddle.TierStandard), []byte(`not a task`))
		s.evs.wait(t, key(event.WorkerFailed, "worker_type=echo", "status="), 1)

		// A dead letter for nothing serving its subject, replayed at once:
		// the router dead-letters it again.
		s.send(heddle.SubjectTasksIncoming, s.task("nobody", heddle.TierStandard, nil))
		s.evs.wait(t, key(event.DeadLetterReceived), 1)
		entries, _ := dl.List(0, 1)
		if len(entries) != 1 || !strings.HasPrefix(entries[0].DeadLetter.Reason, event.ReasonNoWorker) {
			t.Fatalf("dead letters %+v, want the no_worker one", entries)
		}
		if err := dl.Replay(ctx, entries[0].ID); err != nil {
			t.Fatal(err)
		}
		s.sentIn++
		s.evs.wait(t, key(event.DeadLetterReceived), 2)

		// Dead letters of the other reasons; the local and frontier tiers'
		// first tasks pass, their second are refused and held.
		unknownTier := strings.Replace(string(s.task("echo", heddle.TierStandard, map[string]any{"text": "x"})),
			`"model_tier":"standard"`, `"model_tier":"huge"`, 1)
		if !strings.Contains(unknownTier, `"huge"`) {
			t.Fatalf("no model_tier to replace in %s", unknownTier)
		}
		for _, data := range [][]byte{
			[]byte(`{"task_id":`),
			[]byte(unknownTier),
			s.task("echo", heddle.TierLocal, map[string]any{"text": "first"}),
			s.task("echo", heddle.TierLocal, map[string]any{"text": "second"}),
			s.task("echo", heddle.TierFrontier, map[string]any{"text": "first"}),
			s.task("echo", heddle.TierFrontier, map[string]any{"text": "held"}),
		} {
			s.send(heddle.SubjectTasksIncoming, data)
		}
		s.evs.wait(t, key(event.RouterThrottled), 1)
		s.evs.wait(t, key(event.DeadLetterReceived), 5)
		s.evs.wait(t, key(event.WorkerCompleted, "worker_type=echo"), 3)

		// A slow consumer: one task holds the only handler, the rest
		// overflow a pending limit of one.
		s.send(heddle.WorkerSubject("slow", heddle.TierStandard), s.task("slow", heddle.TierStandard, nil))
		<-slowStarted
		for range 10 {
			s.send(heddle.WorkerSubject("slow", heddle.TierStandard), s.task("slow", heddle.TierStandard, nil))
		}
		close(releaseSlow)

		// The router's stop dead-letters the held task (shutdown).
		stopRouter()
		rs := rt.Stats()
		s.evs.wait(t, key(event.DeadLetterReceived), rs.DeadLettered)
		for _, stop := range stopWorkers {
			stop()
		}
		stopDL()
		if err := caller.Close(); err != nil {
			t.Fatal(err)
		}

		// Workers.
		for _, w := range workers {
			ws, wt := w.Stats(), w.WorkerType()
			ev := func(name string, fields ...string) uint64 {
				return s.evs.count(key(name, append([]string{"worker_type=" + wt}, fields...)...))
			}
			lbl := []string{"worker_type", wt}
			agree(t, wt+" received", s.value("heddle_worker_tasks_received_total", lbl...), ws.Received, ev(event.WorkerReceived))
			agree(t, wt+" completed", s.value("heddle_worker_tasks_completed_total", lbl...), ws.Completed, ev(event.WorkerCompleted))
			agree(t, wt+" failed", s.value("heddle_worker_tasks_failed_total", lbl...), ws.Failed, ev(event.WorkerFailed, "status=failed"))
			agree(t, wt+" retried", s.value("heddle_worker_task_retries_total", lbl...), ws.Retried, ev(event.WorkerRetry))
			agree(t, wt+" malformed", s.value("heddle_worker_malformed_messages_total", lbl...), ws.Malformed, ev(event.WorkerFailed, "status="))
			agree(t, wt+" publish errors", s.value("heddle_worker_publish_errors_total", lbl...), ws.PublishErrors, ev(event.WorkerFailed, "reason=publish"))
			agree(t, wt+" abandoned", s.value("heddle_worker_handlers_abandoned_total", lbl...), ws.Abandoned, ev(event.WorkerAbandoned))
			agree(t, wt+" dropped", s.value("heddle_worker_dropped_tasks_total", lbl...), ws.Dropped, ev(event.WorkerSlowConsumer))
			if d := s.value("heddle_worker_task_duration_seconds", lbl...); d != float64(ws.Completed+ws.Failed) {
				t.Errorf("%s: %v task durations, want one per result: %d", wt, d, ws.Completed+ws.Failed)
			}
			if g := s.value("heddle_worker_in_flight_tasks", lbl...); g != 0 {
				t.Errorf("%s: %v tasks in flight after Run returned", wt, g)
			}
			if g := s.value("heddle_worker_hung_handlers", lbl...); g != 0 {
				t.Errorf("%s: %v hung handlers after Run returned", wt, g)
			}
		}
		es, fs, bs, ls, ss := echo.Stats(), flaky.Stats(), bad.Stats(), late.Stats(), slow.Stats()
		same(t, "echo completed", s.value("heddle_worker_tasks_completed_total", "worker_type", "echo"), es.Completed,
			s.evs.count(key(event.WorkerCompleted, "worker_type=echo")), 3)
		same(t, "echo input contract", s.value("heddle_worker_tasks_failed_total", "worker_type", "echo", "reason", event.ReasonInputContract), es.Failed,
			s.evs.count(key(event.WorkerFailed, "worker_type=echo", "reason="+event.ReasonInputContract)), 1)
		if v := s.value("heddle_worker_contract_violations_total", "worker_type", "echo", "side", "input"); v != 1 {
			t.Errorf("echo input contract violations: %v, want 1", v)
		}
		same(t, "echo malformed", s.value("heddle_worker_malformed_messages_total", "worker_type", "echo", "reason", event.ReasonDecode), es.Malformed,
			s.evs.count(key(event.WorkerFailed, "worker_type=echo", "reason="+event.ReasonDecode)), 1)
		same(t, "flaky retried", s.value("heddle_worker_task_retries_total", "worker_type", "flaky", "reason", event.ReasonHandler), fs.Retried,
			s.evs.count(key(event.WorkerRetry, "worker_type=flaky", "reason="+event.ReasonHandler)), 1)
		same(t, "bad failed", s.value("heddle_worker_tasks_failed_total", "worker_type", "bad", "reason", event.ReasonPermanent), bs.Failed,
			s.evs.count(key(event.WorkerFailed, "worker_type=bad", "reason="+event.ReasonPermanent)), 1)
		same(t, "late completed", s.value("heddle_worker_tasks_completed_total", "worker_type", "late"), ls.Completed,
			s.evs.count(key(event.WorkerCompleted, "worker_type=late")), 1)
		if ss.Dropped == 0 || ss.Received+ss.Dropped != 11 || ss.Completed != ss.Received {
			t.Errorf("slow: %+v; want drops, and every one of the 11 tasks received or dropped", ss)
		}
		if v := s.value("heddle_worker_task_duration_seconds", "worker_type", "flaky", "status", "completed"); v != 1 {
			t.Errorf("flaky: %v tasks timed, want its one task, retry included", v)
		}

		// The router.
		rev := func(reason string) uint64 { return s.evs.count(key(event.RouterDeadLettered, "reason="+reason)) }
		dead := func(reason string) float64 { return s.value("heddle_router_dead_lettered_total", "reason", reason) }
		total := s.value("heddle_router_dead_lettered_total")
		agree(t, "routed", s.value("heddle_router_routed_total"), rs.Routed, s.evs.count(key(event.RouterRouted)))
		same(t, "dead-lettered", total, rs.DeadLettered, s.evs.count(key(event.RouterDeadLettered)), 6)
		same(t, "invalid_task_message", dead(event.ReasonInvalidTaskMessage), rs.InvalidMessages, rev(event.ReasonInvalidTaskMessage), 1)
		same(t, "unknown_tier", dead(event.ReasonUnknownTier), rs.UnknownTiers, rev(event.ReasonUnknownTier), 1)
		same(t, "rate_limited", dead(event.ReasonRateLimited), rs.RateLimited, rev(event.ReasonRateLimited), 1)
		same(t, "no_worker", dead(event.ReasonNoWorker), rs.NoWorker, rev(event.ReasonNoWorker), 2)
		same(t, "shutdown", dead(event.ReasonShutdown), rs.Shutdown, rev(event.ReasonShutdown), 1)
		same(t, "throttled", s.value("heddle_router_throttled_total"), rs.Throttled, s.evs.count(key(event.RouterThrottled)), 1)
		if v := s.value("heddle_router_dead_lettered_total", "worker_type", "nobody", "reason", event.ReasonNoWorker); v != 2 {
			t.Errorf("no_worker dead letters of worker type nobody: %v, want 2", v)
		}
		// Each message the router took has one route, timed to its forward
		// or its dead letter: the held one's to its dead letter at
		// shutdown, no_worker's to the dead letter learned after its
		// forward.
		if v := s.value("heddle_router_route_duration_seconds"); v != float64(s.sentIn) || v != float64(rs.Routed+rs.DeadLettered) {
			t.Errorf("%v routes timed, want one per message sent: %d (routed %d, dead-lettered %d)", v, s.sentIn, rs.Routed, rs.DeadLettered)
		}
		if v := s.value("heddle_router_route_duration_seconds", "status", "routed"); v != float64(rs.Routed) {
			t.Errorf("%v routed routes timed, want %d", v, rs.Routed)
		}
		if v := s.value("heddle_router_route_duration_seconds", "status", "dead_lettered"); v != 6 {
			t.Errorf("%v dead-lettered routes timed, want 6 (every dead letter)", v)
		}

		// The caller.
		cs := caller.Stats()
		stream := func(ev string) float64 { return s.value("heddle_result_stream_events_total", "event", ev) }
		same(t, "collected", stream("collected"), cs.Collected, s.evs.count(key(event.ResultStreamCollected)), 4)
		same(t, "duplicate", stream("duplicate"), cs.Duplicates, s.evs.count(key(event.ResultStreamDuplicate)), 1)
		same(t, "ignored", stream("ignored"), cs.Ignored, s.evs.count(key(event.ResultStreamIgnored)), 1)
		same(t, "parse_error", stream("parse_error"), cs.ParseErrors, s.evs.count(key(event.ResultStreamParseError)), 1)
		same(t, "late", stream("late"), cs.Late, s.evs.count(key(event.ResultStreamLate)), 1)
		same(t, "timeout", stream("timeout"), cs.Timeouts, s.evs.count(key(event.ResultStreamTimeout)), 1)
		if v := s.value("heddle_dispatch_wait_seconds"); v != 5 {
			t.Errorf("%v dispatch waits timed, want one per request: 5", v)
		}

		// The dead-letter store.
		ds := dl.Stats()
		dead2 := func(ev string, labels ...string) float64 {
			return s.value("heddle_dead_letters_total", append([]string{"event", ev}, labels...)...)
		}
		same(t, "dead letters received", dead2("received"), ds.Received, s.evs.count(key(event.DeadLetterReceived)), 6)
		// Six received, one taken out by its replay: five stored in three
		// places.
		same(t, "dead letters evicted", dead2("evicted"), ds.Evicted, s.evs.count(key(event.DeadLetterEvicted)), 2)
		same(t, "dead letters replayed", dead2("replayed"), ds.Replayed, s.evs.count(key(event.DeadLetterReplayed)), 1)
		if v := dead2("received", "reason", event.ReasonNoWorker); v != 2 {
			t.Errorf("no_worker dead letters received: %v, want 2", v)
		}
		if v := dead2("replayed", "reason", event.ReasonNoWorker); v != 1 {
			t.Errorf("no_worker dead letters replayed: %v, want 1", v)
		}
	})
}

func TestARequestsWaitIsTimedByItsStatus(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		s := newScript(t, connect)
		w := s.worker(connect(), "echo", worker.Config{}, func(_ context.Context, in map[string]any) (map[string]any, error) {
			if in["fail"] == true {
				return nil, worker.Permanent(errors.New("asked to fail"))
			}
			return in, nil
		})
		testkit.StartActor(t, w.Run, w.Ready())
		rt, err := router.New(connect(), router.Config{}, s.opts...)
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, rt.Run, rt.Ready())
		ctx := testkit.Context(t)
		for _, fail := range []bool{false, false, true} {
			if _, err := dispatch.Request(ctx, connect(), heddle.NewTaskMessage("echo", map[string]any{"fail": fail}), dispatch.With(s.opts...)); err != nil {
				t.Fatal(err)
			}
		}
		completed := s.value("heddle_dispatch_wait_seconds", "worker_type", "echo", "status", "completed")
		failed := s.value("heddle_dispatch_wait_seconds", "worker_type", "echo", "status", "failed")
		if completed != 2 || failed != 1 {
			t.Fatalf("dispatch waits timed: %v completed, %v failed; want 2 and 1", completed, failed)
		}
		if v := s.value("heddle_result_stream_events_total", "event", "collected"); v != 3 {
			t.Fatalf("%v results collected, want 3", v)
		}
	})
}
