package heddle

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/internal/wire"
)

// Liveness: the heartbeat and registry subjects, and the defaults every
// judge of a worker's liveness uses (the worker that heartbeats, the
// registry that sweeps, and anything else deciding whether a worker is
// stale), kept here so that they agree.
//
// The subjects are this SDK's extension, under heddle.workers., which no
// Python Heddle subject uses: Python workers do not heartbeat, so a
// worker type never heard of is unknown to a registry, not down.
const (
	// SubjectHeartbeats matches every worker heartbeat:
	// heddle.workers.heartbeat.> (see HeartbeatSubject).
	SubjectHeartbeats = subjectHeartbeatPrefix + ">"
	// SubjectWorkerRegistry is where worker registries answer requests
	// for their table of workers, as JSON (schemas.HeartbeatRegistry).
	// Every registry answers (a plain subscription); they agree when the
	// same heartbeats reach them.
	SubjectWorkerRegistry = "heddle.workers.registry"

	// DefaultHeartbeatInterval is how often a worker heartbeats unless
	// configured otherwise.
	DefaultHeartbeatInterval = 30 * time.Second
	// DefaultStaleMultiplier makes a worker stale when its last heartbeat
	// is older than this many of its intervals: 3 × 30 s = 90 s by
	// default.
	DefaultStaleMultiplier = 3
	// DefaultSweepInterval is how often a registry looks for stale
	// workers, so that one is marked inactive at most this long after it
	// became stale.
	DefaultSweepInterval = 60 * time.Second

	subjectHeartbeatPrefix = "heddle.workers.heartbeat."
	// maxHeartbeatText bounds every text field of a heartbeat, so that
	// what a registry keeps per worker is bounded in bytes.
	maxHeartbeatText = 256
	// maxHeartbeatInterval bounds a heartbeat's interval: a worker that
	// announced a longer one could stay "active" for days after it died.
	maxHeartbeatInterval = 24 * time.Hour
)

// HeartbeatSubject is where workers of workerType publish their
// heartbeats: heddle.workers.heartbeat.{worker_type}.
func HeartbeatSubject(workerType string) string { return subjectHeartbeatPrefix + workerType }

// Heartbeat says that one worker instance is alive, what it serves and
// how busy it is. A worker publishes one on HeartbeatSubject when it
// starts serving, then every Interval, and a last one with Stopping set
// when it drains. It is this SDK's extension of the wire format: Python
// Heddle workers send none.
//
// On the wire Host is null when empty and PID is left out when zero.
type Heartbeat struct {
	// InstanceID identifies the worker instance: unique to one Run of one
	// worker in one process. Required.
	InstanceID string
	// WorkerType is the worker type served. Required.
	WorkerType string
	// Tiers are the model tiers served, without repeats. Required, not
	// empty.
	Tiers []ModelTier
	// QueueGroup is the queue group of the worker's subscriptions.
	// Required.
	QueueGroup string
	// Language and SDKVersion name the SDK the worker runs on ("go" and
	// this SDK's version for a Go worker). Required.
	Language   string
	SDKVersion string
	// Host and PID say where the worker runs, when it says so.
	Host string
	PID  int
	// StartedAt is when the worker started serving; SentAt when this
	// heartbeat was sent (UTC, microsecond precision). Required.
	StartedAt time.Time
	SentAt    time.Time
	// Interval is how often the worker heartbeats; interval_ms on the
	// wire, whole milliseconds. Required, from 1 ms to 24 h: a registry
	// judges the worker stale after DefaultStaleMultiplier of them.
	Interval time.Duration
	// InFlight counts the tasks the worker received and has not finished
	// yet, Completed and Failed those it finished since it started, and
	// Capacity how many it handles at once. Required, not negative.
	InFlight  int
	Completed int
	Failed    int
	Capacity  int
	// Stopping marks the last heartbeat of a worker that drains.
	Stopping bool
	// Extra holds unknown top-level fields of a decoded heartbeat,
	// verbatim, written back on encode.
	Extra map[string]json.RawMessage
}

var heartbeatFields = []string{"instance_id", "worker_type", "tiers", "queue_group", "language", "sdk_version",
	"host", "pid", "started_at", "sent_at", "interval_ms", "in_flight", "completed", "failed", "capacity", "stopping"}

// DecodeHeartbeat decodes and validates a Heartbeat, by the rules of
// DecodeTaskMessage; every field but host, pid and stopping is required.
// The error, if any, is a *ValidationError naming every bad field.
func DecodeHeartbeat(data []byte) (Heartbeat, error) {
	var h Heartbeat
	err := h.decode(data)
	return h, err
}

// UnmarshalJSON decodes as DecodeHeartbeat does; JSON null leaves h
// unchanged.
func (h *Heartbeat) UnmarshalJSON(data []byte) error {
	if isNull(data) {
		return nil
	}
	return h.decode(data)
}

func (h *Heartbeat) decode(data []byte) error {
	d := wire.Decoder{Now: now}
	d.Init(data)
	if !d.IsObject() {
		return fieldErr("Heartbeat", d.Problems)
	}
	*h = Heartbeat{
		InstanceID: d.Str("instance_id", wire.Required, nil),
		WorkerType: d.Str("worker_type", wire.Required, nil),
		Tiers:      heartbeatTiers(&d),
		QueueGroup: d.Str("queue_group", wire.Required, nil),
		Language:   d.Str("language", wire.Required, nil),
		SDKVersion: d.Str("sdk_version", wire.Required, nil),
		Host:       d.Str("host", wire.Nullable, nil),
		PID:        d.Integer("pid", 0),
		StartedAt:  d.Time("started_at", wire.Required),
		SentAt:     d.Time("sent_at", wire.Required),
		Interval:   heartbeatInterval(&d),
		InFlight:   checkpointInt(&d, "in_flight"),
		Completed:  checkpointInt(&d, "completed"),
		Failed:     checkpointInt(&d, "failed"),
		Capacity:   checkpointInt(&d, "capacity"),
		Stopping:   heartbeatBool(&d, "stopping"),
	}
	h.Extra = d.Extra()
	var p problems
	h.validate(&p)
	return fieldErr("Heartbeat", d.Check(p.fields, heartbeatFields))
}

// heartbeatTiers reads the required array of tier names.
func heartbeatTiers(d *wire.Decoder) []ModelTier {
	names := checkpointList[string](d, "tiers", "strings")
	if names == nil {
		return nil
	}
	tiers := make([]ModelTier, len(names))
	for i, n := range names {
		tiers[i] = ModelTier(n)
	}
	return tiers
}

// heartbeatInterval reads the required interval_ms; a value beyond
// maxHeartbeatInterval is refused here, before it could overflow a
// Duration.
func heartbeatInterval(d *wire.Decoder) time.Duration {
	ms := checkpointInt(d, "interval_ms")
	if ms > int(maxHeartbeatInterval/time.Millisecond) {
		d.Fail("interval_ms", "must be at most %d (24 h), got %d", maxHeartbeatInterval.Milliseconds(), ms)
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

// heartbeatBool reads an optional boolean, false when absent.
func heartbeatBool(d *wire.Decoder, name string) bool {
	raw, ok := d.Take(name)
	if !ok {
		return false
	}
	switch string(raw) {
	case "true":
		return true
	case "false":
		return false
	}
	d.Fail(name, "expected boolean, got %s", wire.KindName(raw))
	return false
}

// Validate reports every invalid field of h: an empty or overlong text
// field (each holds at most 256 bytes), a worker_type or queue_group that
// cannot be used on the bus, no tiers or an unknown or repeated one, a
// zero time, an interval outside 1 ms to 24 h, a negative count.
func (h Heartbeat) Validate() error {
	p := problems{typ: "Heartbeat"}
	h.validate(&p)
	return p.err()
}

func (h Heartbeat) validate(p *problems) {
	texts := []struct {
		field, value string
		required     bool
	}{
		{"instance_id", h.InstanceID, true},
		{"worker_type", h.WorkerType, false}, // checked below
		{"queue_group", h.QueueGroup, false}, // checked below
		{"language", h.Language, true},
		{"sdk_version", h.SDKVersion, true},
		{"host", h.Host, false},
	}
	for _, t := range texts {
		switch {
		case t.required && t.value == "":
			p.add(t.field, "required")
		case len(t.value) > maxHeartbeatText:
			p.add(t.field, "longer than %d bytes (%d)", maxHeartbeatText, len(t.value))
		}
	}
	if len(h.WorkerType) <= maxHeartbeatText {
		checkWorkerType(p, h.WorkerType)
	}
	if len(h.QueueGroup) <= maxHeartbeatText {
		if h.QueueGroup == "" {
			p.add("queue_group", "required")
		} else if err := bus.ValidateQueue(h.QueueGroup); err != nil {
			p.add("queue_group", "%q cannot be used as a queue group: %v", h.QueueGroup, err)
		}
	}
	if len(h.Tiers) == 0 {
		p.add("tiers", "required: at least one tier")
	}
	for i, t := range h.Tiers {
		if !t.Valid() {
			p.add("tiers", "item %d: %s", i, wire.EnumProblem(string(t), modelTiers))
		} else if slices.Index(h.Tiers, t) < i {
			p.add("tiers", "item %d: %q is repeated", i, t)
		}
	}
	if h.PID < 0 {
		p.add("pid", "must not be negative, got %d", h.PID)
	}
	if h.StartedAt.IsZero() {
		p.add("started_at", "required")
	}
	if h.SentAt.IsZero() {
		p.add("sent_at", "required")
	}
	if h.Interval < time.Millisecond || h.Interval > maxHeartbeatInterval {
		p.add("interval_ms", "must be from 1 to %d (24 h), got %d", maxHeartbeatInterval.Milliseconds(), h.Interval.Milliseconds())
	}
	for _, c := range []struct {
		field string
		n     int
	}{{"in_flight", h.InFlight}, {"completed", h.Completed}, {"failed", h.Failed}, {"capacity", h.Capacity}} {
		if c.n < 0 {
			p.add(c.field, "must not be negative, got %d", c.n)
		}
	}
}

// Subject is where h is published: HeartbeatSubject(h.WorkerType).
func (h Heartbeat) Subject() string { return HeartbeatSubject(h.WorkerType) }

// MarshalJSON writes h in wire form without validating it; see Encode.
func (h Heartbeat) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 384)
	b = append(b, `{"instance_id":`...)
	b = wire.AppendString(b, h.InstanceID)
	b = append(b, `,"worker_type":`...)
	b = wire.AppendString(b, h.WorkerType)
	b = append(b, `,"tiers":[`...)
	for i, t := range h.Tiers {
		if i > 0 {
			b = append(b, ',')
		}
		b = wire.AppendString(b, string(t))
	}
	b = append(b, `],"queue_group":`...)
	b = wire.AppendString(b, h.QueueGroup)
	b = append(b, `,"language":`...)
	b = wire.AppendString(b, h.Language)
	b = append(b, `,"sdk_version":`...)
	b = wire.AppendString(b, h.SDKVersion)
	b = append(b, `,"host":`...)
	b = wire.AppendNullable(b, h.Host)
	if h.PID != 0 {
		b = append(b, `,"pid":`...)
		b = strconv.AppendInt(b, int64(h.PID), 10)
	}
	b = append(b, `,"started_at":`...)
	b = wire.AppendTime(b, h.StartedAt)
	b = append(b, `,"sent_at":`...)
	b = wire.AppendTime(b, h.SentAt)
	b = append(b, `,"interval_ms":`...)
	b = strconv.AppendInt(b, h.Interval.Milliseconds(), 10)
	for _, c := range []struct {
		name string
		n    int
	}{{`,"in_flight":`, h.InFlight}, {`,"completed":`, h.Completed}, {`,"failed":`, h.Failed}, {`,"capacity":`, h.Capacity}} {
		b = append(b, c.name...)
		b = strconv.AppendInt(b, int64(c.n), 10)
	}
	b = append(b, `,"stopping":`...)
	b = strconv.AppendBool(b, h.Stopping)
	return wire.AppendExtra(b, h.Extra, heartbeatFields)
}

// Encode validates h and returns its wire form.
func (h Heartbeat) Encode() ([]byte, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	return h.MarshalJSON()
}
