package deadletter_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/deadletter"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
)

// deadLetterEnvelope returns the wire form of a dead letter for task
// taskID.
func deadLetterEnvelope(t *testing.T, reason, taskID string) (envelope, original []byte) {
	t.Helper()
	original = fmt.Appendf(nil, `{"task_id": %q, "worker_type": "echo", "payload": {}}`, taskID)
	envelope, err := heddle.NewDeadLetter(reason, original).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return envelope, original
}

// deadLetterFill publishes n dead letters for tasks t-1 ... t-n and waits
// until the consumer has received them.
func deadLetterFill(t *testing.T, b bus.Bus, logs *testlog.Recorder, n int) {
	t.Helper()
	before := len(logs.All("dead_letter.received"))
	for i := 1; i <= n; i++ {
		env, _ := deadLetterEnvelope(t, "rate_limited: tier 'local' has no available capacity", fmt.Sprintf("t-%d", i))
		testkit.Publish(t, b, heddle.SubjectDeadLetter, env, nil)
	}
	logs.Wait(t, "dead_letter.received", before+n)
}

func deadLetterTaskIDs(entries []deadletter.Entry) []string {
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.DeadLetter.TaskID
	}
	return ids
}

func TestDeadLetterConsumerKeepsTheNewestEntriesWithinCapacity(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rt := connect()
		consumer, logs, _ := startConsumer(t, connect(), deadletter.Config{Capacity: 3})
		deadLetterFill(t, rt, logs, 5)

		entries, total := consumer.List(0, 0)
		if got, want := deadLetterTaskIDs(entries), []string{"t-5", "t-4", "t-3"}; total != 3 || !slices.Equal(got, want) {
			t.Errorf("List = %v (total %d), want %v newest first", got, total, want)
		}
		if s := consumer.Stats(); s.Evicted != 2 || s.Received != 5 {
			t.Errorf("Stats() = %+v, want 5 received and 2 evicted", s)
		}
		evicted := logs.All("dead_letter.evicted")
		if len(evicted) != 2 || evicted[0].Str("task_id") != "t-1" || evicted[1].Str("task_id") != "t-2" ||
			evicted[0].Level != slog.LevelWarn || evicted[0].Str("id") == "" || evicted[0].Str("capacity") != "3" {
			t.Errorf("dead_letter.evicted records = %+v, want warnings for t-1 then t-2 with their ids", evicted)
		}
		for _, e := range entries {
			if e.ID == "" || e.StoredAt.IsZero() || e.DeadLetter.ReceivedAt.IsZero() {
				t.Errorf("entry %+v lacks its id or times", e)
			}
		}
	})
}

func TestDeadLetterConsumerListPagesNewestFirst(t *testing.T) {
	tests := []struct {
		name          string
		offset, limit int
		want          []string
	}{
		{"the first page", 0, 2, []string{"t-5", "t-4"}},
		{"the second page", 2, 2, []string{"t-3", "t-2"}},
		{"a last page shorter than the limit", 4, 2, []string{"t-1"}},
		{"an offset past the end gives nothing", 5, 2, nil},
		{"a limit of zero means every entry after the offset", 1, 0, []string{"t-4", "t-3", "t-2", "t-1"}},
		{"a negative offset counts as zero", -3, 1, []string{"t-5"}},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rt := connect()
		consumer, logs, _ := startConsumer(t, connect(), deadletter.Config{})
		deadLetterFill(t, rt, logs, 5)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				entries, total := consumer.List(tt.offset, tt.limit)
				if got := deadLetterTaskIDs(entries); total != 5 || !slices.Equal(got, tt.want) {
					t.Errorf("List(%d, %d) = %v (total %d), want %v (total 5)", tt.offset, tt.limit, got, total, tt.want)
				}
			})
		}
		entries, _ := consumer.List(0, 0)
		got, ok := consumer.Get(entries[2].ID)
		if !ok || got.DeadLetter.TaskID != "t-3" {
			t.Errorf("Get(%s) = %+v, %v; want the entry of t-3", entries[2].ID, got, ok)
		}
		if _, ok := consumer.Get("no-such-id"); ok {
			t.Error("Get found an id that was never assigned")
		}
	})
}

func TestDeadLetterConsumerReplayPublishesTheOriginalAndRemovesTheEntry(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rt, watcher := connect(), connect()
		incoming, _ := testkit.Subscribe(t, watcher, heddle.SubjectTasksIncoming)
		consumer, logs, _ := startConsumer(t, connect(), deadletter.Config{})

		original := []byte("  {\"task_id\": \"t-1\",\n \"worker_type\": \"echo\", \"payload\": {}}\n")
		env, err := heddle.NewDeadLetter("rate_limited: tier 'local' has no available capacity", original).Encode()
		if err != nil {
			t.Fatal(err)
		}
		testkit.Publish(t, rt, heddle.SubjectDeadLetter, env, bus.Header{"X-Trace": {"abc"}})
		logs.Wait(t, "dead_letter.received", 1)
		entries, _ := consumer.List(0, 0)

		// Concurrent replays of one entry: exactly one publishes it.
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() { errs[i] = consumer.Replay(t.Context(), entries[0].ID) })
		}
		wg.Wait()
		succeeded := 0
		for _, err := range errs {
			switch {
			case err == nil:
				succeeded++
			case !errors.Is(err, deadletter.ErrNotFound):
				t.Errorf("a concurrent Replay = %v, want nil or ErrDeadLetterNotFound", err)
			}
		}
		if succeeded != 1 {
			t.Fatalf("%d concurrent Replays of one entry succeeded, want 1", succeeded)
		}
		got := testkit.Recv(t, incoming, "the replayed task on "+heddle.SubjectTasksIncoming)
		if !bytes.Equal(got.Data, original) || got.Header.Get("X-Trace") != "abc" {
			t.Errorf("replayed %q with headers %v, want the original bytes %q and its headers", got.Data, got.Header, original)
		}
		if consumer.Stats().Replayed != 1 || consumer.Len() != 0 {
			t.Errorf("after the replay Stats().Replayed = %d and Len() = %d, want 1 and 0", consumer.Stats().Replayed, consumer.Len())
		}
		if err := watcher.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n := len(incoming); n != 0 {
			t.Errorf("%d extra messages on %s after one replay", n, heddle.SubjectTasksIncoming)
		}
	})
}

func TestDeadLetterConsumerReplayErrors(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rt := connect()
		failing := testkit.FailingBus{Bus: connect(), Fail: []string{heddle.SubjectTasksIncoming}}
		consumer, logs, _ := startConsumer(t, failing, deadletter.Config{})

		err := consumer.Replay(t.Context(), "no-such-id")
		if !errors.Is(err, deadletter.ErrNotFound) || !strings.Contains(err.Error(), `"no-such-id"`) {
			t.Errorf("Replay of an unknown id = %v, want ErrDeadLetterNotFound naming the id", err)
		}

		deadLetterFill(t, rt, logs, 3)
		before, _ := consumer.List(0, 0)
		err = consumer.Replay(t.Context(), before[1].ID)
		if !errors.Is(err, bus.ErrMaxPayload) || !strings.Contains(err.Error(), before[1].ID) {
			t.Errorf("Replay with a failing publish = %v, want the bus error naming the entry", err)
		}
		after, _ := consumer.List(0, 0)
		if !slices.EqualFunc(before, after, func(a, b deadletter.Entry) bool { return a.ID == b.ID }) {
			t.Errorf("after a failed replay the entries are %v, want them unchanged: %v", deadLetterTaskIDs(after), deadLetterTaskIDs(before))
		}
		failed := logs.All("dead_letter.replay_failed")
		if s := consumer.Stats(); s.ReplayErrors != 1 || s.Replayed != 0 || len(failed) != 1 || failed[0].Str("id") != before[1].ID {
			t.Errorf("Stats() = %+v with replay_failed records %+v, want one failed replay of the entry", s, failed)
		}
	})
}

func TestDeadLetterConsumerLogsMalformedEnvelopesAndGoesOn(t *testing.T) {
	tests := []struct {
		name      string
		data      string
		wantError string
	}{
		{"bytes that are not JSON", "not json", "malformed JSON"},
		{"an envelope without reason", `{"original_task": {"worker_type": "echo"}}`, "reason: required"},
		{"an envelope without the original", `{"reason": "rate_limited: tier 'local' has no available capacity"}`, "original_task: required"},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rt := connect()
		consumer, logs, _ := startConsumer(t, connect(), deadletter.Config{})
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				testkit.Publish(t, rt, heddle.SubjectDeadLetter, []byte(tt.data), nil)
				rec := logs.Wait(t, "dead_letter.parse_error", i+1)[i]
				if !strings.Contains(rec.Str("error"), tt.wantError) || rec.Str("data") != tt.data {
					t.Errorf("dead_letter.parse_error = %+v, want the error %q and the data", rec, tt.wantError)
				}
			})
		}
		deadLetterFill(t, rt, logs, 1)
		if s := consumer.Stats(); s.ParseErrors != uint64(len(tests)) || s.Received != 1 || consumer.Len() != 1 {
			t.Errorf("Stats() = %+v, Len() = %d: want %d parse errors, not stored, and the valid envelope stored", s, consumer.Len(), len(tests))
		}
	})
}

func TestDeadLetterConsumerReadsPythonEnvelopes(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rt, watcher := connect(), connect()
		incoming, _ := testkit.Subscribe(t, watcher, heddle.SubjectTasksIncoming)
		consumer, logs, _ := startConsumer(t, connect(), deadletter.Config{})
		env, err := os.ReadFile("../contracttest/testdata/wire/dead_letter/python_rate_limited.json")
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(env, &fields); err != nil {
			t.Fatal(err)
		}
		testkit.Publish(t, rt, heddle.SubjectDeadLetter, env, nil)
		rec := logs.Wait(t, "dead_letter.received", 1)[0]
		if rec.Str("reason") != "rate_limited: tier 'frontier' has no available capacity" ||
			rec.Str("task_id") != "3f2b8c1e-9a4d-4e5f-8b6a-1c2d3e4f5a6b" || rec.Str("worker_type") != "summarizer" {
			t.Errorf("dead_letter.received attrs = %v, want the Python envelope's reason, task_id and worker_type", rec.Attrs)
		}
		entries, _ := consumer.List(0, 0)
		if err := consumer.Replay(t.Context(), entries[0].ID); err != nil {
			t.Fatal(err)
		}
		if got := testkit.Recv(t, incoming, "the replayed Python task"); !bytes.Equal(got.Data, fields["original_task"]) {
			t.Errorf("replayed %s, want the envelope's original_task %s", got.Data, fields["original_task"])
		}
	})
}

func TestDeadLetterConsumerRunAndConfigErrors(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		b := connect()
		if _, err := deadletter.New(nil, deadletter.Config{}); !errors.Is(err, heddle.ErrConfig) {
			t.Errorf("NewDeadLetterConsumer(nil) = %v, want ErrDeadLetterConfig", err)
		}
		if _, err := deadletter.New(b, deadletter.Config{Capacity: -1}); !errors.Is(err, heddle.ErrConfig) ||
			!strings.Contains(err.Error(), "Capacity") {
			t.Errorf("a negative Capacity = %v, want ErrDeadLetterConfig naming the field", err)
		}
		consumer, logs, stop := startConsumer(t, b, deadletter.Config{})
		if err := consumer.Run(t.Context()); !errors.Is(err, heddle.ErrStarted) {
			t.Errorf("a second Run = %v, want ErrDeadLetterConsumerRunning", err)
		}
		// Ready comes first; the log line says so right after.
		logs.Wait(t, "actor.subscribed", 1)
		if sub := logs.All("actor.subscribed"); len(sub) != 1 || sub[0].Str("subject") != heddle.SubjectDeadLetter {
			t.Errorf("actor.subscribed records = %+v, want one for %s", sub, heddle.SubjectDeadLetter)
		}
		deadLetterFill(t, connect(), logs, 2)
		stop()
		// The store outlives Run.
		if entries, total := consumer.List(0, 0); total != 2 || len(entries) != 2 {
			t.Errorf("after Run returned the store holds %d entries, want 2", total)
		}
	})
}

func TestDeadLetterConsumerDefaultCapacity(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rt := connect()
		consumer, logs, _ := startConsumer(t, connect(), deadletter.Config{})
		deadLetterFill(t, rt, logs, deadletter.DefaultCapacity+1)
		entries, total := consumer.List(0, 0)
		if total != deadletter.DefaultCapacity || entries[0].DeadLetter.TaskID != fmt.Sprintf("t-%d", deadletter.DefaultCapacity+1) ||
			entries[total-1].DeadLetter.TaskID != "t-2" || consumer.Stats().Evicted != 1 {
			t.Errorf("with the default capacity the store holds %d entries, %s to %s, evicted %d; want %d, the newest first, 1 evicted",
				total, entries[0].DeadLetter.TaskID, entries[total-1].DeadLetter.TaskID, consumer.Stats().Evicted, deadletter.DefaultCapacity)
		}
	})
}

// startConsumer makes a Consumer on b and runs it.
func startConsumer(t *testing.T, b bus.Bus, cfg deadletter.Config) (*deadletter.Consumer, *testlog.Recorder, func()) {
	t.Helper()
	logs := testlog.New()
	c, err := deadletter.New(b, cfg, heddle.WithLogger(logs.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := testkit.StartActor(t, c.Run, c.Ready())
	return c, logs, stop
}

func TestDeadLetterConsumerRefusesANegativeDrainTimeout(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		_, err := deadletter.New(connect(), deadletter.Config{DrainTimeout: -time.Second})
		if !errors.Is(err, heddle.ErrConfig) || !strings.Contains(err.Error(), "DrainTimeout") {
			t.Errorf("New = %v, want heddle.ErrConfig naming DrainTimeout", err)
		}
	})
}

func TestAnEntryEncodesToJSONWithEveryFieldAndDecodesBackEqual(t *testing.T) {
	env, original := deadLetterEnvelope(t, "no_worker: no worker serves 'echo' at tier 'standard'", "t-json")
	d, err := heddle.DecodeDeadLetter(env)
	if err != nil {
		t.Fatal(err)
	}
	in := deadletter.Entry{
		ID:         "5f0c6c1e-0000-4000-8000-000000000001",
		DeadLetter: d,
		Header:     bus.Header{"Traceparent": {"00-abc-def-01"}, "X-Many": {"a", "b"}},
		StoredAt:   time.Date(2026, 12, 7, 12, 0, 0, 123456000, time.UTC),
	}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "dead_letter", "header", "stored_at"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("json.Marshal(entry) = %s: no %q", data, k)
		}
	}
	var out deadletter.Entry
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	if out.ID != in.ID || !out.StoredAt.Equal(in.StoredAt) || !slices.Equal(out.Header["X-Many"], in.Header["X-Many"]) ||
		out.Header.Get("Traceparent") != "00-abc-def-01" {
		t.Errorf("round trip = %+v, want %+v", out, in)
	}
	// encoding/json compacts what a MarshalJSON method returns, so the
	// original comes back equal as JSON, white space aside.
	var compact bytes.Buffer
	if err := json.Compact(&compact, original); err != nil {
		t.Fatal(err)
	}
	if out.DeadLetter.Reason != d.Reason || out.DeadLetter.TaskID != "t-json" || !bytes.Equal(out.DeadLetter.Original(), compact.Bytes()) {
		t.Errorf("round trip envelope = %+v (original %s), want %+v (original %s)", out.DeadLetter, out.DeadLetter.Original(), d, original)
	}
}
