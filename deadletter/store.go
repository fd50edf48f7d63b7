package deadletter

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/heddle-go/heddle/event"
)

// Store is what the dead-letter web view (NewHandler) and the operator
// CLI read and replay dead letters through. The in-memory Consumer is
// one; a store on JetStream (durable mode) is another. Every method takes
// a context, since a store may sit behind a network, and is safe for
// concurrent use.
type Store interface {
	// Query returns the entries matching q.Filter, newest first, from
	// q.Offset on and at most q.Limit of them (every match when Limit is
	// zero), and how many match in all. An invalid q is an error naming
	// the field.
	Query(ctx context.Context, q Query) (Page, error)
	// Lookup returns the entry with id, or an error wrapping ErrNotFound.
	Lookup(ctx context.Context, id string) (Entry, error)
	// Replay publishes the original task of entry id to
	// heddle.SubjectTasksIncoming, exactly as it was dead-lettered, and
	// counts the replay. An id the store does not hold (any more) is an
	// error wrapping ErrNotFound.
	Replay(ctx context.Context, id string) error
	// Counts returns how many entries the store holds, by reason kind and
	// by worker_type, and how many replays succeeded.
	Counts(ctx context.Context) (Counts, error)
}

// Filter selects entries; a zero field matches every entry.
type Filter struct {
	// ReasonKind keeps the entries whose ReasonKind is this one of
	// ReasonKinds().
	ReasonKind string `json:"reason_kind,omitempty"`
	// WorkerType keeps the entries of this worker_type, exactly.
	WorkerType string `json:"worker_type,omitempty"`
}

// Validate reports a ReasonKind that is not one of ReasonKinds().
func (f Filter) Validate() error {
	if f.ReasonKind != "" && !slices.Contains(ReasonKinds(), f.ReasonKind) {
		return fmt.Errorf("deadletter: filter: reason_kind %q is not a reason kind (one of %s)", f.ReasonKind, strings.Join(ReasonKinds(), ", "))
	}
	return nil
}

// Match reports whether e passes the filter.
func (f Filter) Match(e Entry) bool {
	return (f.WorkerType == "" || f.WorkerType == e.DeadLetter.WorkerType) &&
		(f.ReasonKind == "" || f.ReasonKind == ReasonKind(e.DeadLetter.Reason))
}

// Query asks a Store for a page of entries.
type Query struct {
	Filter
	// Offset skips that many matching entries, newest first. It must not
	// be negative.
	Offset int
	// Limit bounds the entries returned; zero means every match. It must
	// not be negative.
	Limit int
}

// Validate reports every invalid field of q.
func (q Query) Validate() error {
	if q.Offset < 0 {
		return fmt.Errorf("deadletter: query: offset must not be negative, got %d", q.Offset)
	}
	if q.Limit < 0 {
		return fmt.Errorf("deadletter: query: limit must not be negative, got %d", q.Limit)
	}
	return q.Filter.Validate()
}

// Page is one answer of Store.Query.
type Page struct {
	// Entries are the matching entries asked for, newest first.
	Entries []Entry `json:"entries"`
	// Total is how many entries match the filter, on every page.
	Total int `json:"total"`
}

// Counts summarises a Store: the first question about a dead-letter
// queue is why its tasks are there, so the counts go by reason kind.
type Counts struct {
	// Total is how many entries the store holds.
	Total int `json:"total"`
	// ByReasonKind counts the entries of each reason kind held (kinds with
	// none are absent).
	ByReasonKind map[string]int `json:"by_reason_kind"`
	// ByWorkerType counts the entries of each worker_type held; the empty
	// key counts those whose worker_type could not be read.
	ByWorkerType map[string]int `json:"by_worker_type"`
	// ReplayCount is how many replays succeeded (a Consumer's
	// Stats().Replayed): it should match the entries an operator meant
	// to re-inject.
	ReplayCount uint64 `json:"replay_count"`
}

// ReasonKindOther is the kind of a reason that does not start with a
// known reason prefix (one written by another router, or none at all).
const ReasonKindOther = event.ReasonOther

// reasonKinds are the known reason prefixes, in the order the web view
// shows them.
var reasonKinds = []string{
	event.ReasonRateLimited,
	event.ReasonNoWorker,
	event.ReasonUnknownTier,
	event.ReasonInvalidTaskMessage,
	event.ReasonShutdown,
}

// ReasonKinds returns every kind ReasonKind can return: the known reason
// prefixes (event.ReasonRateLimited, event.ReasonNoWorker,
// event.ReasonUnknownTier, event.ReasonInvalidTaskMessage,
// router.ReasonShutdown) and ReasonKindOther last.
func ReasonKinds() []string { return append(slices.Clone(reasonKinds), ReasonKindOther) }

// ReasonKind returns the kind of a dead-letter reason: the word before
// its first ':' (the whole reason when it has none) when that is a known
// reason prefix, else ReasonKindOther. The set is bounded, so it can label
// a metric or a filter. It is event.DeadLetterKind, the one definition
// the observers use too.
func ReasonKind(reason string) string { return event.DeadLetterKind(reason) }

var _ Store = (*Consumer)(nil)

// Query returns a page of the entries matching q, newest first (Store).
// It never blocks on the bus; ctx is not used.
func (c *Consumer) Query(_ context.Context, q Query) (Page, error) {
	if err := q.Validate(); err != nil {
		return Page{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var p Page
	for el := c.entries.Front(); el != nil; el = el.Next() {
		it := el.Value.(*deadLetterItem)
		if (q.ReasonKind != "" && it.kind != q.ReasonKind) ||
			(q.WorkerType != "" && it.entry.DeadLetter.WorkerType != q.WorkerType) {
			continue
		}
		if p.Total >= q.Offset && (q.Limit == 0 || len(p.Entries) < q.Limit) {
			p.Entries = append(p.Entries, it.entry)
		}
		p.Total++
	}
	return p, nil
}

// Lookup returns the entry with id, or an error wrapping ErrNotFound
// (Store).
func (c *Consumer) Lookup(_ context.Context, id string) (Entry, error) {
	if e, ok := c.Get(id); ok {
		return e, nil
	}
	return Entry{}, fmt.Errorf("%w: no entry with id %q (never received, already replayed, or evicted)", ErrNotFound, id)
}

// Counts returns the store's counts (Store).
func (c *Consumer) Counts(context.Context) (Counts, error) {
	c.mu.Lock()
	out := Counts{Total: c.entries.Len(), ByReasonKind: maps.Clone(c.kinds), ByWorkerType: maps.Clone(c.workers)}
	c.mu.Unlock()
	out.ReplayCount = c.stats.replayed.Load()
	return out, nil
}
