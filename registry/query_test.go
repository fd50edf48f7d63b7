package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/registry"
	"github.com/heddle-go/heddle/schemas"
	"github.com/heddle-go/heddle/worker"
)

// startRegistry runs a registry on b until the test ends.
func startRegistry(t *testing.T, b bus.Bus, cfg registry.Config) (*registry.Registry, *testlog.Recorder) {
	t.Helper()
	logs := testlog.New()
	r, err := registry.New(b, cfg, heddle.WithLogger(logs.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	testkit.StartActor(t, r.Run, r.Ready())
	return r, logs
}

// startWorker runs a worker of workerType on b; stop stops it.
func startWorker(t *testing.T, b bus.Bus, workerType string) (stop func()) {
	t.Helper()
	w, err := worker.NewDynamic(b, workerType, func(_ context.Context, in map[string]any) (map[string]any, error) { return in, nil },
		worker.Config{Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	return testkit.StartActor(t, w.Run, w.Ready())
}

// request sends body to heddle.SubjectWorkerRegistry on b and returns the
// first answer's bytes.
func request(t *testing.T, b bus.Bus, body []byte) []byte {
	t.Helper()
	inbox := "_INBOX.registry_test." + t.Name()
	inbox = string(bytes.Map(func(r rune) rune {
		if r == '/' || r == ' ' {
			return '_'
		}
		return r
	}, []byte(inbox)))
	answers, sub := testkit.Subscribe(t, b, inbox)
	defer sub.Unsubscribe()
	if err := b.Publish(t.Context(), &bus.Msg{Subject: heddle.SubjectWorkerRegistry, Reply: inbox, Data: body}); err != nil {
		t.Fatal(err)
	}
	return testkit.Recv(t, answers, "the registry's answer").Data
}

func TestTheRegistryAnswersOverTheBusWithItsTable(t *testing.T) {
	schema, err := contracts.NewSchema(schemas.HeartbeatRegistry())
	if err != nil {
		t.Fatal(err)
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		reg, logs := startRegistry(t, connect(), registry.Config{})
		workers := connect()
		stopSummarizer := startWorker(t, workers, "summarizer")
		startWorker(t, workers, "summarizer")
		startWorker(t, workers, "ocr")
		logs.Wait(t, "worker.joined", 3)

		// From another connection, as the CLI or another process asks.
		asker := connect()
		table, err := registry.Query(testkit.Context(t), asker, registry.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if table.RegistryID != reg.ID() || table.Total != 3 || len(table.Workers) != 3 || table.Offset != 0 ||
			table.StaleMultiplier != heddle.DefaultStaleMultiplier || table.SweepInterval != heddle.DefaultSweepInterval {
			t.Fatalf("Query = %+v, want this registry's 3 workers and its thresholds", table)
		}
		var kinds []string
		for _, e := range table.Workers {
			kinds = append(kinds, e.WorkerType+" "+string(e.Status))
			if e.Heartbeat == nil || e.Heartbeat.Capacity != 2 || e.Heartbeats != 1 || e.FirstHeartbeat.IsZero() ||
				e.StaleAfter != 90*time.Second {
				t.Errorf("entry %+v, want its heartbeat with capacity 2 and a 90 s threshold", e)
			}
		}
		if want := []string{"ocr active", "summarizer active", "summarizer active"}; !slices.Equal(kinds, want) {
			t.Errorf("workers %q, want %q, ordered by type", kinds, want)
		}
		if got := []registry.TypeState{table.TypeState("ocr"), table.TypeState("summarizer"), table.TypeState("python_llm")}; !slices.Equal(got,
			[]registry.TypeState{registry.TypeUp, registry.TypeUp, registry.TypeUnknown}) {
			t.Errorf("type states %q, want up, up and unknown for a type that never heartbeated", got)
		}
		snap, err := reg.Snapshot(registry.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Workers) != 3 || !slices.EqualFunc(snap.Workers, table.Workers, sameEntry) {
			t.Errorf("the answer over the bus differs from Snapshot:\n%+v\n%+v", table.Workers, snap.Workers)
		}

		// A page, and one type.
		page, err := registry.Query(testkit.Context(t), asker, registry.Request{Offset: 1, Limit: 1})
		if err != nil || page.Total != 3 || page.Offset != 1 || len(page.Workers) != 1 || page.Workers[0].InstanceID != table.Workers[1].InstanceID {
			t.Errorf("Query(offset 1, limit 1) = %+v, %v; want the second worker of 3", page, err)
		}
		ocr, err := registry.Query(testkit.Context(t), asker, registry.Request{WorkerType: "ocr"})
		if err != nil || ocr.Total != 1 || len(ocr.Types) != 1 || ocr.Types[0].WorkerType != "ocr" {
			t.Errorf("Query(ocr) = %+v, %v; want the one ocr worker and its type alone", ocr, err)
		}

		// The answer as it travels validates against its schema.
		raw := request(t, asker, nil)
		if err := schema.Validate(json.RawMessage(raw)); err != nil {
			t.Errorf("the answer does not validate against schemas.HeartbeatRegistry: %v\n%s", err, raw)
		}

		// A worker that drains is stopped at once, for every reader.
		stopSummarizer()
		logs.Wait(t, "worker.stopped", 1)
		after, err := registry.Query(testkit.Context(t), asker, registry.Request{WorkerType: "summarizer"})
		if err != nil {
			t.Fatal(err)
		}
		if got := after.Types; len(got) != 1 || got[0].Active != 1 || got[0].Stopped != 1 || got[0].State != registry.TypeUp {
			t.Errorf("summarizer summary %+v, want 1 active, 1 stopped, up", got)
		}
		if s := reg.Stats(); s.Queries != 5 || s.QueryErrors != 0 {
			t.Errorf("Stats() = %+v, want 5 queries answered", s)
		}
	})
}

// sameEntry compares what a registry and its answer on the bus hold
// (times at the wire's microsecond precision, which the registry keeps).
func sameEntry(a, b registry.Entry) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestQueryWithoutARegistryFailsAtOnce(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := registry.Query(ctx, connect(), registry.Request{})
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, registry.ErrNoRegistry) {
				t.Errorf("Query = %v, want ErrNoRegistry", err)
			}
		case <-time.After(testkit.Wait):
			t.Fatal("Query waited for an answer no registry could give")
		}
	})
}

func TestABadRequestGetsAnErrorAnswerAndIsCounted(t *testing.T) {
	schema, err := contracts.NewSchema(schemas.HeartbeatRegistry())
	if err != nil {
		t.Fatal(err)
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		reg, logs := startRegistry(t, connect(), registry.Config{})
		asker := connect()
		for _, body := range []string{`[1, 2]`, `{"offset": -1}`, `{"limit": "ten"}`} {
			raw := request(t, asker, []byte(body))
			var answer struct {
				RegistryID string `json:"registry_id"`
				Error      string `json:"error"`
			}
			if err := json.Unmarshal(raw, &answer); err != nil || answer.RegistryID != reg.ID() || answer.Error == "" {
				t.Errorf("answer to %s: %s, want an error from this registry", body, raw)
			}
			if err := schema.Validate(json.RawMessage(raw)); err != nil {
				t.Errorf("the error answer does not validate against its schema: %v", err)
			}
			var table registry.Table
			if err := json.Unmarshal(raw, &table); !errors.Is(err, registry.ErrRefused) {
				t.Errorf("decoding the error answer as a Table: %v, want ErrRefused", err)
			}
		}
		if _, err := registry.Query(testkit.Context(t), asker, registry.Request{Limit: -1}); !errors.Is(err, heddle.ErrConfig) {
			t.Errorf("Query with a negative limit = %v, want heddle.ErrConfig before asking", err)
		}
		// A request with no reply subject cannot be answered: counted.
		testkit.Publish(t, asker, heddle.SubjectWorkerRegistry, nil, nil)
		failed := logs.Wait(t, "registry.query_failed", 4)
		var reasons []string
		for _, rec := range failed {
			reasons = append(reasons, rec.Str("reason"))
		}
		if want := []string{"bad_request", "bad_request", "bad_request", "no_reply_subject"}; !slices.Equal(reasons, want) {
			t.Errorf("registry.query_failed reasons %q, want %q", reasons, want)
		}
		if s := reg.Stats(); s.Queries != 4 || s.QueryErrors != 4 {
			t.Errorf("Stats() = %+v, want 4 queries, 4 errors", s)
		}
	})
}

func TestAMalformedHeartbeatIsCountedAndChangesNothing(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		reg, logs := startRegistry(t, connect(), registry.Config{})
		pub := connect()
		testkit.Publish(t, pub, heddle.HeartbeatSubject("x"), []byte(`{"instance_id":"i","worker_type":"x"}`), nil)
		testkit.Publish(t, pub, heddle.HeartbeatSubject("x"), []byte(`not json`), nil)
		bad := logs.Wait(t, "registry.parse_error", 2)
		if bad[0].Str("subject") != "heddle.workers.heartbeat.x" || bad[0].Str("error") == "" || bad[0].Level.String() != "WARN" {
			t.Errorf("registry.parse_error %+v, want a warning naming the subject and the error", bad[0].Attrs)
		}
		if s := reg.Stats(); s.Malformed != 2 || s.Heartbeats != 0 || s.Workers != 0 {
			t.Errorf("Stats() = %+v, want 2 malformed and an empty table", s)
		}
	})
}

func TestNewRefusesABadConfig(t *testing.T) {
	if _, err := registry.New(nil, registry.Config{}); !errors.Is(err, heddle.ErrConfig) {
		t.Errorf("New(nil) = %v, want heddle.ErrConfig", err)
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		b := connect()
		for field, cfg := range map[string]registry.Config{
			"HeartbeatInterval": {HeartbeatInterval: -time.Second}, "StaleMultiplier": {StaleMultiplier: -1},
			"SweepInterval": {SweepInterval: -time.Second}, "Retention": {Retention: -1}, "MaxWorkers": {MaxWorkers: -3},
			"DrainTimeout": {DrainTimeout: -1},
		} {
			if _, err := registry.New(b, cfg); !errors.Is(err, heddle.ErrConfig) || !strings.Contains(err.Error(), "Config."+field) {
				t.Errorf("New(%+v) = %v, want heddle.ErrConfig naming Config.%s", cfg, err, field)
			}
		}
		r, err := registry.New(b, registry.Config{})
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range [][2]string{{"", "i"}, {"two words", "i"}, {"ok", ""}} {
			if err := r.Expect(bad[0], bad[1]); !errors.Is(err, heddle.ErrConfig) {
				t.Errorf("Expect(%q, %q) = %v, want heddle.ErrConfig", bad[0], bad[1], err)
			}
		}
		stop := testkit.StartActor(t, r.Run, r.Ready())
		if err := r.Run(context.Background()); !errors.Is(err, heddle.ErrStarted) {
			t.Errorf("a second Run = %v, want heddle.ErrStarted", err)
		}
		stop()
	})
}

func TestRunReturnsErrClosedWhenItsBusCloses(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		b := connect()
		r, err := registry.New(b, registry.Config{})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- r.Run(context.Background()) }()
		<-r.Ready()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, bus.ErrClosed) {
				t.Errorf("Run = %v, want an error wrapping bus.ErrClosed", err)
			}
		case <-time.After(testkit.Wait):
			t.Fatal("Run did not return after its bus closed")
		}
	})
}
