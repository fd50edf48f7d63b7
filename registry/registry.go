package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/observe"
)

// Events of the registry beside event.WorkerHeartbeatStale,
// event.WorkerReactivated and event.WorkerStopped; the slog message is the
// name.
const (
	// eventJoined: the first heartbeat of an instance (Info).
	eventJoined = event.WorkerJoined
	// eventExpected: Expect added an instance (Info).
	eventExpected = event.WorkerExpected
	// eventForgotten: an instance left the table, after Config.Retention
	// or to make room (Reason retention or full; Info).
	eventForgotten = event.WorkerForgotten
	// eventHeartbeat: one valid heartbeat received (Debug).
	eventHeartbeat = event.RegistryHeartbeat
	// eventParseError: a message on the heartbeat subjects that is not a
	// heartbeat, dropped (Warn).
	eventParseError = event.RegistryParseError
	// eventFull: the heartbeat of a new instance refused, the table being
	// full of active ones (Warn).
	eventFull = event.RegistryFull
	// eventQueryFailed: a request on heddle.SubjectWorkerRegistry that got
	// an error answer, or none (Warn).
	eventQueryFailed = event.RegistryQueryFailed
)

// Reasons of worker.heartbeat_stale and worker.forgotten.
const (
	reasonSilent    = "no_heartbeat"
	reasonNever     = "never_heartbeated"
	reasonRetention = "retention"
	reasonFull      = "full"
)

// Defaults of Config, used when a field is zero. The liveness defaults
// (interval, multiplier, sweep) are package heddle's, shared with the
// workers.
const (
	// DefaultMaxWorkers bounds the instances a Registry keeps.
	DefaultMaxWorkers = 10000
	// DefaultRetention is how long an inactive or stopped instance stays
	// in the table before it is forgotten.
	DefaultRetention = 24 * time.Hour
)

// maxInstanceID bounds an expected instance id, as heddle.Heartbeat
// bounds the one a heartbeat carries.
const maxInstanceID = 256

// ErrFull is returned by Expect when the table holds Config.MaxWorkers
// active instances and none can make room.
var ErrFull = errors.New("heddle: the worker registry is full")

// Config configures a Registry. The zero value is valid: every zero
// field means its documented default.
type Config struct {
	// HeartbeatInterval is the interval assumed for a worker that was
	// expected (Expect) and never heartbeated; a worker that heartbeated
	// is judged by the interval it announced. Zero means
	// heddle.DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// StaleMultiplier: a worker is stale once silent for this many of
	// its intervals. Zero means heddle.DefaultStaleMultiplier.
	StaleMultiplier int
	// SweepInterval is how often the monitor looks for stale workers and
	// forgets old ones. Zero means heddle.DefaultSweepInterval.
	SweepInterval time.Duration
	// Retention is how long an inactive or stopped worker stays in the
	// table. Zero means DefaultRetention.
	Retention time.Duration
	// MaxWorkers bounds the instances kept. Zero means DefaultMaxWorkers.
	MaxWorkers int
	// DrainTimeout bounds shutdown once Run's context ends: heartbeats
	// and requests already delivered are still handled until then. Zero
	// means heddle.DefaultDrainTimeout.
	DrainTimeout time.Duration
}

// Stats counts what a Registry did. The counters only increase, each
// with one event per count; Workers, Active, Inactive and Stopped are
// gauges, the table as it is now.
type Stats struct {
	// Heartbeats counts the valid heartbeats received (each a
	// registry.heartbeat event, at Debug); Malformed the messages on the
	// heartbeat subjects that were not one, dropped
	// (registry.parse_error).
	Heartbeats uint64
	Malformed  uint64
	// Joined counts the instances first heard of (worker.joined),
	// Expected those added by Expect (worker.expected).
	Joined   uint64
	Expected uint64
	// MarkedStale, Reactivated and MarkedStopped count the status changes
	// (worker.heartbeat_stale, worker.reactivated, worker.stopped).
	MarkedStale   uint64
	Reactivated   uint64
	MarkedStopped uint64
	// Forgotten counts the instances removed from the table, after
	// Retention or to make room (worker.forgotten); Refused the
	// heartbeats of new instances that found the table full of active
	// ones (registry.full).
	Forgotten uint64
	Refused   uint64
	// Queries counts the requests on heddle.SubjectWorkerRegistry;
	// QueryErrors the failures in answering them: a request without a
	// reply subject, a bad request, a table too large for the bus, an
	// answer that could not be published (registry.query_failed; a
	// request whose error answer could not be published either counts
	// twice).
	Queries     uint64
	QueryErrors uint64
	// Sweeps counts the monitor's sweeps.
	Sweeps uint64
	// Dropped counts the messages the Registry's subscriptions dropped as
	// a slow consumer, before it saw them (the bus reports each).
	Dropped uint64
	// ObserverPanics counts the recovered panics of the Registry's
	// Observers.
	ObserverPanics uint64

	// Workers is how many instances the table holds: Active + Inactive +
	// Stopped.
	Workers  int
	Active   int
	Inactive int
	Stopped  int
}

// record is the table's entry for one instance; guarded by Registry.mu.
// An Entry is a copy of it, but for the Heartbeat, which each heartbeat
// replaces and nothing modifies, so that the Entries given out share it.
type record struct {
	instanceID  string
	workerType  string
	status      Status
	statusSince time.Time
	knownSince  time.Time
	first, last time.Time
	heartbeats  uint64
	hb          *heddle.Heartbeat // the last one, its Extra dropped; nil before the first
}

// Registry keeps the table of worker instances and their liveness; see
// the package documentation. Its methods are safe for concurrent use, and
// the table outlives Run.
type Registry struct {
	b   bus.Bus
	id  string
	log *observe.Emitter
	now func() time.Time

	interval   time.Duration
	multiplier int
	sweepEvery time.Duration
	retention  time.Duration
	maxWorkers int
	drain      time.Duration

	started atomic.Bool
	ready   chan struct{}
	subs    atomic.Pointer[[]bus.Subscription]

	mu      sync.Mutex
	records map[string]*record

	stats struct {
		heartbeats, malformed, joined, expected, stale, reactivated, stopped,
		forgotten, refused, queries, queryErrors, sweeps atomic.Uint64
	}
}

// New returns a Registry on b with an empty table; it starts nothing
// until Run. A nil bus or a negative Config field is an error wrapping
// heddle.ErrConfig.
func New(b bus.Bus, cfg Config, opts ...heddle.Option) (*Registry, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: worker registry: the bus is nil", heddle.ErrConfig)
	}
	for _, f := range []struct {
		name  string
		value int64
	}{
		{"HeartbeatInterval", int64(cfg.HeartbeatInterval)},
		{"StaleMultiplier", int64(cfg.StaleMultiplier)},
		{"SweepInterval", int64(cfg.SweepInterval)},
		{"Retention", int64(cfg.Retention)},
		{"MaxWorkers", int64(cfg.MaxWorkers)},
		{"DrainTimeout", int64(cfg.DrainTimeout)},
	} {
		if f.value < 0 {
			return nil, fmt.Errorf("%w: worker registry: Config.%s is negative; use zero for the default", heddle.ErrConfig, f.name)
		}
	}
	return &Registry{
		b:          b,
		id:         uuid.NewString(),
		log:        observe.Actor("registry", opts...),
		now:        func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		interval:   cmp.Or(cfg.HeartbeatInterval, heddle.DefaultHeartbeatInterval),
		multiplier: cmp.Or(cfg.StaleMultiplier, heddle.DefaultStaleMultiplier),
		sweepEvery: cmp.Or(cfg.SweepInterval, heddle.DefaultSweepInterval),
		retention:  cmp.Or(cfg.Retention, DefaultRetention),
		maxWorkers: cmp.Or(cfg.MaxWorkers, DefaultMaxWorkers),
		drain:      cmp.Or(cfg.DrainTimeout, heddle.DefaultDrainTimeout),
		ready:      make(chan struct{}),
		records:    map[string]*record{},
	}, nil
}

// ID returns the registry's id, a UUID, which its answers on the bus
// carry as registry_id.
func (r *Registry) ID() string { return r.id }

// Ready is closed once Run's subscriptions are live: a heartbeat or
// request published afterwards reaches the Registry.
func (r *Registry) Ready() <-chan struct{} { return r.ready }

// Run subscribes to every heartbeat (heddle.SubjectHeartbeats) and to
// requests on heddle.SubjectWorkerRegistry, and sweeps the table every
// SweepInterval until ctx ends; then it drains its subscriptions within
// DrainTimeout and returns nil (an error wrapping bus.ErrClosed when its
// bus closed for good). A Registry runs once; a second call returns
// heddle.ErrStarted.
func (r *Registry) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return heddle.ErrStarted
	}
	var subs []bus.Subscription
	for _, s := range []struct {
		subject string
		handle  bus.Handler
	}{
		{heddle.SubjectHeartbeats, r.handleHeartbeat},
		{heddle.SubjectWorkerRegistry, r.handleQuery},
	} {
		sub, err := r.b.Subscribe(ctx, s.subject, s.handle)
		if err != nil {
			for _, sub := range subs {
				_ = sub.Unsubscribe()
			}
			if ctx.Err() != nil {
				return nil // stopped while starting
			}
			return fmt.Errorf("heddle: worker registry: subscribe to %s: %w", s.subject, err)
		}
		subs = append(subs, sub)
		seen := slices.Clone(subs)
		r.subs.Store(&seen)
		r.log.Emit(context.Background(), slog.LevelInfo, event.Event{Name: event.ActorSubscribed, Subject: s.subject},
			slog.String("subject", s.subject), slog.String("queue", ""))
	}
	close(r.ready)

	tick := time.NewTicker(r.sweepEvery)
	defer tick.Stop()
	var closed error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-bus.Done(r.b):
			closed = fmt.Errorf("heddle: worker registry stopped: its bus closed: %w", cmp.Or(bus.Err(r.b), bus.ErrClosed))
			break loop
		case <-tick.C:
			r.Sweep()
		}
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.drain)
	defer cancel()
	var errs []error
	for _, sub := range subs {
		if err := sub.Drain(dctx); err != nil && !errors.Is(err, bus.ErrClosed) {
			errs = append(errs, fmt.Errorf("heddle: worker registry: drain %s: %w", sub.Subject(), err))
		}
	}
	return cmp.Or(closed, errors.Join(errs...))
}

// Stats returns the registry's counters and the table's gauges.
func (r *Registry) Stats() Stats {
	s := &r.stats
	out := Stats{
		Heartbeats:     s.heartbeats.Load(),
		Malformed:      s.malformed.Load(),
		Joined:         s.joined.Load(),
		Expected:       s.expected.Load(),
		MarkedStale:    s.stale.Load(),
		Reactivated:    s.reactivated.Load(),
		MarkedStopped:  s.stopped.Load(),
		Forgotten:      s.forgotten.Load(),
		Refused:        s.refused.Load(),
		Queries:        s.queries.Load(),
		QueryErrors:    s.queryErrors.Load(),
		Sweeps:         s.sweeps.Load(),
		ObserverPanics: r.log.ObserverPanics(),
	}
	if subs := r.subs.Load(); subs != nil {
		for _, sub := range *subs {
			out.Dropped += uint64(max(sub.Dropped(), 0))
		}
	}
	r.mu.Lock()
	for _, rec := range r.records {
		switch rec.status {
		case StatusActive:
			out.Active++
		case StatusInactive:
			out.Inactive++
		case StatusStopped:
			out.Stopped++
		}
	}
	out.Workers = len(r.records)
	r.mu.Unlock()
	return out
}

// Expect tells the registry of a worker instance it should hear from,
// such as one named in a deployment's configuration: until its first
// heartbeat it counts as active, and it goes inactive like any silent
// worker once HeartbeatInterval × StaleMultiplier have passed since
// Expect (worker.heartbeat_stale, reason never_heartbeated). Expecting an
// instance the table holds changes nothing. A bad worker type or
// instance id is an error wrapping heddle.ErrConfig; a table full of
// active instances, ErrFull.
func (r *Registry) Expect(workerType, instanceID string) error {
	if err := heddle.ValidateWorkerType(workerType); err != nil {
		return fmt.Errorf("worker registry: Expect: %w", err)
	}
	if instanceID == "" || len(instanceID) > maxInstanceID {
		return fmt.Errorf("%w: worker registry: Expect: the instance id must hold 1 to %d bytes, got %d", heddle.ErrConfig, maxInstanceID, len(instanceID))
	}
	now := r.now()
	var ev events
	r.mu.Lock()
	if _, ok := r.records[instanceID]; ok {
		r.mu.Unlock()
		return nil
	}
	if !r.makeRoomLocked(now, &ev) {
		r.mu.Unlock()
		ev.emit(r)
		return fmt.Errorf("%w: %d active instances (Config.MaxWorkers); cannot expect %s %q", ErrFull, r.maxWorkers, workerType, instanceID)
	}
	rec := &record{instanceID: instanceID, workerType: workerType, status: StatusActive, statusSince: now, knownSince: now}
	r.records[instanceID] = rec
	ev.add(&r.stats.expected, slog.LevelInfo, eventExpected, rec, "",
		slog.Duration("stale_after", r.staleAfter(rec)))
	r.mu.Unlock()
	ev.emit(r)
	return nil
}

// staleAfter is how long rec may stay silent before it is stale.
func (r *Registry) staleAfter(rec *record) time.Duration {
	interval := r.interval
	if rec.hb != nil {
		interval = rec.hb.Interval
	}
	return time.Duration(r.multiplier) * interval
}

// handleHeartbeat records one heartbeat: a new instance joins, a silent
// or stopped one is reactivated, a stopping one is stopped at once.
func (r *Registry) handleHeartbeat(_ context.Context, msg *bus.Msg) error {
	hb, err := heddle.DecodeHeartbeat(msg.Data)
	if err != nil {
		r.log.CountEvent(context.Background(), &r.stats.malformed, slog.LevelWarn,
			event.Event{Name: eventParseError, Subject: msg.Subject, Reason: event.ReasonDecode, Detail: err.Error(), Err: err},
			slog.String("subject", msg.Subject), slog.Int("size", len(msg.Data)), slog.String("error", err.Error()))
		return nil
	}
	hb.Extra = nil // not kept: what a record holds stays bounded
	// Reported once the table holds it, so that whoever waits for the
	// event sees the table changed.
	defer r.log.CountEvent(context.Background(), &r.stats.heartbeats, slog.LevelDebug,
		event.Event{Name: eventHeartbeat, WorkerType: hb.WorkerType, Subject: msg.Subject},
		slog.String("instance_id", hb.InstanceID), slog.String("worker_type", hb.WorkerType), slog.Bool("stopping", hb.Stopping))
	now := r.now()
	var ev events
	r.mu.Lock()
	rec, known := r.records[hb.InstanceID]
	if !known {
		if !r.makeRoomLocked(now, &ev) {
			r.mu.Unlock()
			ev.emit(r)
			r.log.CountEvent(context.Background(), &r.stats.refused, slog.LevelWarn,
				event.Event{Name: eventFull, WorkerType: hb.WorkerType, Reason: reasonFull},
				slog.String("instance_id", hb.InstanceID), slog.String("worker_type", hb.WorkerType),
				slog.Int("max_workers", r.maxWorkers), slog.String("reason", reasonFull))
			return nil
		}
		rec = &record{instanceID: hb.InstanceID, status: StatusActive, statusSince: now, knownSince: now}
		r.records[hb.InstanceID] = rec
	}
	if rec.heartbeats == 0 {
		rec.first = now
	}
	rec.workerType = hb.WorkerType
	rec.last = now
	rec.heartbeats++
	rec.hb = &hb
	if rec.heartbeats == 1 {
		ev.add(&r.stats.joined, slog.LevelInfo, eventJoined, rec, "",
			slog.Any("tiers", hb.Tiers), slog.String("queue_group", hb.QueueGroup),
			slog.String("language", hb.Language), slog.String("sdk_version", hb.SDKVersion),
			slog.String("host", hb.Host), slog.Int("pid", hb.PID), slog.Duration("interval", hb.Interval))
	}
	switch {
	case hb.Stopping && rec.status != StatusStopped:
		rec.status, rec.statusSince = StatusStopped, now
		ev.add(&r.stats.stopped, slog.LevelInfo, event.WorkerStopped, rec, "",
			slog.Int("in_flight", hb.InFlight), slog.Int("completed", hb.Completed), slog.Int("failed", hb.Failed))
	case !hb.Stopping && rec.status != StatusActive:
		was, since := rec.status, rec.statusSince
		rec.status, rec.statusSince = StatusActive, now
		ev.add(&r.stats.reactivated, slog.LevelInfo, event.WorkerReactivated, rec, "",
			slog.String("previous_status", string(was)), slog.Duration("silent_for", now.Sub(since)))
	}
	r.mu.Unlock()
	ev.emit(r)
	return nil
}

// makeRoomLocked makes room for one more record: nothing to do below
// MaxWorkers; at it, the record inactive or stopped the longest is
// forgotten. It reports false when every record is active. r.mu is held.
func (r *Registry) makeRoomLocked(now time.Time, ev *events) bool {
	if len(r.records) < r.maxWorkers {
		return true
	}
	var oldest *record
	for _, rec := range r.records {
		if rec.status != StatusActive && (oldest == nil || rec.statusSince.Before(oldest.statusSince)) {
			oldest = rec
		}
	}
	if oldest == nil {
		return false
	}
	delete(r.records, oldest.instanceID)
	ev.add(&r.stats.forgotten, slog.LevelInfo, eventForgotten, oldest, reasonFull,
		slog.String("previous_status", string(oldest.status)), slog.Duration("since", now.Sub(oldest.statusSince)))
	return true
}

// Sweep runs the monitor once, as Run does every SweepInterval: every
// active worker silent for longer than its stale threshold is marked
// inactive (worker.heartbeat_stale), and every worker inactive or
// stopped for longer than Retention is forgotten (worker.forgotten). It
// costs one pass over the table.
func (r *Registry) Sweep() {
	now := r.now()
	var ev events
	r.mu.Lock()
	for id, rec := range r.records {
		switch rec.status {
		case StatusActive:
			ref, reason := rec.last, reasonSilent
			if rec.heartbeats == 0 {
				ref, reason = rec.knownSince, reasonNever
			}
			limit := r.staleAfter(rec)
			if silent := now.Sub(ref); silent > limit {
				rec.status, rec.statusSince = StatusInactive, now
				attrs := []slog.Attr{slog.Duration("silent_for", silent), slog.Duration("stale_after", limit)}
				if rec.heartbeats > 0 {
					attrs = append(attrs, slog.Time("last_heartbeat", rec.last))
				}
				ev.add(&r.stats.stale, slog.LevelWarn, event.WorkerHeartbeatStale, rec, reason, attrs...)
			}
		default:
			if since := now.Sub(rec.statusSince); since > r.retention {
				delete(r.records, id)
				ev.add(&r.stats.forgotten, slog.LevelInfo, eventForgotten, rec, reasonRetention,
					slog.String("previous_status", string(rec.status)), slog.Duration("since", since))
			}
		}
	}
	r.mu.Unlock()
	r.stats.sweeps.Add(1)
	ev.sort()
	ev.emit(r)
}

// events collects what changed under Registry.mu, to be counted and
// logged once the lock is released, so that an Observer never runs under
// it.
type events []pendingEvent

type pendingEvent struct {
	count      *atomic.Uint64
	level      slog.Level
	ev         event.Event
	instanceID string
	attrs      []slog.Attr
}

// add records the event name about rec, whose status it reports, with
// its reason kind (none when empty) and further attributes.
func (ev *events) add(count *atomic.Uint64, level slog.Level, name string, rec *record, reason string, attrs ...slog.Attr) {
	*ev = append(*ev, pendingEvent{count: count, level: level, instanceID: rec.instanceID, attrs: attrs,
		ev: event.Event{Name: name, WorkerType: rec.workerType, Status: string(rec.status), Reason: reason}})
}

// sort orders a sweep's events by worker type and instance, so that the
// log reads the same whatever the table's order.
func (ev events) sort() {
	slices.SortFunc(ev, func(a, b pendingEvent) int {
		return cmp.Or(cmp.Compare(a.ev.WorkerType, b.ev.WorkerType), cmp.Compare(a.instanceID, b.instanceID))
	})
}

func (ev events) emit(r *Registry) {
	for _, e := range ev {
		attrs := make([]slog.Attr, 0, 4+len(e.attrs))
		attrs = append(attrs, slog.String("instance_id", e.instanceID), slog.String("worker_type", e.ev.WorkerType),
			slog.String("status", e.ev.Status))
		if e.ev.Reason != "" {
			attrs = append(attrs, slog.String("reason", e.ev.Reason))
		}
		r.log.CountEvent(context.Background(), e.count, e.level, e.ev, append(attrs, e.attrs...)...)
	}
}
