package router

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/codec"
	"github.com/heddle-go/heddle/internal/observe"
	"github.com/heddle-go/heddle/internal/wire"
	"github.com/heddle-go/heddle/ratelimit"
)

// decodeTaskEnvelope decodes a task's envelope alone (see internal/codec).
var decodeTaskEnvelope = codec.DecodeTaskEnvelope.(func([]byte) (heddle.TaskMessage, error))

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
	// dead-letters the task as no_worker (event.ReasonNoWorker) and
	// answers its caller. The Python router does not check.
	SkipWorkerCheck bool
	// ForwardBudget bounds, in bytes, what the worker check keeps of the
	// forwarded tasks whose fate the router does not know yet: each one's
	// bytes, header and ids, plus a fixed overhead. (On membus a kept
	// payload of up to 8 KiB also keeps the 64 KiB chunk its copy was
	// carved from, as any kept message does; the tasks kept are the
	// latest, whose chunks are mostly still in use.) A task is kept from
	// its forward until the bus reports its worker subject unserved or the
	// router learns it was delivered, about a round trip to the server
	// later. When the budget is spent the next task waits for room before
	// it is forwarded (the tasks behind it wait in the incoming
	// subscription, within its pending limits); a task larger than the
	// whole budget waits until nothing else is kept. Zero means
	// DefaultForwardBudget; it must not be negative.
	ForwardBudget int
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
	//
	// Tasks held for their tier's capacity (see
	// TierRateLimit.MaxWaitSeconds) are answered within it: those whose
	// token comes before it expires are forwarded when it comes, the
	// others are dead-lettered at once with ReasonShutdown, and so is any
	// still held when it expires.
	DrainTimeout time.Duration
	// MaxHeld and HoldBudget bound the tasks held at once, across tiers,
	// waiting for their tier's capacity (see TierRateLimit.MaxWaitSeconds):
	// their number, and their bytes (each one's bytes, header and ids,
	// twice its bytes when it is re-encoded, plus a fixed overhead). A task
	// that would pass either bound is dead-lettered as rate_limited at
	// once, as it would be without a maximum wait. Zero means
	// DefaultMaxHeld and DefaultHoldBudget; they must not be negative.
	MaxHeld    int
	HoldBudget int
	// Durable, when set, consumes SubjectTasksIncoming from a stream on
	// the bus's durable capability (bus.Durable) and acknowledges each
	// task once its outcome is stored; see DurableConfig.
	Durable *DurableConfig
	// Limiter, when set, takes the tiers' tokens instead of a
	// ratelimit.TierLimiter of the Router's own; the Router gives it the
	// rules' limits at every load. A ratelimit.SharedLimiter makes the
	// replicas draw from one bucket per tier, so that together they admit
	// the configured rate, not one rate each.
	Limiter ratelimit.Admitter
}

// Stats counts what a Router did with each message. Every message on
// SubjectTasksIncoming is counted exactly once, when its fate is known: in
// Routed, in DeadLettered and one of the counters by reason, or in
// PublishErrors. Each counter only ever increases, and each equals the
// number of its events (router.routed, router.dead_lettered,
// router.publish_failed with the subject at fault, ...): one event per
// outcome, emitted after the count.
type Stats struct {
	// Routed counts tasks delivered to their worker subject. With the
	// worker check on (see Config.SkipWorkerCheck) a task is counted, and
	// router.routed emitted, once the bus has had the chance to report
	// its worker subject unserved and did not: about a round trip after
	// the forward. Tasks still awaiting that when Run returns are counted
	// then. With the check off a task is counted once its publish returns.
	Routed uint64
	// Overridden counts the tasks forwarded with the tier of their
	// tier_overrides entry, where it differed from their model_tier. It
	// describes the routing, not a fate: a task is counted just before
	// its forward is published, so whoever holds its result sees it
	// counted; it stays counted when the publish fails or the task is
	// then dead-lettered as no_worker.
	Overridden uint64
	// DeadLettered counts the tasks dead-lettered, of every reason. Each
	// is counted when the router decides, before its answer and its dead
	// letter are published, so whoever sees either sees it counted.
	DeadLettered uint64
	// InvalidMessages, UnknownTiers and RateLimited count the dead-lettered
	// tasks by reason.
	InvalidMessages uint64
	UnknownTiers    uint64
	RateLimited     uint64
	// Shutdown counts the held tasks dead-lettered with ReasonShutdown:
	// the router stopped before their token came.
	Shutdown uint64
	// Throttled counts the tasks held for their tier's capacity (logged as
	// router.throttled, one per task, when it is held). It describes the
	// routing, not a fate: each is also counted, once, by its outcome.
	Throttled uint64
	// NoWorker counts the tasks dead-lettered because nothing served their
	// worker subject (see Config.SkipWorkerCheck); such a task is not
	// counted in Routed.
	NoWorker uint64
	// NoWorkerUnknown counts the bus's reports of an unserved task the
	// router had already counted as routed (logged as
	// router.no_worker_unknown). It stays zero on membus and natsbus,
	// which keep the order the check relies on; a bus that does not loses
	// such a task, as any task nothing serves.
	NoWorkerUnknown uint64
	// PublishErrors counts tasks lost because forwarding them failed: the
	// publish to the worker subject, or the wait for room in
	// Config.ForwardBudget, which ends with Run or the bus (logged as
	// router.publish_failed).
	PublishErrors uint64
	// DeadLetterErrors counts dead letters lost because their publish
	// failed (logged as router.publish_failed); their tasks are counted by
	// reason above, and their callers were answered.
	DeadLetterErrors uint64
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
// each has its own rate-limit buckets unless Config.Limiter gives them a
// shared one (ratelimit.SharedLimiter).
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
//     capacity", unless the tier has a maximum wait (see Throttling).
//  4. It is published to WorkerSubject(worker_type, tier) with the
//     original headers. The original bytes are forwarded untouched,
//     unless the tier changed or the message had no task_id: then the
//     task is re-encoded with the resolved model_tier and the task_id the
//     Router assigned, so the worker sees what the Router logged.
//  5. Unless Config.SkipWorkerCheck, it is kept (within
//     Config.ForwardBudget) until the bus has had the chance to report its
//     worker subject unserved: then it is dead-lettered with "no_worker:
//     no worker serves 'X' at tier 'Y'"; otherwise it counts as routed.
//
// # Throttling
//
// A tier whose rate limit has a maximum wait (max_wait_seconds, see
// TierRateLimit) holds a task that finds its bucket empty instead of
// dead-lettering it: the task reserves the next token, and when that
// token comes within the maximum wait the task is held until then and
// forwarded (steps 4 and 5); when it comes later, the reservation is
// handed back and the task is dead-lettered as rate_limited at once, as
// without a wait. Held tasks:
//
//   - do not hold up the router: the tasks behind them, of their tier or
//     another, are routed meanwhile, and one goroutine forwards each held
//     task when its token comes;
//   - leave in the order they came, per tier: tokens are reserved in
//     turn, and a task of a tier with tasks held waits behind them even
//     when its own token is free (after a reload gave the tier a new
//     bucket), unless the hold is full: then it goes at once;
//   - are bounded by Config.MaxHeld and Config.HoldBudget: past either,
//     a task that would wait is dead-lettered as rate_limited;
//   - are answered when Run ends: a task whose token comes within
//     Config.DrainTimeout is forwarded when it comes; the others are
//     dead-lettered with ReasonShutdown as the drain begins, and so is any
//     still held when the drain ends or the bus closes, each one's caller
//     answered and its token handed back.
//
// Each held task is logged as router.throttled (info; task_id,
// worker_type, model_tier, wait) and counted in Stats.Throttled when it
// is held; its outcome is counted as any task's. A reload applies the new
// maximum waits to the tasks that come after it; the tasks held keep
// their reserved tokens.
//
// A task_id, parent_task_id or worker_type that is not valid UTF-8 in the
// original bytes is an invalid message naming the field: decoding would
// replace the bad bytes with U+FFFD and route the task under a name its
// sender never wrote.
//
// A dead letter (see DeadLetter) keeps the original bytes exactly and is
// published on SubjectDeadLetter with the original headers, after the
// failed result that answers its caller: a dead letter can be replayed as
// soon as it is out, and the replay's caller must not collect the stale
// answer.
//
// Logs: router.routed (debug; task_id, worker_type, model_tier, subject;
// when the task's fate is known, see Stats.Routed), router.dead_lettered
// (warn; reason, task_id, worker_type), router.throttled (info; see
// Throttling), router.no_worker_unknown (warn),
// router.publish_failed (error), router.rules_loaded and router.reloaded
// (info; overrides and rate_limits counts), router.reload_failed (error),
// router.rules_warning (warn), actor.subscribed.
type Router struct {
	b       bus.Bus
	cfg     Config
	log     *observe.Emitter
	limiter ratelimit.Admitter

	// statusBuf is handleStatus's buffer of routed tasks to report,
	// reused from mark to mark.
	statusBuf []routedTask

	rules    atomic.Pointer[ruleSet]
	reloadMu sync.Mutex // serializes loads

	running   atomic.Bool
	ready     chan struct{}
	readyOnce sync.Once

	durable *routerDurable // nil in core mode

	forwards  *forwardTable // nil with Config.SkipWorkerCheck
	subjects  workerSubjects
	held      *holder       // the tasks waiting for their tier's capacity
	quit      chan struct{} // closed when Run ends
	markRetry time.Duration // markRetry; tests shorten it

	stats struct {
		routed, overridden, deadLettered, invalid, unknownTier, rateLimited, shutdown, throttled, noWorker, noWorkerUnknown,
		answered, answerErrors, publishErrors, deadLetterErrors, reloads, reloadErrors atomic.Uint64
	}
}

// ruleSet is one loaded set of rules, immutable once published.
type ruleSet struct {
	rules     Rules
	overrides map[string]routerOverride
	waits     map[heddle.ModelTier]time.Duration // the tiers with a maximum wait
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
	for tier, l := range r.RateLimits {
		if w := l.MaxWait(); w > 0 {
			if set.waits == nil {
				set.waits = map[heddle.ModelTier]time.Duration{}
			}
			set.waits[heddle.ModelTier(tier)] = w
		}
	}
	return set
}

// New returns a Router on b; it loads no rules and starts nothing
// until Run. It fails with heddle.ErrConfig when b is nil or a duration
// or bound of cfg is negative.
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
	if cfg.ForwardBudget < 0 {
		return nil, fmt.Errorf("%w: router: Config.ForwardBudget must not be negative, got %d", heddle.ErrConfig, cfg.ForwardBudget)
	}
	if cfg.MaxHeld < 0 {
		return nil, fmt.Errorf("%w: router: Config.MaxHeld must not be negative, got %d", heddle.ErrConfig, cfg.MaxHeld)
	}
	if cfg.HoldBudget < 0 {
		return nil, fmt.Errorf("%w: router: Config.HoldBudget must not be negative, got %d", heddle.ErrConfig, cfg.HoldBudget)
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
		log:     observe.Actor("router", opts...),
		limiter: ratelimit.NewTierLimiter(nil),
		held:    newHolder(cmp.Or(cfg.MaxHeld, DefaultMaxHeld), cmp.Or(cfg.HoldBudget, DefaultHoldBudget)),
		ready:   make(chan struct{}),
		quit:    make(chan struct{}),

		markRetry: markRetry,
	}
	if cfg.Limiter != nil {
		r.limiter = cfg.Limiter
	}
	if !cfg.SkipWorkerCheck {
		r.forwards = newForwardTable(cmp.Or(cfg.ForwardBudget, DefaultForwardBudget))
	}
	if cfg.Durable != nil {
		if err := r.setupDurable(); err != nil {
			return nil, err
		}
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
		Routed:           s.routed.Load(),
		Overridden:       s.overridden.Load(),
		DeadLettered:     s.deadLettered.Load(),
		InvalidMessages:  s.invalid.Load(),
		UnknownTiers:     s.unknownTier.Load(),
		RateLimited:      s.rateLimited.Load(),
		Shutdown:         s.shutdown.Load(),
		Throttled:        s.throttled.Load(),
		NoWorker:         s.noWorker.Load(),
		NoWorkerUnknown:  s.noWorkerUnknown.Load(),
		PublishErrors:    s.publishErrors.Load(),
		DeadLetterErrors: s.deadLetterErrors.Load(),
		Answered:         s.answered.Load(),
		AnswerErrors:     s.answerErrors.Load(),
		Reloads:          s.reloads.Load(),
		ReloadErrors:     s.reloadErrors.Load(),
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
// ctx ends or the bus closes.
//
// When ctx ends it drains, within Config.DrainTimeout: it routes the tasks
// already delivered to it, forwards the held tasks whose tokens come in
// time and dead-letters the others (see Throttling), then waits for the
// bus's reports on every task it forwarded (a flush, then its status inbox
// drained), and returns nil, or what went wrong while draining. When the
// bus closes (see bus.Closer) it returns at once with an error wrapping
// bus.ErrClosed that says why, so that a supervisor can restart the
// process. It returns
// heddle.ErrStarted while another Run of the same Router is in progress,
// or after one.
func (r *Router) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return heddle.ErrStarted
	}
	// Last: a task handler still waiting for room gives up.
	defer close(r.quit)
	if err := r.load(ctx, false); err != nil {
		return fmt.Errorf("heddle: router: initial rules: %w", err)
	}
	var status bus.Subscription
	if r.forwards != nil {
		// Room for a status and a mark per remembered task, so that the
		// budget, not the pending limits, bounds what the inbox holds.
		n := 2*r.forwards.maxEntries() + 1024
		var err error
		status, err = r.b.Subscribe(ctx, r.forwards.inbox+">", r.handleStatus, bus.LocalInterest(),
			bus.PendingLimits(max(n, bus.DefaultPendingMsgs), max(64*n, bus.DefaultPendingBytes)))
		if err != nil {
			if ctx.Err() != nil {
				return nil // stopped while starting
			}
			return fmt.Errorf("heddle: router subscribing to its status inbox: %w", err)
		}
		marks, stop := context.WithCancel(context.WithoutCancel(ctx))
		var wg sync.WaitGroup
		wg.Go(func() { r.marker(marks, r.markRetry) })
		defer wg.Wait()
		defer stop()
	}
	// The releaser stops before the marker: a held task it forwards is
	// remembered, and the marks confirm it. Whatever is still held when
	// Run returns is answered.
	release, stopRelease := context.WithCancel(context.WithoutCancel(ctx))
	var releasing sync.WaitGroup
	releasing.Go(func() { r.releaser(release) })
	stopReleaser := func() {
		stopRelease()
		releasing.Wait()
		r.dropHeld(ctx, r.held.close())
	}
	defer stopReleaser()
	tasks, err := r.subscribeTasks(ctx)
	if err != nil {
		if status != nil {
			_ = status.Unsubscribe()
		}
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return fmt.Errorf("heddle: router subscribing to %s: %w", heddle.SubjectTasksIncoming, err)
	}
	control, err := r.b.Subscribe(ctx, heddle.SubjectControlReload, r.handleReload)
	if err != nil {
		_ = tasks.Unsubscribe()
		if status != nil {
			_ = status.Unsubscribe()
		}
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return fmt.Errorf("heddle: router subscribing to %s: %w", heddle.SubjectControlReload, err)
	}
	r.log.Emit(ctx, slog.LevelInfo, event.Event{Name: event.ActorSubscribed, Subject: heddle.SubjectTasksIncoming},
		slog.String("subject", heddle.SubjectTasksIncoming), slog.String("queue", heddle.RouterQueueGroup))
	r.log.Emit(ctx, slog.LevelInfo, event.Event{Name: event.ActorSubscribed, Subject: heddle.SubjectControlReload},
		slog.String("subject", heddle.SubjectControlReload), slog.String("queue", ""))
	r.readyOnce.Do(func() { close(r.ready) })

	select {
	case <-ctx.Done():
	case <-bus.Done(r.b):
		for _, sub := range []bus.Subscription{tasks, control, status} {
			if sub != nil {
				_ = sub.Unsubscribe() // gone with the bus; a wrapper's may not be
			}
		}
		// Nothing held can be forwarded now: each is dead-lettered (and
		// counted so), though the bus will not carry the dead letters.
		stopReleaser()
		r.confirmRest(ctx)
		return fmt.Errorf("heddle: router: %w", cmp.Or(bus.Err(r.b), bus.ErrClosed))
	}
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmp.Or(r.cfg.DrainTimeout, heddle.DefaultDrainTimeout))
	defer cancel()
	// A held task whose token comes after the drain cannot be forwarded:
	// it is answered now rather than when the drain ends.
	deadline, _ := drain.Deadline()
	r.dropHeld(ctx, r.held.drain(deadline))
	var errs []error
	drainSub := func(sub bus.Subscription) {
		if err := sub.Drain(drain); err != nil && !errors.Is(err, bus.ErrClosed) {
			errs = append(errs, fmt.Errorf("heddle: router draining %s: %w", sub.Subject(), err))
		}
	}
	drainSub(tasks)
	drainSub(control)
	// The tasks still held are due within the drain; those that are not
	// forwarded when it ends are dead-lettered by stopReleaser.
	if err := r.held.waitIdle(drain); err != nil {
		errs = append(errs, fmt.Errorf("heddle: router releasing held tasks: %w", err))
	}
	stopReleaser()
	if status != nil {
		// Every task is forwarded by now. After the flush the bus has sent
		// each one's no-responders status, if any, and draining the inbox
		// handles them all; the tasks still remembered were delivered.
		if err := r.b.Flush(drain); err != nil && !errors.Is(err, bus.ErrClosed) {
			errs = append(errs, fmt.Errorf("heddle: router flushing: %w", err))
		}
		drainSub(status)
		r.confirmRest(ctx)
	}
	return errors.Join(errs...)
}

// confirmRest counts as routed the tasks still remembered when Run ends:
// they were forwarded, and the bus did not report them unserved.
func (r *Router) confirmRest(ctx context.Context) {
	if r.forwards == nil {
		return
	}
	routed, done, _ := r.forwards.confirm(^uint64(0), r.log.Enabled(ctx, slog.LevelDebug, event.RouterRouted), nil)
	r.countRouted(ctx, routed, done)
}

// Reload asks the rules source for new rules and applies them. Rules that
// fail to load or to validate are rejected: the error is returned and
// logged as router.reload_failed, and the previous rules stay in force.
// On success router.reloaded is logged. Buckets whose limit is unchanged
// keep their tokens (a reload hands out no fresh burst); changed or new
// limits start full. A new max_wait_seconds applies to the tasks routed
// after the reload; a task held already keeps the token it reserved.
// Reloads are serialized; a task routed during one sees the old or the
// new overrides and maximum waits.
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

// route handles one message on SubjectTasksIncoming; see Router. It runs
// on the task subscription's one goroutine. With interceptors, the
// decision (and the forward or dead letter) runs inside them as one
// event.OpRoute; with a propagator, in the trace context of the task's
// _trace_context, which the forwarded task then carries.
//
// The message is decoded once, here when the event.Op needs its ids:
// decide judges that decoding. The envelope (ids, tier, _trace_context) is
// enough: with a propagator, the forward is the task's own bytes with the
// new _trace_context in place of the old one.
func (r *Router) route(ctx context.Context, msg *bus.Msg) {
	// Its route's duration goes with its router.routed or
	// router.dead_lettered event, when an observer wants the first (as
	// package metrics does): a clock read per task only then.
	var start time.Time
	if r.log.Enabled(ctx, slog.LevelDebug, event.RouterRouted) {
		start = time.Now()
	}
	if !r.log.Intercepted(event.OpRoute) && !r.log.Propagated() {
		r.decide(ctx, msg, nil, nil, start)
		return
	}
	t := &tracedRoute{r: r, msg: msg, start: start}
	t.d.m, t.d.err = decodeTaskEnvelope(msg.Data)
	m := &t.d.m
	ctx = r.log.Extract(ctx, m.Extra)
	t.op = event.Op{Kind: event.OpRoute, TaskID: m.TaskID, ParentTaskID: m.ParentTaskID, WorkerType: m.WorkerType,
		Tier: string(m.ModelTier), Subject: heddle.SubjectTasksIncoming, RetryCount: m.RetryCount}
	_ = r.log.Intercept(ctx, &t.op, t.decide)
}

// tracedRoute is one task routed inside the interceptors: its operation
// and its decoding in one allocation.
type tracedRoute struct {
	r     *Router
	msg   *bus.Msg
	d     decoded
	op    event.Op
	start time.Time
}

func (t *tracedRoute) decide(ctx context.Context) error {
	t.r.decide(ctx, t.msg, &t.op, &t.d, t.start)
	return t.op.Err
}

// decoded is a task message's envelope decoded before decide, and the
// decoder's verdict.
type decoded struct {
	m   heddle.TaskMessage
	err error
}

// decide routes msg, recording the outcome in op when it is not nil. d is
// msg decoded already, or nil; start is when its route began, or zero
// when nobody times it.
func (r *Router) decide(ctx context.Context, msg *bus.Msg, op *event.Op, d *decoded, start time.Time) {
	data := msg.Data
	set := r.rules.Load()
	var m heddle.TaskMessage
	var err error
	if d != nil {
		m, err = d.m, d.err
	} else {
		// The envelope alone is decoded: the payload and metadata are
		// checked but not built, as the original bytes are usually
		// forwarded.
		m, err = decodeTaskEnvelope(data)
	}
	if hasReplacement(m.TaskID) || hasReplacement(m.ParentTaskID) || hasReplacement(m.WorkerType) {
		err = checkUTF8(data, err)
	}
	tierOK := true
	if err != nil {
		var ve *heddle.ValidationError
		if !errors.As(err, &ve) || !unknownTierOnly(ve) {
			r.deadLetterOp(ctx, op, msg, start, event.ReasonInvalidTaskMessage, err.Error())
			return
		}
		tierOK = false
		err = errors.New(ve.Fields[0].String())
	}

	tier := m.ModelTier
	if o, ok := set.overrides[m.WorkerType]; ok {
		if o.tier == "" {
			r.deadLetterOp(ctx, op, msg, start, event.ReasonUnknownTier, fmt.Sprintf("tier override for worker_type '%s' names unknown tier '%s' (allowed: %s)",
				m.WorkerType, o.name, tierNames))
			return
		}
		tier = o.tier
	} else if !tierOK {
		r.deadLetterOp(ctx, op, msg, start, event.ReasonUnknownTier, err.Error())
		return
	}

	// A tier without a maximum wait takes its token as the Python router
	// does; with one, a token due within it is reserved, and the task is
	// held until it comes. So is a task whose tier has tasks held before
	// it, to keep the tier's order.
	var res ratelimit.Reservation
	held := false
	if wait := set.waits[tier]; wait == 0 {
		if !r.limiter.Allow(string(tier)) {
			r.deadLetterOp(ctx, op, msg, start, event.ReasonRateLimited, fmt.Sprintf("tier '%s' has no available capacity", tier))
			return
		}
	} else {
		var ok bool
		if res, ok = r.limiter.Reserve(string(tier), wait); !ok {
			r.deadLetterOp(ctx, op, msg, start, event.ReasonRateLimited, fmt.Sprintf("tier '%s' has no available capacity", tier))
			return
		}
		held = res.Due().After(time.Now())
	}
	held = held || r.held.busy(tier)

	o := outgoing{orig: msg, out: data, taskID: m.TaskID, workerType: m.WorkerType, tier: tier, overridden: tier != m.ModelTier,
		start: start}
	// A task_id absent from the original was assigned by the decoder; a
	// fresh UUID cannot occur in the bytes by chance. (The stack buffer
	// spares an allocation for ids of up to 64 bytes.)
	var idBuf [64]byte
	reencode := o.overridden || !bytes.Contains(data, append(idBuf[:0], m.TaskID...))
	if !reencode && r.log.Propagated() {
		// Only the trace context changes: the route's (which the worker
		// continues) is put in place of the task's own.
		if tc, ok := r.log.TraceContext(ctx, m.Extra); ok {
			if out, ok := wire.ReplaceMember(data, observe.TraceKey, tc); ok {
				o.out, o.reencoded = out, true
			} else {
				reencode = true // a form ReplaceMember leaves alone
			}
		}
	}
	if reencode {
		// Re-encoding needs the whole task. Its verdict is the envelope's
		// (at most the model_tier problem, which the tier resolved above
		// replaces), and it keeps the task_id the envelope was given, which
		// the event.Op already names.
		whole, _ := heddle.DecodeTaskMessage(data)
		whole.TaskID = m.TaskID
		m = whole
		m.ModelTier = tier
		m.Extra = r.log.Inject(ctx, m.Extra) // the trace context the route runs in
		if o.out, err = m.Encode(); err != nil {
			res.Cancel()
			r.deadLetterOp(ctx, op, msg, start, event.ReasonInvalidTaskMessage, err.Error())
			return
		}
		o.taskID, o.reencoded = m.TaskID, true
	}
	o.subject = r.subjects.get(m.WorkerType, tier)
	if op != nil {
		op.Tier, op.Subject, op.Status = string(tier), o.subject, "routed"
		if held {
			op.Status = "held"
		}
	}
	if held {
		r.hold(ctx, o, res, time.Now())
		return
	}
	r.forward(ctx, o)
}

// forward publishes a routed task to its worker subject and, with the
// worker check, keeps it until its fate is known; see Router. It runs on
// the task subscription's goroutine, or on the releaser's for a held task.
func (r *Router) forward(ctx context.Context, o outgoing) {
	fwd := &bus.Msg{Subject: o.subject, Header: o.orig.Header, Data: o.out}
	var seq uint64
	if r.forwards != nil {
		// Remembered before the publish: the bus's status may come before
		// Publish returns.
		var err error
		if seq, fwd.Reply, err = r.remember(ctx, o.orig, o.taskID, o.workerType, o.subject, o.tier, o.start); err != nil {
			r.publishFailed(ctx, &r.stats.publishErrors, o.subject, o.taskID, o.workerType, o.tier,
				fmt.Errorf("waiting for room in the forward budget: %w", err))
			return
		}
	}
	if o.overridden {
		// Before the publish: its result may come back before Publish
		// returns.
		r.stats.overridden.Add(1)
	}
	if err := r.b.Publish(ctx, fwd); err != nil {
		if r.forwards != nil && !r.forwards.drop(seq) {
			return // counted as routed when Run ended
		}
		r.publishFailed(ctx, &r.stats.publishErrors, o.subject, o.taskID, o.workerType, o.tier, err)
		return
	}
	if r.forwards != nil {
		// Counted when its fate is known (see handleStatus).
		if mark := r.forwards.sent(seq, o.start); mark != 0 {
			r.sendMark(ctx, mark)
		}
		return
	}
	r.stats.routed.Add(1)
	r.emitRouted(ctx, routedTask{taskID: o.taskID, workerType: o.workerType, subject: o.subject, tier: o.tier, took: took(o.start)})
}

// hasReplacement reports whether s holds U+FFFD, which the decoder writes
// for each byte that is not valid UTF-8 (and which a sender may also have
// written itself).
func hasReplacement(s string) bool { return strings.ContainsRune(s, utf8.RuneError) }

// utf8Fields are the members whose raw bytes checkUTF8 checks, in the
// order ValidationError names fields: the ids and the worker type, which
// name subjects and tasks.
var utf8Fields = []string{"task_id", "parent_task_id", "worker_type"}

// checkUTF8 adds to err (the envelope's verdict, nil or a
// *heddle.ValidationError) a problem for each of utf8Fields whose string
// in data is not valid UTF-8, in place of any other problem of that field:
// the decoded value is not what the sender wrote.
func checkUTF8(data []byte, err error) error {
	var d wire.Decoder
	d.Init(data)
	if !d.IsObject() {
		return err
	}
	var bad []heddle.FieldError
	for _, name := range utf8Fields {
		raw, ok := d.Take(name)
		if !ok || len(raw) < 2 || raw[0] != '"' {
			continue
		}
		inner := raw[1 : len(raw)-1]
		if at := invalidUTF8At(inner); at >= 0 {
			bad = append(bad, heddle.FieldError{Field: name,
				Problem: fmt.Sprintf("not valid UTF-8: byte 0x%02X at offset %d of the string", inner[at], at)})
		}
	}
	if len(bad) == 0 {
		return err
	}
	var ve *heddle.ValidationError
	if errors.As(err, &ve) {
		for _, f := range ve.Fields {
			if !slices.ContainsFunc(bad, func(b heddle.FieldError) bool { return b.Field == f.Field }) {
				bad = append(bad, f)
			}
		}
	}
	rank := func(f heddle.FieldError) int {
		if i := slices.Index(utf8Fields, f.Field); i >= 0 {
			return i
		}
		return len(utf8Fields)
	}
	slices.SortStableFunc(bad, func(a, b heddle.FieldError) int { return rank(a) - rank(b) })
	return &heddle.ValidationError{Type: "TaskMessage", Fields: bad}
}

// invalidUTF8At returns the offset of the first byte of b that is not
// valid UTF-8, or -1.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// unknownTierOnly reports whether the message's only problem is a
// model_tier string naming no tier: the sender asked for a tier that does
// not exist. A model_tier of another JSON type is an invalid message.
func unknownTierOnly(ve *heddle.ValidationError) bool {
	return len(ve.Fields) == 1 && ve.Fields[0].Field == "model_tier" &&
		strings.Contains(ve.Fields[0].Problem, " is not one of ")
}

// deadLetterOp dead-letters msg and records the outcome in op, when it
// is not nil.
func (r *Router) deadLetterOp(ctx context.Context, op *event.Op, msg *bus.Msg, start time.Time, kind, detail string) {
	if op != nil {
		op.Status, op.Reason, op.Err = "dead_lettered", kind, errors.New(kind+": "+detail)
	}
	r.deadLetter(ctx, msg, start, kind, detail)
}

// deadLetter publishes the original message, untouched, in a DeadLetter
// envelope on SubjectDeadLetter, with reason "<kind>: <detail>", after the
// failed result that answers its caller (see Router). start is when the
// task's route began, or zero when nobody times it.
func (r *Router) deadLetter(ctx context.Context, msg *bus.Msg, start time.Time, kind, detail string) {
	reason := kind + ": " + detail
	d := heddle.NewDeadLetter(reason, msg.Data)
	byReason := &r.stats.invalid
	switch kind {
	case event.ReasonNoWorker:
		byReason = &r.stats.noWorker
	case event.ReasonRateLimited:
		byReason = &r.stats.rateLimited
	case ReasonShutdown:
		byReason = &r.stats.shutdown
	case event.ReasonUnknownTier:
		byReason = &r.stats.unknownTier
	}
	r.stats.deadLettered.Add(1)
	byReason.Add(1)
	if !r.cfg.NoDeadLetterResults {
		r.answer(ctx, msg, d, kind)
	}
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
		r.publishFailed(ctx, &r.stats.deadLetterErrors, heddle.SubjectDeadLetter, d.TaskID, d.WorkerType, "", err,
			slog.String("reason", reason))
	}
	if !r.log.Enabled(ctx, slog.LevelWarn, event.RouterDeadLettered) {
		return
	}
	ev := event.Event{Name: event.RouterDeadLettered, TaskID: d.TaskID, WorkerType: d.WorkerType,
		Status: "dead_lettered", Reason: kind, Detail: reason}
	if !start.IsZero() {
		ev.Duration = time.Since(start)
	}
	if truncated {
		r.log.Emit(ctx, slog.LevelWarn, ev, slog.String("reason", reason), slog.String("task_id", d.TaskID),
			slog.String("worker_type", d.WorkerType), slog.Bool("truncated", true), slog.Int("original_size", len(msg.Data)))
		return
	}
	r.log.Emit(ctx, slog.LevelWarn, ev, slog.String("reason", reason), slog.String("task_id", d.TaskID),
		slog.String("worker_type", d.WorkerType))
}

// emitRouted reports one routed task (at debug level: the worker's
// result is the task's one INFO line).
func (r *Router) emitRouted(ctx context.Context, t routedTask) {
	if !r.log.Enabled(ctx, slog.LevelDebug, event.RouterRouted) { // spares the arguments' allocations
		return
	}
	r.log.Emit(ctx, slog.LevelDebug, event.Event{Name: event.RouterRouted, TaskID: t.taskID, WorkerType: t.workerType,
		Tier: string(t.tier), Subject: t.subject, Status: "routed", Duration: t.took},
		slog.String("task_id", t.taskID), slog.String("worker_type", t.workerType),
		slog.String("model_tier", string(t.tier)), slog.String("subject", t.subject))
}

// took returns the time since start, or 0 when start is zero (nobody
// times the route).
func took(start time.Time) time.Duration {
	if start.IsZero() {
		return 0
	}
	return time.Since(start)
}

// publishFailed counts in n and reports one publish that failed.
// The log record has the attributes naming the task, then more, then the
// error.
func (r *Router) publishFailed(ctx context.Context, n *atomic.Uint64, subject, taskID, workerType string, tier heddle.ModelTier, err error, more ...slog.Attr) {
	attrs := append([]slog.Attr{slog.String("subject", subject), slog.String("task_id", taskID), slog.String("worker_type", workerType),
		slog.String("model_tier", string(tier))}, more...)
	r.log.CountEvent(ctx, n, slog.LevelError, event.Event{Name: event.RouterPublishFailed, TaskID: taskID, WorkerType: workerType,
		Tier: string(tier), Subject: subject, Reason: event.ReasonPublish, Err: err},
		append(attrs, slog.String("error", err.Error()))...)
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
		r.publishFailed(ctx, &r.stats.answerErrors, res.Subject(), d.TaskID, d.WorkerType, "", err,
			slog.String("reason", d.Reason))
		return
	}
	r.stats.answered.Add(1)
}
