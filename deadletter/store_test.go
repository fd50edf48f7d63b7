package deadletter_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/deadletter"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/router"
)

func TestReasonKindIsTheKnownPrefixOrOther(t *testing.T) {
	tests := []struct {
		reason, want string
	}{
		{"rate_limited: tier 'local' has no available capacity", event.ReasonRateLimited},
		{"no_worker: no worker serves 'echo' at tier 'standard'", event.ReasonNoWorker},
		{"unknown_tier: 'huge' is not a tier", event.ReasonUnknownTier},
		{"invalid_task_message: worker_type: required", event.ReasonInvalidTaskMessage},
		{"shutdown: the router stopped while the task waited for capacity on tier 'local'", router.ReasonShutdown},
		{"rate_limited : a space before the colon", deadletter.ReasonKindOther},
		{"rate_limited", event.ReasonRateLimited},
		{"Rate_Limited: the prefix is case-sensitive", deadletter.ReasonKindOther},
		{"rate_limited_extra: a longer word is another word", deadletter.ReasonKindOther},
		{"something: else", deadletter.ReasonKindOther},
		{"unknown", deadletter.ReasonKindOther},
		{"", deadletter.ReasonKindOther},
		{"<script>alert(1)</script>: hostile", deadletter.ReasonKindOther},
	}
	for _, tt := range tests {
		if got := deadletter.ReasonKind(tt.reason); got != tt.want {
			t.Errorf("ReasonKind(%q) = %q, want %q", tt.reason, got, tt.want)
		}
	}
	kinds := deadletter.ReasonKinds()
	if kinds[len(kinds)-1] != deadletter.ReasonKindOther || len(kinds) != 6 {
		t.Errorf("ReasonKinds() = %v, want the five known prefixes then %q", kinds, deadletter.ReasonKindOther)
	}
	kinds[0] = "changed"
	if deadletter.ReasonKinds()[0] == "changed" {
		t.Error("ReasonKinds returns the package's own slice: a caller can change it")
	}
}

// storeFixture is a running Consumer and a connection to publish dead
// letters on.
type storeFixture struct {
	t        *testing.T
	consumer *deadletter.Consumer
	logs     *testlog.Recorder
	pub      bus.Bus
}

func newStoreFixture(t *testing.T, connect func() bus.Bus, consumerBus bus.Bus, cfg deadletter.Config) *storeFixture {
	t.Helper()
	if consumerBus == nil {
		consumerBus = connect()
	}
	c, logs, _ := startConsumer(t, consumerBus, cfg)
	return &storeFixture{t: t, consumer: c, logs: logs, pub: connect()}
}

// add publishes the envelope of original with reason and waits until the
// consumer stored it.
func (f *storeFixture) add(reason string, original []byte, h bus.Header) {
	f.t.Helper()
	env, err := heddle.NewDeadLetter(reason, original).Encode()
	if err != nil {
		f.t.Fatal(err)
	}
	before := len(f.logs.All("dead_letter.received"))
	testkit.Publish(f.t, f.pub, heddle.SubjectDeadLetter, env, h)
	f.logs.Wait(f.t, "dead_letter.received", before+1)
}

// task is the wire form of a task of workerType with id.
func task(id, workerType string) []byte {
	return fmt.Appendf(nil, `{"task_id": %q, "worker_type": %q, "payload": {"text": "hi"}}`, id, workerType)
}

const (
	rateLimited = "rate_limited: tier 'local' has no available capacity"
	noWorker    = "no_worker: no worker serves 'echo' at tier 'standard'"
	badTier     = "unknown_tier: 'huge' is not a tier"
)

// fillMixed stores six entries: t-1 ... t-6, of three kinds and two
// worker types.
func (f *storeFixture) fillMixed() {
	f.t.Helper()
	f.add(rateLimited, task("t-1", "echo"), nil)
	f.add(noWorker, task("t-2", "upper"), nil)
	f.add(rateLimited, task("t-3", "upper"), nil)
	f.add(badTier, task("t-4", "echo"), nil)
	f.add(rateLimited, task("t-5", "echo"), nil)
	f.add("from elsewhere: an unknown reason", task("t-6", "echo"), nil)
}

func TestConsumerQueryFiltersByReasonKindAndWorkerTypeNewestFirst(t *testing.T) {
	tests := []struct {
		name      string
		q         deadletter.Query
		want      []string
		wantTotal int
	}{
		{"no filter lists every entry", deadletter.Query{}, []string{"t-6", "t-5", "t-4", "t-3", "t-2", "t-1"}, 6},
		{"a reason kind", deadletter.Query{Filter: deadletter.Filter{ReasonKind: event.ReasonRateLimited}}, []string{"t-5", "t-3", "t-1"}, 3},
		{"a worker type", deadletter.Query{Filter: deadletter.Filter{WorkerType: "upper"}}, []string{"t-3", "t-2"}, 2},
		{"both", deadletter.Query{Filter: deadletter.Filter{ReasonKind: event.ReasonRateLimited, WorkerType: "echo"}}, []string{"t-5", "t-1"}, 2},
		{"the other kind", deadletter.Query{Filter: deadletter.Filter{ReasonKind: deadletter.ReasonKindOther}}, []string{"t-6"}, 1},
		{"a kind with no entry", deadletter.Query{Filter: deadletter.Filter{ReasonKind: router.ReasonShutdown}}, nil, 0},
		{"a page of a filter", deadletter.Query{Filter: deadletter.Filter{WorkerType: "echo"}, Offset: 1, Limit: 2}, []string{"t-5", "t-4"}, 4},
		{"an offset past the matches", deadletter.Query{Filter: deadletter.Filter{WorkerType: "echo"}, Offset: 4}, nil, 4},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newStoreFixture(t, connect, nil, deadletter.Config{})
		f.fillMixed()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				page, err := f.consumer.Query(t.Context(), tt.q)
				if err != nil {
					t.Fatal(err)
				}
				if got := deadLetterTaskIDs(page.Entries); !slices.Equal(got, tt.want) || page.Total != tt.wantTotal {
					t.Errorf("Query(%+v) = %v (total %d), want %v (total %d)", tt.q, got, page.Total, tt.want, tt.wantTotal)
				}
			})
		}
	})
}

func TestConsumerQueryRefusesAnInvalidQueryNamingTheField(t *testing.T) {
	tests := []struct {
		name  string
		q     deadletter.Query
		field string
	}{
		{"a negative offset", deadletter.Query{Offset: -1}, "offset"},
		{"a negative limit", deadletter.Query{Limit: -1}, "limit"},
		{"an unknown reason kind", deadletter.Query{Filter: deadletter.Filter{ReasonKind: "rate_limit"}}, "reason_kind"},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newStoreFixture(t, connect, nil, deadletter.Config{})
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := f.consumer.Query(t.Context(), tt.q); err == nil || !strings.Contains(err.Error(), tt.field) {
					t.Errorf("Query(%+v) = %v, want an error naming %s", tt.q, err, tt.field)
				}
			})
		}
	})
}

func TestConsumerCountsFollowArrivalsEvictionsAndReplays(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newStoreFixture(t, connect, nil, deadletter.Config{Capacity: 5})
		f.fillMixed() // t-1 is evicted
		c, err := f.consumer.Counts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		wantKinds := map[string]int{event.ReasonRateLimited: 2, event.ReasonNoWorker: 1, event.ReasonUnknownTier: 1, deadletter.ReasonKindOther: 1}
		wantTypes := map[string]int{"echo": 3, "upper": 2}
		if c.Total != 5 || !mapsEqual(c.ByReasonKind, wantKinds) || !mapsEqual(c.ByWorkerType, wantTypes) || c.ReplayCount != 0 {
			t.Errorf("Counts() = %+v, want 5 in all, by kind %v, by type %v, no replay", c, wantKinds, wantTypes)
		}
		page, _ := f.consumer.Query(t.Context(), deadletter.Query{Filter: deadletter.Filter{WorkerType: "upper"}})
		for _, e := range page.Entries {
			if err := f.consumer.Replay(t.Context(), e.ID); err != nil {
				t.Fatal(err)
			}
		}
		c, _ = f.consumer.Counts(t.Context())
		wantKinds = map[string]int{event.ReasonRateLimited: 1, event.ReasonUnknownTier: 1, deadletter.ReasonKindOther: 1}
		if c.Total != 3 || !mapsEqual(c.ByReasonKind, wantKinds) || !mapsEqual(c.ByWorkerType, map[string]int{"echo": 3}) || c.ReplayCount != 2 {
			t.Errorf("after replaying both upper entries Counts() = %+v, want 3 in all, by kind %v, only echo, replay count 2", c, wantKinds)
		}
	})
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestConsumerLookupFindsHeldEntriesOnly(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newStoreFixture(t, connect, nil, deadletter.Config{})
		f.add(rateLimited, task("t-1", "echo"), nil)
		entries, _ := f.consumer.List(0, 0)
		e, err := f.consumer.Lookup(t.Context(), entries[0].ID)
		if err != nil || e.DeadLetter.TaskID != "t-1" {
			t.Errorf("Lookup(held id) = %+v, %v; want the entry of t-1", e, err)
		}
		if err := f.consumer.Replay(t.Context(), entries[0].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.consumer.Lookup(t.Context(), entries[0].ID); !errors.Is(err, deadletter.ErrNotFound) || !strings.Contains(err.Error(), entries[0].ID) {
			t.Errorf("Lookup(replayed id) = %v, want ErrNotFound naming the id", err)
		}
	})
}

func TestATaskDeadLetteredAgainAfterItsReplayCarriesItsReplayCount(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newStoreFixture(t, connect, nil, deadletter.Config{})
		incoming, _ := testkit.Subscribe(t, connect(), heddle.SubjectTasksIncoming)
		noID := []byte(`{"worker_type": "echo", "payload": "no task_id here"}`)
		f.add(rateLimited, task("t-1", "echo"), nil)
		f.add("invalid_task_message: task_id: required", noID, nil)
		f.add(rateLimited, task("t-2", "echo"), nil)

		for round := 1; round <= 2; round++ {
			before, _ := f.consumer.List(0, 0)
			for _, e := range before {
				if e.DeadLetter.TaskID == "t-2" {
					continue // never replayed
				}
				if e.ReplayCount != round-1 {
					t.Errorf("round %d: %s holds replay_count %d, want %d", round, e.DeadLetter.TaskID, e.ReplayCount, round-1)
				}
				if err := f.consumer.Replay(t.Context(), e.ID); err != nil {
					t.Fatal(err)
				}
				// What the router does with a task it still cannot route.
				got := testkit.Recv(t, incoming, "the replayed task")
				f.add(e.DeadLetter.Reason, got.Data, nil)
			}
		}
		entries, _ := f.consumer.List(0, 0)
		byTask := map[string]deadletter.Entry{}
		for _, e := range entries {
			byTask[e.DeadLetter.TaskID] = e
		}
		for id, want := range map[string]int{"t-1": 2, "": 2, "t-2": 0} {
			e := byTask[id]
			if e.ReplayCount != want || (want > 0) == e.LastReplayedAt.IsZero() {
				t.Errorf("task %q: replay_count %d, last replayed %v; want %d and a time when replayed", id, e.ReplayCount, e.LastReplayedAt, want)
			}
		}
		received := f.logs.All("dead_letter.received")
		if last := received[len(received)-1]; last.Str("replay_count") != "2" {
			t.Errorf("the last dead_letter.received has replay_count %q, want 2", last.Str("replay_count"))
		}
		replayed := f.logs.All("dead_letter.replayed")
		if last := replayed[len(replayed)-1]; last.Str("replay_count") != "2" {
			t.Errorf("the last dead_letter.replayed has replay_count %q, want 2", last.Str("replay_count"))
		}
	})
}

func TestAFailedReplayLeavesTheReplayCountAsItWas(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		failing := testkit.FailingBus{Bus: connect(), Fail: []string{heddle.SubjectTasksIncoming}}
		f := newStoreFixture(t, connect, failing, deadletter.Config{})
		f.add(rateLimited, task("t-1", "echo"), nil)
		entries, _ := f.consumer.List(0, 0)
		if err := f.consumer.Replay(t.Context(), entries[0].ID); err == nil {
			t.Fatal("Replay on a bus that refuses the publish succeeded")
		}
		// The same task dead-lettered again, as if replayed by other means:
		// it was never replayed by this store.
		f.add(rateLimited, task("t-1", "echo"), nil)
		entries, _ = f.consumer.List(0, 0)
		for _, e := range entries {
			if e.ReplayCount != 0 || !e.LastReplayedAt.IsZero() {
				t.Errorf("entry %+v counts a replay that failed", e)
			}
		}
		if c, _ := f.consumer.Counts(t.Context()); c.ReplayCount != 0 || c.Total != 2 {
			t.Errorf("Counts() = %+v, want both entries held and no replay counted", c)
		}
	})
}

// flakyStore fails the replay of the entries of the task ids it names,
// as a store whose bus refuses some publishes would.
type flakyStore struct {
	deadletter.Store
	fail []string
}

func (s flakyStore) Replay(ctx context.Context, id string) error {
	e, err := s.Lookup(ctx, id)
	if err == nil && slices.Contains(s.fail, e.DeadLetter.TaskID) {
		return fmt.Errorf("replaying %s: %w", e.DeadLetter.TaskID, bus.ErrMaxPayload)
	}
	return s.Store.Replay(ctx, id)
}

func TestReplayMatchingReplaysTheSelectionOldestFirstAndReportsEachFailure(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newStoreFixture(t, connect, nil, deadletter.Config{})
		incoming, _ := testkit.Subscribe(t, connect(), heddle.SubjectTasksIncoming)
		f.fillMixed()
		sel := deadletter.Filter{ReasonKind: event.ReasonRateLimited}
		report, err := deadletter.ReplayMatching(t.Context(), flakyStore{Store: f.consumer, fail: []string{"t-3"}}, sel)
		if err != nil {
			t.Fatal(err)
		}
		var replayed, failed []string
		for _, o := range report.Replayed {
			replayed = append(replayed, o.TaskID)
		}
		for _, o := range report.Failed {
			failed = append(failed, o.TaskID)
			if !strings.Contains(o.Error, bus.ErrMaxPayload.Error()) {
				t.Errorf("failure of %s says %q, want the store's error", o.TaskID, o.Error)
			}
		}
		if report.Matched != 3 || !slices.Equal(replayed, []string{"t-1", "t-5"}) || !slices.Equal(failed, []string{"t-3"}) || report.Left != 0 || report.Filter != sel {
			t.Errorf("ReplayMatching = %+v, want 3 matched, t-1 and t-5 replayed oldest first, t-3 failed", report)
		}
		for _, want := range []string{"t-1", "t-5"} {
			got := testkit.Recv(t, incoming, "a replayed task")
			if !bytes.Equal(got.Data, task(want, "echo")) {
				t.Errorf("replayed %s, want the original of %s", got.Data, want)
			}
		}
		page, _ := f.consumer.Query(t.Context(), deadletter.Query{Filter: sel})
		if got := deadLetterTaskIDs(page.Entries); !slices.Equal(got, []string{"t-3"}) {
			t.Errorf("after the replay the selection holds %v, want the failed t-3 only", got)
		}
		if all, _ := f.consumer.List(0, 0); len(all) != 4 {
			t.Errorf("the store holds %d entries, want 4: entries outside the selection stay", len(all))
		}
		if _, err := deadletter.ReplayMatching(t.Context(), f.consumer, deadletter.Filter{ReasonKind: "nope"}); err == nil {
			t.Error("ReplayMatching with an unknown reason kind did not fail")
		}
	})
}

func TestReplayMatchingStopsWhenItsContextEnds(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		f := newStoreFixture(t, connect, nil, deadletter.Config{})
		f.fillMixed()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		report, err := deadletter.ReplayMatching(ctx, f.consumer, deadletter.Filter{})
		if !errors.Is(err, context.Canceled) || len(report.Replayed) != 0 || report.Matched != 6 {
			t.Errorf("ReplayMatching with an ended context = %+v, %v; want context.Canceled and nothing replayed", report, err)
		}
		if f.consumer.Len() != 6 {
			t.Errorf("the store holds %d entries, want all 6", f.consumer.Len())
		}
	})
}

func TestObserversGetTypedDeadLetterEvents(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		events := make(chan event.Event, 16)
		obs := event.ObserverFunc(func(_ context.Context, e event.Event) {
			if strings.HasPrefix(e.Name, "dead_letter.") {
				events <- e.Clone()
			}
		})
		pub := connect()
		c, err := deadletter.New(connect(), deadletter.Config{Capacity: 1}, heddle.WithObserver(obs))
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, c.Run, c.Ready())
		next := func() event.Event {
			t.Helper()
			select {
			case e := <-events:
				return e
			case <-time.After(testkit.Wait):
				t.Fatal("no dead_letter event")
				return event.Event{}
			}
		}
		for _, id := range []string{"t-1", "t-2"} {
			env, _ := heddle.NewDeadLetter(noWorker, task(id, "upper")).Encode()
			testkit.Publish(t, pub, heddle.SubjectDeadLetter, env, nil)
		}
		want := []struct{ name, taskID string }{
			{event.DeadLetterReceived, "t-1"}, {event.DeadLetterReceived, "t-2"}, {event.DeadLetterEvicted, "t-1"},
		}
		var got []event.Event
		for range want {
			got = append(got, next())
		}
		entries, _ := c.List(0, 0)
		if err := c.Replay(t.Context(), entries[0].ID); err != nil {
			t.Fatal(err)
		}
		got = append(got, next())
		want = append(want, struct{ name, taskID string }{event.DeadLetterReplayed, "t-2"})
		// evicted is reported after received, but the order of t-2's
		// received and t-1's eviction is the consumer's: compare as sets.
		for _, w := range want {
			found := false
			for _, e := range got {
				if e.Name == w.name && e.TaskID == w.taskID {
					found = true
					if e.Actor != "dead_letter" || e.Reason != event.ReasonNoWorker || e.Detail != noWorker || e.WorkerType != "upper" {
						t.Errorf("%s of %s = %+v, want actor dead_letter, reason kind no_worker, the whole reason as detail, worker_type upper", w.name, w.taskID, e)
					}
				}
			}
			if !found {
				t.Errorf("no %s event for %s among %d events", w.name, w.taskID, len(got))
			}
		}
	})
}
