package jsstore_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/deadletter"
	"github.com/heddle-go/heddle/deadletter/jsstore"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// harness is one deadletter.Store under the shared suite: put stores a
// dead letter and returns once the store holds it; replays receives what
// a replay publishes on heddle.SubjectTasksIncoming.
type harness struct {
	store   deadletter.Store
	put     func(t *testing.T, reason string, original []byte, h bus.Header)
	replays <-chan *bus.Msg
}

// consumerHarness is the in-memory deadletter.Consumer, running on its
// own connection; put publishes on core NATS and waits for the
// consumer's dead_letter.received.
func consumerHarness(t *testing.T, connect func() bus.Bus) harness {
	received := make(chan struct{}, 64)
	c, err := deadletter.New(connect(), deadletter.Config{}, heddle.WithObserver(event.ObserverFunc(func(_ context.Context, e event.Event) {
		if e.Name == event.DeadLetterReceived {
			received <- struct{}{}
		}
	})))
	if err != nil {
		t.Fatal(err)
	}
	testkit.StartActor(t, c.Run, c.Ready())
	pub := connect()
	replays, _ := testkit.Subscribe(t, connect(), heddle.SubjectTasksIncoming)
	return harness{store: c, replays: replays, put: func(t *testing.T, reason string, original []byte, h bus.Header) {
		t.Helper()
		env, err := heddle.NewDeadLetter(reason, original).Encode()
		if err != nil {
			t.Fatal(err)
		}
		testkit.Publish(t, pub, heddle.SubjectDeadLetter, env, h)
		select {
		case <-received:
		case <-time.After(testkit.Wait):
			t.Fatal("the consumer did not receive the dead letter")
		}
	}}
}

// jsHarness is a jsstore.Store; put stores with a stream
// acknowledgement, as the router does in durable mode.
func jsHarness(t *testing.T, url string) harness {
	b := natsConnect(t, url)
	s, err := jsstore.Open(testkit.Context(t), b, jsstore.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	replays, _ := testkit.Subscribe(t, natsConnect(t, url), heddle.SubjectTasksIncoming)
	return harness{store: s, replays: replays, put: func(t *testing.T, reason string, original []byte, h bus.Header) {
		t.Helper()
		putDurable(t, b, reason, original, h)
	}}
}

func putDurable(t *testing.T, b *natsbus.Bus, reason string, original []byte, h bus.Header) {
	t.Helper()
	env, err := heddle.NewDeadLetter(reason, original).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PublishDurable(testkit.Context(t), &bus.Msg{Subject: heddle.SubjectDeadLetter, Header: h, Data: env}, ""); err != nil {
		t.Fatal(err)
	}
}

func natsConnect(t *testing.T, url string) *natsbus.Bus {
	t.Helper()
	b, err := natsbus.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// Both stores pass the same suite: the in-memory Consumer on both buses,
// and the JetStream store.
func TestEveryStorePassesTheStoreSuite(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		t.Run("consumer", func(t *testing.T) { storeSuite(t, consumerHarness(t, connect)) })
	})
	t.Run("jsstore", func(t *testing.T) {
		storeSuite(t, jsHarness(t, natstest.StartJetStreamServer(t, nil).ClientURL()))
	})
}

func task(t *testing.T, workerType string) (heddle.TaskMessage, []byte) {
	t.Helper()
	return testkit.Task(t, workerType, heddle.TierStandard)
}

func storeSuite(t *testing.T, h harness) {
	ctx := testkit.Context(t)
	a, aData := task(t, "alpha")
	b, bData := task(t, "beta")
	c, cData := task(t, "alpha")
	h.put(t, "no_worker: no worker serves 'alpha' at tier 'standard'", aData, bus.Header{"X-Trace": {"one", "two"}})
	h.put(t, "rate_limited: tier 'standard' has no available capacity", bData, nil)
	h.put(t, "something else entirely", cData, nil)

	page, err := h.store.Query(ctx, deadletter.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 3 || len(page.Entries) != 3 {
		t.Fatalf("Query() = %d entries of %d, want 3 of 3", len(page.Entries), page.Total)
	}
	for i, want := range []string{c.TaskID, b.TaskID, a.TaskID} {
		if got := page.Entries[i].DeadLetter.TaskID; got != want {
			t.Errorf("entry %d is task %s, want %s (newest first)", i, got, want)
		}
	}
	second, err := h.store.Query(ctx, deadletter.Query{Offset: 1, Limit: 1})
	if err != nil || second.Total != 3 || len(second.Entries) != 1 || second.Entries[0].DeadLetter.TaskID != b.TaskID {
		t.Fatalf("Query(offset 1, limit 1) = %+v, %v; want the middle entry of 3", second, err)
	}
	alpha, err := h.store.Query(ctx, deadletter.Query{Filter: deadletter.Filter{WorkerType: "alpha"}})
	if err != nil || alpha.Total != 2 {
		t.Fatalf("Query(worker_type alpha) total %d, %v; want 2", alpha.Total, err)
	}
	limited, err := h.store.Query(ctx, deadletter.Query{Filter: deadletter.Filter{ReasonKind: event.ReasonRateLimited}})
	if err != nil || limited.Total != 1 || limited.Entries[0].DeadLetter.TaskID != b.TaskID {
		t.Fatalf("Query(reason_kind rate_limited) = %+v, %v; want task %s only", limited, err, b.TaskID)
	}
	if _, err := h.store.Query(ctx, deadletter.Query{Limit: -1}); err == nil {
		t.Error("Query with a negative limit succeeded")
	}
	counts, err := h.store.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts.Total != 3 || counts.ByWorkerType["alpha"] != 2 || counts.ByReasonKind[event.ReasonNoWorker] != 1 ||
		counts.ByReasonKind[deadletter.ReasonKindOther] != 1 || counts.ReplayCount != 0 {
		t.Fatalf("Counts = %+v", counts)
	}

	oldest := page.Entries[2]
	got, err := h.store.Lookup(ctx, oldest.ID)
	if err != nil || got.DeadLetter.TaskID != a.TaskID || !bytes.Equal(got.DeadLetter.Original(), aData) {
		t.Fatalf("Lookup(%s) = %+v, %v; want task %s with its original bytes", oldest.ID, got, err, a.TaskID)
	}
	if _, err := h.store.Lookup(ctx, "no-such-id"); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("Lookup of an unknown id: %v, want ErrNotFound", err)
	}

	if err := h.store.Replay(ctx, oldest.ID); err != nil {
		t.Fatal(err)
	}
	m := testkit.Recv(t, h.replays, "the replayed task")
	if !bytes.Equal(m.Data, aData) || m.Header.Get("X-Trace") != "one" || len(m.Header.Values("X-Trace")) != 2 {
		t.Fatalf("replay published %q with header %v; want the original, byte for byte, with its header", m.Data, m.Header)
	}
	if _, err := h.store.Lookup(ctx, oldest.ID); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("Lookup after the replay: %v, want ErrNotFound (a replayed entry is removed)", err)
	}
	if err := h.store.Replay(ctx, oldest.ID); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("a second Replay of the entry: %v, want ErrNotFound", err)
	}
	if counts, err = h.store.Counts(ctx); err != nil || counts.Total != 2 || counts.ReplayCount != 1 {
		t.Fatalf("Counts after the replay = %+v, %v; want 2 entries and 1 replay", counts, err)
	}

	// The router dead-letters the replayed task again: the new entry says
	// it was replayed once, and when.
	h.put(t, "no_worker: no worker serves 'alpha' at tier 'standard'", aData, nil)
	again, err := h.store.Query(ctx, deadletter.Query{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	e := again.Entries[0]
	if e.DeadLetter.TaskID != a.TaskID || e.ReplayCount != 1 || e.LastReplayedAt.IsZero() {
		t.Fatalf("the task dead-lettered again: %+v; want task %s with replay_count 1 and its time", e, a.TaskID)
	}
}

// Dead letters and their replay records outlive every process and the
// server itself; a core subscriber (the Python consumer, a
// deadletter.Consumer) still receives each letter the stream stores.
func TestDeadLettersSurviveARestartOfEveryProcessAndTheServer(t *testing.T) {
	ctx := testkit.Context(t)
	srv := natstest.StartJetStreamServer(t, nil)
	b, err := natsbus.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	s, err := jsstore.Open(ctx, b, jsstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	core, _ := testkit.Subscribe(t, natsConnect(t, srv.ClientURL()), heddle.SubjectDeadLetter)
	a, aData := task(t, "alpha")
	_, bData := task(t, "beta")
	putDurable(t, b, "no_worker: first", aData, nil)
	putDurable(t, b, "no_worker: second", bData, nil)
	for range 2 {
		testkit.Recv(t, core, "the dead letter on core NATS")
	}
	page, err := s.Query(ctx, deadletter.Query{})
	if err != nil || page.Total != 2 {
		t.Fatalf("Query = %+v, %v; want 2 entries", page, err)
	}
	if err := s.Replay(ctx, page.Entries[1].ID); err != nil {
		t.Fatal(err)
	}
	putDurable(t, b, "no_worker: back again", aData, nil)
	_ = b.Close()

	srv.Stop()
	srv.Start()
	b2 := natsConnect(t, srv.ClientURL())
	s2, err := jsstore.Open(ctx, b2, jsstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	page, err = s2.Query(ctx, deadletter.Query{})
	if err != nil || page.Total != 2 {
		t.Fatalf("after the restart Query = %+v, %v; want the 2 entries held", page, err)
	}
	if e := page.Entries[0]; e.DeadLetter.TaskID != a.TaskID || e.ReplayCount != 1 {
		t.Fatalf("after the restart the newest entry is %+v; want task %s, replayed once", e, a.TaskID)
	}
	if c, err := s2.Counts(ctx); err != nil || c.ReplayCount != 1 || c.Total != 2 {
		t.Fatalf("after the restart Counts = %+v, %v; want 2 entries and 1 replay", c, err)
	}
}

// A replay whose publish fails leaves the entry as it was: here the
// intake stream refuses new messages.
func TestAReplayWhosePublishFailsKeepsTheEntry(t *testing.T) {
	ctx := testkit.Context(t)
	srv := natstest.StartJetStreamServer(t, nil)
	b := natsConnect(t, srv.ClientURL())
	js, err := b.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: router.DefaultIntakeStream, Subjects: []string{heddle.SubjectTasksIncoming},
		MaxMsgs: 1, Discard: jetstream.DiscardNew}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, heddle.SubjectTasksIncoming, []byte(`{"fills":"the stream"}`)); err != nil {
		t.Fatal(err)
	}
	s, err := jsstore.Open(ctx, b, jsstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, data := task(t, "alpha")
	putDurable(t, b, "no_worker: refused", data, nil)
	page, err := s.Query(ctx, deadletter.Query{})
	if err != nil || page.Total != 1 {
		t.Fatalf("Query = %+v, %v", page, err)
	}
	id := page.Entries[0].ID
	if err := s.Replay(ctx, id); err == nil {
		t.Fatal("Replay into a full intake stream succeeded")
	}
	e, err := s.Lookup(ctx, id)
	if err != nil || e.ReplayCount != 0 {
		t.Fatalf("after the failed replay Lookup = %+v, %v; want the entry, never replayed", e, err)
	}
	if c, err := s.Counts(ctx); err != nil || c.ReplayCount != 0 {
		t.Fatalf("Counts after the failed replay = %+v, %v; want no replay counted", c, err)
	}
}

// A replay sent while no router and no worker runs is stored in the
// intake stream and completes once they are back.
func TestAReplayDuringAnOutageCompletesOnceTheRouterAndWorkerReturn(t *testing.T) {
	ctx := testkit.Context(t)
	srv := natstest.StartJetStreamServer(t, nil)
	url := srv.ClientURL()
	const workerType = "replayed"
	dc := &router.DurableConfig{WorkerTypes: []string{workerType}, AckWait: time.Second}
	newActors := func() []heddle.Actor {
		w, err := worker.NewDynamic(natsConnect(t, url), workerType, func(_ context.Context, in map[string]any) (map[string]any, error) {
			return in, nil
		}, worker.Config{Durable: &worker.DurableConfig{AckWait: time.Second}, NoHeartbeat: true})
		if err != nil {
			t.Fatal(err)
		}
		r, err := router.New(natsConnect(t, url), router.Config{Durable: dc})
		if err != nil {
			t.Fatal(err)
		}
		return []heddle.Actor{w, r}
	}
	// A first run creates the streams; then the mesh is down.
	g, err := heddle.Start(ctx, newActors()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}

	b := natsConnect(t, url)
	s, err := jsstore.Open(ctx, b, jsstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tk, data := task(t, workerType)
	putDurable(t, b, "no_worker: no worker serves 'replayed' at tier 'standard'", data, nil)
	page, err := s.Query(ctx, deadletter.Query{})
	if err != nil || page.Total != 1 {
		t.Fatalf("Query = %+v, %v", page, err)
	}
	results, _ := testkit.Subscribe(t, natsConnect(t, url), heddle.SubjectResultsAll)
	if err := s.Replay(ctx, page.Entries[0].ID); err != nil {
		t.Fatalf("Replay while the mesh is down: %v", err)
	}
	if c, err := s.Counts(ctx); err != nil || c.Total != 0 || c.ReplayCount != 1 {
		t.Fatalf("Counts after the replay = %+v, %v; want the entry gone and 1 replay", c, err)
	}

	g, err = heddle.Start(ctx, newActors()...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Stop() }()
	res, err := heddle.DecodeTaskResult(testkit.Recv(t, results, "the replayed task's result").Data)
	if err != nil {
		t.Fatal(err)
	}
	if res.TaskID != tk.TaskID || res.Status != heddle.StatusCompleted {
		t.Fatalf("result %+v, want task %s completed", res, tk.TaskID)
	}
}

func TestOpenRefusesBadConfigurationNamingTheField(t *testing.T) {
	if _, err := jsstore.Open(context.Background(), nil, jsstore.Config{}); !errors.Is(err, heddle.ErrConfig) {
		t.Errorf("Open(nil bus) = %v, want ErrConfig", err)
	}
	b := natsConnect(t, natstest.StartJetStreamServer(t, nil).ClientURL())
	_, err := jsstore.Open(context.Background(), b, jsstore.Config{MaxMsgs: -1})
	if !errors.Is(err, heddle.ErrConfig) || !bytes.Contains([]byte(err.Error()), []byte("MaxMsgs")) {
		t.Errorf("Open(MaxMsgs -1) = %v, want ErrConfig naming MaxMsgs", err)
	}
}
