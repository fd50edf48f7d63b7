package router_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/deadletter"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/router"
)

// TestRouterRateLimitReloadAndReplayFlow follows the runbook for
// rate_limited: a task beyond the tier's capacity is dead-lettered, the
// operator raises the limit in the rules file and publishes on
// heddle.control.reload, then replays the dead letter, which now reaches
// the worker, whose result reaches the caller.
func TestRouterRateLimitReloadAndReplayFlow(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		caller, workerBus := connect(), connect()
		path := filepath.Join(t.TempDir(), "router_rules.yaml")
		routerWriteRules(t, path, "rate_limits:\n  frontier:\n    max_concurrent: 1\n    tokens_per_minute: 50000\n")
		consumer, dlLogs, _ := routerStartConsumer(t, connect(), deadletter.Config{})
		rt, logs, _ := routerStart(t, connect(), router.Config{Rules: router.RulesFile(path)})

		// The worker: answers each task on its result subject.
		worked := make(chan *bus.Msg, 8)
		_, err := workerBus.Subscribe(t.Context(), heddle.WorkerSubject("summarizer", heddle.TierFrontier), func(ctx context.Context, m *bus.Msg) error {
			worked <- &bus.Msg{Data: bytes.Clone(m.Data)}
			task, err := heddle.DecodeTaskMessage(m.Data)
			if err != nil {
				return err
			}
			res, err := task.Result(heddle.StatusCompleted, map[string]any{"summary": "done"}, nil).Encode()
			if err != nil {
				return err
			}
			return workerBus.Publish(ctx, &bus.Msg{Subject: task.ResultSubject(), Data: res})
		}, bus.Queue(heddle.WorkerQueueGroup("summarizer")))
		if err != nil {
			t.Fatal(err)
		}
		const parent = "goal-42"
		results, _ := testkit.Subscribe(t, caller, heddle.ResultSubject(parent))
		newTask := func() (heddle.TaskMessage, []byte) {
			m, _ := testkit.Task(t, "summarizer", heddle.TierFrontier)
			m.ParentTaskID = parent
			data, err := m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			return m, data
		}
		expectResult := func(taskID string) {
			t.Helper()
			res, err := heddle.DecodeTaskResult(testkit.Recv(t, results, "the result of "+taskID).Data)
			if err != nil || res.TaskID != taskID || res.Status != heddle.StatusCompleted {
				t.Fatalf("caller got result %+v (%v), want a completed result for %s", res, err, taskID)
			}
		}

		first, firstData := newTask()
		testkit.Publish(t, caller, heddle.SubjectTasksIncoming, firstData, nil)
		if got := testkit.Recv(t, worked, "the first task at the worker"); !bytes.Equal(got.Data, firstData) {
			t.Fatalf("worker got %s, want the task unchanged", got.Data)
		}
		expectResult(first.TaskID)

		second, secondData := newTask()
		testkit.Publish(t, caller, heddle.SubjectTasksIncoming, secondData, bus.Header{"X-Trace": {"t2"}})
		// The caller learns at once why: a failed result naming the reason.
		answer, err := heddle.DecodeTaskResult(testkit.Recv(t, results, "the router's answer for "+second.TaskID).Data)
		if err != nil || answer.TaskID != second.TaskID || answer.Status != heddle.StatusFailed ||
			answer.Error != "rate_limited: tier 'frontier' has no available capacity" ||
			answer.Metadata[heddle.MetadataDeadLetterReason] != event.ReasonRateLimited {
			t.Fatalf("caller got %+v (%v), want a failed result naming the rate limit", answer, err)
		}
		dlLogs.Wait(t, "dead_letter.received", 1)
		entries, _ := consumer.List(0, 0)
		if len(entries) != 1 {
			t.Fatalf("the consumer holds %d entries, want 1", len(entries))
		}
		dead := entries[0]
		if want := "rate_limited: tier 'frontier' has no available capacity"; dead.DeadLetter.Reason != want {
			t.Fatalf("reason = %q, want exactly %q", dead.DeadLetter.Reason, want)
		}
		if !bytes.Equal(dead.DeadLetter.Original(), secondData) || dead.DeadLetter.TaskID != second.TaskID || dead.DeadLetter.WorkerType != "summarizer" {
			t.Fatalf("dead letter = %+v with original %s, want task %s byte for byte", dead, dead.DeadLetter.Original(), second.TaskID)
		}

		// Raise the limit and reload, as the runbook says.
		routerWriteRules(t, path, "rate_limits:\n  frontier:\n    max_concurrent: 5\n    tokens_per_minute: 50000\n")
		testkit.Publish(t, caller, heddle.SubjectControlReload, []byte("{}"), nil)
		reloaded := logs.Wait(t, "router.reloaded", 1)[0]
		if reloaded.Str("rate_limits") != "1" || reloaded.Str("overrides") != "0" {
			t.Errorf("router.reloaded attrs = %v, want 1 rate limit and 0 overrides", reloaded.Attrs)
		}
		if got := rt.Rules().RateLimits["frontier"].MaxConcurrent; got != 5 {
			t.Fatalf("after reload frontier max_concurrent = %d, want 5", got)
		}

		if err := consumer.Replay(t.Context(), dead.ID); err != nil {
			t.Fatal(err)
		}
		got := testkit.Recv(t, worked, "the replayed task at the worker")
		if !bytes.Equal(got.Data, secondData) {
			t.Fatalf("worker got the replayed task as %s, want the original bytes %s", got.Data, secondData)
		}
		expectResult(second.TaskID)
		logs.Wait(t, "router.routed", 2)

		if n := consumer.Stats().Replayed; n != 1 {
			t.Errorf("Stats().Replayed = %d, want 1", n)
		}
		if _, ok := consumer.Get(dead.ID); ok || consumer.Len() != 0 {
			t.Errorf("the replayed entry is still stored (Len %d)", consumer.Len())
		}
		replayed := dlLogs.All("dead_letter.replayed")
		if len(replayed) != 1 || replayed[0].Str("id") != dead.ID || replayed[0].Str("task_id") != second.TaskID {
			t.Errorf("dead_letter.replayed records = %+v, want one naming the entry and its task", replayed)
		}
		if err := consumer.Replay(t.Context(), dead.ID); !errors.Is(err, deadletter.ErrNotFound) {
			t.Errorf("replaying the entry twice = %v, want ErrDeadLetterNotFound", err)
		}
		s := rt.Stats()
		if s.Routed != 2 || s.RateLimited != 1 || s.DeadLettered != 1 || s.Reloads != 1 || s.ReloadErrors != 0 {
			t.Errorf("Stats() = %+v, want 2 routed, 1 rate-limited, 1 reload", s)
		}
	})
}

func TestRouterKeepsItsRulesWhenAReloadIsRejected(t *testing.T) {
	const good = "tier_overrides:\n  summarizer: local\nrate_limits:\n  frontier:\n    max_concurrent: 1\n"
	tests := []struct {
		name      string
		newRules  string
		wantError string
	}{
		{"a value of the wrong type", "tier_overrides:\n  summarizer: standard\nrate_limits:\n  frontier:\n    max_concurrent: lots\n",
			`rate_limits.frontier.max_concurrent: expected an integer, got string "lots"`},
		{"malformed YAML", "tier_overrides: [\n", "not valid YAML"},
		{"an empty file", "", "the document is empty"},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				caller, workers := connect(), connect()
				path := filepath.Join(t.TempDir(), "router_rules.yaml")
				routerWriteRules(t, path, good)
				rt, logs, _ := routerStart(t, connect(), router.Config{Rules: router.RulesFile(path)})
				local, _ := testkit.Subscribe(t, workers, heddle.WorkerSubject("summarizer", heddle.TierLocal))
				frontier, _ := testkit.Subscribe(t, workers, heddle.WorkerSubject("writer", heddle.TierFrontier))
				deadLetters, _ := testkit.Subscribe(t, workers, heddle.SubjectDeadLetter)

				routerWriteRules(t, path, tt.newRules)
				testkit.Publish(t, caller, heddle.SubjectControlReload, []byte("{}"), nil)
				failed := logs.Wait(t, "router.reload_failed", 1)[0]
				if failed.Level != slog.LevelError || !strings.Contains(failed.Str("error"), tt.wantError) {
					t.Errorf("router.reload_failed = %+v, want an error naming %q", failed, tt.wantError)
				}
				if err := rt.Reload(t.Context()); !errors.Is(err, router.ErrInvalidRules) {
					t.Errorf("Reload() = %v, want ErrInvalidRouterRules", err)
				}
				if n := len(logs.All("router.reloaded")); n != 0 {
					t.Errorf("%d router.reloaded records after rejected reloads", n)
				}

				// The old override and the old limit still apply.
				_, summarize := testkit.Task(t, "summarizer", heddle.TierFrontier)
				testkit.Publish(t, caller, heddle.SubjectTasksIncoming, summarize, nil)
				testkit.Recv(t, local, "the summarizer task at the override tier local")
				_, write1 := testkit.Task(t, "writer", heddle.TierFrontier)
				_, write2 := testkit.Task(t, "writer", heddle.TierFrontier)
				testkit.Publish(t, caller, heddle.SubjectTasksIncoming, write1, nil)
				testkit.Publish(t, caller, heddle.SubjectTasksIncoming, write2, nil)
				if got := testkit.Recv(t, frontier, "the first writer task"); !bytes.Equal(got.Data, write1) {
					t.Errorf("frontier worker got %s, want the first writer task", got.Data)
				}
				d, err := heddle.DecodeDeadLetter(testkit.Recv(t, deadLetters, "the second writer task's dead letter").Data)
				if err != nil || !strings.HasPrefix(d.Reason, "rate_limited: tier 'frontier'") || !bytes.Equal(d.Original(), write2) {
					t.Errorf("dead letter = %+v (%v), want the second writer task rate-limited by the old limit", d, err)
				}
				logs.Wait(t, "router.routed", 2)
				logs.Wait(t, "router.dead_lettered", 1)
				if s := rt.Stats(); s.ReloadErrors != 2 || s.Reloads != 0 || s.Routed != 2 || s.RateLimited != 1 {
					t.Errorf("Stats() = %+v, want 2 reload errors, 0 reloads, 2 routed, 1 rate-limited", s)
				}
			})
		}
	})
}

func TestRouterReloadKeepsTheBucketOfAnUnchangedLimit(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		caller, workers := connect(), connect()
		var mu sync.Mutex
		current := router.Rules{RateLimits: map[string]router.TierRateLimit{"local": {MaxConcurrent: 1}}}
		source := func(context.Context) (router.Rules, error) {
			mu.Lock()
			defer mu.Unlock()
			return current.Clone(), nil
		}
		rt, logs, _ := routerStart(t, connect(), router.Config{Rules: source})
		routed, _ := testkit.Subscribe(t, workers, heddle.WorkerSubjectAllTiers("echo"))
		dead, _ := testkit.Subscribe(t, workers, heddle.SubjectDeadLetter)

		_, a := testkit.Task(t, "echo", heddle.TierLocal)
		testkit.Publish(t, caller, heddle.SubjectTasksIncoming, a, nil)
		testkit.Recv(t, routed, "the first local task")

		mu.Lock()
		current.TierOverrides = map[string]string{"other": "frontier"} // the limit stays the same
		mu.Unlock()
		if err := rt.Reload(t.Context()); err != nil {
			t.Fatal(err)
		}
		logs.Wait(t, "router.reloaded", 1)
		_, b := testkit.Task(t, "echo", heddle.TierLocal)
		testkit.Publish(t, caller, heddle.SubjectTasksIncoming, b, nil)
		d, err := heddle.DecodeDeadLetter(testkit.Recv(t, dead, "the second local task's dead letter").Data)
		if err != nil || d.Reason != "rate_limited: tier 'local' has no available capacity" {
			t.Fatalf("dead letter %+v (%v): want rate_limited, since a reload keeping the limit keeps the empty bucket", d, err)
		}
	})
}

func TestRouterBucketKeptByAReloadRefills(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		broker := membus.New()
		defer broker.Close()
		caller, workers := broker.Connect(), broker.Connect()
		defer caller.Close()
		defer workers.Close()
		current := router.Rules{RateLimits: map[string]router.TierRateLimit{"local": {MaxConcurrent: 1}}}
		rt, err := router.New(broker, router.Config{Rules: router.StaticRules(current)}, heddle.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- rt.Run(ctx) }()
		<-rt.Ready()
		routed, _ := testkit.Subscribe(t, workers, heddle.WorkerSubjectAllTiers("echo"))
		dead, _ := testkit.Subscribe(t, workers, heddle.SubjectDeadLetter)

		_, a := testkit.Task(t, "echo", heddle.TierLocal)
		testkit.Publish(t, caller, heddle.SubjectTasksIncoming, a, nil)
		testkit.Recv(t, routed, "the first local task")
		if err := rt.Reload(t.Context()); err != nil {
			t.Fatal(err)
		}
		_, b := testkit.Task(t, "echo", heddle.TierLocal)
		testkit.Publish(t, caller, heddle.SubjectTasksIncoming, b, nil)
		testkit.Recv(t, dead, "the second local task's dead letter")

		time.Sleep(60 * time.Second) // sleep-ok: synctest fake clock; one token per minute
		testkit.Publish(t, caller, heddle.SubjectTasksIncoming, b, nil)
		if got := testkit.Recv(t, routed, "the task after the refill"); !bytes.Equal(got.Data, b) {
			t.Fatalf("worker got %s, want the task sent after the refill", got.Data)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run returned %v", err)
		}
	})
}

func TestRouterReplicasShareTasksAndEachReloads(t *testing.T) {
	const tasks = 20
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		caller, workers := connect(), connect()
		rules := router.StaticRules(router.Rules{})
		busA, busB := connect(), connect()
		routerA, logsA, stopA := routerStart(t, busA, router.Config{Rules: rules})
		routerB, logsB, stopB := routerStart(t, busB, router.Config{Rules: rules})
		ch, sub := testkit.Subscribe(t, workers, heddle.WorkerSubjectAllTiers("echo"))

		testkit.Publish(t, caller, heddle.SubjectControlReload, []byte("{}"), nil)
		logsA.Wait(t, "router.reloaded", 1)
		logsB.Wait(t, "router.reloaded", 1)

		want := map[string]bool{}
		for range tasks {
			m, data := testkit.Task(t, "echo", heddle.TierStandard)
			want[m.TaskID] = true
			testkit.Publish(t, caller, heddle.SubjectTasksIncoming, data, nil)
		}
		seen := map[string]int{}
		for range tasks {
			m, err := heddle.DecodeTaskMessage(testkit.Recv(t, ch, "a routed task").Data)
			if err != nil {
				t.Fatal(err)
			}
			seen[m.TaskID]++
		}
		// Stop both routers, push out what they published, and drain the
		// worker: any duplicate would now be in ch.
		stopA()
		stopB()
		for _, b := range []bus.Bus{busA, busB} {
			if err := b.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if err := sub.Drain(t.Context()); err != nil {
			t.Fatal(err)
		}
		for extra := len(ch); extra > 0; extra-- {
			m, _ := heddle.DecodeTaskMessage(testkit.Recv(t, ch, "a duplicate").Data)
			seen[m.TaskID]++
		}
		for id := range want {
			if seen[id] != 1 {
				t.Errorf("task %s was routed %d times, want exactly once", id, seen[id])
			}
		}
		if len(seen) != tasks {
			t.Errorf("the worker saw %d distinct tasks, want %d", len(seen), tasks)
		}
		a, b := routerA.Stats(), routerB.Stats()
		if a.Routed+b.Routed != tasks || a.Reloads != 1 || b.Reloads != 1 {
			t.Errorf("replica stats %+v and %+v: want %d routed between them and one reload each", a, b, tasks)
		}
	})
}
