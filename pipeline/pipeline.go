package pipeline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/goals"
	"github.com/heddle-go/heddle/internal/observe"
)

// Reserved keys of a pipeline's final output, next to one key per stage
// that completed. Stage names cannot start with '_', so they never clash.
const (
	// OutputTimeline holds one entry per completed stage: stage,
	// task_id, worker_type, started_at, ended_at, wall_time_ms,
	// processing_time_ms (as the Python Heddle's _timeline).
	OutputTimeline = "_timeline"
	// OutputSkipped lists the stages that were skipped, in
	// execution order. Absent when none was.
	OutputSkipped = "_skipped"
	// OutputErrors maps each failed stage to its error text
	// ("<kind>: <error>"). Absent when none failed.
	OutputErrors = "_errors"
)

// Errors of a Pipeline.
var (
	// ErrStageFailed is matched (errors.Is) by every *StageError.
	ErrStageFailed = errors.New("heddle: pipeline stage failed")
	// ErrShutdown is the cause of the failure of a goal cancelled because
	// the pipeline's drain timeout expired.
	ErrShutdown = errors.New("heddle: pipeline shut down before the goal finished")
)

// StageErrorKind says why a stage failed.
type StageErrorKind string

// The kinds of stage failure.
const (
	// StageErrTimeout: no result within the stage's timeout (the cause
	// is a *dispatch.TimeoutError).
	StageErrTimeout StageErrorKind = "timeout"
	// StageErrValidation: the payload violates the stage's input schema,
	// or the worker's output its output schema (the cause is a
	// *contracts.ValidationError naming the field).
	StageErrValidation StageErrorKind = "validation"
	// StageErrWorkerFailed: the worker answered with status failed (the
	// cause is the result's error text).
	StageErrWorkerFailed StageErrorKind = "worker_failed"
	// StageErrMapping: an input_mapping path could not be resolved at run
	// time, such as a field missing from an earlier stage's output.
	StageErrMapping StageErrorKind = "mapping"
	// StageErrDispatch: the task could not be published or its result
	// subscribed to (the cause is the bus error).
	StageErrDispatch StageErrorKind = "dispatch"
	// StageErrCanceled: the goal's context ended while the stage waited.
	StageErrCanceled StageErrorKind = "canceled"
	// StageErrUnserved: the mesh said at once that it cannot serve the
	// stage's task: no router runs, no worker serves its type, or the
	// router dead-lettered it (the cause is a *dispatch.DeadLetterError,
	// or wraps dispatch.ErrNoRouter or dispatch.ErrNoWorker).
	StageErrUnserved StageErrorKind = "unserved"
)

// retryable reports whether another attempt may succeed.
func (k StageErrorKind) retryable() bool {
	return k == StageErrTimeout || k == StageErrWorkerFailed || k == StageErrUnserved
}

// StageError is the failure of one pipeline stage. Its text is
// `stage "summarize" failed: timeout: <cause>`; Unwrap returns the cause,
// so errors.Is(err, dispatch.ErrTimeout) or errors.Is(err, contracts.ErrViolation)
// work through it.
type StageError struct {
	// Stage names the stage.
	Stage string
	// Kind says why it failed.
	Kind StageErrorKind
	// TaskID is the task of the last attempt; empty when nothing was
	// dispatched.
	TaskID string
	// Attempts counts the dispatches made (1 + retries).
	Attempts int
	// Err is the cause.
	Err error
}

func (e *StageError) Error() string {
	return fmt.Sprintf("stage %q failed: %s: %v", e.Stage, e.Kind, e.Err)
}

// Unwrap returns the cause.
func (e *StageError) Unwrap() error { return e.Err }

// Is reports whether target is ErrStageFailed.
func (e *StageError) Is(target error) bool { return target == ErrStageFailed }

// Stats counts what a Pipeline did.
type Stats struct {
	// GoalsReceived counts goals whose execution started.
	GoalsReceived uint64
	// GoalsCompleted and GoalsFailed count final results by status.
	GoalsCompleted uint64
	GoalsFailed    uint64
	// ParseErrors counts messages on SubjectGoalsIncoming that are not a
	// valid OrchestratorGoal.
	ParseErrors uint64
	// PublishErrors counts final results Run could not publish.
	PublishErrors uint64
	// StagesCompleted, StagesSkipped and StagesFailed count stage
	// outcomes; StageRetries counts the extra attempts made.
	StagesCompleted uint64
	StagesSkipped   uint64
	StagesFailed    uint64
	StageRetries    uint64
}

// Pipeline runs goals through a fixed set of stages. The stages are
// grouped into levels by their dependencies (the stages a stage's paths
// read, and its DependsOn); the stages of one level run concurrently, and
// a level starts when the previous one has ended.
//
// For a goal the pipeline context starts as {goal: {instruction, context}}.
// Each stage, in turn:
//   - is skipped (pipeline.stage_skipped) when a stage whose output its
//     mapping reads was skipped or failed, or when its condition is false
//     or reads a missing path;
//   - builds its payload from InputMapping (a path missing at run time
//     fails it with StageErrMapping) and checks it against its input
//     schema;
//   - is dispatched by dispatch.Request as a TaskMessage with
//     parent_task_id = goal_id, request_id = the goal's (or its goal_id),
//     model_tier = Tier and metadata {stage_name, model_tier, pipeline},
//     through the Router or, with dispatch.Direct, straight to the worker;
//     its result is awaited on ResultSubject(goal_id), subscribed before
//     the task is published;
//   - on a completed result whose output meets its output schema, stores
//     context[stage] = {output: <output>}.
//
// A failed stage fails the goal, naming the stage (a *StageError), unless
// its ContinueOnError is set; the other stages of the same level still
// finish first. The final TaskResult has task_id = goal_id, worker_type =
// the pipeline's Name, no parent_task_id, processing_time_ms for the whole
// goal, the stages' token_usage summed, and as output one key per
// completed stage holding its output, plus OutputTimeline,
// OutputSkipped and OutputErrors. A failed goal's result
// has status failed, the error text, and the outputs gathered until then.
//
// A stage that timed out or whose worker failed is dispatched again, as a
// new task, up to its MaxRetries. Each attempt waits on its own
// subscription to ResultSubject(goal_id), which filters by task_id: the
// results of the other stages of its level are result_stream.ignored
// there (a debug event).
//
// Where it differs from the Python Heddle's pipeline, it is stricter or
// says more: conditions, paths and dependencies are checked when the
// pipeline is built (Python runs a stage whose condition does not parse);
// a stage reading the output of a skipped or failed stage is skipped
// rather than failed with a mapping error; depends_on adds to the
// inferred dependencies instead of replacing them; condition literals are
// typed (a number is a number); and the final output also lists skipped
// and failed stages.
//
// It logs pipeline.goal_received, pipeline.stage_started,
// pipeline.stage_retry, pipeline.stage_completed, pipeline.stage_skipped,
// pipeline.stage_failed, pipeline.goal_completed and pipeline.parse_error,
// with goal_id, stage, task_id, worker_type, model_tier, reason and error
// attributes, and each stage's result_stream.* events.
type Pipeline struct {
	b     bus.Bus
	plan  *pipelinePlan
	log   *observe.Emitter
	opts  []heddle.Option // for the stages' dispatch calls
	ready chan struct{}

	running atomic.Bool
	stats   struct {
		received, completed, failed, parseErrors, publishErrors    atomic.Uint64
		stagesCompleted, stagesSkipped, stagesFailed, stageRetries atomic.Uint64
	}
}

// New validates cfg and returns a Pipeline on b; it starts nothing
// until Run or Execute. Every problem of cfg is reported at once, in a
// *ConfigError: a missing or duplicate stage name, a bad
// worker_type or tier, a path naming an unknown stage, the stage itself, a
// field its output schema does not declare (fields are checked only where
// the referenced stage has an output schema), a condition that does not
// parse, a dependency cycle (its stages named in order).
func New(b bus.Bus, cfg Config, opts ...heddle.Option) (*Pipeline, error) {
	plan, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	return &Pipeline{b: b, plan: plan, log: observe.Actor("pipeline", opts...), opts: opts, ready: make(chan struct{})}, nil
}

// Name returns the pipeline's name.
func (p *Pipeline) Name() string { return p.plan.cfg.Name }

// Levels returns the execution plan: the stage names of each level, in
// order, each level sorted by name. The stages of one level run
// concurrently.
func (p *Pipeline) Levels() [][]string {
	out := make([][]string, len(p.plan.levels))
	for i, l := range p.plan.levels {
		out[i] = slices.Clone(l)
	}
	return out
}

// Ready is closed once Run's subscription is live: a goal published
// afterwards is received.
func (p *Pipeline) Ready() <-chan struct{} { return p.ready }

// Stats returns the Pipeline's counters.
func (p *Pipeline) Stats() Stats {
	return Stats{
		GoalsReceived:   p.stats.received.Load(),
		GoalsCompleted:  p.stats.completed.Load(),
		GoalsFailed:     p.stats.failed.Load(),
		ParseErrors:     p.stats.parseErrors.Load(),
		PublishErrors:   p.stats.publishErrors.Load(),
		StagesCompleted: p.stats.stagesCompleted.Load(),
		StagesSkipped:   p.stats.stagesSkipped.Load(),
		StagesFailed:    p.stats.stagesFailed.Load(),
		StageRetries:    p.stats.stageRetries.Load(),
	}
}

// Execute runs one goal through the pipeline and returns its final
// TaskResult, which it does not publish (Run does). The result is always
// filled in: with status failed and the error text when the returned error
// is not nil — a *StageError for the stage that failed the goal, a
// *ValidationError for an invalid goal. ctx bounds the whole goal; each
// stage is bounded by its own Timeout.
func (p *Pipeline) Execute(ctx context.Context, goal heddle.OrchestratorGoal) (heddle.TaskResult, error) {
	res, err := p.traced(ctx, goal)
	p.goalCompleted(goal, res, nil)
	return res, err
}

// traced runs execute inside the interceptors as one event.OpGoal, in the
// trace context of the goal's _trace_context, which its stages' tasks and
// final result then carry (that of the context the interceptors pass on).
func (p *Pipeline) traced(ctx context.Context, goal heddle.OrchestratorGoal) (res heddle.TaskResult, err error) {
	if !p.log.Intercepted(event.OpGoal) && !p.log.Propagated() {
		return p.execute(ctx, goal)
	}
	ctx = p.log.Extract(ctx, goal.Extra)
	op := &event.Op{Kind: event.OpGoal, TaskID: goal.GoalID, WorkerType: p.plan.cfg.Name}
	ran := false
	ierr := p.log.Intercept(ctx, op, func(ctx context.Context) error {
		ran = true
		goal.Extra = p.log.Inject(ctx, goal.Extra)
		res, err = p.execute(ctx, goal)
		op.Status, op.Err = string(res.Status), err
		return err
	})
	if !ran {
		return res, ierr
	}
	return res, err
}

// Run subscribes to SubjectGoalsIncoming in the configured queue group
// and executes goals, up to MaxConcurrentGoals at once, publishing each
// final result on ResultSubject(goal_id), until ctx ends. Then it drains:
// it stops receiving, executes the goals already delivered to it, waits
// for every goal in progress to publish its final result, and returns nil;
// when its bus closes for good it returns an error wrapping bus.ErrClosed.
// A message that is not a valid goal is logged (pipeline.parse_error) and,
// when it names a usable goal_id, answered with a failed final result. Run
// returns an error if the subscription fails, or heddle.ErrStarted.
func (p *Pipeline) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return heddle.ErrStarted
	}
	// Goals in progress finish after ctx ends, within the drain timeout;
	// then they are cancelled and still publish a failed final result,
	// since their callers wait for one.
	queue := p.plan.cfg.QueueGroup
	subjects, _ := goals.Subjects(p.plan.cfg.Name, p.plan.cfg.AddressedOnly) // checked by New
	out := goals.Server{
		Bus:           p.b,
		Subjects:      subjects,
		Queue:         queue,
		MaxConcurrent: p.plan.cfg.MaxConcurrentGoals,
		DrainTimeout:  cmp.Or(p.plan.cfg.DrainTimeout, heddle.DefaultDrainTimeout),
		Shutdown:      ErrShutdown,
		Reject:        p.rejectGoal,
		Handle: func(ctx context.Context, goal heddle.OrchestratorGoal) {
			res, _ := p.traced(ctx, goal)
			p.goalCompleted(goal, res, p.publishFinal(context.WithoutCancel(ctx), res))
		},
		Refuse: func(ctx context.Context, goal heddle.OrchestratorGoal, err error) {
			p.stats.received.Add(1)
			res := heddle.NewTaskResult(goal.GoalID, p.plan.cfg.Name, heddle.StatusFailed)
			res.AddExtensions(goal.Extra)
			res.Error = err.Error()
			p.goalCompleted(goal, res, p.publishFinal(ctx, res))
		},
		Subscribed: func() {
			for _, subject := range subjects {
				p.log.EmitArgs(context.Background(), slog.LevelInfo, event.Event{Name: event.ActorSubscribed, Subject: subject,
					WorkerType: p.plan.cfg.Name}, "subject", subject, "queue", queue, "pipeline", p.plan.cfg.Name)
			}
			close(p.ready)
		},
	}.Run(ctx)
	if out.Subscribe != nil {
		return fmt.Errorf("heddle: pipeline %q %w", p.plan.cfg.Name, out.Subscribe)
	}
	if out.Closed != nil {
		return fmt.Errorf("heddle: pipeline %q stopped: its bus closed: %w", p.plan.cfg.Name, out.Closed)
	}
	if err := out.Drain; err != nil && !errors.Is(err, bus.ErrClosed) {
		return fmt.Errorf("heddle: pipeline %q %w", p.plan.cfg.Name, err)
	}
	return nil
}

// rejectGoal handles a message on SubjectGoalsIncoming that is not a valid
// goal.
func (p *Pipeline) rejectGoal(ctx context.Context, data []byte, err error) {
	id := goals.PeekGoalID(data)
	attrs := []any{"pipeline", p.plan.cfg.Name, "goal_id", id, "error", err.Error()}
	if id != "" && bus.ValidatePublishSubject(heddle.ResultSubject(id)) == nil {
		res := heddle.NewTaskResult(id, p.plan.cfg.Name, heddle.StatusFailed)
		res.Error = err.Error()
		if perr := p.publishFinal(ctx, res); perr != nil {
			attrs = append(attrs, "publish_error", perr.Error())
		}
	}
	p.stats.parseErrors.Add(1)
	p.log.EmitArgs(ctx, slog.LevelWarn, event.Event{Name: event.PipelineParseError, TaskID: id, WorkerType: p.plan.cfg.Name,
		Reason: event.ReasonDecode, Err: err}, attrs...)
}

func (p *Pipeline) publishFinal(ctx context.Context, res heddle.TaskResult) error {
	data, err := res.Encode()
	if err == nil {
		err = p.b.Publish(ctx, &bus.Msg{Subject: heddle.ResultSubject(res.TaskID), Data: data})
	}
	if err != nil {
		p.stats.publishErrors.Add(1)
		return fmt.Errorf("publishing final result of goal %s to %s: %w", res.TaskID, heddle.ResultSubject(res.TaskID), err)
	}
	return nil
}

// goalCompleted counts and logs a goal's outcome, once per goal.
func (p *Pipeline) goalCompleted(goal heddle.OrchestratorGoal, res heddle.TaskResult, publishErr error) {
	attrs := []any{"pipeline", p.plan.cfg.Name, "goal_id", goal.GoalID, "request_id", goal.RequestID,
		"status", string(res.Status), "processing_time_ms", res.ProcessingTimeMS}
	if res.Status == heddle.StatusFailed {
		p.stats.failed.Add(1)
		attrs = append(attrs, "error", res.Error)
	} else {
		p.stats.completed.Add(1)
	}
	if publishErr != nil {
		attrs = append(attrs, "publish_error", publishErr.Error())
	}
	ev := event.Event{Name: event.PipelineGoalCompleted, TaskID: goal.GoalID, WorkerType: p.plan.cfg.Name,
		Status: string(res.Status), Duration: time.Duration(res.ProcessingTimeMS) * time.Millisecond}
	if res.Status == heddle.StatusFailed {
		ev.Err = errors.New(res.Error)
	}
	p.log.EmitArgs(context.Background(), slog.LevelInfo, ev, attrs...)
}

// execute runs one goal to its final result.
func (p *Pipeline) execute(ctx context.Context, goal heddle.OrchestratorGoal) (heddle.TaskResult, error) {
	start := time.Now()
	p.stats.received.Add(1)
	p.log.EmitArgs(ctx, slog.LevelInfo, event.Event{Name: event.PipelineGoalReceived, TaskID: goal.GoalID, WorkerType: p.plan.cfg.Name},
		"pipeline", p.plan.cfg.Name, "goal_id", goal.GoalID,
		"request_id", goal.RequestID, "priority", string(goal.Priority))
	res := heddle.NewTaskResult(goal.GoalID, p.plan.cfg.Name, heddle.StatusCompleted)
	res.AddExtensions(goal.Extra)
	// completed_at is when the goal's work ended, as Python writes it.
	fail := func(err error) (heddle.TaskResult, error) {
		res.Status, res.Error = heddle.StatusFailed, err.Error()
		res.ProcessingTimeMS = int(time.Since(start).Milliseconds())
		res.CompletedAt = completedNow()
		return res, err
	}
	if err := goal.Validate(); err != nil {
		return fail(err)
	}
	goalContext, err := jSONObject(goal.Context)
	if err != nil {
		return fail(fmt.Errorf("goal %s context: %w", goal.GoalID, err))
	}
	r := &pipelineRun{
		p:    p,
		goal: goal,
		context: map[string]any{GoalRoot: map[string]any{
			instructionKey: goal.Instruction,
			contextKey:     goalContext,
		}},
		state:  map[string]stageState{},
		output: map[string]any{},
		errs:   map[string]any{},
	}
	var fatal *StageError
	for _, level := range p.plan.levels {
		if fatal = r.level(ctx, level); fatal != nil {
			break
		}
	}
	res.Output = r.finalOutput()
	res.TokenUsage = r.tokens
	if fatal != nil {
		return fail(fatal)
	}
	res.ProcessingTimeMS = int(time.Since(start).Milliseconds())
	res.CompletedAt = completedNow()
	return res, nil
}

// completedNow is the time a result's completed_at records: UTC, to the
// microsecond, as the wire carries it.
func completedNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// jSONObject returns m in its JSON form (map[string]any, []any,
// float64, ...), so paths and typed conditions see what a worker would.
func jSONObject(m map[string]any) (map[string]any, error) {
	out := map[string]any{}
	if len(m) == 0 {
		return out, nil
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, err
	}
	return out, nil
}
