package router

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/internal/observe"
	"github.com/heddle-go/heddle/internal/wire"
	"github.com/heddle-go/heddle/ratelimit"
)

// DefaultReloadTimeout bounds one reload triggered by a message on
// SubjectControlReload when Config.ReloadTimeout is zero.
const DefaultReloadTimeout = 10 * time.Second

// Config configures a Router. The zero value routes every task to
// its own tier, without limits, and never changes its rules.
type Config struct {
	// Rules supplies the rules when Run starts and at every reload. Nil
	// means StaticRules(Rules{}): no overrides, no limits. Use
	// RulesFile for a configs/router_rules.yaml file.
	Rules RulesSource
	// ReloadTimeout bounds one reload triggered by SubjectControlReload.
	// Zero means DefaultReloadTimeout.
	ReloadTimeout time.Duration
	// SkipWorkerCheck turns off the check that something serves the
	// worker subject a task is routed to. With it on (the default) each
	// task is forwarded with a reply subject; when nothing is subscribed
	// to the worker subject the bus says so at once, and the router
	// dead-letters the task as no_worker (heddle.ReasonNoWorker) and
	// answers its caller. The Python router does not check.
	SkipWorkerCheck bool
	// NoDeadLetterResults turns off the failed TaskResult the router
	// publishes, beside the dead letter, for each task it dead-letters
	// (on the task's result subject, its Error the dead-letter reason),
	// for meshes that want the Python router's behaviour exactly: there a
	// caller learns nothing and waits out its timeout.
	NoDeadLetterResults bool
	// DrainTimeout bounds shutdown once Run's context ends: the tasks
	// already delivered are routed until then; what is left when it
	// expires is dropped by the bus and Run returns an error saying so.
	// Zero means heddle.DefaultDrainTimeout.
	DrainTimeout time.Duration
}

// Stats counts what a Router did with each message. Every message
// on SubjectTasksIncoming is counted exactly once: in Routed, in one of
// the three dead-letter counters, or in PublishErrors.
type Stats struct {
	// Routed counts tasks published to their worker subject.
	Routed uint64
	// Overridden counts the routed tasks whose tier came from
	// tier_overrides and differed from their model_tier.
	Overridden uint64
	// DeadLettered counts dead letters published, of every reason.
	DeadLettered uint64
	// InvalidMessages, UnknownTiers and RateLimited count the dead letters
	// published by reason.
	InvalidMessages uint64
	UnknownTiers    uint64
	RateLimited     uint64
	// NoWorker counts the dead letters of tasks nothing served (see
	// Config.SkipWorkerCheck); such a task is not counted in Routed.
	NoWorker uint64
	// NoWorkerUnknown counts the bus's reports of an unserved task that
	// the router no longer remembered (beyond its window of 4,096
	// forwarded tasks): lost, as any task nothing serves.
	NoWorkerUnknown uint64
	// PublishErrors counts messages lost because publishing the task or
	// its dead letter failed (logged as router.publish_failed).
	PublishErrors uint64
	// Answered counts the failed results published for dead-lettered
	// tasks (see Config.NoDeadLetterResults); AnswerErrors those whose
	// publish failed (logged as router.publish_failed). The tasks
	// themselves are counted above, once each.
	Answered     uint64
	AnswerErrors uint64
	// Reloads counts rules reloaded; ReloadErrors counts reloads rejected
	// (logged as router.reload_failed; the previous rules stayed).
	Reloads      uint64
	ReloadErrors uint64
}

// Router forwards each task on SubjectTasksIncoming to its worker subject,
// or dead-letters it. Replicas share the work through RouterQueueGroup;
// each has its own rate-limit buckets.
//
// For each message, in this order:
//
//  1. It is decoded and validated as a TaskMessage. Any problem other than
//     the model_tier alone dead-letters it with
//     "invalid_task_message: <the fields at fault>".
//  2. Its tier is resolved: the tier_overrides entry for its worker_type
//     when there is one, else its model_tier. An override naming an unknown
//     tier dead-letters it with "unknown_tier: tier override for
//     worker_type 'X' names unknown tier 'Y' (allowed: local, standard,
//     frontier)"; an unknown model_tier without an override, with
//     "unknown_tier: model_tier: ...". (An override makes a task with an
//     unknown model_tier routable: that is how a sender's non-standard tier
//     is mapped onto a real one.)
//  3. One token is taken from the tier's bucket; an empty bucket
//     dead-letters it with "rate_limited: tier 'X' has no available
//     capacity".
//  4. It is published to WorkerSubject(worker_type, tier) with the
//     original headers. The original bytes are forwarded untouched,
//     unless the tier changed or the message had no task_id: then the
//     task is re-encoded with the resolved model_tier and the task_id the
//     Router assigned, so the worker sees what the Router logged.
//
// A dead letter (see DeadLetter) keeps the original bytes exactly and is
// published on SubjectDeadLetter with the original headers.
//
// Logs: router.routed (debug; task_id, worker_type, model_tier, subject),
// router.dead_lettered (warn; reason, task_id, worker_type),
// router.publish_failed (error), router.rules_loaded and router.reloaded
// (info; overrides and rate_limits counts), router.reload_failed (error),
// router.rules_warning (warn), actor.subscribed.
type Router struct {
	b       bus.Bus
	cfg     Config
	log     *observe.Emitter
	limiter *ratelimit.TierLimiter

	rules    atomic.Pointer[ruleSet]
	reloadMu sync.Mutex // serializes loads

	running   atomic.Bool
	ready     chan struct{}
	readyOnce sync.Once

	forwards *forwardRing // nil with Config.SkipWorkerCheck

	stats struct {
		routed, overridden, deadLettered, invalid, unknownTier, rateLimited, noWorker, noWorkerUnknown,
		answered, answerErrors, publishErrors, reloads, reloadErrors atomic.Uint64
	}
}

// ruleSet is one loaded set of rules, immutable once published.
type ruleSet struct {
	rules     Rules
	overrides map[string]routerOverride
}

type routerOverride struct {
	name string           // as written in the rules
	tier heddle.ModelTier // "" when name is not a ModelTier
}

func newRouterRuleSet(r Rules) *ruleSet {
	set := &ruleSet{rules: r, overrides: make(map[string]routerOverride, len(r.TierOverrides))}
	for wt, name := range r.TierOverrides {
		o := routerOverride{name: name}
		if t := heddle.ModelTier(name); t.Valid() {
			o.tier = t
		}
		set.overrides[wt] = o
	}
	return set
}

// New returns a Router on b; it loads no rules and starts nothing
// until Run. It fails with heddle.ErrConfig when b is nil or ReloadTimeout
// is negative.
func New(b bus.Bus, cfg Config, opts ...heddle.Option) (*Router, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: the bus is nil", heddle.ErrConfig)
	}
	if cfg.ReloadTimeout < 0 {
		return nil, fmt.Errorf("%w: ReloadTimeout must not be negative, got %v", heddle.ErrConfig, cfg.ReloadTimeout)
	}
	if cfg.DrainTimeout < 0 {
		return nil, fmt.Errorf("%w: router: Config.DrainTimeout must not be negative, got %v", heddle.ErrConfig, cfg.DrainTimeout)
	}
	if cfg.ReloadTimeout == 0 {
		cfg.ReloadTimeout = DefaultReloadTimeout
	}
	if cfg.Rules == nil {
		cfg.Rules = StaticRules(Rules{})
	}
	r := &Router{
		b:       b,
		cfg:     cfg,
		log:     observe.New(opts...),
		limiter: ratelimit.NewTierLimiter(nil),
		ready:   make(chan struct{}),
	}
	if !cfg.SkipWorkerCheck {
		r.forwards = newForwardRing()
	}
	return r, nil
}

// Ready is closed once Run's subscriptions are live: a task or reload
// message published afterwards is received.
func (r *Router) Ready() <-chan struct{} { return r.ready }

// Stats returns the Router's counters.
func (r *Router) Stats() Stats {
	s := &r.stats
	return Stats{
		Routed:          s.routed.Load(),
		Overridden:      s.overridden.Load(),
		DeadLettered:    s.deadLettered.Load(),
		InvalidMessages: s.invalid.Load(),
		UnknownTiers:    s.unknownTier.Load(),
		RateLimited:     s.rateLimited.Load(),
		NoWorker:        s.noWorker.Load(),
		NoWorkerUnknown: s.noWorkerUnknown.Load(),
		PublishErrors:   s.publishErrors.Load(),
		Answered:        s.answered.Load(),
		AnswerErrors:    s.answerErrors.Load(),
		Reloads:         s.reloads.Load(),
		ReloadErrors:    s.reloadErrors.Load(),
	}
}

// Rules returns a copy of the rules in force; the zero Rules before
// the first load.
func (r *Router) Rules() Rules {
	if set := r.rules.Load(); set != nil {
		return set.rules.Clone()
	}
	return Rules{}
}

// Run loads the rules (returning the error if that fails), subscribes to
// SubjectTasksIncoming in RouterQueueGroup and to SubjectControlReload (a
// plain subscription, so every replica reloads), and routes tasks until
// ctx ends. Then it drains both subscriptions, routing the tasks already
// delivered to it within Config.DrainTimeout, and returns nil. It returns heddle.ErrStarted while
// another Run of the same Router is in progress.
func (r *Router) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return heddle.ErrStarted
	}
	if err := r.load(ctx, false); err != nil {
		return fmt.Errorf("heddle: router: initial rules: %w", err)
	}
	var status bus.Subscription
	if r.forwards != nil {
		var err error
		status, err = r.b.Subscribe(ctx, r.forwards.inbox+">", r.handleStatus, bus.LocalInterest())
		if err != nil {
			return fmt.Errorf("heddle: router subscribing to its status inbox: %w", err)
		}
	}
	tasks, err := r.b.Subscribe(ctx, heddle.SubjectTasksIncoming, r.handleTask, bus.Queue(heddle.RouterQueueGroup))
	if err != nil {
		if status != nil {
			_ = status.Unsubscribe()
		}
		return fmt.Errorf("heddle: router subscribing to %s: %w", heddle.SubjectTasksIncoming, err)
	}
	control, err := r.b.Subscribe(ctx, heddle.SubjectControlReload, r.handleReload)
	if err != nil {
		_ = tasks.Unsubscribe()
		if status != nil {
			_ = status.Unsubscribe()
		}
		return fmt.Errorf("heddle: router subscribing to %s: %w", heddle.SubjectControlReload, err)
	}
	r.log.Info("actor.subscribed", "subject", heddle.SubjectTasksIncoming, "queue", heddle.RouterQueueGroup)
	r.log.Info("actor.subscribed", "subject", heddle.SubjectControlReload, "queue", "")
	r.readyOnce.Do(func() { close(r.ready) })

	<-ctx.Done()
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmp.Or(r.cfg.DrainTimeout, heddle.DefaultDrainTimeout))
	defer cancel()
	var errs []error
	subs := []bus.Subscription{tasks, control}
	if status != nil {
		// Last: the statuses of the tasks forwarded while draining.
		if err := r.b.Flush(drain); err != nil && !errors.Is(err, bus.ErrClosed) {
			errs = append(errs, fmt.Errorf("heddle: router flushing: %w", err))
		}
		subs = append(subs, status)
	}
	for _, sub := range subs {
		if err := sub.Drain(drain); err != nil && !errors.Is(err, bus.ErrClosed) {
			errs = append(errs, fmt.Errorf("heddle: router draining %s: %w", sub.Subject(), err))
		}
	}
	return errors.Join(errs...)
}

// Reload asks the rules source for new rules and applies them. Rules that
// fail to load or to validate are rejected: the error is returned and
// logged as router.reload_failed, and the previous rules stay in force.
// On success router.reloaded is logged. Buckets whose limit is unchanged
// keep their tokens (a reload hands out no fresh burst); changed or new
// limits start full. Reloads are serialized; a task routed during one
// sees the old or the new overrides.
func (r *Router) Reload(ctx context.Context) error { return r.load(ctx, true) }

func (r *Router) load(ctx context.Context, reload bool) error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	rules, err := r.cfg.Rules(ctx)
	if err == nil {
		err = rules.Validate()
	}
	if err != nil {
		if !reload {
			return err
		}
		r.stats.reloadErrors.Add(1)
		r.log.Error("router.reload_failed", "error", err.Error())
		return fmt.Errorf("heddle: router reload failed, previous rules kept: %w", err)
	}
	rules = rules.Clone()
	r.limiter.Update(rules.Limits())
	r.rules.Store(newRouterRuleSet(rules))
	for _, w := range rules.Warnings() {
		r.log.Warn("router.rules_warning", "warning", w)
	}
	event := "router.rules_loaded"
	if reload {
		r.stats.reloads.Add(1)
		event = "router.reloaded"
	}
	r.log.Info(event, "overrides", len(rules.TierOverrides), "rate_limits", len(rules.RateLimits))
	return nil
}

func (r *Router) handleReload(ctx context.Context, _ *bus.Msg) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ReloadTimeout)
	defer cancel()
	_ = r.Reload(ctx) // logged and counted by load
	return nil
}

func (r *Router) handleTask(ctx context.Context, msg *bus.Msg) error {
	r.route(ctx, msg)
	return nil
}

// route handles one message on SubjectTasksIncoming; see Router.
func (r *Router) route(ctx context.Context, msg *bus.Msg) {
	data := msg.Data
	set := r.rules.Load()
	// The envelope alone is decoded: the payload and metadata are checked
	// but not built, as the original bytes are usually forwarded.
	m, err := heddle.DecodeTaskEnvelope(data)
	tierOK := true
	if err != nil {
		var ve *heddle.ValidationError
		if !errors.As(err, &ve) || !unknownTierOnly(ve) {
			r.deadLetter(ctx, msg, heddle.ReasonInvalidTaskMessage, err.Error())
			return
		}
		tierOK = false
		err = errors.New(ve.Fields[0].String())
	}

	tier := m.ModelTier
	if o, ok := set.overrides[m.WorkerType]; ok {
		if o.tier == "" {
			r.deadLetter(ctx, msg, heddle.ReasonUnknownTier, fmt.Sprintf("tier override for worker_type '%s' names unknown tier '%s' (allowed: %s)",
				m.WorkerType, o.name, tierNames))
			return
		}
		tier = o.tier
	} else if !tierOK {
		r.deadLetter(ctx, msg, heddle.ReasonUnknownTier, err.Error())
		return
	}

	if !r.limiter.Allow(string(tier)) {
		r.deadLetter(ctx, msg, heddle.ReasonRateLimited, fmt.Sprintf("tier '%s' has no available capacity", tier))
		return
	}

	out, overridden := data, tier != m.ModelTier
	// A task_id absent from the original was assigned by the decoder; a
	// fresh UUID cannot occur in the bytes by chance. (The stack buffer
	// spares an allocation for ids of up to 64 bytes.)
	var idBuf [64]byte
	if overridden || !bytes.Contains(data, append(idBuf[:0], m.TaskID...)) {
		// Re-encoding needs the whole task. Its verdict is the envelope's
		// (at most the model_tier problem, which the tier resolved above
		// replaces); a task_id it assigns replaces the envelope's.
		m, _ = heddle.DecodeTaskMessage(data)
		m.ModelTier = tier
		if out, err = m.Encode(); err != nil {
			r.deadLetter(ctx, msg, heddle.ReasonInvalidTaskMessage, err.Error())
			return
		}
	}
	subject := heddle.WorkerSubject(m.WorkerType, tier)
	// Counted before the publish, so whoever sees the task (or its result)
	// sees it counted; a failed publish moves it to PublishErrors.
	r.stats.routed.Add(1)
	if overridden {
		r.stats.overridden.Add(1)
	}
	fwd := &bus.Msg{Subject: subject, Header: msg.Header, Data: out}
	if r.forwards != nil {
		fwd.Reply = r.forwards.add(msg, m.TaskID, m.WorkerType, tier, overridden)
	}
	if err := r.b.Publish(ctx, fwd); err != nil {
		r.stats.routed.Add(^uint64(0))
		if overridden {
			r.stats.overridden.Add(^uint64(0))
		}
		r.log.Count(ctx, &r.stats.publishErrors, slog.LevelError, "router.publish_failed", "subject", subject, "task_id", m.TaskID,
			"worker_type", m.WorkerType, "model_tier", string(tier), "error", err.Error())
		return
	}
	if r.log.Enabled(ctx, slog.LevelDebug) { // spares the arguments' allocations
		r.log.Debug("router.routed", "task_id", m.TaskID, "worker_type", m.WorkerType,
			"model_tier", string(tier), "subject", subject)
	}
}

// unknownTierOnly reports whether the message's only problem is a
// model_tier string naming no tier: the sender asked for a tier that does
// not exist. A model_tier of another JSON type is an invalid message.
func unknownTierOnly(ve *heddle.ValidationError) bool {
	return len(ve.Fields) == 1 && ve.Fields[0].Field == "model_tier" &&
		strings.Contains(ve.Fields[0].Problem, " is not one of ")
}

// deadLetter publishes the original message, untouched, in a DeadLetter
// envelope on SubjectDeadLetter, with reason "<kind>: <detail>".
func (r *Router) deadLetter(ctx context.Context, msg *bus.Msg, kind, detail string) {
	reason := kind + ": " + detail
	d := heddle.NewDeadLetter(reason, msg.Data)
	// Counted before the publish, like a routed task.
	byReason := &r.stats.invalid
	switch kind {
	case heddle.ReasonNoWorker:
		byReason = &r.stats.noWorker
	case heddle.ReasonRateLimited:
		byReason = &r.stats.rateLimited
	case heddle.ReasonUnknownTier:
		byReason = &r.stats.unknownTier
	}
	r.stats.deadLettered.Add(1)
	byReason.Add(1)
	env, err := d.Encode()
	if err == nil {
		err = r.b.Publish(ctx, &bus.Msg{Subject: heddle.SubjectDeadLetter, Header: msg.Header, Data: env})
	}
	truncated := false
	if errors.Is(err, bus.ErrMaxPayload) {
		// Too large with the original inside: the dead letter goes out
		// with the original's size, hash and head in its place, never
		// lost with only a counter.
		if env, err = d.Truncated().Encode(); err == nil {
			truncated = true
			err = r.b.Publish(ctx, &bus.Msg{Subject: heddle.SubjectDeadLetter, Header: msg.Header, Data: env})
		}
	}
	if err != nil {
		r.stats.deadLettered.Add(^uint64(0))
		byReason.Add(^uint64(0))
		r.log.Count(ctx, &r.stats.publishErrors, slog.LevelError, "router.publish_failed", "subject", heddle.SubjectDeadLetter, "reason", reason,
			"task_id", d.TaskID, "worker_type", d.WorkerType, "error", err.Error())
		return
	}
	if !r.cfg.NoDeadLetterResults {
		r.answer(ctx, msg, d, kind)
	}
	if truncated {
		r.log.Warn("router.dead_lettered", "reason", reason, "task_id", d.TaskID, "worker_type", d.WorkerType,
			"truncated", true, "original_size", len(msg.Data))
		return
	}
	r.log.Warn("router.dead_lettered", "reason", reason, "task_id", d.TaskID, "worker_type", d.WorkerType)
}

// answer publishes a failed TaskResult for a dead-lettered task, so that
// its caller, waiting on the task's result subject, returns at once with
// the reason. It needs the task's task_id and a usable parent_task_id
// from the original; without them nobody can be waiting for this answer.
func (r *Router) answer(ctx context.Context, msg *bus.Msg, d heddle.DeadLetter, kind string) {
	var members map[string]json.RawMessage
	if d.TaskID == "" || json.Unmarshal(msg.Data, &members) != nil {
		return
	}
	parent, _ := wire.PeekString(msg.Data, "parent_task_id")
	workerType := cmp.Or(d.WorkerType, "router")
	res := heddle.NewTaskResult(d.TaskID, workerType, heddle.StatusFailed)
	res.ParentTaskID = parent
	res.Error = d.Reason
	res.Metadata = map[string]any{heddle.MetadataDeadLetterReason: kind}
	res.AddExtensions(members) // the task's extensions, as a worker's result has them
	data, err := res.Encode()
	if err != nil {
		// The original's ids cannot make a valid result (a task_id or
		// parent_task_id unusable in a subject): nobody waits for it.
		return
	}
	if err := r.b.Publish(ctx, &bus.Msg{Subject: res.Subject(), Data: data}); err != nil {
		r.log.Count(ctx, &r.stats.answerErrors, slog.LevelError, "router.publish_failed", "subject", res.Subject(), "task_id", d.TaskID,
			"worker_type", d.WorkerType, "reason", d.Reason, "error", err.Error())
		return
	}
	r.stats.answered.Add(1)
}
