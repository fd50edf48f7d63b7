package worker_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/internal/version"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/worker"
)

// heartbeats collects the heartbeats published on workerType's subject.
func heartbeats(t *testing.T, b bus.Bus, workerType string) <-chan heddle.Heartbeat {
	t.Helper()
	ch := make(chan heddle.Heartbeat, 64)
	sub, err := b.Subscribe(context.Background(), heddle.HeartbeatSubject(workerType), func(_ context.Context, m *bus.Msg) error {
		hb, err := heddle.DecodeHeartbeat(m.Data)
		if err != nil {
			t.Errorf("malformed heartbeat on %s: %v: %s", m.Subject, err, m.Data)
			return nil
		}
		ch <- hb
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return ch
}

func nextHeartbeat(t *testing.T, ch <-chan heddle.Heartbeat, what string) heddle.Heartbeat {
	t.Helper()
	select {
	case hb := <-ch:
		return hb
	case <-time.After(workerWait):
		t.Fatalf("no %s within %s", what, workerWait)
		return heddle.Heartbeat{}
	}
}

// pending returns the heartbeats ch holds now. Inside a synctest bubble,
// after synctest.Wait, that is every heartbeat published so far.
func pending(ch <-chan heddle.Heartbeat) []heddle.Heartbeat {
	var out []heddle.Heartbeat
	for {
		select {
		case hb := <-ch:
			out = append(out, hb)
		default:
			return out
		}
	}
}

func TestEveryKindOfWorkerHeartbeatsWhenItServesAndOnceMoreWhenItStops(t *testing.T) {
	echo := func(_ context.Context, in workerEchoIn) (workerEchoOut, error) {
		return workerEchoOut{Echo: in.Text}, nil
	}
	dynamic := func(_ context.Context, in map[string]any) (map[string]any, error) { return in, nil }
	kinds := []struct {
		name string
		make func(b bus.Bus, workerType string, cfg worker.Config) (*worker.Worker, error)
	}{
		{"typed", func(b bus.Bus, wt string, cfg worker.Config) (*worker.Worker, error) {
			return worker.New(b, wt, echo, cfg)
		}},
		{"dynamic", func(b bus.Bus, wt string, cfg worker.Config) (*worker.Worker, error) {
			return worker.NewDynamic(b, wt, dynamic, cfg)
		}},
		{"exec", func(b bus.Bus, wt string, cfg worker.Config) (*worker.Worker, error) {
			return worker.NewExec(b, wt, worker.ExecSpec{Command: []string{"cat"}, OutputFormat: worker.ExecJSON}, cfg)
		}},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		for _, kind := range kinds {
			t.Run(kind.name, func(t *testing.T) {
				wb, watcher := connect(), connect()
				wt := workerTestType("beating_" + kind.name)
				beats := heartbeats(t, watcher, wt)
				results := workerCollect(t, watcher, heddle.SubjectResultsDefault)
				w, err := kind.make(wb, wt, worker.Config{Concurrency: 3, Tiers: []heddle.ModelTier{heddle.TierLocal, heddle.TierFrontier}})
				if err != nil {
					t.Fatal(err)
				}
				before := time.Now().UTC()
				run := workerStart(t, w)

				first := nextHeartbeat(t, beats, "heartbeat at start")
				want := heddle.Heartbeat{
					InstanceID: first.InstanceID, WorkerType: wt, Tiers: []heddle.ModelTier{heddle.TierLocal, heddle.TierFrontier},
					QueueGroup: heddle.WorkerQueueGroup(wt), Language: "go", SDKVersion: version.SDK, Host: first.Host, PID: os.Getpid(),
					StartedAt: first.StartedAt, SentAt: first.SentAt, Interval: heddle.DefaultHeartbeatInterval, Capacity: 3,
				}
				if first.InstanceID == "" || first.StartedAt.Before(before.Truncate(time.Microsecond)) || first.SentAt.Before(first.StartedAt) ||
					!equalHeartbeats(first, want) {
					t.Errorf("first heartbeat %+v\nwant %+v, with an instance id and started_at <= sent_at", first, want)
				}

				task := heddle.NewTaskMessage(wt, map[string]any{"text": "hello"})
				task.ModelTier = heddle.TierFrontier
				workerPublishTask(t, connect(), task)
				if r := results.next(t); r.Status != heddle.StatusCompleted {
					t.Fatalf("result %+v, want completed", r.TaskResult)
				}
				if err := run.stop(t); err != nil {
					t.Fatalf("Run = %v", err)
				}
				last := nextHeartbeat(t, beats, "stopping heartbeat")
				if !last.Stopping || last.InstanceID != first.InstanceID || !last.StartedAt.Equal(first.StartedAt) {
					t.Errorf("last heartbeat %+v, want the same instance marked stopping", last)
				}
				// The stop came after the result was published; the worker
				// counts the task once its publish returned, so it is
				// either completed or still in flight, never failed.
				if last.Completed+last.InFlight != 1 || last.Failed != 0 {
					t.Errorf("last heartbeat counts %d completed, %d in flight, %d failed; want the one task", last.Completed, last.InFlight, last.Failed)
				}
			})
		}
	})
}

// equalHeartbeats compares every field but the counters, which the test
// checks apart.
func equalHeartbeats(a, b heddle.Heartbeat) bool {
	return a.InstanceID == b.InstanceID && a.WorkerType == b.WorkerType && slices.Equal(a.Tiers, b.Tiers) &&
		a.QueueGroup == b.QueueGroup && a.Language == b.Language && a.SDKVersion == b.SDKVersion && a.Host == b.Host &&
		a.PID == b.PID && a.StartedAt.Equal(b.StartedAt) && a.SentAt.Equal(b.SentAt) && a.Interval == b.Interval &&
		a.Capacity == b.Capacity && a.Stopping == b.Stopping
}

// The tests with a fake clock run the worker on membus inside a
// testing/synctest bubble (natsbus does real I/O and cannot run in one):
// the bubble's clock moves only when every goroutine in it waits, so a
// heartbeat due at 30 s is sent at exactly 30 s, and synctest.Wait
// returns once it has been delivered.

func TestAWorkerHeartbeatsEveryIntervalAndNotBetween(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := membus.New()
		defer b.Close()
		beats := heartbeats(t, b, "ticker")
		w, err := worker.NewDynamic(b, "ticker", func(_ context.Context, in map[string]any) (map[string]any, error) { return in, nil },
			worker.Config{HeartbeatInterval: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		<-w.Ready()
		start := time.Now()
		synctest.Wait()
		at := func(hbs []heddle.Heartbeat) []time.Duration {
			var out []time.Duration
			for _, hb := range hbs {
				out = append(out, hb.SentAt.Sub(start.UTC().Truncate(time.Microsecond)).Round(time.Second))
			}
			return out
		}
		if got := at(pending(beats)); !slices.Equal(got, []time.Duration{0}) {
			t.Errorf("at start, heartbeats at %v, want one at 0s", got)
		}
		time.Sleep(29 * time.Second) // sleep-ok: moves the bubble's clock to just before the second heartbeat
		synctest.Wait()
		if got := pending(beats); len(got) != 0 {
			t.Errorf("heartbeats at %v before the interval ran out", at(got))
		}
		time.Sleep(time.Second + 60*time.Second) // sleep-ok: moves the bubble's clock to 90 s
		synctest.Wait()
		if got := at(pending(beats)); !slices.Equal(got, []time.Duration{30 * time.Second, 60 * time.Second, 90 * time.Second}) {
			t.Errorf("heartbeats at %v, want at 30s, 1m0s and 1m30s", got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
		synctest.Wait()
		last := pending(beats)
		if len(last) != 1 || !last[0].Stopping || last[0].Interval != 30*time.Second {
			t.Errorf("after the stop, heartbeats %+v, want one marked stopping", last)
		}
		time.Sleep(time.Hour) // sleep-ok: moves the bubble's clock; nothing may heartbeat any more
		synctest.Wait()
		if got := pending(beats); len(got) != 0 {
			t.Errorf("%d heartbeats after Run returned", len(got))
		}
	})
}

func TestAWorkerWithHeartbeatsOffSendsNone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := membus.New()
		defer b.Close()
		all := make(chan string, 64)
		sub, err := b.Subscribe(context.Background(), heddle.SubjectHeartbeats, func(_ context.Context, m *bus.Msg) error {
			all <- m.Subject
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		results := workerCollect(t, b, heddle.SubjectResultsDefault)
		w, err := worker.NewDynamic(b, "quiet", func(_ context.Context, in map[string]any) (map[string]any, error) { return in, nil },
			worker.Config{NoHeartbeat: true, HeartbeatInterval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		<-w.Ready()
		workerPublishTask(t, b, heddle.NewTaskMessage("quiet", nil))
		synctest.Wait()
		if r := results.next(t); r.Status != heddle.StatusCompleted {
			t.Errorf("result %+v, want completed: the worker serves", r.TaskResult)
		}
		time.Sleep(time.Minute) // sleep-ok: moves the bubble's clock past many intervals
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
		synctest.Wait()
		if len(all) != 0 {
			t.Errorf("heartbeat on %s from a worker with NoHeartbeat", <-all)
		}
	})
}

// A worker whose bus goes away sends no stopping heartbeat (it cannot),
// and its heartbeat loop ends with Run: to a registry it falls silent,
// as a crashed one does.
func TestAWorkerWhoseBusClosesFallsSilent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		first := membus.New()
		defer first.Close()
		wb := first.Connect()
		beats := heartbeats(t, first, "orphan")
		w, err := worker.NewDynamic(wb, "orphan", func(_ context.Context, in map[string]any) (map[string]any, error) { return in, nil },
			worker.Config{})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- w.Run(context.Background()) }()
		<-w.Ready()
		time.Sleep(45 * time.Second) // sleep-ok: moves the bubble's clock past the second heartbeat
		if err := wb.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, bus.ErrClosed) {
			t.Fatalf("Run = %v, want an error wrapping bus.ErrClosed", err)
		}
		time.Sleep(time.Hour) // sleep-ok: moves the bubble's clock; nothing may heartbeat any more
		synctest.Wait()
		got := pending(beats)
		if len(got) != 2 || got[0].Stopping || got[1].Stopping {
			t.Errorf("heartbeats %+v, want the ones at 0 s and 30 s, none stopping", got)
		}
	})
}

func TestAFailedHeartbeatIsLoggedAndTheWorkerServesOn(t *testing.T) {
	b := membus.New()
	defer b.Close()
	logs := testlog.New()
	fb := testkit.FailingBus{Bus: b, Fail: []string{heddle.HeartbeatSubject("")}}
	results := workerCollect(t, b, heddle.SubjectResultsDefault)
	w, err := worker.NewDynamic(fb, "muffled", func(_ context.Context, in map[string]any) (map[string]any, error) { return in, nil },
		worker.Config{}, heddle.WithLogger(logs.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	run := workerStart(t, w)
	failed := logs.Wait(t, "worker.heartbeat_failed", 1)
	if failed[0].Str("instance_id") == "" || failed[0].Str("stopping") != "false" || failed[0].Str("error") == "" {
		t.Errorf("worker.heartbeat_failed %+v, want the instance, stopping false and the error", failed[0].Attrs)
	}
	workerPublishTask(t, b, heddle.NewTaskMessage("muffled", nil))
	if r := results.next(t); r.Status != heddle.StatusCompleted {
		t.Errorf("result %+v, want completed", r.TaskResult)
	}
	if err := run.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	all := logs.All("worker.heartbeat_failed")
	if len(all) != 2 || all[1].Str("stopping") != "true" || all[1].Str("heartbeats_failed") != "2" {
		t.Errorf("worker.heartbeat_failed records %d (last %+v), want the first and the stopping one", len(all), all[len(all)-1].Attrs)
	}
	if n := w.Stats().HeartbeatErrors; n != 2 {
		t.Errorf("Stats().HeartbeatErrors = %d, want the 2 heartbeats that failed", n)
	}
	if started := logs.All("worker.heartbeat_started"); len(started) != 1 || started[0].Str("instance_id") != failed[0].Str("instance_id") {
		t.Errorf("worker.heartbeat_started records %+v, want one naming the instance", started)
	}
}

func TestANegativeHeartbeatIntervalIsAConfigError(t *testing.T) {
	b := membus.New()
	defer b.Close()
	_, err := worker.NewDynamic(b, "w", func(_ context.Context, in map[string]any) (map[string]any, error) { return in, nil },
		worker.Config{HeartbeatInterval: -time.Second})
	if !errors.Is(err, heddle.ErrConfig) || !strings.Contains(err.Error(), "HeartbeatInterval") {
		t.Errorf("error %v, want heddle.ErrConfig naming HeartbeatInterval", err)
	}
}
