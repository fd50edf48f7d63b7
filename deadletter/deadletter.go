package deadletter

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/observe"
)

// DefaultCapacity is how many dead letters a Consumer
// keeps when Config.Capacity is zero.
const DefaultCapacity = 1000

// previewBytes bounds how much of a malformed envelope the
// dead_letter.parse_error event quotes.
const previewBytes = 512

// ErrNotFound is wrapped by the error of Replay (and reported by
// Get) for an id the store does not hold: never received, already
// replayed, being replayed, or evicted.
var ErrNotFound = errors.New("heddle: dead letter not found")

// Config configures a Consumer. The zero value keeps
// DefaultCapacity entries.
type Config struct {
	// Capacity bounds the entries kept; when a new dead letter arrives at
	// capacity, the oldest entry is evicted (logged as
	// dead_letter.evicted and counted). Zero means
	// DefaultCapacity.
	Capacity int
	// DrainTimeout bounds shutdown once Run's context ends: envelopes
	// already delivered are stored until then. Zero means
	// heddle.DefaultDrainTimeout.
	DrainTimeout time.Duration
}

// Entry is one stored dead letter and the id this consumer gave it. It
// encodes to JSON with every field (the envelope under "dead_letter", in
// its wire form) and decodes back to an equal Entry, so a list of entries
// can be served or saved as it is. (encoding/json compacts the envelope,
// so an original task sent with white space between its tokens comes back
// equal as JSON but not byte for byte; Replay publishes the bytes the
// consumer stored.)
type Entry struct {
	// ID identifies the entry in this consumer (a UUID assigned on
	// receipt); Replay and Get take it.
	ID string `json:"id"`
	// DeadLetter is the envelope: the router's Reason, the TaskID and
	// WorkerType read from the original (empty when they could not be), the
	// router's ReceivedAt, and Original(), the exact bytes Replay publishes.
	DeadLetter heddle.DeadLetter `json:"dead_letter"`
	// Header holds the headers the envelope arrived with (the original
	// task's, for a Go router); Replay publishes them with the task.
	Header bus.Header `json:"header,omitempty"`
	// StoredAt is when this consumer received the envelope (UTC).
	StoredAt time.Time `json:"stored_at"`
	// ReplayCount is how many times this task was replayed before it came
	// back to the store: a successful Replay removes the entry, and when
	// the router dead-letters the replayed task again the new entry
	// carries the count on (matched by task_id, or by the original bytes
	// when the task has no task_id). Zero for a task never replayed.
	ReplayCount int `json:"replay_count"`
	// LastReplayedAt is when the task was last replayed (UTC); zero when
	// ReplayCount is zero.
	LastReplayedAt time.Time `json:"last_replayed_at,omitzero"`
}

// Stats counts what a Consumer did.
type Stats struct {
	// Received counts envelopes decoded and stored.
	Received uint64
	// ParseErrors counts messages on SubjectDeadLetter that were not a
	// valid envelope; they are logged as dead_letter.parse_error (with
	// the start of their bytes) and not stored, since no task can be
	// replayed from them.
	ParseErrors uint64
	// Evicted counts entries dropped to keep the store within Capacity.
	Evicted uint64
	// Replayed counts successful replays.
	Replayed uint64
	// ReplayErrors counts replays whose publish failed; the entry was put
	// back.
	ReplayErrors uint64
}

// Consumer subscribes to SubjectDeadLetter, logs each envelope
// as dead_letter.received (reason, task_id, worker_type, id), and keeps
// the most recent ones in a bounded store, newest first, for listing and
// replay. Every consumer sees every dead letter (a plain subscription).
// It is safe for concurrent use.
type Consumer struct {
	b   bus.Bus
	cfg Config
	log *observe.Emitter

	mu      sync.Mutex
	entries *list.List // of *deadLetterItem, newest at the front
	index   map[string]*list.Element
	seq     uint64
	kinds   map[string]int // entries held by reason kind
	workers map[string]int // entries held by worker_type
	marks   replayMarks

	running   atomic.Bool
	ready     chan struct{}
	readyOnce sync.Once

	stats struct {
		received, parseErrors, evicted, replayed, replayErrors atomic.Uint64
	}
}

type deadLetterItem struct {
	seq   uint64 // arrival order, to put a failed replay back in place
	kind  string // ReasonKind(entry.DeadLetter.Reason)
	entry Entry
}

// New returns a consumer on b with an empty store; it
// starts nothing until Run. It fails with heddle.ErrConfig when b is
// nil or Capacity is negative.
func New(b bus.Bus, cfg Config, opts ...heddle.Option) (*Consumer, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: the bus is nil", heddle.ErrConfig)
	}
	if cfg.Capacity < 0 {
		return nil, fmt.Errorf("%w: Capacity must not be negative, got %d", heddle.ErrConfig, cfg.Capacity)
	}
	if cfg.DrainTimeout < 0 {
		return nil, fmt.Errorf("%w: dead-letter consumer: Config.DrainTimeout must not be negative, got %v", heddle.ErrConfig, cfg.DrainTimeout)
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = DefaultCapacity
	}
	return &Consumer{
		b:       b,
		cfg:     cfg,
		log:     observe.Actor("dead_letter", opts...),
		entries: list.New(),
		index:   map[string]*list.Element{},
		kinds:   map[string]int{},
		workers: map[string]int{},
		marks:   newReplayMarks(cfg.Capacity),
		ready:   make(chan struct{}),
	}, nil
}

// Ready is closed once Run's subscription is live: a dead letter
// published afterwards is received.
func (c *Consumer) Ready() <-chan struct{} { return c.ready }

// Stats returns the consumer's counters.
func (c *Consumer) Stats() Stats {
	s := &c.stats
	return Stats{
		Received:     s.received.Load(),
		ParseErrors:  s.parseErrors.Load(),
		Evicted:      s.evicted.Load(),
		Replayed:     s.replayed.Load(),
		ReplayErrors: s.replayErrors.Load(),
	}
}

// Run subscribes to heddle.SubjectDeadLetter and stores what arrives until ctx
// ends; then it drains the subscription, storing what was already
// delivered within Config.DrainTimeout, and returns nil (an error wrapping
// bus.ErrClosed when its bus closed for good). It returns heddle.ErrStarted
// when Run was called before: a consumer runs once. The store
// outlives Run: entries can be listed and replayed after it returns.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return heddle.ErrStarted
	}
	sub, err := c.b.Subscribe(ctx, heddle.SubjectDeadLetter, c.handle)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return fmt.Errorf("heddle: dead-letter consumer subscribing to %s: %w", heddle.SubjectDeadLetter, err)
	}
	// Ready before actor.subscribed is logged: a reader of the log who
	// sees it finds the consumer ready.
	c.readyOnce.Do(func() { close(c.ready) })
	c.log.Emit(ctx, slog.LevelInfo, event.Event{Name: event.ActorSubscribed, Subject: heddle.SubjectDeadLetter},
		slog.String("subject", heddle.SubjectDeadLetter), slog.String("queue", ""))
	var closed error
	select {
	case <-ctx.Done():
	case <-bus.Done(c.b):
		closed = fmt.Errorf("heddle: dead-letter consumer stopped: its bus closed: %w", bus.Err(c.b))
	}
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmp.Or(c.cfg.DrainTimeout, heddle.DefaultDrainTimeout))
	defer cancel()
	if err := sub.Drain(drain); err != nil && !errors.Is(err, bus.ErrClosed) {
		return fmt.Errorf("heddle: dead-letter consumer draining %s: %w", heddle.SubjectDeadLetter, err)
	}
	return closed
}

func (c *Consumer) handle(_ context.Context, msg *bus.Msg) error {
	d, err := heddle.DecodeDeadLetter(msg.Data)
	if err != nil {
		c.log.CountEvent(context.Background(), &c.stats.parseErrors, slog.LevelWarn,
			event.Event{Name: event.DeadLetterParseError, Subject: heddle.SubjectDeadLetter, Detail: err.Error(), Err: err},
			slog.String("error", err.Error()), slog.Int("size", len(msg.Data)), slog.String("data", preview(msg.Data)))
		return nil
	}
	e := Entry{ID: uuid.NewString(), DeadLetter: d, Header: msg.Header.Clone(), StoredAt: time.Now().UTC()}
	key := replayKey(d)
	c.mu.Lock()
	if m, ok := c.marks.take(key); ok {
		e.ReplayCount, e.LastReplayedAt = m.count, m.at
	}
	c.seq++
	c.insertLocked(c.entries.PushFront(&deadLetterItem{seq: c.seq, kind: ReasonKind(d.Reason), entry: e}))
	evicted := c.evictLocked()
	c.mu.Unlock()
	c.logEvicted(evicted)
	c.stats.received.Add(1)
	c.log.Emit(context.Background(), slog.LevelWarn, entryEvent(event.DeadLetterReceived, e),
		slog.String("reason", d.Reason), slog.String("task_id", d.TaskID), slog.String("worker_type", d.WorkerType),
		slog.String("id", e.ID), slog.Int("replay_count", e.ReplayCount))
	return nil
}

// insertLocked indexes and counts an element just put in c.entries.
func (c *Consumer) insertLocked(el *list.Element) {
	it := el.Value.(*deadLetterItem)
	c.index[it.entry.ID] = el
	c.kinds[it.kind]++
	c.workers[it.entry.DeadLetter.WorkerType]++
}

// removeLocked takes el out of c.entries, its index and its counts.
func (c *Consumer) removeLocked(el *list.Element) *deadLetterItem {
	it := c.entries.Remove(el).(*deadLetterItem)
	delete(c.index, it.entry.ID)
	decrement(c.kinds, it.kind)
	decrement(c.workers, it.entry.DeadLetter.WorkerType)
	return it
}

// decrement lowers m[k] by one, deleting the key at zero so that the
// maps hold only what the store holds.
func decrement(m map[string]int, k string) {
	if m[k] <= 1 {
		delete(m, k)
		return
	}
	m[k]--
}

// evictLocked drops the oldest entries beyond capacity and returns them.
func (c *Consumer) evictLocked() []Entry {
	var out []Entry
	for c.entries.Len() > c.cfg.Capacity {
		out = append(out, c.removeLocked(c.entries.Back()).entry)
	}
	return out
}

func (c *Consumer) logEvicted(evicted []Entry) {
	for _, e := range evicted {
		c.log.CountEvent(context.Background(), &c.stats.evicted, slog.LevelWarn, entryEvent(event.DeadLetterEvicted, e),
			slog.String("id", e.ID), slog.String("reason", e.DeadLetter.Reason), slog.String("task_id", e.DeadLetter.TaskID),
			slog.String("worker_type", e.DeadLetter.WorkerType), slog.Int("capacity", c.cfg.Capacity))
	}
}

// Len returns how many entries the store holds.
func (c *Consumer) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries.Len()
}

// List returns up to limit entries, newest first, skipping the offset
// newest, and the total number of entries held. A limit <= 0 means no
// limit; a negative offset counts as zero. The entries share their
// Original bytes and maps with the store: treat them as read-only.
func (c *Consumer) List(offset, limit int) (entries []Entry, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	total = c.entries.Len()
	offset = max(offset, 0)
	if limit <= 0 || limit > total-offset {
		limit = total - offset
	}
	if limit <= 0 {
		return nil, total
	}
	entries = make([]Entry, 0, limit)
	el := c.entries.Front()
	for range offset {
		el = el.Next()
	}
	for ; el != nil && len(entries) < limit; el = el.Next() {
		entries = append(entries, el.Value.(*deadLetterItem).entry)
	}
	return entries, total
}

// Get returns the entry with id, and whether the store holds it.
func (c *Consumer) Get(id string) (Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.index[id]; ok {
		return el.Value.(*deadLetterItem).entry, true
	}
	return Entry{}, false
}

// Replay publishes the original task of entry id to SubjectTasksIncoming,
// byte for byte and with the headers it arrived with, so the Router
// evaluates it again under the current rules and rate limits. On success
// the entry is removed, Stats().Replayed grows by one and
// dead_letter.replayed is logged (with the task's replay_count); as in the
// Python Heddle's consumer, the store then holds only what still awaits a
// decision. Should the router dead-letter the replayed task again, the new
// entry's ReplayCount says how often it was replayed. If the publish
// fails the entry is put back in its place and the error returned (logged
// as dead_letter.replay_failed). An id the store does not hold is an
// error wrapping ErrNotFound. An entry is replayed at most once, even by
// concurrent calls.
//
// Like bus.Bus.Publish, Replay returns once the bus has accepted the
// message; delivery is at-most-once.
func (c *Consumer) Replay(ctx context.Context, id string) error {
	c.mu.Lock()
	el, ok := c.index[id]
	if !ok {
		c.mu.Unlock()
		return fmt.Errorf("%w: no entry with id %q (never received, already replayed, or evicted); List shows the ids held", ErrNotFound, id)
	}
	it := c.removeLocked(el)
	e := it.entry
	// The mark goes in before the publish: the router may dead-letter the
	// replayed task again before Publish returns.
	key := replayKey(e.DeadLetter)
	mark := replayMark{count: e.ReplayCount + 1, at: time.Now().UTC()}
	prev, hadPrev := c.marks.put(key, mark)
	c.mu.Unlock()

	err := c.b.Publish(ctx, &bus.Msg{Subject: heddle.SubjectTasksIncoming, Header: e.Header.Clone(), Data: e.DeadLetter.Original()})
	if err != nil {
		c.mu.Lock()
		c.marks.undo(key, mark, prev, hadPrev)
		c.mu.Unlock()
		c.restore(it)
		ev := entryEvent(event.DeadLetterReplayFailed, e)
		ev.Err = err
		c.log.CountEvent(ctx, &c.stats.replayErrors, slog.LevelError, ev,
			slog.String("id", id), slog.String("task_id", e.DeadLetter.TaskID),
			slog.String("worker_type", e.DeadLetter.WorkerType), slog.String("error", err.Error()))
		return fmt.Errorf("heddle: replaying dead letter %q to %s: %w", id, heddle.SubjectTasksIncoming, err)
	}
	c.log.CountEvent(ctx, &c.stats.replayed, slog.LevelInfo, entryEvent(event.DeadLetterReplayed, e),
		slog.String("id", id), slog.String("reason", e.DeadLetter.Reason), slog.String("task_id", e.DeadLetter.TaskID),
		slog.String("worker_type", e.DeadLetter.WorkerType), slog.Int("replay_count", mark.count))
	return nil
}

// entryEvent is the typed event name reports about e: its task, and its
// reason's kind beside the whole reason.
func entryEvent(name string, e Entry) event.Event {
	return event.Event{
		Name: name, Subject: heddle.SubjectDeadLetter, TaskID: e.DeadLetter.TaskID, WorkerType: e.DeadLetter.WorkerType,
		Reason: ReasonKind(e.DeadLetter.Reason), Detail: e.DeadLetter.Reason,
	}
}

// restore puts back an item whose replay failed, in arrival order, and
// evicts beyond capacity as a new arrival would.
func (c *Consumer) restore(it *deadLetterItem) {
	c.mu.Lock()
	var el *list.Element
	for at := c.entries.Front(); at != nil; at = at.Next() {
		if at.Value.(*deadLetterItem).seq < it.seq {
			el = c.entries.InsertBefore(it, at)
			break
		}
	}
	if el == nil {
		el = c.entries.PushBack(it)
	}
	c.insertLocked(el)
	evicted := c.evictLocked()
	c.mu.Unlock()
	c.logEvicted(evicted)
}

// preview quotes the start of a malformed envelope for a log.
func preview(data []byte) string {
	if len(data) <= previewBytes {
		return string(data)
	}
	cut := previewBytes
	for cut > 0 && !utf8.RuneStart(data[cut]) {
		cut--
	}
	return string(data[:cut]) + "…"
}
