package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/held"
	"github.com/heddle-go/heddle/internal/wire"
)

// DefaultMaxDeliver is how many times a task is delivered in durable mode
// before it is dead-lettered; see DurableConfig.MaxDeliver.
const DefaultMaxDeliver = bus.DefaultMaxDeliver

// durableRetryDelay is how long a task whose result could not be
// published, or whose dead letter could not be stored, waits before it is
// delivered again.
const durableRetryDelay = time.Second

// DurableConfig puts a Worker in durable mode (Config.Durable): it takes
// its tasks from a JetStream stream (bus.Durable; membus has the same
// semantics in memory) instead of a core queue group, through one durable
// consumer per worker type that every replica shares, so each task goes to
// one of them; see docs/durable.md.
//
//   - A task is acknowledged only after its result is published (and,
//     where a stream captures the results subject, stored there with an
//     acknowledgement: a result the store did not take hands its task
//     back, to run again); while
//     its handler runs (or waits for a free one), the worker signals it in
//     progress every third of AckWait, so it is not redelivered.
//   - A worker that crashes, or loses its connection, leaves its tasks
//     unacknowledged: the stream redelivers them to another replica once
//     AckWait has passed.
//   - A worker that stops hands back (negative acknowledgement) the tasks
//     it holds and has not started, and, once its drain timeout has
//     expired, those whose handlers it gave up on, instead of failing
//     them: another replica gets them at once.
//   - A task delivered MaxDeliver times without an outcome is
//     dead-lettered with the reason "max_deliveries: ..." (its caller is
//     answered with a failed result, as for the router's dead letters) and
//     never delivered again.
//   - At-least-once: a handler may run twice for one task (a worker that
//     crashed after publishing its result but before its acknowledgement
//     reached the server). Callers keep the first result per task id;
//     handlers must tolerate running again.
//
// A handler's panic, error or timeout is an outcome like in core mode: a
// failed result, published and acknowledged. Redelivery is for tasks
// whose worker went away.
//
// The stream captures heddle.tasks.{worker_type}.* with work-queue
// retention (a task is removed once acknowledged). Every replica of a
// worker type must run in the same mode with the same tiers: a task must
// never reach both the durable consumer and a core queue group (a Python
// worker, or a Go one in core mode), or it runs twice. New refuses
// Durable together with Config.QueueGroup for that reason.
type DurableConfig struct {
	// Stream names the worker type's stream; empty means
	// DurableStreamName(workerType).
	Stream string
	// Consumer names the durable consumer the replicas share; empty means
	// DurableConsumerName(workerType).
	Consumer string
	// AckWait is how long a delivered task may go without a sign of life
	// before the stream redelivers it; zero means bus.DefaultAckWait. A
	// crashed worker's tasks come back after it.
	AckWait time.Duration
	// MaxDeliver is how many times a task is delivered before it is
	// dead-lettered instead; zero means DefaultMaxDeliver.
	MaxDeliver int
	// MaxAge, MaxBytes and Replicas shape the stream when it is created
	// (zero: the defaults of bus.StreamConfig; Replicas 3 on a cluster);
	// for an existing stream, a non-zero value that differs is an error
	// naming the stream and the setting. Memory keeps the stream in
	// memory instead of file storage.
	MaxAge   time.Duration
	MaxBytes int64
	Replicas int
	Memory   bool
}

// DurableStats counts what durable mode did beside the tasks' outcomes
// (Stats). Every counter only increases.
type DurableStats struct {
	// DeadLettered counts the tasks dead-lettered after MaxDeliver
	// deliveries (worker.dead_lettered).
	DeadLettered uint64
	// HandedBack counts the tasks handed back to the stream for another
	// replica (worker.handed_back).
	HandedBack uint64
	// SettleErrors counts the acknowledgements and negative
	// acknowledgements that could not be sent (worker.settle_error); the
	// stream redelivers those tasks after AckWait.
	SettleErrors uint64
}

// DurableStreamName is the default stream of workerType's tasks in
// durable mode: HEDDLE_TASKS_ and the worker type, with any character a
// stream name cannot hold replaced (see streamToken).
func DurableStreamName(workerType string) string { return "HEDDLE_TASKS_" + streamToken(workerType) }

// DurableConsumerName is the default durable consumer of workerType's
// tasks: processors- and the worker type, as the core queue group.
func DurableConsumerName(workerType string) string { return "processors-" + streamToken(workerType) }

// streamToken returns s when it is a valid JetStream name (letters,
// digits, '-', '_'), and otherwise s with every other character replaced
// by '_' and a hash of s appended, so that two worker types never share a
// stream.
func streamToken(s string) string {
	var b strings.Builder
	changed := false
	for _, r := range s {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
			continue
		}
		b.WriteByte('_')
		changed = true
	}
	if changed {
		h := fnv.New32a()
		h.Write([]byte(s))
		fmt.Fprintf(&b, "_%08x", h.Sum32())
	}
	return b.String()
}

// durableState is a Worker's durable mode.
type durableState struct {
	w          *Worker
	cfg        DurableConfig // defaults resolved
	inner      bus.Bus       // the bus the worker was given
	d          bus.Durable
	slots      chan struct{}
	maxDeliver int

	held *held.Set // the tasks handed to the worker, until their result is out

	deadLettered, handedBack, settleErrors atomic.Uint64

	results resultStreams
}

// resultStreamTTL is how long a durable worker trusts what it learned
// about the stream capturing a results subject (or that none does): a
// stream an operator adds or removes is seen within it.
const resultStreamTTL = 10 * time.Second

// resultStreamsMax bounds the subjects remembered; past it the memory
// starts again (results subjects carry parent task ids).
const resultStreamsMax = 1024

// resultStreams remembers, per results subject, whether a stream captures
// it: a durable worker stores a result with an acknowledgement where one
// does, and publishes it on core NATS where none does.
type resultStreams struct {
	mu    sync.Mutex
	known map[string]resultStream
}

type resultStream struct {
	captured bool
	until    time.Time
}

// captured reports whether a stream captures subject. An error means the
// answer is unknown (the server is unreachable, JetStream has no leader):
// the result is not published then, and its task is handed back.
func (r *resultStreams) captured(ctx context.Context, d bus.Durable, subject string) (bool, error) {
	now := time.Now()
	r.mu.Lock()
	k, ok := r.known[subject]
	r.mu.Unlock()
	if ok && now.Before(k.until) {
		return k.captured, nil
	}
	_, err := d.StreamOf(ctx, subject)
	if err != nil && !errors.Is(err, bus.ErrNoStream) {
		return false, err
	}
	r.remember(subject, err == nil, now)
	return err == nil, nil
}

func (r *resultStreams) remember(subject string, captured bool, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known == nil || len(r.known) >= resultStreamsMax {
		r.known = make(map[string]resultStream)
	}
	r.known[subject] = resultStream{captured: captured, until: now.Add(resultStreamTTL)}
}

// resultMsgIDPrefix makes a stored result's message id (the task id
// after it): a result published again for a task run twice, within the
// stream's duplicate window, is stored once.
const resultMsgIDPrefix = "result:"

// setupDurable checks cfg.Durable and puts the worker in durable mode: its
// results are published through durableBus, which acknowledges each task
// once its result is out.
func (w *Worker) setupDurable(cfg Config) error {
	dc := *cfg.Durable
	d, ok := w.bus.(bus.Durable)
	if !ok {
		return fmt.Errorf("%w: worker %q: Config.Durable: %w", heddle.ErrConfig, w.workerType, bus.ErrNotDurable)
	}
	if cfg.QueueGroup != "" {
		return fmt.Errorf("%w: worker %q: Config.Durable with Config.QueueGroup %q: a durable worker takes its tasks from the stream, and a task that also reached the core queue group would run twice; leave QueueGroup empty, and keep every replica of the type durable",
			heddle.ErrConfig, w.workerType, cfg.QueueGroup)
	}
	for _, f := range []struct {
		name  string
		value int64
	}{{"AckWait", int64(dc.AckWait)}, {"MaxDeliver", int64(dc.MaxDeliver)}, {"MaxAge", int64(dc.MaxAge)},
		{"MaxBytes", dc.MaxBytes}, {"Replicas", int64(dc.Replicas)}} {
		if f.value < 0 {
			return fmt.Errorf("%w: worker %q: Config.Durable.%s is negative; use zero for the default", heddle.ErrConfig, w.workerType, f.name)
		}
	}
	dc.Stream = cmpOr(dc.Stream, DurableStreamName(w.workerType))
	dc.Consumer = cmpOr(dc.Consumer, DurableConsumerName(w.workerType))
	dc.AckWait = cmpOr(dc.AckWait, bus.DefaultAckWait)
	dc.MaxDeliver = cmpOr(dc.MaxDeliver, DefaultMaxDeliver)
	s := &durableState{w: w, cfg: dc, inner: w.bus, d: d, slots: make(chan struct{}, w.concurrency),
		maxDeliver: dc.MaxDeliver, held: held.NewSet()}
	w.durable = s
	w.bus = &durableBus{Bus: w.bus, s: s}
	return nil
}

// DurableStats returns the counters of durable mode; zero for a worker in
// core mode.
func (w *Worker) DurableStats() DurableStats {
	s := w.durable
	if s == nil {
		return DurableStats{}
	}
	return DurableStats{DeadLettered: s.deadLettered.Load(), HandedBack: s.handedBack.Load(), SettleErrors: s.settleErrors.Load()}
}

// subjects returns what Run subscribes to: each tier's subject, or in
// durable mode the one consumption of every tier.
func (w *Worker) subjects() []string {
	if w.durable != nil {
		return []string{heddle.WorkerSubjectAllTiers(w.workerType)}
	}
	out := make([]string, 0, len(w.tiers))
	for _, tier := range w.tiers {
		out = append(out, heddle.WorkerSubject(w.workerType, tier))
	}
	return out
}

// subscribe subscribes Run to subject: a core queue subscription, or the
// durable consumption.
func (w *Worker) subscribe(ctx context.Context, subject string, opts []bus.SubscribeOption) (bus.Subscription, error) {
	if w.durable == nil {
		return w.bus.Subscribe(ctx, subject, w.deliver, opts...)
	}
	return w.durable.start(ctx, subject)
}

// start ensures the stream and consumer and starts consuming.
func (s *durableState) start(ctx context.Context, subject string) (bus.Subscription, error) {
	w := s.w
	err := s.d.EnsureStream(ctx, bus.StreamConfig{Name: s.cfg.Stream, Subjects: []string{subject}, WorkQueue: true,
		MaxAge: s.cfg.MaxAge, MaxBytes: s.cfg.MaxBytes, Replicas: s.cfg.Replicas, Memory: s.cfg.Memory})
	if err != nil {
		return nil, err
	}
	var filters []string
	if len(w.tiers) != len(heddle.ModelTiers()) {
		for _, tier := range w.tiers {
			filters = append(filters, heddle.WorkerSubject(w.workerType, tier))
		}
	}
	// The stream delivers one more time than MaxDeliver: that delivery is
	// the one the worker dead-letters.
	cn, err := s.d.Consume(ctx, bus.ConsumerConfig{Stream: s.cfg.Stream, Name: s.cfg.Consumer, FilterSubjects: filters,
		AckWait: s.cfg.AckWait, MaxDeliver: s.maxDeliver + 1, Prefetch: w.concurrency}, s.handle)
	if err != nil {
		return nil, err
	}
	return held.Start(s.held, cn, held.Config{Subject: subject, Queue: s.cfg.Consumer,
		KeepAlive: s.cfg.AckWait / 3, DrainTimeout: w.drainTimeout,
		HandBack: func(m bus.DurableMsg, id string) {
			s.handBack(m, id, "the worker stopped before the task finished")
			<-s.slots
		}}), nil
}

// handle takes one delivery: it waits for a free handler (handing the
// task back if the worker stops meanwhile), dead-letters a task delivered
// too often, and hands the others to the worker.
func (s *durableState) handle(ctx context.Context, m bus.DurableMsg) error {
	w := s.w
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		s.handBack(m, "", "the worker stopped before the task started")
		return nil
	}
	msg := m.Msg()
	if m.Delivered() > s.maxDeliver {
		s.deadLetter(m)
		<-s.slots
		return nil
	}
	taskID, _ := wire.PeekString(msg.Data, "task_id")
	if taskID == "" {
		// Not a task anyone can be waiting for: the worker drops it as
		// malformed (counted and logged there), and so does the stream.
		_ = w.deliver(w.values, &bus.Msg{Subject: msg.Subject, Header: msg.Header, Data: msg.Data})
		s.settleErr(m.Term(), "", "Term")
		<-s.slots
		return nil
	}
	s.held.Add(taskID, m)
	_ = w.deliver(w.values, &bus.Msg{Subject: msg.Subject, Header: msg.Header, Data: msg.Data})
	return nil
}

// settle acknowledges the task whose result was published, or hands it
// back when the publish failed; either way its handler slot is free.
func (s *durableState) settle(taskID string, pubErr error) {
	m := s.held.Take(taskID)
	if m == nil {
		return
	}
	if pubErr != nil {
		s.handBackAfter(m, taskID, durableRetryDelay, "its result could not be published: "+pubErr.Error())
	} else {
		s.settleErr(m.Ack(), taskID, "Ack")
	}
	<-s.slots
}

// handBack returns a task to the stream at once, for another replica.
func (s *durableState) handBack(m bus.DurableMsg, taskID, why string) {
	s.handBackAfter(m, taskID, 0, why)
}

func (s *durableState) handBackAfter(m bus.DurableMsg, taskID string, delay time.Duration, why string) {
	if err := m.Nak(delay); err != nil {
		s.settleErr(err, taskID, "Nak")
		return
	}
	if taskID == "" {
		taskID, _ = wire.PeekString(m.Msg().Data, "task_id")
	}
	w := s.w
	w.log.CountEvent(w.values, &s.handedBack, slog.LevelInfo, event.Event{Name: event.WorkerHandedBack, TaskID: taskID,
		WorkerType: w.workerType, Reason: event.ReasonShutdown, Detail: why, Attempt: m.Delivered()},
		slog.String("task_id", taskID), slog.String("reason", why), slog.Int("delivered", m.Delivered()))
}

// settleErr reports an acknowledgement that could not be sent.
func (s *durableState) settleErr(err error, taskID, how string) {
	if err == nil {
		return
	}
	w := s.w
	w.log.CountEvent(w.values, &s.settleErrors, slog.LevelWarn, event.Event{Name: event.WorkerSettleError, TaskID: taskID,
		WorkerType: w.workerType, Reason: event.ReasonPublish, Err: err, Detail: how},
		slog.String("task_id", taskID), slog.String("settle", how), slog.String("error", err.Error()))
}

// deadLetter answers the caller of a task delivered MaxDeliver times and
// publishes its dead letter (into the dead-letter stream when there is
// one), then ends its deliveries. When the dead letter cannot be stored
// the task is handed back to try again later.
func (s *durableState) deadLetter(m bus.DurableMsg) {
	w := s.w
	msg := m.Msg()
	reason := fmt.Sprintf("%s: the task was delivered %d times (DurableConfig.MaxDeliver) to worker_type '%s' without an outcome",
		event.ReasonMaxDeliveries, s.maxDeliver, w.workerType)
	dl := heddle.NewDeadLetter(reason, msg.Data)
	ctx, cancel := context.WithTimeout(w.values, publishTimeout)
	defer cancel()
	s.answer(ctx, msg.Data, dl)
	env, err := dl.Encode()
	if err == nil {
		err = s.publishDeadLetter(ctx, &bus.Msg{Subject: heddle.SubjectDeadLetter, Header: msg.Header, Data: env})
		if errors.Is(err, bus.ErrMaxPayload) {
			if env, err = dl.Truncated().Encode(); err == nil {
				err = s.publishDeadLetter(ctx, &bus.Msg{Subject: heddle.SubjectDeadLetter, Header: msg.Header, Data: env})
			}
		}
	}
	if err != nil {
		s.handBackAfter(m, dl.TaskID, durableRetryDelay, "its dead letter could not be published: "+err.Error())
		return
	}
	s.settleErr(m.Term(), dl.TaskID, "Term")
	w.log.CountEvent(w.values, &s.deadLettered, slog.LevelWarn, event.Event{Name: event.WorkerDeadLettered, TaskID: dl.TaskID,
		WorkerType: w.workerType, Status: "dead_lettered", Reason: event.ReasonMaxDeliveries, Detail: reason, Attempt: m.Delivered()},
		slog.String("task_id", dl.TaskID), slog.String("reason", reason), slog.Int("delivered", m.Delivered()))
}

// publishDeadLetter stores a dead letter in the stream that captures the
// dead-letter subject, or publishes it on core NATS when none does.
func (s *durableState) publishDeadLetter(ctx context.Context, msg *bus.Msg) error {
	if _, err := s.d.StreamOf(ctx, msg.Subject); errors.Is(err, bus.ErrNoStream) {
		return s.inner.Publish(ctx, msg)
	} else if err != nil {
		return err
	}
	_, err := s.d.PublishDurable(ctx, msg, "")
	return err
}

// answer publishes the failed result that tells the caller its task was
// dead-lettered, as the router does for its dead letters.
func (s *durableState) answer(ctx context.Context, data []byte, dl heddle.DeadLetter) {
	var members map[string]json.RawMessage
	if dl.TaskID == "" || json.Unmarshal(data, &members) != nil {
		return
	}
	parent, _ := wire.PeekString(data, "parent_task_id")
	res := heddle.NewTaskResult(dl.TaskID, s.w.workerType, heddle.StatusFailed)
	res.ParentTaskID = parent
	res.Error = dl.Reason
	res.Metadata = map[string]any{heddle.MetadataDeadLetterReason: event.ReasonMaxDeliveries}
	res.AddExtensions(members)
	out, err := res.Encode()
	if err != nil {
		return
	}
	if err := s.inner.Publish(ctx, &bus.Msg{Subject: res.Subject(), Data: out}); err != nil {
		s.settleErr(err, dl.TaskID, "answer")
	}
}

// durableBus is the bus a durable worker publishes through: results are
// published on the worker's bus, then their task acknowledged. Once the
// drain timeout has expired, the failed result of a task cut short is not
// published: the task is handed back to the stream for another replica.
type durableBus struct {
	bus.Bus
	s    *durableState
	kept bus.Values
}

var resultsPrefix = strings.TrimSuffix(heddle.SubjectResultsAll, ">")

func (b *durableBus) Publish(ctx context.Context, msg *bus.Msg) error {
	if !strings.HasPrefix(msg.Subject, resultsPrefix) {
		return b.Bus.Publish(ctx, msg)
	}
	taskID, _ := wire.PeekString(msg.Data, "task_id")
	if b.s.w.forced.Load() {
		if status, _ := wire.PeekString(msg.Data, "status"); status == string(heddle.StatusFailed) {
			if m := b.s.held.Take(taskID); m != nil {
				b.s.handBack(m, taskID, "the worker stopped before the task finished (drain timeout)")
				<-b.s.slots
				return nil
			}
		}
	}
	err := b.publishResult(ctx, msg, taskID)
	b.s.settle(taskID, err)
	return err
}

// publishResult stores a result, with an acknowledgement, in the stream
// that captures its subject, or publishes it on core NATS when no stream
// does. Core subscribers (the caller) receive it either way; stored, it
// also outlives a server restart and a caller's reconnection, and the
// task is acknowledged only once the store has it.
func (b *durableBus) publishResult(ctx context.Context, msg *bus.Msg, taskID string) error {
	captured, err := b.s.results.captured(ctx, b.s.d, msg.Subject)
	if err != nil {
		return err
	}
	if !captured {
		return b.Bus.Publish(ctx, msg)
	}
	msgID := ""
	if taskID != "" {
		msgID = resultMsgIDPrefix + taskID
	}
	_, err = b.s.d.PublishDurable(ctx, msg, msgID)
	if errors.Is(err, bus.ErrNoStream) {
		b.s.results.remember(msg.Subject, false, time.Now())
		return b.Bus.Publish(ctx, msg)
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
