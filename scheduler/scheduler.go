package scheduler

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/observe"
)

// The scheduler's events: the slog message of each record, and the Name
// of the event.Event its observers get (Actor "scheduler"). Every one
// carries the attributes scheduler (Config.Name) and schedule
// (Schedule.Name). The events about one message set the Event's TaskID
// to its id (for a goal, the goal_id, which is also the task_id of its
// final result) and Subject, and for a task WorkerType and Tier.
const (
	// EventScheduleInitialized is logged for each schedule when Run
	// starts, with next_fire (the first fire time) and
	// next_fire_in_seconds, as the Python scheduler logs it.
	EventScheduleInitialized = "scheduler.schedule_initialized"
	// EventRunning is logged once every schedule's timer is set, with
	// schedule_count.
	EventRunning = "scheduler.running"
	// EventFired is logged for each fire whose message the bus accepted,
	// with dispatch_type, subject, task_id (and worker_type, model_tier)
	// or goal_id, scheduled_at (the fire time it stands for) and late (how
	// long after it the message was made; the Event's Duration). Counted
	// in Fired.
	EventFired = "scheduler.fired"
	// EventMissed is logged at Warn when fire times passed without a fire
	// of their own (the process was paused, the machine slept, the wall
	// clock was set forward, a publish blocked for longer than an
	// interval): one event for all of them, with missed (how many),
	// first_missed and scheduled_at (the latest fire time, which the one
	// fire that follows at once stands for). The missed fires are not
	// made up for. The Event's Count is missed, and Missed grows by it:
	// Missed is the sum of the events' counts.
	EventMissed = "scheduler.missed"
	// EventLate is logged at Warn when a fire comes more than
	// Config.LateTolerance after its fire time, with scheduled_at and
	// late (the Event's Duration). Counted in Late.
	EventLate = "scheduler.late"
	// EventPublishFailed is logged at Error when a fire's message could
	// not be published, with subject and error; the schedule goes on,
	// and the next fire sends a new message. Counted in PublishFailed.
	EventPublishFailed = "scheduler.publish_failed"
	// EventUnserved is logged at Warn when the bus reports that nothing
	// was subscribed to a fired message's subject (no router on
	// heddle.tasks.incoming, no goal server on the goal's subject), so
	// the message was dropped, with subject and the message's id. Counted
	// in Unserved; the fire was counted in Fired too.
	EventUnserved = "scheduler.unserved"
)

// Stats counts what a Scheduler did, in all and per schedule. Each
// counter only grows.
type Stats struct {
	// Fired counts messages published, PublishFailed fires whose publish
	// failed, Missed the fire times that passed without a fire of their
	// own, Late the fires later than Config.LateTolerance, and Unserved
	// the published messages nothing was subscribed to receive.
	Fired, Missed, Late, PublishFailed, Unserved uint64
	// Schedules holds the same counts for each schedule, by name.
	Schedules map[string]ScheduleStats
}

// ScheduleStats counts what one schedule did.
type ScheduleStats struct {
	// Fired, Missed, Late, PublishFailed and Unserved count as the
	// fields of the same names of Stats do, for this schedule only.
	Fired, Missed, Late, PublishFailed, Unserved uint64
}

// Scheduler publishes the goals and tasks of its schedules when their
// timers fire. Make one with New and serve it with Run (or heddle.Start /
// heddle.Serve, since it is a heddle.Actor).
//
// Timing. An interval schedule fires every interval from the start of
// Run, on the monotonic clock; a cron schedule at the wall clock times
// its expression names in its time zone. When the scheduler wakes later
// than a fire time, it fires once, at once, for the latest fire time
// that has passed, and reports the others as missed (EventMissed); it
// never fires a burst to catch up, and never fires one fire time twice
// (a wall clock set back makes a cron schedule wait for its next time
// after the last one it fired). A fire later than Config.LateTolerance
// is reported as EventLate.
//
// Delivery is at most once, like every publish on the bus: each fire
// publishes one new message, with a fresh id, and does not retry a
// failed publish (EventPublishFailed). A message nobody was subscribed to
// receive is reported (EventUnserved) where the bus can tell.
type Scheduler struct {
	b     bus.Bus
	name  string
	log   *observe.Emitter
	plans []*plan
	late  time.Duration
	drain time.Duration
	inbox string // prefix of the Reply subjects the bus reports on

	running atomic.Bool
	ready   chan struct{}
}

// plan is one schedule, ready to fire.
type plan struct {
	index   int
	name    string
	kind    DispatchType
	subject string
	timer   timer
	goal    GoalSpec // DispatchGoal; Context copied from the Config
	task    TaskSpec // DispatchTask; Payload copied from the Config

	fired, missed, late, publishFailed, unserved atomic.Uint64
}

// New returns a Scheduler for cfg on b; it starts nothing until Run. It
// validates cfg (see Config.Validate) and returns the *ConfigError
// listing every problem, which matches heddle.ErrConfig, as do the
// errors for a nil bus or a negative LateTolerance or DrainTimeout.
// The goals' contexts and tasks' payloads are copied: changing cfg
// afterwards changes nothing the Scheduler sends.
func New(b bus.Bus, cfg Config, opts ...heddle.Option) (*Scheduler, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: scheduler: the bus is nil", heddle.ErrConfig)
	}
	if cfg.LateTolerance < 0 {
		return nil, fmt.Errorf("%w: scheduler: Config.LateTolerance must not be negative, got %v", heddle.ErrConfig, cfg.LateTolerance)
	}
	if cfg.DrainTimeout < 0 {
		return nil, fmt.Errorf("%w: scheduler: Config.DrainTimeout must not be negative, got %v", heddle.ErrConfig, cfg.DrainTimeout)
	}
	p := problems{lines: cfg.lines}
	cfg.validate(&p)
	if err := p.err(""); err != nil {
		return nil, err
	}
	s := &Scheduler{
		b:     b,
		name:  cfg.Name,
		log:   observe.Actor("scheduler", opts...).With("scheduler", cfg.Name),
		late:  cmp.Or(cfg.LateTolerance, DefaultLateTolerance),
		drain: cmp.Or(cfg.DrainTimeout, heddle.DefaultDrainTimeout),
		inbox: "_INBOX.heddle.scheduler." + strings.ReplaceAll(uuid.NewString(), "-", ""),
		ready: make(chan struct{}),
	}
	for i, sc := range cfg.Schedules {
		pl, err := newPlan(i, sc, cfg.Timezone)
		if err != nil {
			p.add(fmt.Sprintf("schedules[%d]", i), "%v", err)
			continue
		}
		s.plans = append(s.plans, pl)
	}
	if err := p.err(""); err != nil {
		return nil, err
	}
	return s, nil
}

// newPlan prepares a validated schedule, and makes one message of it to
// prove that its fires will make valid ones.
func newPlan(i int, sc Schedule, defaultZone string) (*plan, error) {
	pl := &plan{index: i, name: sc.Name, kind: sc.DispatchType}
	if sc.Cron != "" {
		sched, err := parseCron(sc.Cron)
		if err != nil {
			return nil, err
		}
		loc, err := zone(cmp.Or(sc.Timezone, defaultZone))
		if err != nil {
			return nil, err
		}
		pl.timer = crontab{sched: sched, loc: loc}
	} else {
		d, err := interval(sc.IntervalSeconds)
		if err != nil {
			return nil, err
		}
		pl.timer = every{d: d}
	}
	var err error
	switch sc.DispatchType {
	case DispatchGoal:
		pl.goal = *sc.Goal
		pl.goal.Priority = cmp.Or(pl.goal.Priority, heddle.DefaultPriority)
		pl.subject = heddle.SubjectGoalsIncoming
		if pl.goal.To != "" {
			if pl.subject, err = heddle.GoalSubject(pl.goal.To); err != nil {
				return nil, err
			}
		}
		pl.goal.Context, err = copyObject(pl.goal.Context)
	case DispatchTask:
		pl.task = *sc.Task
		pl.task.ModelTier = cmp.Or(pl.task.ModelTier, DefaultTaskTier)
		pl.task.Priority = cmp.Or(pl.task.Priority, heddle.DefaultPriority)
		pl.task.Payload, err = copyObject(pl.task.Payload)
		pl.subject = heddle.SubjectTasksIncoming
	}
	if err != nil {
		return nil, err
	}
	if _, _, err := pl.message(); err != nil {
		return nil, err
	}
	return pl, nil
}

// copyObject returns a deep copy of m as JSON reads it back (numbers as
// float64), an empty object for nil.
func copyObject(m map[string]any) (map[string]any, error) {
	out := map[string]any{}
	if m == nil {
		return out, nil
	}
	data, err := json.Marshal(m)
	if err == nil {
		err = json.Unmarshal(data, &out)
	}
	return out, err
}

// message makes a new goal or task for one fire: its id and wire form.
// The maps it holds are the plan's, shared by every fire; encoding only
// reads them.
func (p *plan) message() (id string, data []byte, err error) {
	if p.kind == DispatchGoal {
		g := heddle.NewOrchestratorGoal(p.goal.Instruction, p.goal.Context)
		g.Priority = p.goal.Priority
		data, err = g.Encode()
		return g.GoalID, data, err
	}
	m := heddle.NewTaskMessage(p.task.WorkerType, p.task.Payload)
	m.ModelTier = p.task.ModelTier
	m.Priority = p.task.Priority
	m.Metadata = map[string]any{MetadataScheduledBy: p.name}
	data, err = m.Encode()
	return m.TaskID, data, err
}

// idKey is the wire name of the id of what p sends.
func (p *plan) idKey() string {
	if p.kind == DispatchGoal {
		return "goal_id"
	}
	return "task_id"
}

// Ready is closed once Run has subscribed to the bus's reports and set
// every schedule's timer.
func (s *Scheduler) Ready() <-chan struct{} { return s.ready }

// Stats returns the scheduler's counters.
func (s *Scheduler) Stats() Stats {
	out := Stats{Schedules: make(map[string]ScheduleStats, len(s.plans))}
	for _, p := range s.plans {
		st := ScheduleStats{
			Fired:         p.fired.Load(),
			Missed:        p.missed.Load(),
			Late:          p.late.Load(),
			PublishFailed: p.publishFailed.Load(),
			Unserved:      p.unserved.Load(),
		}
		out.Schedules[p.name] = st
		out.Fired += st.Fired
		out.Missed += st.Missed
		out.Late += st.Late
		out.PublishFailed += st.PublishFailed
		out.Unserved += st.Unserved
	}
	return out
}

// Run sets every schedule's timer and publishes what each sends when it
// fires, until ctx ends. Then it stops the timers, lets a publish under
// way finish within Config.DrainTimeout (cancelling it after that), and
// returns nil, or an error wrapping context.DeadlineExceeded when a
// publish had to be cancelled. When the bus closes under it, Run stops at
// once and returns an error wrapping bus.ErrClosed. A Scheduler runs
// once: a second call returns heddle.ErrStarted.
//
// The first fire of an interval schedule comes one interval after Run
// starts; a cron schedule's, at its first time after Run starts.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return heddle.ErrStarted
	}
	status, err := s.b.Subscribe(ctx, s.inbox+".>", s.handleStatus, bus.LocalInterest())
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return fmt.Errorf("heddle: scheduler %q: subscribing to the bus's reports on %s: %w", s.name, s.inbox, err)
	}
	start := time.Now()
	stop := make(chan struct{})
	// Publishes outlive ctx until the drain's deadline, so that a fire
	// under way when ctx ends is sent.
	pubCtx, cancelPub := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelPub()
	var loops sync.WaitGroup
	for _, p := range s.plans {
		next := p.timer.first(start)
		s.log.Info(EventScheduleInitialized, "schedule", p.name, "next_fire", next,
			"next_fire_in_seconds", next.Sub(start).Seconds())
		loops.Go(func() { s.loop(pubCtx, stop, p, next) })
	}
	s.log.Info(EventRunning, "schedule_count", len(s.plans))
	close(s.ready)

	var closed error
	select {
	case <-ctx.Done():
	case <-bus.Done(s.b):
		cause := bus.Err(s.b)
		if cause == nil {
			cause = bus.ErrClosed
		}
		closed = fmt.Errorf("heddle: scheduler %q: the bus closed, the scheduler cannot publish any more: %w", s.name, cause)
	}
	close(stop)
	return errors.Join(closed, s.stop(ctx, &loops, cancelPub, status, closed != nil))
}

// stop waits for the schedules' loops, cancelling a publish still under
// way after the drain timeout, then drains the status subscription in
// what is left of it.
func (s *Scheduler) stop(ctx context.Context, loops *sync.WaitGroup, cancelPub context.CancelFunc, status bus.Subscription, closed bool) error {
	deadline := time.Now().Add(s.drain)
	done := make(chan struct{})
	go func() {
		loops.Wait()
		close(done)
	}()
	var cut error
	timeout := time.NewTimer(s.drain)
	defer timeout.Stop()
	select {
	case <-done:
	case <-timeout.C:
		cancelPub()
		<-done
		cut = fmt.Errorf("heddle: scheduler %q: a publish was still under way after %s (Config.DrainTimeout) and was cancelled: %w",
			s.name, s.drain, context.DeadlineExceeded)
	}
	if closed || cut != nil {
		_ = status.Unsubscribe()
		return cut
	}
	dctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	if err := status.Drain(dctx); err != nil && !errors.Is(err, bus.ErrClosed) {
		return fmt.Errorf("heddle: scheduler %q: draining %s: %w", s.name, status.Subject(), err)
	}
	return nil
}

// loop fires p at each of its times, from next on, until stop is closed.
func (s *Scheduler) loop(pubCtx context.Context, stop <-chan struct{}, p *plan, next time.Time) {
	t := time.NewTimer(p.timer.wait(time.Until(next)))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := time.Now()
		if now.Before(next) {
			// Woken to look at the wall clock, or the clock was set back.
			t.Reset(p.timer.wait(next.Sub(now)))
			continue
		}
		select {
		case <-stop:
			return // a stop and a fire at once: the stop wins
		default:
		}
		due, latest, following := p.timer.catchUp(next, now)
		s.fire(pubCtx, p, next, latest, now, due)
		next = following
		t.Reset(p.timer.wait(time.Until(next)))
	}
}

// fire publishes one message for p at now, standing for the due fire
// times from first to latest.
func (s *Scheduler) fire(ctx context.Context, p *plan, first, latest, now time.Time, due uint64) {
	if due > 1 {
		missed := due - 1
		s.log.CountEvent(ctx, &p.missed, slog.LevelWarn, event.Event{Name: EventMissed, Count: missed},
			slog.String("schedule", p.name), slog.Uint64("missed", missed), slog.Time("first_missed", first), slog.Time("scheduled_at", latest))
	}
	late := now.Sub(latest)
	if late > s.late {
		s.log.CountEvent(ctx, &p.late, slog.LevelWarn, event.Event{Name: EventLate, Duration: late},
			slog.String("schedule", p.name), slog.Time("scheduled_at", latest), slog.Duration("late", late), slog.Duration("late_tolerance", s.late))
	}
	id, data, err := p.message()
	if err == nil {
		reply := s.inbox + "." + strconv.Itoa(p.index) + "." + id
		err = s.b.Publish(ctx, &bus.Msg{Subject: p.subject, Reply: reply, Data: data})
	}
	attrs := p.attrs(id)
	if err != nil {
		ev := p.event(EventPublishFailed, id)
		ev.Reason, ev.Err = event.ReasonPublish, err
		s.log.CountEvent(ctx, &p.publishFailed, slog.LevelError, ev,
			append(attrs, slog.Time("scheduled_at", latest), slog.String("error", err.Error()))...)
		return
	}
	ev := p.event(EventFired, id)
	ev.Status, ev.Duration = "fired", late
	s.log.CountEvent(ctx, &p.fired, slog.LevelInfo, ev, append(attrs, slog.Time("scheduled_at", latest), slog.Duration("late", late))...)
}

// event is the typed event name reports about the message id of p.
func (p *plan) event(name, id string) event.Event {
	ev := event.Event{Name: name, TaskID: id, Subject: p.subject}
	if p.kind == DispatchTask {
		ev.WorkerType, ev.Tier = p.task.WorkerType, string(p.task.ModelTier)
	}
	return ev
}

// attrs are the log attributes of an event about the message id of p.
func (p *plan) attrs(id string) []slog.Attr {
	attrs := []slog.Attr{slog.String("schedule", p.name), slog.String("dispatch_type", string(p.kind)),
		slog.String("subject", p.subject), slog.String(p.idKey(), id)}
	if p.kind == DispatchTask {
		attrs = append(attrs, slog.String("worker_type", p.task.WorkerType), slog.String("model_tier", string(p.task.ModelTier)))
	}
	return attrs
}

// handleStatus reports a fired message the bus says nothing was
// subscribed to receive. Its Reply was inbox.{plan index}.{message id}.
func (s *Scheduler) handleStatus(ctx context.Context, msg *bus.Msg) error {
	if !bus.NoResponders(msg) {
		return nil
	}
	rest, ok := strings.CutPrefix(msg.Subject, s.inbox+".")
	if !ok {
		return nil
	}
	index, id, ok := strings.Cut(rest, ".")
	i, err := strconv.Atoi(index)
	if !ok || err != nil || i < 0 || i >= len(s.plans) {
		return nil
	}
	p := s.plans[i]
	s.log.CountEvent(ctx, &p.unserved, slog.LevelWarn, p.event(EventUnserved, id), p.attrs(id)...)
	return nil
}
