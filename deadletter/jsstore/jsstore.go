// Package jsstore keeps dead letters in a JetStream stream on
// heddle.SubjectDeadLetter: the deadletter.Store of durable mode on NATS.
//
// Every operator reads the same queue, it survives restarts of every
// process (file storage, replicas on a cluster), and the core subscribers
// of the subject (the Python dead-letter consumer, a deadletter.Consumer)
// still receive each letter, since a stream captures a subject without
// taking its messages from anyone. The router and the durable worker
// store their dead letters with a stream acknowledgement once a stream
// captures the subject (see router.DurableConfig).
//
// An entry's id is its sequence number in the stream. Replay publishes
// the original task, unchanged and with its headers, to
// heddle.SubjectTasksIncoming: stored in the intake stream with an
// acknowledgement when one captures the subject (durable mode), so a
// replay sent while no router runs waits for one, and on core NATS
// otherwise. Only once the task was accepted is the replay recorded (its
// count and time, in a key-value bucket, so that the entry the router
// makes should it dead-letter the task again carries them on) and the
// entry removed; a replay whose publish fails leaves the entry as it was.
// A process that dies between the publish and the removal leaves the
// entry in place: replaying it again within the intake stream's duplicate
// window (2 minutes) stores nothing new, since each replay of an entry is
// published with the same message id.
//
// Costs: Query and Counts read every entry (one direct get per stored
// message), so they suit queues of thousands, not millions (bound the
// stream with Config.MaxMsgs); Lookup is one get and one key-value read,
// Replay a stored publish, two key-value writes and a delete.
package jsstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/deadletter"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/observe"
	"github.com/heddle-go/heddle/natsbus"
)

// Defaults of Config.
const (
	// DefaultStream is the stream of the dead letters.
	DefaultStream = "HEDDLE_DEAD_LETTERS"
	// DefaultReplayBucket is the key-value bucket of the replay records.
	DefaultReplayBucket = "HEDDLE_DEAD_LETTER_REPLAYS"
	// DefaultMaxMsgs bounds the entries the stream keeps; past it the
	// oldest is discarded, as a deadletter.Consumer evicts at capacity.
	DefaultMaxMsgs = 10_000
)

// totalKey is the replay bucket's key of the count of every replay.
const totalKey = "total"

// Config configures a Store. The zero value keeps DefaultMaxMsgs entries
// in DefaultStream, on file storage, for bus.DefaultStreamMaxAge.
type Config struct {
	// Stream and ReplayBucket name the stream and the key-value bucket;
	// empty means DefaultStream and DefaultReplayBucket.
	Stream, ReplayBucket string
	// MaxMsgs, MaxAge and MaxBytes bound the stream (the oldest entries
	// go first); zero means DefaultMaxMsgs and bus.StreamConfig's
	// defaults.
	MaxMsgs  int64
	MaxAge   time.Duration
	MaxBytes int64
	// Replicas is how many servers keep the stream and the bucket (3 on
	// a cluster of three or more); zero means 1. Memory keeps both in
	// memory instead of file storage: they then do not survive a restart
	// of the server.
	Replicas int
	Memory   bool
}

// Store is a deadletter.Store on JetStream. It is safe for concurrent
// use, by any number of processes at once.
type Store struct {
	b      *natsbus.Bus
	js     jetstream.JetStream
	stream string // its name on the server
	kv     jetstream.KeyValue
	log    *observe.Emitter
}

var _ deadletter.Store = (*Store)(nil)

// Open creates the stream and the bucket when they are missing (an
// existing stream whose settings conflict with cfg is an error wrapping
// bus.ErrStreamConflict) and returns the store. A nil bus or a negative
// field is an error wrapping heddle.ErrConfig that names it.
func Open(ctx context.Context, b *natsbus.Bus, cfg Config, opts ...heddle.Option) (*Store, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: jsstore: the bus is nil", heddle.ErrConfig)
	}
	for _, f := range []struct {
		name  string
		value int64
	}{{"MaxMsgs", cfg.MaxMsgs}, {"MaxAge", int64(cfg.MaxAge)}, {"MaxBytes", cfg.MaxBytes}, {"Replicas", int64(cfg.Replicas)}} {
		if f.value < 0 {
			return nil, fmt.Errorf("%w: jsstore: Config.%s is negative; use zero for the default", heddle.ErrConfig, f.name)
		}
	}
	name := cmp.Or(cfg.Stream, DefaultStream)
	err := b.EnsureStream(ctx, bus.StreamConfig{Name: name, Subjects: []string{heddle.SubjectDeadLetter},
		MaxMsgs: cmp.Or(cfg.MaxMsgs, DefaultMaxMsgs), MaxAge: cfg.MaxAge, MaxBytes: cfg.MaxBytes, Replicas: cfg.Replicas, Memory: cfg.Memory})
	if err != nil {
		return nil, fmt.Errorf("jsstore: %w", err)
	}
	js, err := b.JetStream()
	if err != nil {
		return nil, err
	}
	kvc := jetstream.KeyValueConfig{Bucket: b.WireStreamName(cmp.Or(cfg.ReplayBucket, DefaultReplayBucket)),
		Description: "replays of the dead letters of " + name, Replicas: max(cfg.Replicas, 1), Storage: jetstream.FileStorage}
	if cfg.Memory {
		kvc.Storage = jetstream.MemoryStorage
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, kvc)
	if err != nil {
		return nil, fmt.Errorf("jsstore: replay bucket %q: %w", kvc.Bucket, err)
	}
	return &Store{b: b, js: js, stream: b.WireStreamName(name), kv: kv, log: observe.Actor("dead_letter", opts...)}, nil
}

// replayRecord is what the bucket keeps of a task's replays.
type replayRecord struct {
	Count int       `json:"count"`
	At    time.Time `json:"at"`
}

// replayKey names a task in the bucket: a hash of its task_id, or of its
// original bytes when it has none, as deadletter.Consumer matches a
// replayed task that comes back.
func replayKey(d heddle.DeadLetter) string {
	h := sha256.New()
	if d.TaskID != "" {
		h.Write([]byte("task_id\x00" + d.TaskID))
	} else {
		h.Write([]byte("original\x00"))
		h.Write(d.Original())
	}
	return "task_" + hex.EncodeToString(h.Sum(nil))
}

// entry reads the stored message seq as an entry, or reports it gone.
func (s *Store) entry(ctx context.Context, st jetstream.Stream, seq uint64) (deadletter.Entry, bool, error) {
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return deadletter.Entry{}, false, nil
	}
	if err != nil {
		return deadletter.Entry{}, false, fmt.Errorf("jsstore: reading entry %d: %w", seq, err)
	}
	d, err := heddle.DecodeDeadLetter(m.Data)
	if err != nil {
		// Not an envelope (someone published garbage on the subject):
		// nothing can be replayed from it, so it is not an entry.
		return deadletter.Entry{}, false, nil
	}
	e := deadletter.Entry{ID: strconv.FormatUint(seq, 10), DeadLetter: d, StoredAt: m.Time.UTC()}
	if len(m.Header) > 0 {
		e.Header = bus.Header(m.Header).Clone()
		delete(e.Header, bus.MsgIDHeader)
		if len(e.Header) == 0 {
			e.Header = nil
		}
	}
	if rec, _, err := s.record(ctx, replayKey(d)); err != nil {
		return deadletter.Entry{}, false, err
	} else if rec.Count > 0 && !rec.At.After(e.StoredAt) {
		e.ReplayCount, e.LastReplayedAt = rec.Count, rec.At
	}
	return e, true, nil
}

// record returns the bucket's record under key and its revision (zero
// when there is none).
func (s *Store) record(ctx context.Context, key string) (replayRecord, uint64, error) {
	kve, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return replayRecord{}, 0, nil
	}
	if err != nil {
		return replayRecord{}, 0, fmt.Errorf("jsstore: replay record: %w", err)
	}
	var rec replayRecord
	if err := json.Unmarshal(kve.Value(), &rec); err != nil {
		return replayRecord{}, 0, fmt.Errorf("jsstore: replay record %q: %w", key, err)
	}
	return rec, kve.Revision(), nil
}

// bump adds one replay at at to the record under key, with
// compare-and-set, so that replays from several processes all count.
func (s *Store) bump(ctx context.Context, key string, at time.Time) (replayRecord, error) {
	for {
		rec, rev, err := s.record(ctx, key)
		if err != nil {
			return rec, err
		}
		rec.Count++
		rec.At = at
		data, _ := json.Marshal(rec)
		if rev == 0 {
			_, err = s.kv.Create(ctx, key, data)
		} else {
			_, err = s.kv.Update(ctx, key, data, rev)
		}
		if err == nil {
			return rec, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return rec, fmt.Errorf("jsstore: replay record: %w", err)
		}
	}
}

// isWrongSequence reports the error of an Update whose revision is stale.
func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// each calls fn with every entry, newest first, until fn returns false.
func (s *Store) each(ctx context.Context, fn func(deadletter.Entry) bool) error {
	st, err := s.js.Stream(ctx, s.stream)
	if err != nil {
		return fmt.Errorf("jsstore: stream %q: %w", s.stream, err)
	}
	state := st.CachedInfo().State
	if state.Msgs == 0 {
		return nil
	}
	for seq := state.LastSeq; seq >= state.FirstSeq && seq > 0; seq-- {
		e, ok, err := s.entry(ctx, st, seq)
		if err != nil {
			return err
		}
		if ok && !fn(e) {
			return nil
		}
	}
	return nil
}

// Query returns a page of the entries matching q, newest first
// (deadletter.Store). It reads every stored entry.
func (s *Store) Query(ctx context.Context, q deadletter.Query) (deadletter.Page, error) {
	if err := q.Validate(); err != nil {
		return deadletter.Page{}, err
	}
	var p deadletter.Page
	err := s.each(ctx, func(e deadletter.Entry) bool {
		if !q.Match(e) {
			return true
		}
		if p.Total >= q.Offset && (q.Limit == 0 || len(p.Entries) < q.Limit) {
			p.Entries = append(p.Entries, e)
		}
		p.Total++
		return true
	})
	return p, err
}

// Lookup returns the entry with id, or an error wrapping
// deadletter.ErrNotFound (deadletter.Store).
func (s *Store) Lookup(ctx context.Context, id string) (deadletter.Entry, error) {
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil || seq == 0 {
		return deadletter.Entry{}, fmt.Errorf("%w: no entry with id %q (ids are the stream's sequence numbers)", deadletter.ErrNotFound, id)
	}
	st, err := s.js.Stream(ctx, s.stream)
	if err != nil {
		return deadletter.Entry{}, fmt.Errorf("jsstore: stream %q: %w", s.stream, err)
	}
	e, ok, err := s.entry(ctx, st, seq)
	if err != nil {
		return deadletter.Entry{}, err
	}
	if !ok {
		return deadletter.Entry{}, fmt.Errorf("%w: no entry with id %q (never stored, already replayed, or discarded by the stream's limits)", deadletter.ErrNotFound, id)
	}
	return e, nil
}

// Counts returns the counts of the entries and of every replay
// (deadletter.Store). It reads every stored entry.
func (s *Store) Counts(ctx context.Context) (deadletter.Counts, error) {
	c := deadletter.Counts{ByReasonKind: map[string]int{}, ByWorkerType: map[string]int{}}
	err := s.each(ctx, func(e deadletter.Entry) bool {
		c.Total++
		c.ByReasonKind[deadletter.ReasonKind(e.DeadLetter.Reason)]++
		c.ByWorkerType[e.DeadLetter.WorkerType]++
		return true
	})
	if err != nil {
		return c, err
	}
	rec, _, err := s.record(ctx, totalKey)
	c.ReplayCount = uint64(rec.Count)
	return c, err
}

// Replay publishes the original task of entry id to
// heddle.SubjectTasksIncoming, records the replay and removes the entry,
// in that order (deadletter.Store): see the package documentation.
func (s *Store) Replay(ctx context.Context, id string) error {
	e, err := s.Lookup(ctx, id)
	if err != nil {
		return err
	}
	seq, _ := strconv.ParseUint(id, 10, 64)
	msg := &bus.Msg{Subject: heddle.SubjectTasksIncoming, Header: e.Header.Clone(), Data: e.DeadLetter.Original()}
	if err := s.publish(ctx, msg, "dead-letter-replay-"+s.stream+"-"+id); err != nil {
		ev := entryEvent(event.DeadLetterReplayFailed, e)
		ev.Err = err
		s.log.Emit(ctx, slog.LevelError, ev, slog.String("id", id), slog.String("task_id", e.DeadLetter.TaskID),
			slog.String("worker_type", e.DeadLetter.WorkerType), slog.String("error", err.Error()))
		return fmt.Errorf("jsstore: replaying dead letter %q to %s: %w", id, heddle.SubjectTasksIncoming, err)
	}
	now := time.Now().UTC()
	rec, err := s.bump(ctx, replayKey(e.DeadLetter), now)
	if err == nil {
		_, err = s.bump(ctx, totalKey, now)
	}
	if err != nil {
		return fmt.Errorf("jsstore: dead letter %q was replayed, but its replay could not be recorded (the entry stays): %w", id, err)
	}
	st, err := s.js.Stream(ctx, s.stream)
	if err == nil {
		err = st.DeleteMsg(ctx, seq)
	}
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("jsstore: dead letter %q was replayed, but it could not be removed: %w", id, err)
	}
	s.log.Emit(ctx, slog.LevelInfo, entryEvent(event.DeadLetterReplayed, e),
		slog.String("id", id), slog.String("reason", e.DeadLetter.Reason), slog.String("task_id", e.DeadLetter.TaskID),
		slog.String("worker_type", e.DeadLetter.WorkerType), slog.Int("replay_count", rec.Count))
	return nil
}

// publish stores msg in the stream that captures its subject, or
// publishes it on core NATS when none does.
func (s *Store) publish(ctx context.Context, msg *bus.Msg, msgID string) error {
	if _, err := s.b.StreamOf(ctx, msg.Subject); errors.Is(err, bus.ErrNoStream) {
		return s.b.Publish(ctx, msg)
	} else if err != nil {
		return err
	}
	_, err := s.b.PublishDurable(ctx, msg, msgID)
	return err
}

// entryEvent is the typed event of a report about e.
func entryEvent(name string, e deadletter.Entry) event.Event {
	return event.Event{
		Name: name, Subject: heddle.SubjectDeadLetter, TaskID: e.DeadLetter.TaskID, WorkerType: e.DeadLetter.WorkerType,
		Reason: deadletter.ReasonKind(e.DeadLetter.Reason), Detail: e.DeadLetter.Reason,
	}
}
