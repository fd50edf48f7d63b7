package router

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/held"
	"github.com/heddle-go/heddle/internal/wire"
)

// Defaults of DurableConfig.
const (
	// DefaultIntakeStream is the stream of SubjectTasksIncoming in
	// durable mode.
	DefaultIntakeStream = "HEDDLE_INTAKE"
	// DefaultIntakeConsumer is the durable consumer every router replica
	// shares on it.
	DefaultIntakeConsumer = "router"
	// DefaultMaxDeliver is how many times an intake task is delivered
	// before it is dead-lettered as max_deliveries.
	DefaultMaxDeliver = bus.DefaultMaxDeliver
)

// durableRetryDelay is how long a task whose forward could not be stored
// waits before it is delivered again.
const durableRetryDelay = time.Second

// DurableConfig puts a Router in durable mode (Config.Durable): it
// consumes SubjectTasksIncoming from a stream through one durable
// consumer every replica shares, and acknowledges each task only once its
// outcome is stored: the forwarded task (in the worker type's stream, for
// the worker types listed in WorkerTypes, with the task id as its message
// id) or its dead letter. A router killed between intake and forward
// leaves the task unacknowledged: another replica gets it after AckWait.
// A task whose forward cannot be stored is handed back and tried again.
// A task delivered MaxDeliver times is dead-lettered as
// "max_deliveries: ..." and its caller answered. See docs/durable.md.
//
// A task held for its tier's capacity (throttling) is signalled in
// progress while it waits and acknowledged once forwarded.
type DurableConfig struct {
	// Stream and Consumer name the intake stream and its durable
	// consumer; empty means DefaultIntakeStream and
	// DefaultIntakeConsumer.
	Stream, Consumer string
	// WorkerTypes are the worker types whose workers run in durable mode
	// (worker.Config.Durable): their tasks are forwarded with a stream
	// acknowledgement. A type not listed is forwarded on core NATS, as in
	// core mode, for its core workers (Python processors, say). A listed
	// type whose stream does not exist makes every forward fail until it
	// does (its workers create it when they start).
	WorkerTypes []string
	// AckWait is how long an intake task may go without a sign of life
	// before it is redelivered; zero means bus.DefaultAckWait.
	AckWait time.Duration
	// MaxDeliver is how many times an intake task is delivered before it
	// is dead-lettered; zero means DefaultMaxDeliver.
	MaxDeliver int
	// MaxAge, MaxBytes, Replicas and Memory shape the intake stream as
	// worker.DurableConfig does its stream.
	MaxAge   time.Duration
	MaxBytes int64
	Replicas int
	Memory   bool
}

// DurableStats counts what durable mode did beside the tasks' outcomes
// (Stats). Every counter only increases.
type DurableStats struct {
	// MaxDeliveries counts the intake tasks dead-lettered after
	// MaxDeliver deliveries (also counted in Stats.DeadLettered).
	MaxDeliveries uint64
	// HandedBack counts the intake tasks handed back to the stream
	// (router.handed_back): their forward could not be stored, or the
	// router stopped before their outcome.
	HandedBack uint64
	// SettleErrors counts acknowledgements that could not be sent
	// (router.settle_error); the stream redelivers those tasks.
	SettleErrors uint64
}

// routerDurable is a Router's durable mode.
type routerDurable struct {
	r       *Router
	cfg     DurableConfig
	inner   bus.Bus
	d       bus.Durable
	durable map[string]bool // the durable worker types

	held *held.Set // tasks whose outcome comes later

	maxDeliveries, handedBack, settleErrors atomic.Uint64
}

// setupDurable checks cfg.Durable and puts the router in durable mode.
func (r *Router) setupDurable() error {
	dc := *r.cfg.Durable
	d, ok := r.b.(bus.Durable)
	if !ok {
		return fmt.Errorf("%w: router: Config.Durable: %w", heddle.ErrConfig, bus.ErrNotDurable)
	}
	for _, f := range []struct {
		name  string
		value int64
	}{{"AckWait", int64(dc.AckWait)}, {"MaxDeliver", int64(dc.MaxDeliver)}, {"MaxAge", int64(dc.MaxAge)},
		{"MaxBytes", dc.MaxBytes}, {"Replicas", int64(dc.Replicas)}} {
		if f.value < 0 {
			return fmt.Errorf("%w: router: Config.Durable.%s is negative; use zero for the default", heddle.ErrConfig, f.name)
		}
	}
	s := &routerDurable{r: r, inner: r.b, d: d, durable: map[string]bool{}, held: held.NewSet()}
	for _, wt := range dc.WorkerTypes {
		if err := heddle.ValidateWorkerType(wt); err != nil {
			return fmt.Errorf("%w: router: Config.Durable.WorkerTypes: %w", heddle.ErrConfig, err)
		}
		s.durable[wt] = true
	}
	dc.Stream = cmp.Or(dc.Stream, DefaultIntakeStream)
	dc.Consumer = cmp.Or(dc.Consumer, DefaultIntakeConsumer)
	dc.AckWait = cmp.Or(dc.AckWait, bus.DefaultAckWait)
	dc.MaxDeliver = cmp.Or(dc.MaxDeliver, DefaultMaxDeliver)
	dc.WorkerTypes = slices.Clone(dc.WorkerTypes)
	s.cfg = dc
	r.durable = s
	r.b = &durableBus{Bus: r.b, s: s}
	return nil
}

// DurableStats returns the counters of durable mode; zero in core mode.
func (r *Router) DurableStats() DurableStats {
	s := r.durable
	if s == nil {
		return DurableStats{}
	}
	return DurableStats{MaxDeliveries: s.maxDeliveries.Load(), HandedBack: s.handedBack.Load(), SettleErrors: s.settleErrors.Load()}
}

// subscribeTasks subscribes Run to SubjectTasksIncoming: in the router
// queue group, or in durable mode through the intake consumer.
func (r *Router) subscribeTasks(ctx context.Context) (bus.Subscription, error) {
	if r.durable == nil {
		return r.b.Subscribe(ctx, heddle.SubjectTasksIncoming, r.handleTask, bus.Queue(heddle.RouterQueueGroup))
	}
	return r.durable.start(ctx)
}

func (s *routerDurable) start(ctx context.Context) (bus.Subscription, error) {
	err := s.d.EnsureStream(ctx, bus.StreamConfig{Name: s.cfg.Stream, Subjects: []string{heddle.SubjectTasksIncoming}, WorkQueue: true,
		MaxAge: s.cfg.MaxAge, MaxBytes: s.cfg.MaxBytes, Replicas: s.cfg.Replicas, Memory: s.cfg.Memory})
	if err != nil {
		return nil, err
	}
	cn, err := s.d.Consume(ctx, bus.ConsumerConfig{Stream: s.cfg.Stream, Name: s.cfg.Consumer, AckWait: s.cfg.AckWait,
		MaxDeliver: s.cfg.MaxDeliver + 1, Prefetch: 64}, s.handle)
	if err != nil {
		return nil, err
	}
	return held.Start(s.held, cn, held.Config{Subject: heddle.SubjectTasksIncoming, Queue: s.cfg.Consumer,
		KeepAlive: s.cfg.AckWait / 3, DrainTimeout: cmp.Or(s.r.cfg.DrainTimeout, heddle.DefaultDrainTimeout),
		HandBack: func(m bus.DurableMsg, id string) {
			s.handBack(m, id, 0, "the router stopped before the task's outcome")
		}}), nil
}

// outcomeKey is the context key of the outcome a route records.
type outcomeKey struct{}

// outcome is what the durable bus saw the route of one task publish: its
// forward or dead letter, stored or not.
type outcome struct {
	done bool
	err  error
}

// handle routes one intake task and settles it by its outcome.
func (s *routerDurable) handle(ctx context.Context, m bus.DurableMsg) error {
	msg := m.Msg()
	if m.Delivered() > s.cfg.MaxDeliver {
		s.deadLetter(ctx, m)
		return nil
	}
	taskID, _ := wire.PeekString(msg.Data, "task_id")
	rec := &outcome{}
	if taskID != "" {
		// Before the route: a held task may be forwarded before route
		// returns.
		s.held.Add(taskID, m)
	}
	s.r.route(context.WithValue(ctx, outcomeKey{}, rec), &bus.Msg{Subject: msg.Subject, Header: msg.Header, Data: msg.Data})
	switch {
	case !rec.done && taskID != "":
		// Held for capacity: settled when its forward or dead letter
		// goes out.
		return nil
	case taskID != "" && s.held.Take(taskID) == nil:
		return nil // settled already
	}
	if rec.err != nil || !rec.done {
		s.handBack(m, taskID, durableRetryDelay, outcomeProblem(rec))
		return nil
	}
	s.settleErr(m.Ack(), taskID, "Ack")
	return nil
}

func outcomeProblem(rec *outcome) string {
	if rec.err != nil {
		return "its outcome could not be stored: " + rec.err.Error()
	}
	return "the route published no outcome"
}

// settleLater settles a held task whose outcome was published outside
// its route (by the releaser, or the drain's dead letters).
func (s *routerDurable) settleLater(taskID string, err error) {
	m := s.held.Take(taskID)
	if m == nil {
		return
	}
	if err != nil {
		s.handBack(m, taskID, durableRetryDelay, "its outcome could not be stored: "+err.Error())
		return
	}
	s.settleErr(m.Ack(), taskID, "Ack")
}

func (s *routerDurable) handBack(m bus.DurableMsg, taskID string, delay time.Duration, why string) {
	if err := m.Nak(delay); err != nil {
		s.settleErr(err, taskID, "Nak")
		return
	}
	r := s.r
	r.log.CountEvent(context.Background(), &s.handedBack, slog.LevelInfo, event.Event{Name: event.RouterHandedBack, TaskID: taskID,
		Reason: event.ReasonShutdown, Detail: why, Attempt: m.Delivered()},
		slog.String("task_id", taskID), slog.String("reason", why), slog.Int("delivered", m.Delivered()))
}

func (s *routerDurable) settleErr(err error, taskID, how string) {
	if err == nil {
		return
	}
	s.r.log.CountEvent(context.Background(), &s.settleErrors, slog.LevelWarn, event.Event{Name: event.RouterSettleError, TaskID: taskID,
		Reason: event.ReasonPublish, Err: err, Detail: how},
		slog.String("task_id", taskID), slog.String("settle", how), slog.String("error", err.Error()))
}

// deadLetter dead-letters an intake task delivered MaxDeliver times:
// its caller is answered, its dead letter stored (or published), and its
// deliveries end.
func (s *routerDurable) deadLetter(ctx context.Context, m bus.DurableMsg) {
	r := s.r
	msg := m.Msg()
	reason := fmt.Sprintf("%s: the task was delivered %d times (DurableConfig.MaxDeliver) to the router without an outcome",
		event.ReasonMaxDeliveries, s.cfg.MaxDeliver)
	dl := heddle.NewDeadLetter(reason, msg.Data)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if !r.cfg.NoDeadLetterResults {
		s.answer(pctx, msg.Data, dl)
	}
	env, err := dl.Encode()
	if err == nil {
		err = s.publishDeadLetter(pctx, &bus.Msg{Subject: heddle.SubjectDeadLetter, Header: msg.Header, Data: env})
		if errors.Is(err, bus.ErrMaxPayload) {
			if env, err = dl.Truncated().Encode(); err == nil {
				err = s.publishDeadLetter(pctx, &bus.Msg{Subject: heddle.SubjectDeadLetter, Header: msg.Header, Data: env})
			}
		}
	}
	if err != nil {
		s.handBack(m, dl.TaskID, durableRetryDelay, "its dead letter could not be published: "+err.Error())
		return
	}
	s.settleErr(m.Term(), dl.TaskID, "Term")
	r.stats.deadLettered.Add(1)
	s.maxDeliveries.Add(1)
	r.log.Emit(ctx, slog.LevelWarn, event.Event{Name: event.RouterDeadLettered, TaskID: dl.TaskID, WorkerType: dl.WorkerType,
		Status: "dead_lettered", Reason: event.ReasonMaxDeliveries, Detail: reason},
		slog.String("reason", reason), slog.String("task_id", dl.TaskID), slog.String("worker_type", dl.WorkerType))
}

// publishDeadLetter stores a dead letter in the stream capturing the
// dead-letter subject, or publishes it on core NATS when none does.
func (s *routerDurable) publishDeadLetter(ctx context.Context, msg *bus.Msg) error {
	if _, err := s.d.StreamOf(ctx, msg.Subject); errors.Is(err, bus.ErrNoStream) {
		return s.inner.Publish(ctx, msg)
	} else if err != nil {
		return err
	}
	_, err := s.d.PublishDurable(ctx, msg, "")
	return err
}

func (s *routerDurable) answer(ctx context.Context, data []byte, dl heddle.DeadLetter) {
	var members map[string]json.RawMessage
	if dl.TaskID == "" || json.Unmarshal(data, &members) != nil {
		return
	}
	parent, _ := wire.PeekString(data, "parent_task_id")
	res := heddle.NewTaskResult(dl.TaskID, cmp.Or(dl.WorkerType, "router"), heddle.StatusFailed)
	res.ParentTaskID = parent
	res.Error = dl.Reason
	res.Metadata = map[string]any{heddle.MetadataDeadLetterReason: event.ReasonMaxDeliveries}
	res.AddExtensions(members)
	if out, err := res.Encode(); err == nil {
		if err := s.inner.Publish(ctx, &bus.Msg{Subject: res.Subject(), Data: out}); err != nil {
			s.r.publishFailed(ctx, &s.r.stats.answerErrors, res.Subject(), dl.TaskID, dl.WorkerType, "", err, slog.String("reason", dl.Reason))
		}
	}
}

// durableBus is the bus a durable router publishes through: forwards to
// durable worker types are stored with the task id as message id, dead
// letters are stored when a stream captures them, and each outcome is
// recorded for the intake task it settles.
type durableBus struct {
	bus.Bus
	s    *routerDurable
	kept bus.Values
}

const tasksPrefix = "heddle.tasks."

func (b *durableBus) Publish(ctx context.Context, msg *bus.Msg) error {
	var (
		taskID   string
		err      error
		isResult = true
	)
	switch {
	case msg.Subject == heddle.SubjectDeadLetter:
		dl, _ := wire.PeekString(msg.Data, "task_id")
		taskID = dl
		err = b.s.publishDeadLetter(ctx, msg)
	case strings.HasPrefix(msg.Subject, tasksPrefix) && msg.Subject != heddle.SubjectTasksIncoming:
		taskID, _ = wire.PeekString(msg.Data, "task_id")
		wt, _, _ := strings.Cut(strings.TrimPrefix(msg.Subject, tasksPrefix), ".")
		if b.s.durable[wt] {
			_, err = b.s.d.PublishDurable(ctx, &bus.Msg{Subject: msg.Subject, Header: msg.Header, Data: msg.Data}, taskID)
		} else {
			err = b.Bus.Publish(ctx, msg)
		}
	default:
		isResult = false
		err = b.Bus.Publish(ctx, msg)
	}
	if isResult {
		if rec, ok := ctx.Value(outcomeKey{}).(*outcome); ok {
			rec.done = true
			rec.err = errors.Join(rec.err, err)
		} else if taskID != "" {
			b.s.settleLater(taskID, err)
		}
	}
	return err
}

// Done and Err forward bus.Closer, Keep bus.Keeper.
func (b *durableBus) Done() <-chan struct{} { return bus.Done(b.Bus) }
func (b *durableBus) Err() error            { return bus.Err(b.Bus) }

func (b *durableBus) Keep(key any, create func() any) any {
	if k, ok := b.Bus.(bus.Keeper); ok {
		return k.Keep(key, create)
	}
	return b.kept.Keep(key, create)
}
