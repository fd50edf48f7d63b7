package heddle_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest"
	"github.com/heddle-go/heddle/ratelimit"
)

// routerTestTimeout bounds every wait in the router and dead-letter tests,
// so a bug fails the test instead of hanging it.
const routerTestTimeout = 15 * time.Second

// routerLogRecord is one recorded slog record, its attributes as text.
type routerLogRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// routerLogRecorder is a slog.Handler that keeps every record and lets a
// test wait for records instead of sleeping.
type routerLogRecorder struct {
	mu      sync.Mutex
	records []routerLogRecord
	changed chan struct{} // closed and replaced at every record
}

func newRouterLogRecorder() *routerLogRecorder {
	return &routerLogRecorder{changed: make(chan struct{})}
}

func (h *routerLogRecorder) logger() *slog.Logger { return slog.New(h) }

func (h *routerLogRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *routerLogRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := routerLogRecord{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.Resolve().String()
		return true
	})
	h.mu.Lock()
	h.records = append(h.records, rec)
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
	return nil
}

// WithAttrs and WithGroup are not used by the actors; the attributes are
// dropped.
func (h *routerLogRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *routerLogRecorder) WithGroup(string) slog.Handler      { return h }

// all returns the records whose message is msg.
func (h *routerLogRecorder) all(msg string) []routerLogRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []routerLogRecord
	for _, r := range h.records {
		if r.Msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// wait returns the records with message msg once there are at least n.
func (h *routerLogRecorder) wait(t *testing.T, msg string, n int) []routerLogRecord {
	t.Helper()
	timeout := time.NewTimer(routerTestTimeout)
	defer timeout.Stop()
	for {
		h.mu.Lock()
		changed := h.changed
		h.mu.Unlock()
		if got := h.all(msg); len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("timed out waiting for %d %q log records; have %d", n, msg, len(h.all(msg)))
		}
	}
}

// routerStartActor runs an actor's Run in a goroutine, waits until it is
// ready and returns a stop function that cancels it and checks that Run
// returned nil. stop is idempotent and also runs at cleanup, before the
// buses close.
func routerStartActor(t *testing.T, run func(context.Context) error, ready <-chan struct{}) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Run returned before it was ready: %v", err)
	case <-time.After(routerTestTimeout):
		cancel()
		t.Fatal("timed out waiting for Run to be ready")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v after its context ended, want nil", err)
				}
			case <-time.After(routerTestTimeout):
				t.Error("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// routerStart makes a Router on b and runs it.
func routerStart(t *testing.T, b bus.Bus, cfg heddle.RouterConfig) (*heddle.Router, *routerLogRecorder, func()) {
	t.Helper()
	logs := newRouterLogRecorder()
	r, err := heddle.NewRouter(b, cfg, heddle.WithLogger(logs.logger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := routerStartActor(t, r.Run, r.Ready())
	return r, logs, stop
}

// routerStartConsumer makes a DeadLetterConsumer on b and runs it.
func routerStartConsumer(t *testing.T, b bus.Bus, cfg heddle.DeadLetterConfig) (*heddle.DeadLetterConsumer, *routerLogRecorder, func()) {
	t.Helper()
	logs := newRouterLogRecorder()
	c, err := heddle.NewDeadLetterConsumer(b, cfg, heddle.WithLogger(logs.logger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := routerStartActor(t, c.Run, c.Ready())
	return c, logs, stop
}

// routerSubscribe collects the messages on subject; it plays the worker.
func routerSubscribe(t *testing.T, b bus.Bus, subject string) (<-chan *bus.Msg, bus.Subscription) {
	t.Helper()
	ch := make(chan *bus.Msg, 256)
	sub, err := b.Subscribe(t.Context(), subject, func(_ context.Context, m *bus.Msg) error {
		ch <- &bus.Msg{Subject: m.Subject, Header: m.Header.Clone(), Data: bytes.Clone(m.Data)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ch, sub
}

func routerRecv(t *testing.T, ch <-chan *bus.Msg, what string) *bus.Msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(routerTestTimeout):
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

func routerPublish(t *testing.T, b bus.Bus, subject string, data []byte, h bus.Header) {
	t.Helper()
	if err := b.Publish(t.Context(), &bus.Msg{Subject: subject, Header: h, Data: data}); err != nil {
		t.Fatal(err)
	}
}

// routerTask returns the wire form of a fresh task.
func routerTask(t *testing.T, workerType string, tier heddle.ModelTier) (heddle.TaskMessage, []byte) {
	t.Helper()
	m := heddle.NewTaskMessage(workerType, map[string]any{"text": "Heddle routes tasks."})
	m.ModelTier = tier
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return m, data
}

func routerWriteRules(t *testing.T, path, yaml string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}

var routerTestStart = time.Date(2026, 2, 9, 10, 0, 0, 0, time.UTC)

func TestRouterForwardsTasksToTheirWorkerSubject(t *testing.T) {
	rules := heddle.RouterRules{TierOverrides: map[string]string{
		"summarizer": "local",
		"extractor":  "standard",
		"mapper":     "frontier",
	}}
	tests := []struct {
		name        string
		data        string
		wantSubject string
		// wantUntouched: the worker gets the original bytes. Otherwise the
		// task is re-encoded and check inspects it.
		wantUntouched bool
		check         func(t *testing.T, got heddle.TaskMessage, routed routerLogRecord)
	}{
		{
			name: "a valid task is forwarded byte for byte, whitespace and unknown fields included",
			data: "{\n  \"worker_type\": \"echo\",  \"task_id\": \"3f2b8c1e-0001\",\n  \"model_tier\": \"frontier\",\n" +
				"  \"payload\": {\"n\": 12345678901234567890},\n  \"added_later\": [1, 2]\n}",
			wantSubject:   "heddle.tasks.echo.frontier",
			wantUntouched: true,
		},
		{
			name:          "a task without model_tier goes to the standard tier untouched",
			data:          `{"task_id":"3f2b8c1e-0002","worker_type":"echo","payload":{}}`,
			wantSubject:   "heddle.tasks.echo.standard",
			wantUntouched: true,
		},
		{
			name:          "an override equal to the task's tier forwards it untouched",
			data:          `{"task_id":"3f2b8c1e-0003","worker_type":"extractor","payload":{},"model_tier":"standard"}`,
			wantSubject:   "heddle.tasks.extractor.standard",
			wantUntouched: true,
		},
		{
			name:        "an override routes the task to the override tier, re-encoded with that tier",
			data:        `{"task_id":"3f2b8c1e-0004","worker_type":"summarizer","payload":{"text":"x"},"model_tier":"frontier","request_id":"r-1","added_later":true}`,
			wantSubject: "heddle.tasks.summarizer.local",
			check: func(t *testing.T, got heddle.TaskMessage, _ routerLogRecord) {
				if got.TaskID != "3f2b8c1e-0004" || got.ModelTier != heddle.TierLocal || got.RequestID != "r-1" ||
					got.Payload["text"] != "x" || string(got.Extra["added_later"]) != "true" {
					t.Errorf("re-encoded task = %+v, want the original with model_tier local", got)
				}
			},
		},
		{
			name:        "an override maps a non-standard model_tier onto a real tier",
			data:        `{"task_id":"3f2b8c1e-0005","worker_type":"mapper","payload":{},"model_tier":"gpu"}`,
			wantSubject: "heddle.tasks.mapper.frontier",
			check: func(t *testing.T, got heddle.TaskMessage, _ routerLogRecord) {
				if got.TaskID != "3f2b8c1e-0005" || got.ModelTier != heddle.TierFrontier {
					t.Errorf("re-encoded task = %+v, want task 3f2b8c1e-0005 at tier frontier", got)
				}
			},
		},
		{
			name:        "a task without task_id reaches the worker with the task_id the router logged",
			data:        `{"worker_type":"echo","payload":{}}`,
			wantSubject: "heddle.tasks.echo.standard",
			check: func(t *testing.T, got heddle.TaskMessage, routed routerLogRecord) {
				if got.TaskID == "" || got.TaskID != routed.Attrs["task_id"] {
					t.Errorf("worker got task_id %q, router logged %q; want the same", got.TaskID, routed.Attrs["task_id"])
				}
			},
		},
	}
	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		caller, workers := connect(), connect()
		router, logs, _ := routerStart(t, connect(), heddle.RouterConfig{Rules: heddle.StaticRules(rules)})
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ch, sub := routerSubscribe(t, workers, tt.wantSubject)
				defer sub.Unsubscribe()
				header := bus.Header{"X-Trace": {fmt.Sprintf("trace-%d", i)}}
				routerPublish(t, caller, heddle.SubjectTasksIncoming, []byte(tt.data), header)

				got := routerRecv(t, ch, "the task on "+tt.wantSubject)
				routed := logs.wait(t, "router.routed", i+1)[i]
				if routed.Attrs["subject"] != tt.wantSubject {
					t.Errorf("router.routed names subject %q, want %q", routed.Attrs["subject"], tt.wantSubject)
				}
				if got.Header.Get("X-Trace") != header.Get("X-Trace") {
					t.Errorf("worker got headers %v, want the caller's %v", got.Header, header)
				}
				if tt.wantUntouched {
					if !bytes.Equal(got.Data, []byte(tt.data)) {
						t.Errorf("worker got\n%s\nwant the original bytes\n%s", got.Data, tt.data)
					}
					return
				}
				m, err := heddle.DecodeTaskMessage(got.Data)
				if err != nil {
					t.Fatalf("the forwarded task is invalid: %v", err)
				}
				tt.check(t, m, routed)
			})
		}
		if s := router.Stats(); s.Routed != uint64(len(tests)) || s.Overridden != 2 || s.DeadLettered != 0 {
			t.Errorf("Stats() = %+v, want %d routed, 2 of them overridden, none dead-lettered", s, len(tests))
		}
	})
}

func TestRouterDeadLettersEachReasonWithTheOriginalBytes(t *testing.T) {
	rules := heddle.RouterRules{TierOverrides: map[string]string{"resizer": "gigantic"}}
	tests := []struct {
		name           string
		data           string
		wantReason     string // exact, or a prefix when wantPrefix
		wantPrefix     bool
		wantTaskID     string
		wantWorkerType string
	}{
		{
			name:       "malformed JSON is an invalid_task_message",
			data:       `{"task_id": "t-1", "worker_type": "echo",`,
			wantReason: "invalid_task_message: invalid TaskMessage: malformed JSON",
			wantPrefix: true,
		},
		{
			name:       "a missing worker_type is an invalid_task_message naming the field",
			data:       `{"task_id": "t-2", "payload": {}, "model_tier": "standard"}`,
			wantReason: "invalid_task_message: invalid TaskMessage: worker_type: required",
			wantTaskID: "t-2",
		},
		{
			name:           "a payload that is not an object is an invalid_task_message naming the field",
			data:           `{"task_id": "t-3", "worker_type": "echo", "payload": [1]}`,
			wantReason:     "invalid_task_message: invalid TaskMessage: payload: expected object, got array",
			wantTaskID:     "t-3",
			wantWorkerType: "echo",
		},
		{
			name:           "several bad fields, model_tier among them, are an invalid_task_message naming each",
			data:           `{"task_id": "t-4", "worker_type": "echo", "model_tier": "huge"}`,
			wantReason:     `invalid_task_message: invalid TaskMessage: payload: required; model_tier: "huge" is not one of local, standard, frontier`,
			wantTaskID:     "t-4",
			wantWorkerType: "echo",
		},
		{
			name:           "a non-standard model_tier is an unknown_tier",
			data:           `{"task_id": "t-5", "worker_type": "echo", "payload": {}, "model_tier": "huge"}`,
			wantReason:     `unknown_tier: model_tier: "huge" is not one of local, standard, frontier`,
			wantTaskID:     "t-5",
			wantWorkerType: "echo",
		},
		{
			name:           "an override naming an unknown tier is an unknown_tier",
			data:           "  {\"task_id\": \"t-6\", \"worker_type\": \"resizer\", \"payload\": {}}\n",
			wantReason:     "unknown_tier: tier override for worker_type 'resizer' names unknown tier 'gigantic' (allowed: local, standard, frontier)",
			wantTaskID:     "t-6",
			wantWorkerType: "resizer",
		},
		{
			name:       "bytes that are not JSON at all are kept exactly",
			data:       "\x00\xff not json \xfe",
			wantReason: "invalid_task_message: invalid TaskMessage: malformed JSON",
			wantPrefix: true,
		},
	}
	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		caller := connect()
		consumer, dlLogs, _ := routerStartConsumer(t, connect(), heddle.DeadLetterConfig{})
		router, logs, _ := routerStart(t, connect(), heddle.RouterConfig{Rules: heddle.StaticRules(rules)})
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				routerPublish(t, caller, heddle.SubjectTasksIncoming, []byte(tt.data), nil)
				received := dlLogs.wait(t, "dead_letter.received", i+1)[i]
				entries, total := consumer.List(0, 1)
				if total != i+1 || len(entries) != 1 {
					t.Fatalf("the consumer holds %d entries, want %d", total, i+1)
				}
				e := entries[0]
				if !bytes.Equal(e.DeadLetter.Original(), []byte(tt.data)) {
					t.Errorf("dead letter keeps %q, want the original %q byte for byte", e.DeadLetter.Original(), tt.data)
				}
				if tt.wantPrefix && !strings.HasPrefix(e.DeadLetter.Reason, tt.wantReason) || !tt.wantPrefix && e.DeadLetter.Reason != tt.wantReason {
					t.Errorf("reason = %q, want %q", e.DeadLetter.Reason, tt.wantReason)
				}
				if e.DeadLetter.TaskID != tt.wantTaskID || e.DeadLetter.WorkerType != tt.wantWorkerType {
					t.Errorf("entry names task_id %q worker_type %q, want %q %q", e.DeadLetter.TaskID, e.DeadLetter.WorkerType, tt.wantTaskID, tt.wantWorkerType)
				}
				if received.Attrs["reason"] != e.DeadLetter.Reason || received.Attrs["task_id"] != tt.wantTaskID ||
					received.Attrs["worker_type"] != tt.wantWorkerType || received.Attrs["id"] != e.ID {
					t.Errorf("dead_letter.received attrs = %v, want reason, task_id, worker_type and id of the entry", received.Attrs)
				}
				dead := logs.wait(t, "router.dead_lettered", i+1)[i]
				if dead.Level != slog.LevelWarn || dead.Attrs["reason"] != e.DeadLetter.Reason || dead.Attrs["task_id"] != tt.wantTaskID {
					t.Errorf("router.dead_lettered = %+v, want a warning with the entry's reason and task_id", dead)
				}
			})
		}
		s := router.Stats()
		if s.DeadLettered != uint64(len(tests)) || s.InvalidMessages != 5 || s.UnknownTiers != 2 || s.RateLimited != 0 || s.Routed != 0 {
			t.Errorf("Stats() = %+v, want %d dead letters: 5 invalid, 2 unknown tier", s, len(tests))
		}
	})
}

// TestRouterRateLimitReloadAndReplayFlow follows the runbook for
// rate_limited: a task beyond the tier's capacity is dead-lettered, the
// operator raises the limit in the rules file and publishes on
// heddle.control.reload, then replays the dead letter, which now reaches
// the worker, whose result reaches the caller.
func TestRouterRateLimitReloadAndReplayFlow(t *testing.T) {
	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		caller, workerBus := connect(), connect()
		path := filepath.Join(t.TempDir(), "router_rules.yaml")
		routerWriteRules(t, path, "rate_limits:\n  frontier:\n    max_concurrent: 1\n    tokens_per_minute: 50000\n")
		clock := ratelimit.NewFakeClock(routerTestStart)
		consumer, dlLogs, _ := routerStartConsumer(t, connect(), heddle.DeadLetterConfig{})
		router, logs, _ := routerStart(t, connect(), heddle.RouterConfig{Rules: heddle.RulesFile(path), Clock: clock})

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
		results, _ := routerSubscribe(t, caller, heddle.ResultSubject(parent))
		newTask := func() (heddle.TaskMessage, []byte) {
			m, _ := routerTask(t, "summarizer", heddle.TierFrontier)
			m.ParentTaskID = parent
			data, err := m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			return m, data
		}
		expectResult := func(taskID string) {
			t.Helper()
			res, err := heddle.DecodeTaskResult(routerRecv(t, results, "the result of "+taskID).Data)
			if err != nil || res.TaskID != taskID || res.Status != heddle.StatusCompleted {
				t.Fatalf("caller got result %+v (%v), want a completed result for %s", res, err, taskID)
			}
		}

		first, firstData := newTask()
		routerPublish(t, caller, heddle.SubjectTasksIncoming, firstData, nil)
		if got := routerRecv(t, worked, "the first task at the worker"); !bytes.Equal(got.Data, firstData) {
			t.Fatalf("worker got %s, want the task unchanged", got.Data)
		}
		expectResult(first.TaskID)

		second, secondData := newTask()
		routerPublish(t, caller, heddle.SubjectTasksIncoming, secondData, bus.Header{"X-Trace": {"t2"}})
		dlLogs.wait(t, "dead_letter.received", 1)
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
		routerPublish(t, caller, heddle.SubjectControlReload, []byte("{}"), nil)
		reloaded := logs.wait(t, "router.reloaded", 1)[0]
		if reloaded.Attrs["rate_limits"] != "1" || reloaded.Attrs["overrides"] != "0" {
			t.Errorf("router.reloaded attrs = %v, want 1 rate limit and 0 overrides", reloaded.Attrs)
		}
		if got := router.Rules().RateLimits["frontier"].MaxConcurrent; got != 5 {
			t.Fatalf("after reload frontier max_concurrent = %d, want 5", got)
		}

		if err := consumer.Replay(t.Context(), dead.ID); err != nil {
			t.Fatal(err)
		}
		got := routerRecv(t, worked, "the replayed task at the worker")
		if !bytes.Equal(got.Data, secondData) {
			t.Fatalf("worker got the replayed task as %s, want the original bytes %s", got.Data, secondData)
		}
		expectResult(second.TaskID)
		logs.wait(t, "router.routed", 2)

		if n := consumer.ReplayCount(); n != 1 {
			t.Errorf("ReplayCount() = %d, want 1", n)
		}
		if _, ok := consumer.Get(dead.ID); ok || consumer.Len() != 0 {
			t.Errorf("the replayed entry is still stored (Len %d)", consumer.Len())
		}
		replayed := dlLogs.all("dead_letter.replayed")
		if len(replayed) != 1 || replayed[0].Attrs["id"] != dead.ID || replayed[0].Attrs["task_id"] != second.TaskID {
			t.Errorf("dead_letter.replayed records = %+v, want one naming the entry and its task", replayed)
		}
		if err := consumer.Replay(t.Context(), dead.ID); !errors.Is(err, heddle.ErrDeadLetterNotFound) {
			t.Errorf("replaying the entry twice = %v, want ErrDeadLetterNotFound", err)
		}
		s := router.Stats()
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
	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				caller, workers := connect(), connect()
				path := filepath.Join(t.TempDir(), "router_rules.yaml")
				routerWriteRules(t, path, good)
				clock := ratelimit.NewFakeClock(routerTestStart)
				router, logs, _ := routerStart(t, connect(), heddle.RouterConfig{Rules: heddle.RulesFile(path), Clock: clock})
				local, _ := routerSubscribe(t, workers, heddle.WorkerSubject("summarizer", heddle.TierLocal))
				frontier, _ := routerSubscribe(t, workers, heddle.WorkerSubject("writer", heddle.TierFrontier))
				deadLetters, _ := routerSubscribe(t, workers, heddle.SubjectDeadLetter)

				routerWriteRules(t, path, tt.newRules)
				routerPublish(t, caller, heddle.SubjectControlReload, []byte("{}"), nil)
				failed := logs.wait(t, "router.reload_failed", 1)[0]
				if failed.Level != slog.LevelError || !strings.Contains(failed.Attrs["error"], tt.wantError) {
					t.Errorf("router.reload_failed = %+v, want an error naming %q", failed, tt.wantError)
				}
				if err := router.Reload(t.Context()); !errors.Is(err, heddle.ErrInvalidRouterRules) {
					t.Errorf("Reload() = %v, want ErrInvalidRouterRules", err)
				}
				if n := len(logs.all("router.reloaded")); n != 0 {
					t.Errorf("%d router.reloaded records after rejected reloads", n)
				}

				// The old override and the old limit still apply.
				_, summarize := routerTask(t, "summarizer", heddle.TierFrontier)
				routerPublish(t, caller, heddle.SubjectTasksIncoming, summarize, nil)
				routerRecv(t, local, "the summarizer task at the override tier local")
				_, write1 := routerTask(t, "writer", heddle.TierFrontier)
				_, write2 := routerTask(t, "writer", heddle.TierFrontier)
				routerPublish(t, caller, heddle.SubjectTasksIncoming, write1, nil)
				routerPublish(t, caller, heddle.SubjectTasksIncoming, write2, nil)
				if got := routerRecv(t, frontier, "the first writer task"); !bytes.Equal(got.Data, write1) {
					t.Errorf("frontier worker got %s, want the first writer task", got.Data)
				}
				d, err := heddle.DecodeDeadLetter(routerRecv(t, deadLetters, "the second writer task's dead letter").Data)
				if err != nil || !strings.HasPrefix(d.Reason, "rate_limited: tier 'frontier'") || !bytes.Equal(d.Original(), write2) {
					t.Errorf("dead letter = %+v (%v), want the second writer task rate-limited by the old limit", d, err)
				}
				logs.wait(t, "router.routed", 2)
				logs.wait(t, "router.dead_lettered", 1)
				if s := router.Stats(); s.ReloadErrors != 2 || s.Reloads != 0 || s.Routed != 2 || s.RateLimited != 1 {
					t.Errorf("Stats() = %+v, want 2 reload errors, 0 reloads, 2 routed, 1 rate-limited", s)
				}
			})
		}
	})
}

func TestRouterReloadKeepsTheBucketOfAnUnchangedLimit(t *testing.T) {
	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		caller, workers := connect(), connect()
		var mu sync.Mutex
		current := heddle.RouterRules{RateLimits: map[string]heddle.TierRateLimit{"local": {MaxConcurrent: 1}}}
		source := func(context.Context) (heddle.RouterRules, error) {
			mu.Lock()
			defer mu.Unlock()
			return current.Clone(), nil
		}
		clock := ratelimit.NewFakeClock(routerTestStart)
		router, logs, _ := routerStart(t, connect(), heddle.RouterConfig{Rules: source, Clock: clock})
		routed, _ := routerSubscribe(t, workers, heddle.WorkerSubjectAllTiers("echo"))
		dead, _ := routerSubscribe(t, workers, heddle.SubjectDeadLetter)

		_, a := routerTask(t, "echo", heddle.TierLocal)
		routerPublish(t, caller, heddle.SubjectTasksIncoming, a, nil)
		routerRecv(t, routed, "the first local task")

		mu.Lock()
		current.TierOverrides = map[string]string{"other": "frontier"} // the limit stays the same
		mu.Unlock()
		if err := router.Reload(t.Context()); err != nil {
			t.Fatal(err)
		}
		logs.wait(t, "router.reloaded", 1)
		_, b := routerTask(t, "echo", heddle.TierLocal)
		routerPublish(t, caller, heddle.SubjectTasksIncoming, b, nil)
		d, err := heddle.DecodeDeadLetter(routerRecv(t, dead, "the second local task's dead letter").Data)
		if err != nil || d.Reason != "rate_limited: tier 'local' has no available capacity" {
			t.Fatalf("dead letter %+v (%v): want rate_limited, since a reload keeping the limit keeps the empty bucket", d, err)
		}

		clock.Advance(60 * time.Second) // one token per minute
		routerPublish(t, caller, heddle.SubjectTasksIncoming, b, nil)
		if got := routerRecv(t, routed, "the task after the refill"); !bytes.Equal(got.Data, b) {
			t.Fatalf("worker got %s, want the task sent after the refill", got.Data)
		}
	})
}

func TestRouterReplicasShareTasksAndEachReloads(t *testing.T) {
	const tasks = 20
	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		caller, workers := connect(), connect()
		rules := heddle.StaticRules(heddle.RouterRules{})
		busA, busB := connect(), connect()
		routerA, logsA, stopA := routerStart(t, busA, heddle.RouterConfig{Rules: rules})
		routerB, logsB, stopB := routerStart(t, busB, heddle.RouterConfig{Rules: rules})
		ch, sub := routerSubscribe(t, workers, heddle.WorkerSubjectAllTiers("echo"))

		routerPublish(t, caller, heddle.SubjectControlReload, []byte("{}"), nil)
		logsA.wait(t, "router.reloaded", 1)
		logsB.wait(t, "router.reloaded", 1)

		want := map[string]bool{}
		for range tasks {
			m, data := routerTask(t, "echo", heddle.TierStandard)
			want[m.TaskID] = true
			routerPublish(t, caller, heddle.SubjectTasksIncoming, data, nil)
		}
		seen := map[string]int{}
		for range tasks {
			m, err := heddle.DecodeTaskMessage(routerRecv(t, ch, "a routed task").Data)
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
			m, _ := heddle.DecodeTaskMessage(routerRecv(t, ch, "a duplicate").Data)
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

// routerFailingBus refuses publishes to subjects starting with one of
// fail.
type routerFailingBus struct {
	bus.Bus
	fail []string
}

func (b routerFailingBus) Publish(ctx context.Context, msg *bus.Msg) error {
	for _, prefix := range b.fail {
		if strings.HasPrefix(msg.Subject, prefix) {
			return fmt.Errorf("test bus refuses %s: %w", msg.Subject, bus.ErrMaxPayload)
		}
	}
	return b.Bus.Publish(ctx, msg)
}

func TestRouterLogsAndCountsEachFailedPublishOnce(t *testing.T) {
	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		caller := connect()
		failing := routerFailingBus{Bus: connect(), fail: []string{"heddle.tasks.echo.", heddle.SubjectDeadLetter}}
		router, logs, _ := routerStart(t, failing, heddle.RouterConfig{})

		task, data := routerTask(t, "echo", heddle.TierLocal)
		routerPublish(t, caller, heddle.SubjectTasksIncoming, data, nil)
		routerPublish(t, caller, heddle.SubjectTasksIncoming, []byte(`{"task_id":"t-9","payload":{}}`), nil)
		failed := logs.wait(t, "router.publish_failed", 2)
		if f := failed[0]; f.Level != slog.LevelError || f.Attrs["subject"] != "heddle.tasks.echo.local" ||
			f.Attrs["task_id"] != task.TaskID || !strings.Contains(f.Attrs["error"], "maximum payload") {
			t.Errorf("first router.publish_failed = %+v, want an error naming the worker subject, the task and the cause", f)
		}
		if f := failed[1]; f.Attrs["subject"] != heddle.SubjectDeadLetter || f.Attrs["task_id"] != "t-9" ||
			!strings.HasPrefix(f.Attrs["reason"], "invalid_task_message: ") {
			t.Errorf("second router.publish_failed = %+v, want the dead letter's subject, task and reason", f)
		}
		if s := router.Stats(); s.PublishErrors != 2 || s.Routed != 0 || s.DeadLettered != 0 {
			t.Errorf("Stats() = %+v, want 2 publish errors and nothing routed or dead-lettered", s)
		}
		if n := len(logs.all("router.routed")) + len(logs.all("router.dead_lettered")); n != 0 {
			t.Errorf("%d routed or dead_lettered records for messages that were lost", n)
		}
	})
}

func TestRouterRunAndConfigErrors(t *testing.T) {
	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		b := connect()
		if _, err := heddle.NewRouter(nil, heddle.RouterConfig{}); !errors.Is(err, heddle.ErrRouterConfig) {
			t.Errorf("NewRouter(nil) = %v, want ErrRouterConfig", err)
		}
		if _, err := heddle.NewRouter(b, heddle.RouterConfig{ReloadTimeout: -time.Second}); !errors.Is(err, heddle.ErrRouterConfig) ||
			!strings.Contains(err.Error(), "ReloadTimeout") {
			t.Errorf("NewRouter with a negative ReloadTimeout = %v, want ErrRouterConfig naming the field", err)
		}

		bad := heddle.RouterRules{RateLimits: map[string]heddle.TierRateLimit{"local": {MaxConcurrent: -1}}}
		r, err := heddle.NewRouter(b, heddle.RouterConfig{Rules: heddle.StaticRules(bad)})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Run(t.Context()); !errors.Is(err, heddle.ErrInvalidRouterRules) ||
			!strings.Contains(err.Error(), "rate_limits.local.max_concurrent") {
			t.Errorf("Run with invalid initial rules = %v, want ErrInvalidRouterRules naming the key", err)
		}
		select {
		case <-r.Ready():
			t.Error("Ready is closed although Run failed before subscribing")
		default:
		}
		failing, err := heddle.NewRouter(b, heddle.RouterConfig{Rules: func(context.Context) (heddle.RouterRules, error) {
			return heddle.RouterRules{}, errors.New("rules service unavailable")
		}})
		if err != nil {
			t.Fatal(err)
		}
		if err := failing.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "rules service unavailable") {
			t.Errorf("Run with a failing rules source = %v, want its error", err)
		}

		router, logs, stop := routerStart(t, b, heddle.RouterConfig{})
		if err := router.Run(t.Context()); !errors.Is(err, heddle.ErrRouterRunning) {
			t.Errorf("a second Run = %v, want ErrRouterRunning", err)
		}
		if n := len(logs.all("router.rules_loaded")); n != 1 {
			t.Errorf("%d router.rules_loaded records, want 1", n)
		}
		subscribed := logs.all("actor.subscribed")
		if len(subscribed) != 2 || subscribed[0].Attrs["subject"] != heddle.SubjectTasksIncoming ||
			subscribed[0].Attrs["queue"] != heddle.RouterQueueGroup || subscribed[1].Attrs["subject"] != heddle.SubjectControlReload {
			t.Errorf("actor.subscribed records = %+v, want the task subject in queue group router, then the reload subject", subscribed)
		}
		stop()
		// Run may be called again once it has returned (Ready stays
		// closed, so wait for the subscriptions in the log).
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- router.Run(ctx) }()
		logs.wait(t, "actor.subscribed", 4)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the second Run returned %v after its context ended, want nil", err)
		}
	})
}

func TestRouterLogsRuleWarningsWhenItLoads(t *testing.T) {
	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rules, err := heddle.ParseRouterRules([]byte("tier_overrides:\n  resizer: gigantic\nversion: 2\n"))
		if err != nil {
			t.Fatal(err)
		}
		_, logs, _ := routerStart(t, connect(), heddle.RouterConfig{Rules: heddle.StaticRules(rules)})
		warnings := logs.all("router.rules_warning")
		if len(warnings) != 2 || warnings[0].Level != slog.LevelWarn ||
			!strings.Contains(warnings[0].Attrs["warning"], "version: unknown top-level key") ||
			!strings.Contains(warnings[1].Attrs["warning"], `tier_overrides.resizer: "gigantic" is not a model tier`) {
			t.Errorf("router.rules_warning records = %+v, want the unknown key and the unknown tier", warnings)
		}
	})
}
