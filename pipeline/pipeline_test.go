package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/pipeline"
	"github.com/heddle-go/heddle/worker"
)

// pipelineTestTimeout bounds each test's waits; generous, so a loaded
// machine never makes a passing test fail.
const pipelineTestTimeout = 30 * time.Second

func pipelineContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pipelineTestTimeout)
	t.Cleanup(cancel)
	return ctx
}

// pipelineWorker runs a heddle worker for workerType on b until the test
// ends, and counts its calls.
type pipelineWorker struct{ calls atomic.Int32 }

func pipelineStartWorker(t *testing.T, b bus.Bus, workerType string,
	handler func(ctx context.Context, in map[string]any) (map[string]any, error)) *pipelineWorker {
	t.Helper()
	pw := &pipelineWorker{}
	w, err := worker.NewDynamic(b, workerType, func(ctx context.Context, in map[string]any) (map[string]any, error) {
		pw.calls.Add(1)
		return handler(ctx, in)
	}, worker.Config{DrainTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker %s Run: %v", workerType, err)
		}
	})
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("worker %s Run: %v", workerType, err)
	case <-time.After(pipelineTestTimeout):
		t.Fatalf("worker %s never became ready", workerType)
	}
	return pw
}

// pipelineEcho answers with a fixed output.
func pipelineEcho(out map[string]any) func(context.Context, map[string]any) (map[string]any, error) {
	return func(context.Context, map[string]any) (map[string]any, error) { return out, nil }
}

func pipelineNew(t *testing.T, b bus.Bus, cfg pipeline.Config, opts ...heddle.Option) *pipeline.Pipeline {
	t.Helper()
	cfg.Direct = true
	p, err := pipeline.New(b, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPipelineRunsTheMiddleStagesOfADiamondInParallel(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		workers := connect()
		// B and C each wait until both have received their task: had the
		// pipeline dispatched them one after the other, the first would
		// wait forever and its stage would time out.
		var arrived atomic.Int32
		both := make(chan struct{})
		barrier := func(name string) func(context.Context, map[string]any) (map[string]any, error) {
			return func(ctx context.Context, in map[string]any) (map[string]any, error) {
				if arrived.Add(1) == 2 {
					close(both)
				}
				select {
				case <-both:
					return map[string]any{"seen": fmt.Sprintf("%s saw %v", name, in["a"])}, nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
		}
		pipelineStartWorker(t, workers, "diamond-a", func(_ context.Context, in map[string]any) (map[string]any, error) {
			return map[string]any{"x": in["f"]}, nil
		})
		pipelineStartWorker(t, workers, "diamond-b", barrier("B"))
		pipelineStartWorker(t, workers, "diamond-c", barrier("C"))
		pipelineStartWorker(t, workers, "diamond-d", func(_ context.Context, in map[string]any) (map[string]any, error) {
			return in, nil
		})

		middle := 10 * time.Second
		p := pipelineNew(t, connect(), pipeline.Config{Name: "diamond", Stages: []pipeline.Stage{
			{Name: "A", WorkerType: "diamond-a", InputMapping: map[string]string{"f": "goal.context.f"}},
			{Name: "B", WorkerType: "diamond-b", Timeout: middle, InputMapping: map[string]string{"a": "A.output.x"}},
			{Name: "C", WorkerType: "diamond-c", Timeout: middle, InputMapping: map[string]string{"a": "A.output.x"}},
			{Name: "D", WorkerType: "diamond-d", InputMapping: map[string]string{"b": "B.output.seen", "c": "C.output.seen"}},
		}})
		if got, want := p.Levels(), [][]string{{"A"}, {"B", "C"}, {"D"}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("Levels = %v, want %v", got, want)
		}
		res, err := p.Execute(pipelineContext(t), heddle.NewOrchestratorGoal("diamond", map[string]any{"f": "file"}))
		if err != nil {
			t.Fatalf("Execute: %v", err)
		}
		want := map[string]any{"b": "B saw file", "c": "C saw file"}
		if res.Status != heddle.StatusCompleted || !reflect.DeepEqual(res.Output["D"], want) {
			t.Fatalf("result %s, D output %v; want completed with %v", res.Status, res.Output["D"], want)
		}
	})
}

func TestPipelineMappingReachesTheWorkerPayloadExactly(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		workers := connect()
		var mu sync.Mutex
		payloads := map[string]map[string]any{}
		tasks := map[string]heddle.TaskMessage{}
		record := func(name string, out map[string]any) func(context.Context, map[string]any) (map[string]any, error) {
			return func(ctx context.Context, in map[string]any) (map[string]any, error) {
				task, _ := worker.TaskFromContext(ctx)
				mu.Lock()
				payloads[name], tasks[name] = in, task
				mu.Unlock()
				return out, nil
			}
		}
		extractOut := map[string]any{"text": "hello", "meta": map[string]any{"pages": 3.0}, "tags": []any{"a", "b"}}
		pipelineStartWorker(t, workers, "map-extractor", record("extract", extractOut))
		pipelineStartWorker(t, workers, "map-summarizer", record("summarize", map[string]any{"summary": "hi"}))

		p := pipelineNew(t, connect(), pipeline.Config{Name: "mapping", Stages: []pipeline.Stage{
			{Name: "extract", WorkerType: "map-extractor", Tier: heddle.TierLocal, InputMapping: map[string]string{
				"ref":         "goal.context.file_ref",
				"opts":        "goal.context.opts",
				"instruction": "goal.instruction",
				"sku":         "goal.context.items.1.sku",
				"whole":       "goal.context",
			}},
			{Name: "summarize", WorkerType: "map-summarizer", InputMapping: map[string]string{
				"text":  "extract.output.text",
				"pages": "extract.output.meta.pages",
				"tags":  "extract.output.tags",
				"all":   "extract.output",
			}},
		}})
		goalContext := map[string]any{
			"file_ref": "s3://bucket/doc.pdf",
			"opts":     map[string]any{"lang": "en", "n": 2},
			"items":    []any{map[string]any{"sku": "a"}, map[string]any{"sku": "b"}},
		}
		goal := heddle.NewOrchestratorGoal("summarize the document", goalContext)
		goal.RequestID = "req-7"
		res, err := p.Execute(pipelineContext(t), goal)
		if err != nil {
			t.Fatalf("Execute: %v", err)
		}

		jsonContext := map[string]any{
			"file_ref": "s3://bucket/doc.pdf",
			"opts":     map[string]any{"lang": "en", "n": 2.0},
			"items":    []any{map[string]any{"sku": "a"}, map[string]any{"sku": "b"}},
		}
		wantPayloads := map[string]map[string]any{
			"extract": {
				"ref": "s3://bucket/doc.pdf", "opts": map[string]any{"lang": "en", "n": 2.0},
				"instruction": "summarize the document", "sku": "b", "whole": jsonContext,
			},
			"summarize": {"text": "hello", "pages": 3.0, "tags": []any{"a", "b"}, "all": extractOut},
		}
		mu.Lock()
		defer mu.Unlock()
		for stage, want := range wantPayloads {
			if !reflect.DeepEqual(payloads[stage], want) {
				t.Errorf("%s payload = %#v\nwant %#v", stage, payloads[stage], want)
			}
			task := tasks[stage]
			if task.ParentTaskID != goal.GoalID || task.RequestID != "req-7" || task.Metadata["stage_name"] != stage ||
				task.Metadata["pipeline"] != "mapping" {
				t.Errorf("%s task: parent %q request %q metadata %v", stage, task.ParentTaskID, task.RequestID, task.Metadata)
			}
		}
		if tasks["extract"].ModelTier != heddle.TierLocal || tasks["summarize"].ModelTier != heddle.DefaultModelTier {
			t.Errorf("tiers: extract %s, summarize %s", tasks["extract"].ModelTier, tasks["summarize"].ModelTier)
		}
		if res.TaskID != goal.GoalID || res.WorkerType != "mapping" || res.ParentTaskID != "" ||
			!reflect.DeepEqual(res.Output["extract"], extractOut) ||
			!reflect.DeepEqual(res.Output["summarize"], map[string]any{"summary": "hi"}) {
			t.Errorf("final result %+v", res)
		}
		if tl, _ := res.Output[pipeline.OutputTimeline].([]any); len(tl) != 2 {
			t.Errorf("timeline %v, want an entry per completed stage", res.Output[pipeline.OutputTimeline])
		}
	})
}

func TestPipelineSkipsAStageWhoseConditionIsFalse(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		workers := connect()
		pipelineStartWorker(t, workers, "cond-classifier", pipelineEcho(map[string]any{"kind": "receipt"}))
		invoice := pipelineStartWorker(t, workers, "cond-invoice", pipelineEcho(map[string]any{"total": 1.0}))
		after := pipelineStartWorker(t, workers, "cond-after", pipelineEcho(map[string]any{}))
		pipelineStartWorker(t, workers, "cond-receipt", pipelineEcho(map[string]any{"filed": true}))

		logs := testlog.New()
		p := pipelineNew(t, connect(), pipeline.Config{Name: "cond", Stages: []pipeline.Stage{
			{Name: "classify", WorkerType: "cond-classifier"},
			{Name: "invoice", WorkerType: "cond-invoice", Condition: `classify.output.kind == "invoice"`},
			{Name: "after_invoice", WorkerType: "cond-after", InputMapping: map[string]string{"total": "invoice.output.total"}},
			{Name: "receipt", WorkerType: "cond-receipt", Condition: "classify.output.kind != invoice"},
		}}, heddle.WithLogger(logs.Logger()))
		res, err := p.Execute(pipelineContext(t), heddle.NewOrchestratorGoal("file it", nil))
		if err != nil || res.Status != heddle.StatusCompleted {
			t.Fatalf("Execute: %v, %v", res.Status, err)
		}
		if n := invoice.calls.Load() + after.calls.Load(); n != 0 {
			t.Errorf("skipped stages' workers were called %d times", n)
		}
		if _, ok := res.Output["invoice"]; ok {
			t.Errorf("a skipped stage has an output: %v", res.Output)
		}
		if !reflect.DeepEqual(res.Output["receipt"], map[string]any{"filed": true}) {
			t.Errorf("receipt output %v", res.Output["receipt"])
		}
		if got := res.Output[pipeline.OutputSkipped]; !reflect.DeepEqual(got, []any{"invoice", "after_invoice"}) {
			t.Errorf("%s = %v", pipeline.OutputSkipped, got)
		}
		reasons := map[any]any{}
		for _, e := range logs.All("pipeline.stage_skipped") {
			reasons[e.Attrs["stage"]] = e.Attrs["reason"]
		}
		want := map[any]any{"invoice": "condition_false", "after_invoice": "upstream_not_completed"}
		if !reflect.DeepEqual(reasons, want) {
			t.Errorf("pipeline.stage_skipped reasons %v, want %v", reasons, want)
		}
		if s := p.Stats(); s.StagesSkipped != 2 || s.StagesCompleted != 2 || s.StagesFailed != 0 {
			t.Errorf("stats %+v", s)
		}
	})
}

func TestPipelineExecuteRejectsAnInvalidGoal(t *testing.T) {
	p, err := pipeline.New(nil, pipeline.Config{Name: "p", Stages: []pipeline.Stage{{Name: "a", WorkerType: "w"}}})
	if err != nil {
		t.Fatal(err)
	}
	goal := heddle.NewOrchestratorGoal("summarize", nil)
	goal.Priority = "asap"
	res, err := p.Execute(context.Background(), goal)
	var ve *heddle.ValidationError
	if !errors.As(err, &ve) || !ve.Has("priority") {
		t.Fatalf("Execute error %v, want a ValidationError naming priority", err)
	}
	if res.Status != heddle.StatusFailed || res.TaskID != goal.GoalID || res.Error != err.Error() {
		t.Errorf("result %+v", res)
	}
}

func TestPipelineRunAnswersGoalsOnTheirResultSubject(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		workers, caller := connect(), connect()
		pipelineStartWorker(t, workers, "run-extractor", func(_ context.Context, in map[string]any) (map[string]any, error) {
			return map[string]any{"text": fmt.Sprintf("text of %v", in["ref"])}, nil
		})
		pipelineStartWorker(t, workers, "run-summarizer", func(_ context.Context, in map[string]any) (map[string]any, error) {
			return map[string]any{"summary": strings.ToUpper(in["text"].(string))}, nil
		})
		logs := testlog.New()
		p := pipelineNew(t, connect(), pipeline.Config{Name: "docs", MaxConcurrentGoals: 2, Stages: []pipeline.Stage{
			{Name: "extract", WorkerType: "run-extractor", InputMapping: map[string]string{"ref": "goal.context.file_ref"}},
			{Name: "summarize", WorkerType: "run-summarizer", InputMapping: map[string]string{"text": "extract.output.text"}},
		}}, heddle.WithLogger(logs.Logger()))

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		select {
		case <-p.Ready():
		case err := <-done:
			t.Fatalf("Run: %v", err)
		}
		if err := p.Run(ctx); !errors.Is(err, heddle.ErrStarted) {
			t.Errorf("second Run = %v, want heddle.ErrStarted", err)
		}

		goal := heddle.NewOrchestratorGoal("summarize", map[string]any{"file_ref": "doc-1"})
		res, err := dispatch.SubmitGoal(pipelineContext(t), caller, goal, dispatch.Timeout(pipelineTestTimeout))
		if err != nil {
			t.Fatalf("SubmitGoal: %v", err)
		}
		if res.TaskID != goal.GoalID || res.WorkerType != "docs" || res.Status != heddle.StatusCompleted ||
			!reflect.DeepEqual(res.Output["summarize"], map[string]any{"summary": "TEXT OF DOC-1"}) {
			t.Fatalf("final result %+v", res)
		}

		// A message that is not a valid goal but names a goal_id is
		// answered with a failed result, so its caller does not wait.
		s, err := dispatch.NewStream(pipelineContext(t), caller, heddle.ResultSubject("bad-goal"),
			dispatch.Timeout(pipelineTestTimeout))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Expect("bad-goal"); err != nil {
			t.Fatal(err)
		}
		if err := caller.Publish(pipelineContext(t), &bus.Msg{Subject: heddle.SubjectGoalsIncoming,
			Data: []byte(`{"goal_id": "bad-goal"}`)}); err != nil {
			t.Fatal(err)
		}
		results, err := s.Collect(pipelineContext(t))
		if err != nil || len(results) != 1 || results[0].Status != heddle.StatusFailed ||
			!strings.Contains(results[0].Error, "instruction") {
			t.Fatalf("result of a bad goal: %+v, %v", results, err)
		}

		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
		if st := p.Stats(); st.GoalsReceived != 1 || st.GoalsCompleted != 1 || st.ParseErrors != 1 || st.PublishErrors != 0 {
			t.Errorf("stats %+v", st)
		}
		for _, event := range []string{"pipeline.goal_received", "pipeline.goal_completed", "pipeline.parse_error"} {
			if ev := logs.All(event); len(ev) != 1 {
				t.Errorf("%s logged %d times, want once", event, len(ev))
			}
		}
		if ev := logs.All("pipeline.stage_started"); len(ev) != 2 {
			t.Errorf("pipeline.stage_started logged %d times, want 2", len(ev))
		}
		if ev := logs.All("pipeline.stage_completed"); len(ev) != 2 || ev[0].Attrs["goal_id"] != goal.GoalID {
			t.Errorf("pipeline.stage_completed events %v", ev)
		}
	})
}

func TestAPipelinesFinalResultIsStampedWhenItsLastStageEnded(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		var mu sync.Mutex
		var lastEnd time.Time
		pipelineStartWorker(t, connect(), "stamp-stage", func(_ context.Context, in map[string]any) (map[string]any, error) {
			mu.Lock()
			defer mu.Unlock()
			lastEnd = time.Now()
			return map[string]any{"ok": true}, nil
		})
		p := pipelineNew(t, connect(), pipeline.Config{Name: "stamped", Stages: []pipeline.Stage{
			{Name: "first", WorkerType: "stamp-stage"},
			{Name: "second", WorkerType: "stamp-stage", InputMapping: map[string]string{"ok": "first.output.ok"}},
		}}, heddle.WithLogger(testlog.New().Logger()))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
		<-p.Ready()
		res, err := dispatch.SubmitGoal(pipelineContext(t), connect(), heddle.NewOrchestratorGoal("stamp", nil), dispatch.Timeout(pipelineTestTimeout))
		if err != nil || res.Status != heddle.StatusCompleted {
			t.Fatalf("SubmitGoal = %+v, %v", res, err)
		}
		mu.Lock()
		end := lastEnd.UTC().Truncate(time.Microsecond)
		mu.Unlock()
		if res.CompletedAt.Before(end) {
			t.Errorf("completed_at %s is before the last stage ended (%s): it must say when the goal's work ended",
				res.CompletedAt.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano))
		}
	})
}

func TestTwoPipelinesOnOneMeshEachServeOnlyTheGoalsAddressedToThem(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		pipelineStartWorker(t, connect(), "addr-stage", func(_ context.Context, in map[string]any) (map[string]any, error) {
			return map[string]any{"ok": true}, nil
		})
		ctx, cancel := context.WithCancel(context.Background())
		var runs sync.WaitGroup
		defer func() {
			cancel()
			runs.Wait()
		}()
		for _, name := range []string{"alpha", "beta"} {
			// Both in the default queue group, as two kinds of pipeline on
			// one mesh are: only addressing keeps their goals apart.
			p := pipelineNew(t, connect(), pipeline.Config{Name: name, AddressedOnly: true,
				Stages: []pipeline.Stage{{Name: "s", WorkerType: "addr-stage"}}}, heddle.WithLogger(testlog.New().Logger()))
			runs.Go(func() {
				if err := p.Run(ctx); err != nil {
					t.Errorf("pipeline %s Run: %v", name, err)
				}
			})
			<-p.Ready()
		}
		caller := connect()
		for i := range 6 {
			name := []string{"alpha", "beta"}[i%2]
			goal := heddle.NewOrchestratorGoal("addressed", nil)
			s, err := dispatch.NewStream(pipelineContext(t), caller, goal.ResultSubject(), dispatch.Timeout(pipelineTestTimeout))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Expect(goal.GoalID); err != nil {
				t.Fatal(err)
			}
			subject, err := heddle.GoalSubject(name)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := goal.Encode()
			if err := caller.Publish(pipelineContext(t), &bus.Msg{Subject: subject, Data: data}); err != nil {
				t.Fatal(err)
			}
			results, err := s.Collect(pipelineContext(t))
			_ = s.Close()
			if err != nil || len(results) != 1 || results[0].WorkerType != name || results[0].Status != heddle.StatusCompleted {
				t.Fatalf("goal %d for %s: %+v, %v; want completed by pipeline %s", i, name, results, err, name)
			}
		}
	})
}
