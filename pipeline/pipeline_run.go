package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/wire"
)

// Reasons a stage is skipped, logged as pipeline.stage_skipped's reason.
const (
	skipCondition   = "condition_false"
	skipMissingPath = "condition_path_missing"
	skipUpstream    = "upstream_not_completed"
)

type stageState int

const (
	stageCompleted stageState = iota + 1
	stageSkipped
	stageFailed
)

// pipelineRun is the state of one goal going through the pipeline. The
// maps are written only between levels, so the stages of a level read
// them concurrently without locks.
type pipelineRun struct {
	p        *Pipeline
	goal     heddle.OrchestratorGoal
	context  map[string]any // goal and completed stages' {output}
	state    map[string]stageState
	output   map[string]any // stage name -> output
	timeline []any
	skipped  []any
	errs     map[string]any // stage name -> "<kind>: <error>"
	tokens   map[string]int
}

// pipelineOutcome is what one stage did.
type pipelineOutcome struct {
	state          stageState
	result         *heddle.TaskResult
	err            *StageError
	started, ended time.Time
}

// level runs the stages of one level concurrently, waits for all of them,
// records their outcomes, and returns the failure that ends the goal (the
// first failed stage, by name, without ContinueOnError), or nil.
func (r *pipelineRun) level(ctx context.Context, names []string) *StageError {
	outcomes := make([]pipelineOutcome, len(names))
	if len(names) == 1 {
		outcomes[0] = r.stage(ctx, r.p.plan.stages[names[0]])
	} else {
		var wg sync.WaitGroup
		for i, name := range names {
			wg.Go(func() { outcomes[i] = r.stage(ctx, r.p.plan.stages[name]) })
		}
		wg.Wait()
	}
	var fatal *StageError
	for i, name := range names {
		o := outcomes[i]
		r.state[name] = o.state
		switch o.state {
		case stageCompleted:
			r.context[name] = map[string]any{outputKey: o.result.Output}
			r.output[name] = o.result.Output
			r.timeline = append(r.timeline, map[string]any{
				"stage":              name,
				"task_id":            o.result.TaskID,
				"worker_type":        o.result.WorkerType,
				"started_at":         wire.FormatTime(o.started),
				"ended_at":           wire.FormatTime(o.ended),
				"wall_time_ms":       int(o.ended.Sub(o.started).Milliseconds()),
				"processing_time_ms": o.result.ProcessingTimeMS,
			})
			for k, n := range o.result.TokenUsage {
				if r.tokens == nil {
					r.tokens = map[string]int{}
				}
				r.tokens[k] += n
			}
		case stageSkipped:
			r.skipped = append(r.skipped, name)
		case stageFailed:
			r.errs[name] = string(o.err.Kind) + ": " + o.err.Err.Error()
			if fatal == nil && !r.p.plan.stages[name].ContinueOnError {
				fatal = o.err
			}
		}
	}
	return fatal
}

// finalOutput is the goal's output: each completed stage's output and the
// reserved keys.
func (r *pipelineRun) finalOutput() map[string]any {
	out := make(map[string]any, len(r.output)+3)
	for k, v := range r.output {
		out[k] = v
	}
	timeline := r.timeline
	if timeline == nil {
		timeline = []any{}
	}
	out[OutputTimeline] = timeline
	if len(r.skipped) > 0 {
		out[OutputSkipped] = r.skipped
	}
	if len(r.errs) > 0 {
		out[OutputErrors] = r.errs
	}
	return out
}

// stage runs one stage: skip checks, payload, dispatch with retries,
// output check.
func (r *pipelineRun) stage(ctx context.Context, s *pipelineStage) pipelineOutcome {
	for _, d := range s.dataDeps {
		if r.state[d] != stageCompleted {
			return r.skip(s, skipUpstream, "upstream", d)
		}
	}
	if s.cond != nil {
		ok, err := s.cond.eval(r.context)
		if err != nil {
			return r.skip(s, skipMissingPath, "condition", s.Condition, "error", err.Error())
		}
		if !ok {
			return r.skip(s, skipCondition, "condition", s.Condition)
		}
	}
	o := pipelineOutcome{started: time.Now()}
	payload := make(map[string]any, len(s.mapping))
	for _, m := range s.mapping {
		v, err := m.path.resolve(r.context)
		if err != nil {
			return r.failed(s, o, &StageError{Stage: s.Name, Kind: StageErrMapping,
				Err: fmt.Errorf("input_mapping.%s: %w", m.key, err)})
		}
		payload[m.key] = v
	}
	if err := s.Contract.ValidateInput(payload); err != nil {
		return r.failed(s, o, &StageError{Stage: s.Name, Kind: StageErrValidation, Err: err})
	}
	for attempt := 1; ; attempt++ {
		res, serr := r.attempt(ctx, s, payload, attempt)
		if serr == nil {
			o.result, o.state, o.ended = res, stageCompleted, time.Now()
			r.p.stats.stagesCompleted.Add(1)
			r.p.log.EmitArgs(ctx, slog.LevelInfo, event.Event{Name: event.PipelineStageCompleted, TaskID: res.TaskID,
				WorkerType: s.WorkerType, Tier: string(s.Tier), Status: string(res.Status), Attempt: attempt},
				"pipeline", r.p.plan.cfg.Name, "goal_id", r.goal.GoalID,
				"stage", s.Name, "task_id", res.TaskID, "worker_type", s.WorkerType, "model_tier", string(s.Tier),
				"model_used", res.ModelUsed, "processing_time_ms", res.ProcessingTimeMS, "attempts", attempt)
			return o
		}
		if !serr.Kind.retryable() || attempt > s.MaxRetries {
			return r.failed(s, o, serr)
		}
		r.p.stats.stageRetries.Add(1)
		r.p.log.EmitArgs(ctx, slog.LevelWarn, event.Event{Name: event.PipelineStageRetry, TaskID: serr.TaskID,
			WorkerType: s.WorkerType, Tier: string(s.Tier), Reason: string(serr.Kind), Err: serr.Err, Attempt: attempt + 1},
			"pipeline", r.p.plan.cfg.Name, "goal_id", r.goal.GoalID,
			"stage", s.Name, "task_id", serr.TaskID, "worker_type", s.WorkerType, "model_tier", string(s.Tier),
			"attempt", attempt+1, "max_retries", s.MaxRetries, "reason", string(serr.Kind), "error", serr.Err.Error())
	}
}

// attempt dispatches the stage's task once and checks its result.
func (r *pipelineRun) attempt(ctx context.Context, s *pipelineStage, payload map[string]any, attempt int) (*heddle.TaskResult, *StageError) {
	cfg := r.p.plan.cfg
	task := heddle.NewTaskMessage(s.WorkerType, payload)
	task.ParentTaskID = r.goal.GoalID
	task.AddExtensions(r.goal.Extra)
	task.RequestID = r.goal.RequestID
	if task.RequestID == "" {
		task.RequestID = r.goal.GoalID
	}
	task.ModelTier = s.Tier
	task.Priority = r.goal.Priority
	task.Metadata = map[string]any{"stage_name": s.Name, "model_tier": string(s.Tier), "pipeline": cfg.Name}
	fail := func(kind StageErrorKind, err error) (*heddle.TaskResult, *StageError) {
		return nil, &StageError{Stage: s.Name, Kind: kind, TaskID: task.TaskID, Attempts: attempt, Err: err}
	}
	r.p.log.EmitArgs(ctx, slog.LevelInfo, event.Event{Name: event.PipelineStageStarted, TaskID: task.TaskID,
		WorkerType: s.WorkerType, Tier: string(s.Tier), Attempt: attempt},
		"pipeline", cfg.Name, "goal_id", r.goal.GoalID, "stage", s.Name,
		"task_id", task.TaskID, "parent_task_id", task.ParentTaskID, "worker_type", s.WorkerType,
		"model_tier", string(s.Tier), "attempt", attempt)
	opts := []dispatch.Option{dispatch.Timeout(s.Timeout), dispatch.With(r.p.opts...)}
	if cfg.Direct {
		opts = append(opts, dispatch.Direct())
	}
	res, err := dispatch.Request(ctx, r.p.b, task, opts...)
	switch {
	case err == nil:
	case errors.Is(err, dispatch.ErrTimeout) && ctx.Err() == nil:
		// The stage's own timeout; a TimeoutError that ctx's deadline
		// caused is the goal's end, below.
		return fail(StageErrTimeout, err)
	case errors.Is(err, heddle.ErrDeadLettered), errors.Is(err, dispatch.ErrNoWorker), errors.Is(err, dispatch.ErrNoRouter):
		return fail(StageErrUnserved, err)
	case ctx.Err() != nil:
		if cause := context.Cause(ctx); cause != ctx.Err() {
			err = fmt.Errorf("%w (%v)", cause, err)
		}
		return fail(StageErrCanceled, err)
	default:
		return fail(StageErrDispatch, err)
	}
	switch res.Status {
	case heddle.StatusCompleted:
	case heddle.StatusFailed:
		msg := res.Error
		if msg == "" {
			msg = "the worker returned status failed without an error"
		}
		return fail(StageErrWorkerFailed, errors.New(msg))
	default:
		return fail(StageErrWorkerFailed, fmt.Errorf("the worker returned status %q, not completed", res.Status))
	}
	if err := s.Contract.ValidateOutput(res.Output); err != nil {
		return fail(StageErrValidation, err)
	}
	return res, nil
}

func (r *pipelineRun) skip(s *pipelineStage, reason string, attrs ...any) pipelineOutcome {
	r.p.stats.stagesSkipped.Add(1)
	r.p.log.EmitArgs(context.Background(), slog.LevelInfo, event.Event{Name: event.PipelineStageSkipped, WorkerType: s.WorkerType,
		Detail: reason}, append([]any{"pipeline", r.p.plan.cfg.Name, "goal_id", r.goal.GoalID,
		"stage", s.Name, "worker_type", s.WorkerType, "reason", reason}, attrs...)...)
	return pipelineOutcome{state: stageSkipped}
}

func (r *pipelineRun) failed(s *pipelineStage, o pipelineOutcome, err *StageError) pipelineOutcome {
	o.state, o.err, o.ended = stageFailed, err, time.Now()
	r.p.stats.stagesFailed.Add(1)
	r.p.log.EmitArgs(context.Background(), slog.LevelWarn, event.Event{Name: event.PipelineStageFailed, TaskID: err.TaskID,
		WorkerType: s.WorkerType, Tier: string(s.Tier), Reason: string(err.Kind), Err: err, Attempt: err.Attempts},
		"pipeline", r.p.plan.cfg.Name, "goal_id", r.goal.GoalID,
		"stage", s.Name, "task_id", err.TaskID, "worker_type", s.WorkerType, "model_tier", string(s.Tier),
		"reason", string(err.Kind), "error", err.Error(), "continue_on_error", s.ContinueOnError)
	return o
}
