package orchestrator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/goals"
	"github.com/heddle-go/heddle/internal/observe"
)

// Defaults of Config.
const (
	// DefaultMaxConcurrentGoals bounds how many goals one Orchestrator
	// processes at once.
	DefaultMaxConcurrentGoals = 10
	// DefaultQueueGroup is the queue group Orchestrator
	// replicas share on SubjectGoalsIncoming, so each goal is processed
	// once.
	DefaultQueueGroup = heddle.OrchestratorQueueGroup
	// DefaultDrainTimeout bounds an Orchestrator's shutdown:
	// the time from the end of Run's context until the goals still in
	// progress are cancelled.
	DefaultDrainTimeout = heddle.DefaultDrainTimeout
	// WorkerType is the worker_type of an Orchestrator's final
	// results.
	WorkerType = "orchestrator"
)

// ErrShutdown is the cause of a failed final result for a goal
// cancelled because the orchestrator's drain timeout expired.
var ErrShutdown = errors.New("heddle: orchestrator shut down before the goal finished")

// DecomposeFunc splits a goal into subtasks. The Orchestrator sets each
// subtask's parent_task_id to the goal_id (and request_id to the goal's
// when empty) before dispatching.
type DecomposeFunc func(ctx context.Context, goal heddle.OrchestratorGoal) ([]heddle.TaskMessage, error)

// SynthesizeFunc turns the collected subtask results (in arrival order;
// only part of them after a timeout) into the goal's output.
type SynthesizeFunc func(ctx context.Context, goal heddle.OrchestratorGoal, results []heddle.TaskResult) (map[string]any, error)

// Config configures an Orchestrator. Decompose is required;
// zero values of the other fields mean the documented defaults.
type Config struct {
	// Decompose splits each goal into subtasks. Required.
	Decompose DecomposeFunc
	// Name, when set, makes Run also serve the goals addressed to this
	// orchestrator (heddle.GoalSubject(Name); dispatch.To(Name) on
	// SubmitGoal). Empty serves only the shared SubjectGoalsIncoming.
	Name string
	// AddressedOnly stops Run from serving the shared
	// SubjectGoalsIncoming: only goals addressed to Name reach it, so a
	// goal meant for another goal server on the mesh is never taken.
	// It requires Name.
	AddressedOnly bool
	// Synthesize builds the goal's output from the results. Nil means
	// {"results": [{task_id, worker_type, status, output, error}, ...]}.
	Synthesize SynthesizeFunc
	// Timeout bounds the collection of one goal's subtask results,
	// counted from its first dispatch. Zero means dispatch.DefaultTimeout.
	Timeout time.Duration
	// MaxConcurrentGoals bounds the goals processed at once; further goals
	// wait in the subscription's pending buffer. Zero means
	// DefaultMaxConcurrentGoals.
	MaxConcurrentGoals int
	// MaxInFlight bounds how many of one goal's subtasks are awaiting
	// their result at once; more are dispatched as results come in (as
	// dispatch.MaxInFlight). Zero means no bound.
	MaxInFlight int
	// QueueGroup is the queue group on SubjectGoalsIncoming. Empty means
	// DefaultQueueGroup.
	QueueGroup string
	// Direct publishes subtasks straight to their worker subjects instead
	// of through the Router on SubjectTasksIncoming (as dispatch.Direct).
	Direct bool
	// DrainTimeout bounds shutdown once Run's context ends: goals already
	// delivered are still processed and goals in progress finish until
	// then, after which they are cancelled and get a failed final result
	// (ErrShutdown). Zero means
	// DefaultDrainTimeout.
	DrainTimeout time.Duration
}

// Stats counts an Orchestrator's goals.
type Stats struct {
	// GoalsReceived counts goals decoded and accepted.
	GoalsReceived uint64
	// GoalsCompleted counts final results with status completed
	// (timed-out goals included), counted just before they are published.
	GoalsCompleted uint64
	// GoalsFailed counts final results with status failed, counted just
	// before they are published.
	GoalsFailed uint64
	// GoalsTimedOut counts goals whose collection timed out with subtasks
	// pending.
	GoalsTimedOut uint64
	// ParseErrors counts messages on SubjectGoalsIncoming that are not a
	// valid OrchestratorGoal.
	ParseErrors uint64
	// PublishErrors counts final results that could not be published.
	PublishErrors uint64
}

// Orchestrator turns goals into subtasks and their results into one final
// result: for each OrchestratorGoal on SubjectGoalsIncoming it calls
// Decompose, dispatches the subtasks through a dispatch.Stream on
// ResultSubject(goal_id) (subscribed before any subtask is published),
// collects their results until all are in or the timeout expires, calls
// Synthesize, and publishes the final TaskResult on ResultSubject(goal_id):
// task_id = goal_id, worker_type = WorkerType, parent_task_id
// null, status completed with the synthesized output, or failed with the
// error (a Decompose, dispatch or Synthesize failure, or a panic in
// Decompose or Synthesize, recovered). Every goal that
// decodes gets exactly one final result; a message that does not decode
// but names a goal_id gets a failed one.
//
// After a collection timeout the final result still goes out: Synthesize
// gets the partial results and output.metadata.timeout holds
// pending_task_ids, expected_count, collected_count and timeout_seconds
// (see dispatch.TimeoutError.Metadata). Subtask results arriving later are not
// seen (the goal's stream is closed before the final result is published).
//
// It logs orchestrator.goal_received, orchestrator.goal_completed (with
// the goal's status and, after a timeout, the pending task_ids) and
// orchestrator.parse_error, and the result_stream.* events of each goal's
// stream.
type Orchestrator struct {
	b        bus.Bus
	cfg      Config
	subjects []string
	log      *observe.Emitter
	opts     []heddle.Option
	ready    chan struct{}

	running atomic.Bool
	stats   struct {
		received, completed, failed, timedOut, parseErrors, publishErrors atomic.Uint64
	}
}

// New returns an Orchestrator on b; it starts nothing until
// Run. It fails with heddle.ErrConfig when Decompose is nil or a
// setting is negative or invalid.
func New(b bus.Bus, cfg Config, opts ...heddle.Option) (*Orchestrator, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: nil bus", heddle.ErrConfig)
	}
	if cfg.Decompose == nil {
		return nil, fmt.Errorf("%w: Decompose is required", heddle.ErrConfig)
	}
	if cfg.Timeout < 0 || cfg.MaxConcurrentGoals < 0 || cfg.MaxInFlight < 0 || cfg.DrainTimeout < 0 {
		return nil, fmt.Errorf("%w: Timeout, MaxConcurrentGoals, MaxInFlight and DrainTimeout must not be negative", heddle.ErrConfig)
	}
	subjects, err := goals.Subjects(cfg.Name, cfg.AddressedOnly)
	if err != nil {
		return nil, fmt.Errorf("orchestrator: Config.Name: %w", err)
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.Synthesize == nil {
		cfg.Synthesize = orchestratorCollectOutputs
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = dispatch.DefaultTimeout
	}
	if cfg.MaxConcurrentGoals == 0 {
		cfg.MaxConcurrentGoals = DefaultMaxConcurrentGoals
	}
	if cfg.QueueGroup == "" {
		cfg.QueueGroup = DefaultQueueGroup
	}
	if err := bus.ValidateQueue(cfg.QueueGroup); err != nil {
		return nil, fmt.Errorf("%w: QueueGroup %q: %w", heddle.ErrConfig, cfg.QueueGroup, err)
	}
	return &Orchestrator{b: b, cfg: cfg, subjects: subjects, log: observe.Actor("orchestrator", opts...), opts: opts, ready: make(chan struct{})}, nil
}

// Ready is closed once Run's subscription to SubjectGoalsIncoming is live:
// a goal published afterwards is received.
func (o *Orchestrator) Ready() <-chan struct{} { return o.ready }

// Stats returns the Orchestrator's counters.
func (o *Orchestrator) Stats() Stats {
	return Stats{
		GoalsReceived:  o.stats.received.Load(),
		GoalsCompleted: o.stats.completed.Load(),
		GoalsFailed:    o.stats.failed.Load(),
		GoalsTimedOut:  o.stats.timedOut.Load(),
		ParseErrors:    o.stats.parseErrors.Load(),
		PublishErrors:  o.stats.publishErrors.Load(),
	}
}

// Run subscribes to SubjectGoalsIncoming in the configured queue group and
// processes goals, up to MaxConcurrentGoals at once, until ctx ends. Then
// it drains: it stops receiving, processes the goals already delivered to
// it and waits for every goal in progress to publish its final result.
// Goals' contexts carry ctx's values but are not cancelled when ctx ends;
// they are cancelled when DrainTimeout expires, and their final results
// (failed, ErrShutdown) are still published before Run returns.
//
// Run returns an error wrapping bus.ErrClosed when its bus closes for
// good, nil after a complete drain, an error wrapping
// context.DeadlineExceeded when the drain timeout cut it short, and a
// subscribe error when it could not start. An Orchestrator runs once; a
// second call returns heddle.ErrStarted.
func (o *Orchestrator) Run(ctx context.Context) error {
	if !o.running.CompareAndSwap(false, true) {
		return heddle.ErrStarted
	}
	out := goals.Server{
		Bus:           o.b,
		Subjects:      o.subjects,
		Queue:         o.cfg.QueueGroup,
		MaxConcurrent: o.cfg.MaxConcurrentGoals,
		DrainTimeout:  o.cfg.DrainTimeout,
		Shutdown:      ErrShutdown,
		Reject:        o.rejectGoal,
		Handle:        o.process,
		Refuse:        o.refuseGoal,
		Subscribed: func() {
			for _, subject := range o.subjects {
				o.log.EmitArgs(ctx, slog.LevelInfo, event.Event{Name: event.ActorSubscribed, Subject: subject},
					"subject", subject, "queue", o.cfg.QueueGroup)
			}
			close(o.ready)
		},
	}.Run(ctx)
	if out.Subscribe != nil {
		return fmt.Errorf("heddle: orchestrator %w", out.Subscribe)
	}
	if out.Closed != nil {
		return fmt.Errorf("heddle: orchestrator stopped: its bus closed: %w", out.Closed)
	}
	if out.CutShort {
		return fmt.Errorf("heddle: orchestrator drain did not finish within %s (Config.DrainTimeout); goals in progress were cancelled: %w",
			o.cfg.DrainTimeout, context.DeadlineExceeded)
	}
	if err := out.Drain; err != nil && !errors.Is(err, bus.ErrClosed) {
		return fmt.Errorf("heddle: orchestrator %w", err)
	}
	return nil
}

// refuseGoal answers a goal received while shutting down with a failed
// final result, counted and reported as any failed goal.
func (o *Orchestrator) refuseGoal(ctx context.Context, goal heddle.OrchestratorGoal, err error) {
	o.stats.received.Add(1)
	res := heddle.NewTaskResult(goal.GoalID, WorkerType, heddle.StatusFailed)
	res.AddExtensions(goal.Extra)
	res.Error = err.Error()
	o.stats.failed.Add(1)
	attrs := []any{"goal_id", goal.GoalID, "request_id", goal.RequestID, "status", string(res.Status),
		"collected_count", 0, "processing_time_ms", 0, "error", res.Error}
	if perr := o.publishFinal(ctx, res); perr != nil {
		attrs = append(attrs, "publish_error", perr.Error())
	}
	o.log.EmitArgs(ctx, slog.LevelWarn, event.Event{Name: event.OrchestratorGoalCompleted, TaskID: goal.GoalID,
		Status: string(res.Status), Reason: event.ReasonShutdown, Err: err}, attrs...)
}

// rejectGoal handles a message on SubjectGoalsIncoming that is not a valid
// goal: logged and counted, and answered with a failed final result when
// it names a usable goal_id, so its caller does not wait in vain.
func (o *Orchestrator) rejectGoal(ctx context.Context, data []byte, err error) {
	id := goals.PeekGoalID(data)
	o.log.CountEvent(ctx, &o.stats.parseErrors, slog.LevelWarn, event.Event{Name: event.OrchestratorParseError, TaskID: id,
		Reason: event.ReasonDecode, Err: err}, slog.String("goal_id", id), slog.String("error", err.Error()))
	if id == "" || bus.ValidatePublishSubject(heddle.ResultSubject(id)) != nil {
		return
	}
	res := heddle.NewTaskResult(id, WorkerType, heddle.StatusFailed)
	res.Error = err.Error()
	o.publishFinal(ctx, res)
}

// process runs one goal to its final result: inside the interceptors as
// one event.OpGoal, and in the trace context of the goal's
// _trace_context, which its subtasks and final result then carry (that
// of the context the interceptors pass on).
func (o *Orchestrator) process(ctx context.Context, goal heddle.OrchestratorGoal) {
	if !o.log.Intercepted(event.OpGoal) && !o.log.Propagated() {
		o.processGoal(ctx, goal)
		return
	}
	ctx = o.log.Extract(ctx, goal.Extra)
	op := &event.Op{Kind: event.OpGoal, TaskID: goal.GoalID, WorkerType: cmp.Or(o.cfg.Name, WorkerType)}
	_ = o.log.Intercept(ctx, op, func(ctx context.Context) error {
		goal.Extra = o.log.Inject(ctx, goal.Extra)
		res := o.processGoal(ctx, goal)
		op.Status = string(res.Status)
		if res.Status == heddle.StatusFailed {
			op.Err = errors.New(res.Error)
		}
		return op.Err
	})
}

// processGoal runs one goal to its final result and returns it.
func (o *Orchestrator) processGoal(ctx context.Context, goal heddle.OrchestratorGoal) heddle.TaskResult {
	start := time.Now()
	o.stats.received.Add(1)
	o.log.EmitArgs(ctx, slog.LevelInfo, event.Event{Name: event.OrchestratorGoalReceived, TaskID: goal.GoalID},
		"goal_id", goal.GoalID, "request_id", goal.RequestID, "priority", string(goal.Priority))

	results, timeout, err := o.collect(ctx, goal)
	var output map[string]any
	if err == nil {
		err = orchestratorGuard("synthesize", func() (err error) {
			output, err = o.cfg.Synthesize(ctx, goal, results)
			return err
		})
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
	}
	res := heddle.NewTaskResult(goal.GoalID, WorkerType, heddle.StatusCompleted)
	res.AddExtensions(goal.Extra)
	if err != nil {
		res.Status, res.Error, output = heddle.StatusFailed, err.Error(), nil
	}
	if timeout != nil {
		output = orchestratorWithTimeout(output, timeout)
	}
	res.Output = output
	res.ProcessingTimeMS = int(time.Since(start).Milliseconds())

	// Counted before the publish, so a caller holding the final result
	// sees it counted.
	attrs := []any{"goal_id", goal.GoalID, "request_id", goal.RequestID, "status", string(res.Status),
		"collected_count", len(results), "processing_time_ms", res.ProcessingTimeMS}
	if timeout != nil {
		o.stats.timedOut.Add(1)
		attrs = append(attrs, "expected_count", timeout.ExpectedCount, "pending_task_ids", timeout.PendingTaskIDs,
			"timeout_seconds", timeout.TimeoutSeconds())
	}
	if res.Status == heddle.StatusFailed {
		o.stats.failed.Add(1)
		attrs = append(attrs, "error", res.Error)
	} else {
		o.stats.completed.Add(1)
	}
	if err := o.publishFinal(context.WithoutCancel(ctx), res); err != nil {
		attrs = append(attrs, "publish_error", err.Error())
	}
	level := slog.LevelInfo
	ev := event.Event{Name: event.OrchestratorGoalCompleted, TaskID: goal.GoalID, Status: string(res.Status),
		Duration: time.Since(start), Err: err}
	if timeout != nil {
		ev.Reason = event.ReasonTimeout
	}
	if res.Status == heddle.StatusFailed || timeout != nil {
		level = slog.LevelWarn
	}
	o.log.EmitArgs(ctx, level, ev, attrs...)
	return res
}

// collect decomposes the goal, dispatches its subtasks and gathers their
// results. After a timeout it returns the partial results and the
// *dispatch.TimeoutError with a nil error.
func (o *Orchestrator) collect(ctx context.Context, goal heddle.OrchestratorGoal) ([]heddle.TaskResult, *dispatch.TimeoutError, error) {
	var tasks []heddle.TaskMessage
	if err := orchestratorGuard("decompose", func() (err error) {
		tasks, err = o.cfg.Decompose(ctx, goal)
		return err
	}); err != nil {
		return nil, nil, err
	}
	if len(tasks) == 0 {
		return nil, nil, nil
	}
	for i := range tasks {
		tasks[i].ParentTaskID = goal.GoalID
		tasks[i].AddExtensions(goal.Extra)
		if tasks[i].RequestID == "" {
			tasks[i].RequestID = goal.RequestID
		}
	}
	opts := []dispatch.Option{dispatch.Timeout(o.cfg.Timeout), dispatch.MaxInFlight(o.cfg.MaxInFlight), dispatch.With(o.opts...)}
	if o.cfg.Direct {
		opts = append(opts, dispatch.Direct())
	}
	s, err := dispatch.NewStream(ctx, o.b, goal.ResultSubject(), opts...)
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	if err := s.Dispatch(ctx, tasks...); err != nil {
		return nil, nil, err
	}
	results, err := s.Collect(ctx)
	var te *dispatch.TimeoutError
	if errors.As(err, &te) {
		return results, te, nil
	}
	return results, nil, err
}

func (o *Orchestrator) publishFinal(ctx context.Context, res heddle.TaskResult) error {
	data, err := res.Encode()
	if err == nil {
		err = o.b.Publish(ctx, &bus.Msg{Subject: heddle.ResultSubject(res.TaskID), Data: data})
	}
	if err != nil {
		o.stats.publishErrors.Add(1)
		return fmt.Errorf("publishing final result of goal %s to %s: %w", res.TaskID, heddle.ResultSubject(res.TaskID), err)
	}
	return nil
}

// orchestratorGuard runs one of the user's functions: its error, or a
// panic, becomes an error prefixed with what was running, so the goal
// still gets a failed final result.
//
// f runs on a goroutine of its own, so that neither a panic nor a
// runtime.Goexit in the user's code can end the goroutine that owes the
// goal its final result.
func orchestratorGuard(what string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		returned := false
		defer func() {
			if p := recover(); p != nil {
				errc <- fmt.Errorf("%s panicked: %v", what, p)
			} else if !returned {
				errc <- fmt.Errorf("%s called runtime.Goexit before returning", what)
			}
		}()
		err := f()
		returned = true
		if err != nil {
			err = fmt.Errorf("%s: %w", what, err)
		}
		errc <- err
	}()
	return <-errc
}

// orchestratorWithTimeout returns output with metadata.timeout set; a
// non-object metadata value is replaced.
func orchestratorWithTimeout(output map[string]any, te *dispatch.TimeoutError) map[string]any {
	out := make(map[string]any, len(output)+1)
	for k, v := range output {
		out[k] = v
	}
	meta := map[string]any{}
	if m, ok := out["metadata"].(map[string]any); ok {
		for k, v := range m {
			meta[k] = v
		}
	}
	meta["timeout"] = te.Metadata()
	out["metadata"] = meta
	return out
}

// orchestratorCollectOutputs is the default SynthesizeFunc.
func orchestratorCollectOutputs(_ context.Context, _ heddle.OrchestratorGoal, results []heddle.TaskResult) (map[string]any, error) {
	list := make([]any, len(results))
	for i, r := range results {
		item := map[string]any{"task_id": r.TaskID, "worker_type": r.WorkerType, "status": string(r.Status),
			"output": r.Output}
		if r.Error != "" {
			item["error"] = r.Error
		}
		list[i] = item
	}
	return map[string]any{"results": list}, nil
}
