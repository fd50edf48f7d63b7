package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/pipeline"
	"github.com/heddle-go/heddle/worker"
)

func TestPipelineFailedStageFailsTheGoalNamingTheStage(t *testing.T) {
	tests := []struct {
		name  string
		stage pipeline.Stage
		// worker answers the failing stage; nil means no worker at all.
		wk      func(context.Context, map[string]any) (map[string]any, error)
		context map[string]any
		kind    pipeline.StageErrorKind
		is      error
		text    string
		// undispatched: the stage must fail before its task is published.
		undispatched bool
		silent       bool // a subscriber takes the stage task and never answers
	}{
		{
			name:  "a worker answering failed is worker_failed",
			stage: pipeline.Stage{InputMapping: map[string]string{"text": "goal.context.text"}},
			wk: func(context.Context, map[string]any) (map[string]any, error) {
				return nil, worker.Permanent(errors.New("cannot parse pdf"))
			},
			context: map[string]any{"text": "%PDF"},
			kind:    pipeline.StageErrWorkerFailed, text: "cannot parse pdf",
		},
		{
			name:   "no result within the stage timeout is timeout",
			stage:  pipeline.Stage{Timeout: 50 * time.Millisecond},
			silent: true,
			kind:   pipeline.StageErrTimeout, is: dispatch.ErrTimeout, text: "timed out",
		},
		{
			name:  "a stage whose worker type nobody serves is unserved, at once",
			stage: pipeline.Stage{Timeout: time.Minute},
			kind:  pipeline.StageErrUnserved, is: dispatch.ErrNoWorker, text: "nothing is subscribed",
		},
		{
			name: "an output violating the output schema is validation",
			stage: pipeline.Stage{Contract: pipelineContract(t, "",
				`{"type":"object","properties":{"text":{"type":"string"}}}`)},
			wk:   pipelineEcho(map[string]any{"text": 3}),
			kind: pipeline.StageErrValidation, is: contracts.ErrViolation, text: "/text",
		},
		{
			name: "a payload violating the input schema is validation, before dispatch",
			stage: pipeline.Stage{InputMapping: map[string]string{"text": "goal.context.text"},
				Contract: pipelineContract(t, `{"type":"object","properties":{"text":{"type":"string"}}}`, "")},
			wk:      pipelineEcho(map[string]any{}),
			context: map[string]any{"text": 5},
			kind:    pipeline.StageErrValidation, is: contracts.ErrViolation, text: "input violates schema",
			undispatched: true,
		},
		{
			name:  "a mapping path missing at run time is mapping",
			stage: pipeline.Stage{InputMapping: map[string]string{"text": "goal.context.missing"}},
			wk:    pipelineEcho(map[string]any{}),
			kind:  pipeline.StageErrMapping, text: `input_mapping.text: path "goal.context.missing": "goal.context.missing" not found`,
			undispatched: true,
		},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		workers, conn := connect(), connect()
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				failing := fmt.Sprintf("fail-%d", i)
				var stageWorker *pipelineWorker
				if tt.wk != nil {
					stageWorker = pipelineStartWorker(t, workers, failing, tt.wk)
				}
				if tt.silent {
					// Takes the stage's task and never answers.
					testkit.Responder(t, workers, failing, "", func(heddle.TaskMessage) [][]byte { return nil })
				}
				report := pipelineStartWorker(t, workers, fmt.Sprintf("fail-report-%d", i), pipelineEcho(map[string]any{}))
				stage := tt.stage
				stage.Name, stage.WorkerType = "extract", failing
				logs := testlog.New()
				p := pipelineNew(t, conn, pipeline.Config{Name: "failing", Stages: []pipeline.Stage{
					stage,
					{Name: "report", WorkerType: fmt.Sprintf("fail-report-%d", i), DependsOn: []string{"extract"}},
				}}, heddle.WithLogger(logs.Logger()))
				goal := heddle.NewOrchestratorGoal("go", tt.context)
				res, err := p.Execute(pipelineContext(t), goal)

				var se *pipeline.StageError
				if !errors.As(err, &se) || se.Stage != "extract" || se.Kind != tt.kind {
					t.Fatalf("Execute error %v, want a %s StageError for stage extract", err, tt.kind)
				}
				prefix := fmt.Sprintf(`stage "extract" failed: %s: `, tt.kind)
				if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.text) {
					t.Errorf("error %q, want it to start with %q and contain %q", err, prefix, tt.text)
				}
				if !errors.Is(err, pipeline.ErrStageFailed) || (tt.is != nil && !errors.Is(err, tt.is)) {
					t.Errorf("error %v does not match ErrStageFailed and %v", err, tt.is)
				}
				if res.Status != heddle.StatusFailed || res.Error != err.Error() || res.TaskID != goal.GoalID {
					t.Errorf("result %s %q for %s", res.Status, res.Error, res.TaskID)
				}
				if errs, _ := res.Output[pipeline.OutputErrors].(map[string]any); errs["extract"] == nil {
					t.Errorf("%s = %v", pipeline.OutputErrors, res.Output[pipeline.OutputErrors])
				}
				if n := report.calls.Load(); n != 0 {
					t.Errorf("the stage after the failed one ran %d times", n)
				}
				if tt.undispatched && stageWorker.calls.Load() != 0 {
					t.Errorf("the stage's task was dispatched %d times", stageWorker.calls.Load())
				}
				if ev := logs.All("pipeline.stage_failed"); len(ev) != 1 || ev[0].Attrs["stage"] != "extract" ||
					ev[0].Attrs["reason"] != string(tt.kind) {
					t.Errorf("pipeline.stage_failed events %v", ev)
				}
				if s := p.Stats(); s.StagesFailed != 1 || s.GoalsFailed != 1 || s.GoalsCompleted != 0 {
					t.Errorf("stats %+v", s)
				}
			})
		}
	})
}

func TestPipelineContinueOnErrorLetsTheGoalComplete(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		workers := connect()
		pipelineStartWorker(t, workers, "cont-flaky", func(context.Context, map[string]any) (map[string]any, error) {
			return nil, worker.Permanent(errors.New("model unavailable"))
		})
		uses := pipelineStartWorker(t, workers, "cont-uses", pipelineEcho(map[string]any{}))
		pipelineStartWorker(t, workers, "cont-other", pipelineEcho(map[string]any{"ok": true}))
		p := pipelineNew(t, connect(), pipeline.Config{Name: "cont", Stages: []pipeline.Stage{
			{Name: "flaky", WorkerType: "cont-flaky", ContinueOnError: true},
			{Name: "uses_flaky", WorkerType: "cont-uses", InputMapping: map[string]string{"x": "flaky.output.x"}},
			{Name: "after", WorkerType: "cont-other", DependsOn: []string{"flaky"}},
		}})
		res, err := p.Execute(pipelineContext(t), heddle.NewOrchestratorGoal("go on", nil))
		if err != nil || res.Status != heddle.StatusCompleted {
			t.Fatalf("Execute: %s, %v; want completed", res.Status, err)
		}
		errs, _ := res.Output[pipeline.OutputErrors].(map[string]any)
		if msg, _ := errs["flaky"].(string); !strings.HasPrefix(msg, "worker_failed: ") || !strings.Contains(msg, "model unavailable") {
			t.Errorf("%s = %v", pipeline.OutputErrors, res.Output[pipeline.OutputErrors])
		}
		if !reflect.DeepEqual(res.Output["after"], map[string]any{"ok": true}) || uses.calls.Load() != 0 {
			t.Errorf("output %v; uses_flaky ran %d times", res.Output, uses.calls.Load())
		}
		if got := res.Output[pipeline.OutputSkipped]; !reflect.DeepEqual(got, []any{"uses_flaky"}) {
			t.Errorf("%s = %v", pipeline.OutputSkipped, got)
		}
	})
}

func TestPipelineRetriesAStageWhoseWorkerFailed(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		var attempts atomic.Int32
		pipelineStartWorker(t, connect(), "retry-worker", func(context.Context, map[string]any) (map[string]any, error) {
			if attempts.Add(1) == 1 {
				return nil, worker.Permanent(errors.New("transient"))
			}
			return map[string]any{"ok": true}, nil
		})
		logs := testlog.New()
		p := pipelineNew(t, connect(), pipeline.Config{Name: "retry", Stages: []pipeline.Stage{
			{Name: "only", WorkerType: "retry-worker", MaxRetries: 1},
		}}, heddle.WithLogger(logs.Logger()))
		res, err := p.Execute(pipelineContext(t), heddle.NewOrchestratorGoal("again", nil))
		if err != nil || !reflect.DeepEqual(res.Output["only"], map[string]any{"ok": true}) {
			t.Fatalf("Execute: %v, output %v", err, res.Output)
		}
		if s := p.Stats(); s.StageRetries != 1 || s.StagesCompleted != 1 || s.StagesFailed != 0 {
			t.Errorf("stats %+v", s)
		}
		if ev := logs.All("pipeline.stage_retry"); len(ev) != 1 || ev[0].Attrs["reason"] != "worker_failed" {
			t.Errorf("pipeline.stage_retry events %v", ev)
		}
	})
}

func TestPipelineExecuteStopsWhenItsContextEnds(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		received := make(chan struct{})
		release := make(chan struct{})
		pipelineStartWorker(t, connect(), "slow-worker", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
			close(received)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return map[string]any{}, nil
		})
		// Registered after the worker's, so it runs before the worker stops.
		t.Cleanup(func() { close(release) })
		p := pipelineNew(t, connect(), pipeline.Config{Name: "slow", Stages: []pipeline.Stage{
			{Name: "wait", WorkerType: "slow-worker"},
		}})
		ctx, cancel := context.WithCancel(pipelineContext(t))
		go func() {
			select {
			case <-received:
			case <-ctx.Done():
			}
			cancel()
		}()
		res, err := p.Execute(ctx, heddle.NewOrchestratorGoal("wait", nil))
		var se *pipeline.StageError
		if !errors.As(err, &se) || se.Kind != pipeline.StageErrCanceled || !errors.Is(err, context.Canceled) {
			t.Fatalf("Execute error %v, want a canceled StageError wrapping context.Canceled", err)
		}
		if res.Status != heddle.StatusFailed {
			t.Errorf("result status %s", res.Status)
		}
	})
}
