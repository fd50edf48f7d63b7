package router_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/deadletter"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/router"
)

func TestRouterForwardsTasksToTheirWorkerSubject(t *testing.T) {
	rules := router.Rules{TierOverrides: map[string]string{
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
		check         func(t *testing.T, got heddle.TaskMessage, routed testlog.Record)
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
			check: func(t *testing.T, got heddle.TaskMessage, _ testlog.Record) {
				if got.TaskID != "3f2b8c1e-0004" || got.ModelTier != heddle.TierLocal || got.RequestID != "r-1" ||
					got.Payload["text"] != "x" || string(got.Extra["added_later"]) != "true" {
					t.Errorf("re-encoded task = %+v, want the original with model_tier local", got)
				}
			},
		},
		{
			name: "a re-encoded task keeps its trace context and every other extension",
			data: `{"task_id":"3f2b8c1e-0006","worker_type":"summarizer","payload":{},"model_tier":"frontier",` +
				`"_trace_context":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},"_tenant":"acme"}`,
			wantSubject: "heddle.tasks.summarizer.local",
			check: func(t *testing.T, got heddle.TaskMessage, _ testlog.Record) {
				if string(got.Extra["_trace_context"]) != `{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}` ||
					string(got.Extra["_tenant"]) != `"acme"` {
					t.Errorf("re-encoded task extensions = %s, want _trace_context and _tenant unchanged", got.Extra)
				}
			},
		},
		{
			name:        "an override maps a non-standard model_tier onto a real tier",
			data:        `{"task_id":"3f2b8c1e-0005","worker_type":"mapper","payload":{},"model_tier":"gpu"}`,
			wantSubject: "heddle.tasks.mapper.frontier",
			check: func(t *testing.T, got heddle.TaskMessage, _ testlog.Record) {
				if got.TaskID != "3f2b8c1e-0005" || got.ModelTier != heddle.TierFrontier {
					t.Errorf("re-encoded task = %+v, want task 3f2b8c1e-0005 at tier frontier", got)
				}
			},
		},
		{
			name:          "a worker_type holding U+FFFD as its sender wrote it, escaped, is routed untouched",
			data:          `{"task_id":"3f2b8c1e-0007","worker_type":"echo\ufffd","payload":{}}`,
			wantSubject:   "heddle.tasks.echo\uFFFD.standard",
			wantUntouched: true,
		},
		{
			name:          "a worker_type holding U+FFFD as its sender wrote it, in UTF-8, is routed untouched",
			data:          "{\"task_id\":\"3f2b8c1e-0008\",\"worker_type\":\"echo\uFFFD\",\"payload\":{}}",
			wantSubject:   "heddle.tasks.echo\uFFFD.standard",
			wantUntouched: true,
		},
		{
			name:        "a task without task_id reaches the worker with the task_id the router logged",
			data:        `{"worker_type":"echo","payload":{}}`,
			wantSubject: "heddle.tasks.echo.standard",
			check: func(t *testing.T, got heddle.TaskMessage, routed testlog.Record) {
				if got.TaskID == "" || got.TaskID != routed.Str("task_id") {
					t.Errorf("worker got task_id %q, router logged %q; want the same", got.TaskID, routed.Str("task_id"))
				}
			},
		},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		caller, workers := connect(), connect()
		rt, logs, _ := routerStart(t, connect(), router.Config{Rules: router.StaticRules(rules)})
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ch, sub := testkit.Subscribe(t, workers, tt.wantSubject)
				defer sub.Unsubscribe()
				header := bus.Header{"X-Trace": {fmt.Sprintf("trace-%d", i)}}
				testkit.Publish(t, caller, heddle.SubjectTasksIncoming, []byte(tt.data), header)

				got := testkit.Recv(t, ch, "the task on "+tt.wantSubject)
				routed := logs.Wait(t, "router.routed", i+1)[i]
				if routed.Str("subject") != tt.wantSubject {
					t.Errorf("router.routed names subject %q, want %q", routed.Str("subject"), tt.wantSubject)
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
		if s := rt.Stats(); s.Routed != uint64(len(tests)) || s.Overridden != 3 || s.DeadLettered != 0 {
			t.Errorf("Stats() = %+v, want %d routed, 3 of them overridden, none dead-lettered", s, len(tests))
		}
	})
}

func TestRouterDeadLettersEachReasonWithTheOriginalBytes(t *testing.T) {
	rules := router.Rules{TierOverrides: map[string]string{"resizer": "gigantic"}}
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
			name:       "a worker_type with a no-break space is an invalid_task_message naming the field",
			data:       "{\"task_id\": \"t-ws\", \"worker_type\": \"sum\u00a0marize\", \"payload\": {}}",
			wantReason: "invalid_task_message: invalid TaskMessage: worker_type: \"sum\\u00a0marize\" cannot be used in a subject: bus: bad subject",
			wantPrefix: true, wantTaskID: "t-ws", wantWorkerType: "sum\u00a0marize",
		},
		{
			name:       "a worker_type with a line separator is an invalid_task_message naming the field",
			data:       "{\"task_id\": \"t-ls\", \"worker_type\": \"sum\u2028marize\", \"payload\": {}}",
			wantReason: "invalid_task_message: invalid TaskMessage: worker_type: ",
			wantPrefix: true, wantTaskID: "t-ls", wantWorkerType: "sum\u2028marize",
		},
		{
			name:       "a worker_type with a fullwidth dot is an invalid_task_message naming the field",
			data:       "{\"task_id\": \"t-fw\", \"worker_type\": \"sum\uff0emarize\", \"payload\": {}}",
			wantReason: "invalid_task_message: invalid TaskMessage: worker_type: ",
			wantPrefix: true, wantTaskID: "t-fw", wantWorkerType: "sum\uff0emarize",
		},
		{
			name:       "a parent_task_id with a control character is an invalid_task_message naming the field",
			data:       "{\"task_id\": \"t-cc\", \"worker_type\": \"echo\", \"parent_task_id\": \"p\\u0007\", \"payload\": {}}",
			wantReason: "invalid_task_message: invalid TaskMessage: parent_task_id: ",
			wantPrefix: true, wantTaskID: "t-cc", wantWorkerType: "echo",
		},
		{
			name:           "a model_tier that is not a string is an invalid_task_message, as in Python",
			data:           `{"task_id": "t-4n", "worker_type": "echo", "payload": {}, "model_tier": 7}`,
			wantReason:     "invalid_task_message: invalid TaskMessage: model_tier: expected string, got number",
			wantTaskID:     "t-4n",
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
			name:       "a worker_type with a raw 0xFF byte is an invalid_task_message naming the field, not routed as U+FFFD",
			data:       "{\"task_id\": \"t-ff\", \"worker_type\": \"echo\xff\", \"payload\": {}}",
			wantReason: "invalid_task_message: invalid TaskMessage: worker_type: not valid UTF-8: byte 0xFF at offset 4 of the string",
			wantTaskID: "t-ff", wantWorkerType: "echo\uFFFD",
		},
		{
			name: "ids with bytes that are not UTF-8 are an invalid_task_message naming each field",
			data: "{\"task_id\": \"t\xfe\", \"worker_type\": \"echo\", \"parent_task_id\": \"p\xc3\", \"payload\": {}, \"model_tier\": \"huge\"}",
			wantReason: "invalid_task_message: invalid TaskMessage: task_id: not valid UTF-8: byte 0xFE at offset 1 of the string; " +
				"parent_task_id: not valid UTF-8: byte 0xC3 at offset 1 of the string; model_tier: \"huge\" is not one of local, standard, frontier",
			wantTaskID: "t\uFFFD", wantWorkerType: "echo",
		},
		{
			name:       "bytes that are not JSON at all are kept exactly",
			data:       "\x00\xff not json \xfe",
			wantReason: "invalid_task_message: invalid TaskMessage: malformed JSON",
			wantPrefix: true,
		},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		caller := connect()
		consumer, dlLogs, _ := routerStartConsumer(t, connect(), deadletter.Config{})
		rt, logs, _ := routerStart(t, connect(), router.Config{Rules: router.StaticRules(rules)})
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				testkit.Publish(t, caller, heddle.SubjectTasksIncoming, []byte(tt.data), nil)
				received := dlLogs.Wait(t, "dead_letter.received", i+1)[i]
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
				if received.Str("reason") != e.DeadLetter.Reason || received.Str("task_id") != tt.wantTaskID ||
					received.Str("worker_type") != tt.wantWorkerType || received.Str("id") != e.ID {
					t.Errorf("dead_letter.received attrs = %v, want reason, task_id, worker_type and id of the entry", received.Attrs)
				}
				dead := logs.Wait(t, "router.dead_lettered", i+1)[i]
				if dead.Level != slog.LevelWarn || dead.Str("reason") != e.DeadLetter.Reason || dead.Str("task_id") != tt.wantTaskID {
					t.Errorf("router.dead_lettered = %+v, want a warning with the entry's reason and task_id", dead)
				}
			})
		}
		s := rt.Stats()
		if s.DeadLettered != uint64(len(tests)) || s.InvalidMessages != 12 || s.UnknownTiers != 2 || s.RateLimited != 0 || s.Routed != 0 {
			t.Errorf("Stats() = %+v, want %d dead letters: 12 invalid, 2 unknown tier", s, len(tests))
		}
	})
}

func TestRouterLogsAndCountsEachFailedPublishOnce(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		caller := connect()
		failing := testkit.FailingBus{Bus: connect(), Fail: []string{"heddle.tasks.echo.", heddle.SubjectDeadLetter}}
		rt, logs, _ := routerStart(t, failing, router.Config{})

		task, data := testkit.Task(t, "echo", heddle.TierLocal)
		testkit.Publish(t, caller, heddle.SubjectTasksIncoming, data, nil)
		testkit.Publish(t, caller, heddle.SubjectTasksIncoming, []byte(`{"task_id":"t-9","payload":{}}`), nil)
		failed := logs.Wait(t, "router.publish_failed", 2)
		if f := failed[0]; f.Level != slog.LevelError || f.Str("subject") != "heddle.tasks.echo.local" ||
			f.Str("task_id") != task.TaskID || !strings.Contains(f.Str("error"), "maximum payload") {
			t.Errorf("first router.publish_failed = %+v, want an error naming the worker subject, the task and the cause", f)
		}
		if f := failed[1]; f.Str("subject") != heddle.SubjectDeadLetter || f.Str("task_id") != "t-9" ||
			!strings.HasPrefix(f.Str("reason"), "invalid_task_message: ") {
			t.Errorf("second router.publish_failed = %+v, want the dead letter's subject, task and reason", f)
		}
		// The forward's failure loses the task; the dead letter's loses only
		// the dead letter: the task was dead-lettered (once), and its caller
		// answered before the dead letter was tried.
		dead := logs.Wait(t, "router.dead_lettered", 1)
		if s := rt.Stats(); s.PublishErrors != 1 || s.DeadLetterErrors != 1 || s.Routed != 0 || s.DeadLettered != 1 ||
			s.InvalidMessages != 1 || s.Answered != 1 {
			t.Errorf("Stats() = %+v, want 1 publish error, 1 dead-letter error, 1 task dead-lettered and answered, nothing routed", s)
		}
		if n := len(logs.All("router.routed")); n != 0 || len(dead) != 1 || dead[0].Str("task_id") != "t-9" {
			t.Errorf("%d routed records and dead_lettered records %+v, want none and one for t-9", n, dead)
		}
	})
}

func TestRouterRunAndConfigErrors(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		b := connect()
		if _, err := router.New(nil, router.Config{}); !errors.Is(err, heddle.ErrConfig) {
			t.Errorf("NewRouter(nil) = %v, want ErrRouterConfig", err)
		}
		if _, err := router.New(b, router.Config{ReloadTimeout: -time.Second}); !errors.Is(err, heddle.ErrConfig) ||
			!strings.Contains(err.Error(), "ReloadTimeout") {
			t.Errorf("NewRouter with a negative ReloadTimeout = %v, want ErrRouterConfig naming the field", err)
		}

		bad := router.Rules{RateLimits: map[string]router.TierRateLimit{"local": {MaxConcurrent: -1}}}
		r, err := router.New(b, router.Config{Rules: router.StaticRules(bad)})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Run(t.Context()); !errors.Is(err, router.ErrInvalidRules) ||
			!strings.Contains(err.Error(), "rate_limits.local.max_concurrent") {
			t.Errorf("Run with invalid initial rules = %v, want ErrInvalidRouterRules naming the key", err)
		}
		select {
		case <-r.Ready():
			t.Error("Ready is closed although Run failed before subscribing")
		default:
		}
		failing, err := router.New(b, router.Config{Rules: func(context.Context) (router.Rules, error) {
			return router.Rules{}, errors.New("rules service unavailable")
		}})
		if err != nil {
			t.Fatal(err)
		}
		if err := failing.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "rules service unavailable") {
			t.Errorf("Run with a failing rules source = %v, want its error", err)
		}

		rt, logs, stop := routerStart(t, b, router.Config{})
		if err := rt.Run(t.Context()); !errors.Is(err, heddle.ErrStarted) {
			t.Errorf("a second Run = %v, want heddle.ErrStarted", err)
		}
		if n := len(logs.All("router.rules_loaded")); n != 1 {
			t.Errorf("%d router.rules_loaded records, want 1", n)
		}
		subscribed := logs.All("actor.subscribed")
		if len(subscribed) != 2 || subscribed[0].Str("subject") != heddle.SubjectTasksIncoming ||
			subscribed[0].Str("queue") != heddle.RouterQueueGroup || subscribed[1].Str("subject") != heddle.SubjectControlReload {
			t.Errorf("actor.subscribed records = %+v, want the task subject in queue group router, then the reload subject", subscribed)
		}
		stop()
		// A router runs once, even after its Run has returned.
		if err := rt.Run(t.Context()); !errors.Is(err, heddle.ErrStarted) {
			t.Errorf("Run after the first returned = %v, want heddle.ErrStarted", err)
		}
	})
}

func TestRouterLogsRuleWarningsWhenItLoads(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rules, err := router.ParseRules([]byte("tier_overrides:\n  resizer: gigantic\nversion: 2\n"))
		if err != nil {
			t.Fatal(err)
		}
		_, logs, _ := routerStart(t, connect(), router.Config{Rules: router.StaticRules(rules)})
		warnings := logs.All("router.rules_warning")
		if len(warnings) != 2 || warnings[0].Level != slog.LevelWarn ||
			!strings.Contains(warnings[0].Str("warning"), "version: unknown top-level key") ||
			!strings.Contains(warnings[1].Str("warning"), `tier_overrides.resizer: "gigantic" is not a model tier`) {
			t.Errorf("router.rules_warning records = %+v, want the unknown key and the unknown tier", warnings)
		}
	})
}
