package registry

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/internal/wire"
)

// Status is a worker instance's liveness in the table.
type Status string

// The statuses of a worker instance; see the package documentation.
const (
	StatusActive   Status = "active"
	StatusInactive Status = "inactive"
	StatusStopped  Status = "stopped"
)

// TypeState is a worker type's liveness: whether any of its workers is
// active.
type TypeState string

// The states of a worker type.
const (
	// TypeUp: at least one worker of the type is active.
	TypeUp TypeState = "up"
	// TypeDown: the registry knows workers of the type and none is
	// active. This is what an alert on a type that lost its workers
	// reads.
	TypeDown TypeState = "down"
	// TypeUnknown: nothing of the type ever heartbeated (or was
	// expected), as with Python Heddle workers, which send no heartbeats:
	// the registry cannot tell whether any serves it.
	TypeUnknown TypeState = "unknown"
)

// Entry is one worker instance in the table, as of when it was read.
type Entry struct {
	InstanceID string
	WorkerType string
	Status     Status
	// StatusSince is when the registry set Status; KnownSince when it
	// first learned of the instance (first heartbeat, or Expect).
	StatusSince time.Time
	KnownSince  time.Time
	// FirstHeartbeat and LastHeartbeat are when the registry received
	// them (its clock, not the worker's); zero when the instance never
	// heartbeated.
	FirstHeartbeat time.Time
	LastHeartbeat  time.Time
	// Heartbeats counts the heartbeats received.
	Heartbeats uint64
	// StaleAfter is the silence after which the instance is marked
	// inactive: the stale multiplier times its interval.
	StaleAfter time.Duration
	// Heartbeat is the last heartbeat, with the worker's counters and
	// capacity (its unknown fields are not kept); nil when it never
	// heartbeated. It is shared: treat it as read-only.
	Heartbeat *heddle.Heartbeat
}

// TypeSummary counts the instances of one worker type by status: the
// gauges a metrics exporter reads.
type TypeSummary struct {
	WorkerType string    `json:"worker_type"`
	State      TypeState `json:"state"`
	Active     int       `json:"active"`
	Inactive   int       `json:"inactive"`
	Stopped    int       `json:"stopped"`
}

// Table is a registry's answer on the bus (and Snapshot's in process):
// a page of its instances and the state of the types asked for. Its JSON
// form is described by schemas.HeartbeatRegistry.
type Table struct {
	// RegistryID names the registry that answered.
	RegistryID string
	// GeneratedAt is when the table was read.
	GeneratedAt time.Time
	// StaleMultiplier and SweepInterval are the registry's thresholds.
	StaleMultiplier int
	SweepInterval   time.Duration
	// Total is how many instances match the request; Offset how many of
	// them come before Workers.
	Total  int
	Offset int
	// Workers are the page, ordered by worker type, then instance id.
	Workers []Entry
	// Types are the worker types the request covers that the registry
	// knows, ordered by name.
	Types []TypeSummary
}

// TypeState returns the state of workerType in t: unknown when t has
// no summary of it.
func (t Table) TypeState(workerType string) TypeState {
	for _, s := range t.Types {
		if s.WorkerType == workerType {
			return s.State
		}
	}
	return TypeUnknown
}

// DefaultQueryLimit is how many instances one answer holds when the
// request sets no Limit; at about 1 KiB each it stays well within the
// bus's default max payload of 1 MiB.
const DefaultQueryLimit = 500

// Request selects what a registry answers: the instances of WorkerType
// (every type when empty), skipping the first Offset, at most Limit of
// them (zero means DefaultQueryLimit). Its JSON form is the body of a
// request on heddle.SubjectWorkerRegistry; an empty body asks for the
// first page of everything.
type Request struct {
	WorkerType string `json:"worker_type,omitempty"`
	Offset     int    `json:"offset,omitempty"`
	Limit      int    `json:"limit,omitempty"`
}

// validate names the first bad field of q.
func (q Request) validate() error {
	switch {
	case q.Offset < 0:
		return fmt.Errorf("offset: must not be negative, got %d", q.Offset)
	case q.Limit < 0:
		return fmt.Errorf("limit: must not be negative, got %d", q.Limit)
	}
	return nil
}

// entry copies rec for a caller.
func (r *Registry) entry(rec *record) Entry {
	return Entry{
		InstanceID:     rec.instanceID,
		WorkerType:     rec.workerType,
		Status:         rec.status,
		StatusSince:    rec.statusSince,
		KnownSince:     rec.knownSince,
		FirstHeartbeat: rec.first,
		LastHeartbeat:  rec.last,
		Heartbeats:     rec.heartbeats,
		StaleAfter:     r.staleAfter(rec),
		Heartbeat:      rec.hb,
	}
}

func compareEntries(a, b Entry) int {
	return cmp.Or(strings.Compare(a.WorkerType, b.WorkerType), strings.Compare(a.InstanceID, b.InstanceID))
}

// List returns every instance in the table, ordered by worker type, then
// instance id.
func (r *Registry) List() []Entry { return r.Workers("") }

// Workers returns the instances of workerType (every type when empty),
// ordered by worker type, then instance id.
func (r *Registry) Workers(workerType string) []Entry {
	r.mu.Lock()
	out := r.workersLocked(workerType)
	r.mu.Unlock()
	slices.SortFunc(out, compareEntries)
	return out
}

// workersLocked copies the records of workerType (every type when
// empty), unordered. r.mu is held.
func (r *Registry) workersLocked(workerType string) []Entry {
	out := make([]Entry, 0, len(r.records))
	for _, rec := range r.records {
		if workerType == "" || rec.workerType == workerType {
			out = append(out, r.entry(rec))
		}
	}
	return out
}

// Worker returns the instance with instanceID, and whether the table
// holds it.
func (r *Registry) Worker(instanceID string) (Entry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.records[instanceID]
	if !ok {
		return Entry{}, false
	}
	return r.entry(rec), true
}

// Types returns a summary of every worker type in the table, ordered by
// name.
func (r *Registry) Types() []TypeSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.typesLocked("")
}

// TypeState returns whether workerType is up, down, or unknown to the
// registry (nothing of it ever heartbeated, as with Python workers).
func (r *Registry) TypeState(workerType string) TypeState {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.typesLocked(workerType); len(s) == 1 {
		return s[0].State
	}
	return TypeUnknown
}

// typesLocked summarises the types in the table (workerType only, when
// not empty). r.mu is held.
func (r *Registry) typesLocked(workerType string) []TypeSummary {
	byType := map[string]*TypeSummary{}
	for _, rec := range r.records {
		if workerType != "" && rec.workerType != workerType {
			continue
		}
		s := byType[rec.workerType]
		if s == nil {
			s = &TypeSummary{WorkerType: rec.workerType}
			byType[rec.workerType] = s
		}
		switch rec.status {
		case StatusActive:
			s.Active++
		case StatusInactive:
			s.Inactive++
		case StatusStopped:
			s.Stopped++
		}
	}
	out := make([]TypeSummary, 0, len(byType))
	for _, s := range byType {
		s.State = TypeDown
		if s.Active > 0 {
			s.State = TypeUp
		}
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b TypeSummary) int { return strings.Compare(a.WorkerType, b.WorkerType) })
	return out
}

// Snapshot returns the table as a request on the bus gets it. A bad
// request (a negative offset or limit) is an error wrapping
// heddle.ErrConfig.
func (r *Registry) Snapshot(q Request) (Table, error) {
	if err := q.validate(); err != nil {
		return Table{}, fmt.Errorf("%w: worker registry request: %w", heddle.ErrConfig, err)
	}
	limit := cmp.Or(q.Limit, DefaultQueryLimit)
	r.mu.Lock() // one read, so that the page and the summaries agree
	all := r.workersLocked(q.WorkerType)
	types := r.typesLocked(q.WorkerType)
	r.mu.Unlock()
	slices.SortFunc(all, compareEntries)
	page := all[min(q.Offset, len(all)):]
	page = page[:min(limit, len(page))]
	return Table{
		RegistryID:      r.id,
		GeneratedAt:     r.now(),
		StaleMultiplier: r.multiplier,
		SweepInterval:   r.sweepEvery,
		Total:           len(all),
		Offset:          q.Offset,
		Workers:         slices.Clip(page),
		Types:           types,
	}, nil
}

// wireTime is a time in the wire format: RFC 3339 UTC with six
// fractional digits, null when zero.
type wireTime time.Time

func (t wireTime) MarshalJSON() ([]byte, error) {
	if time.Time(t).IsZero() {
		return []byte("null"), nil
	}
	return wire.AppendTime(nil, time.Time(t)), nil
}

func (t *wireTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = wireTime{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("expected an RFC 3339 timestamp or null, got %s", wire.KindName(b))
	}
	v, err := wire.ParseTime(s)
	if err != nil {
		return fmt.Errorf("%q is not an RFC 3339 timestamp", s)
	}
	*t = wireTime(v)
	return nil
}

// entryJSON and tableJSON are the wire forms of Entry and Table.
type entryJSON struct {
	InstanceID     string            `json:"instance_id"`
	WorkerType     string            `json:"worker_type"`
	Status         Status            `json:"status"`
	StatusSince    wireTime          `json:"status_since"`
	KnownSince     wireTime          `json:"known_since"`
	FirstHeartbeat wireTime          `json:"first_heartbeat"`
	LastHeartbeat  wireTime          `json:"last_heartbeat"`
	Heartbeats     uint64            `json:"heartbeats"`
	StaleAfterMS   int64             `json:"stale_after_ms"`
	Heartbeat      *heddle.Heartbeat `json:"heartbeat"`
}

type tableJSON struct {
	RegistryID      string          `json:"registry_id"`
	GeneratedAt     wireTime        `json:"generated_at"`
	StaleMultiplier int             `json:"stale_multiplier"`
	SweepIntervalMS int64           `json:"sweep_interval_ms"`
	Total           int             `json:"total"`
	Offset          int             `json:"offset"`
	Workers         []Entry         `json:"workers"`
	Types           []TypeSummary   `json:"types"`
	Error           json.RawMessage `json:"error,omitempty"`
}

// MarshalJSON writes e in the wire form schemas.HeartbeatRegistry
// describes (an item of "workers").
func (e Entry) MarshalJSON() ([]byte, error) {
	return json.Marshal(entryJSON{
		InstanceID:     e.InstanceID,
		WorkerType:     e.WorkerType,
		Status:         e.Status,
		StatusSince:    wireTime(e.StatusSince),
		KnownSince:     wireTime(e.KnownSince),
		FirstHeartbeat: wireTime(e.FirstHeartbeat),
		LastHeartbeat:  wireTime(e.LastHeartbeat),
		Heartbeats:     e.Heartbeats,
		StaleAfterMS:   e.StaleAfter.Milliseconds(),
		Heartbeat:      e.Heartbeat,
	})
}

// UnmarshalJSON reads what MarshalJSON writes; the heartbeat is decoded
// and validated as heddle.DecodeHeartbeat does. An unknown status is an
// error.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var j entryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("worker registry entry: %w", err)
	}
	if !slices.Contains([]Status{StatusActive, StatusInactive, StatusStopped}, j.Status) {
		return fmt.Errorf("worker registry entry %q: status: %q is not one of active, inactive, stopped", j.InstanceID, j.Status)
	}
	*e = Entry{
		InstanceID:     j.InstanceID,
		WorkerType:     j.WorkerType,
		Status:         j.Status,
		StatusSince:    time.Time(j.StatusSince),
		KnownSince:     time.Time(j.KnownSince),
		FirstHeartbeat: time.Time(j.FirstHeartbeat),
		LastHeartbeat:  time.Time(j.LastHeartbeat),
		Heartbeats:     j.Heartbeats,
		StaleAfter:     time.Duration(j.StaleAfterMS) * time.Millisecond,
		Heartbeat:      j.Heartbeat,
	}
	return nil
}

// MarshalJSON writes t in the wire form schemas.HeartbeatRegistry
// describes. Workers and Types are never null.
func (t Table) MarshalJSON() ([]byte, error) {
	return json.Marshal(tableJSON{
		RegistryID:      t.RegistryID,
		GeneratedAt:     wireTime(t.GeneratedAt),
		StaleMultiplier: t.StaleMultiplier,
		SweepIntervalMS: t.SweepInterval.Milliseconds(),
		Total:           t.Total,
		Offset:          t.Offset,
		Workers:         nonNil(t.Workers),
		Types:           nonNil(t.Types),
	})
}

// UnmarshalJSON reads what MarshalJSON writes. An error answer (a
// document with "error") is an error wrapping ErrRefused.
func (t *Table) UnmarshalJSON(b []byte) error {
	var j tableJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("worker registry table: %w", err)
	}
	if len(j.Error) > 0 {
		var msg string
		_ = json.Unmarshal(j.Error, &msg)
		return fmt.Errorf("%w: registry %s: %s", ErrRefused, j.RegistryID, msg)
	}
	if j.RegistryID == "" {
		return fmt.Errorf("worker registry table: registry_id: required")
	}
	*t = Table{
		RegistryID:      j.RegistryID,
		GeneratedAt:     time.Time(j.GeneratedAt),
		StaleMultiplier: j.StaleMultiplier,
		SweepInterval:   time.Duration(j.SweepIntervalMS) * time.Millisecond,
		Total:           j.Total,
		Offset:          j.Offset,
		Workers:         j.Workers,
		Types:           j.Types,
	}
	return nil
}

// nonNil returns s, or an empty slice for nil, which JSON writes as [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
