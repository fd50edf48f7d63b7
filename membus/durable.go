package membus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"
	"weak"

	"github.com/heddle-go/heddle/bus"
)

// The durable capability (bus.Durable) in memory: streams, durable
// consumers, acknowledgements, redelivery after the ack wait, max
// deliveries, negative acknowledgements and duplicate detection, with the
// semantics of JetStream, so that actors in durable mode run on membus as
// they do on NATS. Nothing survives the process: "durable" here means the
// delivery semantics, not the storage.
//
// Streams belong to the broker, so every connection of it sees them. The
// broker has no field for them (it stays a routing table); they are kept
// beside it, keyed by a weak pointer that lets the broker be collected and
// drops its streams then.
//
// A core Publish to a subject a stream captures is stored, as JetStream
// stores it: each connection that ensured the stream (EnsureStream)
// subscribes to its subjects in a queue group of the stream's own, so one
// of them stores each message, for as long as one of them is open.

var _ bus.Durable = (*Bus)(nil)

// brokerStreams maps a weak pointer to a broker to its *streamStore.
var brokerStreams sync.Map

// streamStore is the streams of one broker. One mutex guards everything in
// it: streams, consumers and deliveries.
type streamStore struct {
	mu      sync.Mutex
	streams map[string]*memStream
}

// streamsOf returns br's streams, creating them on first use.
func streamsOf(br *broker) *streamStore {
	key := weak.Make(br)
	if v, ok := brokerStreams.Load(key); ok {
		return v.(*streamStore)
	}
	v, loaded := brokerStreams.LoadOrStore(key, &streamStore{streams: map[string]*memStream{}})
	if !loaded {
		runtime.AddCleanup(br, func(k weak.Pointer[broker]) { brokerStreams.Delete(k) }, key)
	}
	return v.(*streamStore)
}

// memStream is one stream: its messages in sequence order and its
// consumers.
type memStream struct {
	cfg   bus.StreamConfig // defaults resolved
	first uint64           // sequence of msgs[0]
	last  uint64           // last sequence stored
	msgs  []*storedMsg     // nil where a message was removed
	count int
	bytes int64
	// ids are the message ids stored within the duplicates window, in
	// the order they were stored.
	ids      map[string]time.Time
	idOrder  []string
	consumer map[string]*memConsumer
}

type storedMsg struct {
	seq     uint64
	subject string
	header  bus.Header
	data    []byte
	at      time.Time
	size    int64
}

// memConsumer is one durable consumer.
type memConsumer struct {
	cfg    bus.ConsumerConfig // defaults resolved
	stream *memStream
	// next is the first sequence never delivered.
	next uint64
	// pending holds the current delivery of every message delivered and
	// not settled; ready the sequences to redeliver, in order; count the
	// deliveries of each message not yet done with.
	pending map[uint64]*memDelivery
	ready   []uint64
	count   map[uint64]int
	// wake is closed (and replaced) when a message may have become
	// available to the consumptions waiting.
	wake chan struct{}
}

func (c *memConsumer) notify() {
	close(c.wake)
	c.wake = make(chan struct{})
}

func (c *memConsumer) matches(subject string) bool {
	if len(c.cfg.FilterSubjects) == 0 {
		return true
	}
	for _, f := range c.cfg.FilterSubjects {
		if bus.Match(f, subject) {
			return true
		}
	}
	return false
}

// EnsureStream implements bus.Durable. The stream lives as long as the
// broker; Memory, Replicas and the storage are accepted and ignored (it is
// in memory either way). The connection subscribes to the stream's
// subjects so that its core publishes are stored too (see the package
// documentation of durable mode).
func (b *Bus) EnsureStream(ctx context.Context, cfg bus.StreamConfig) error {
	if b.state.Load() != stateOpen {
		return fmt.Errorf("membus: stream %q: %w", cfg.Name, bus.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkStreamConfig(cfg); err != nil {
		return err
	}
	store := streamsOf(b.broker)
	store.mu.Lock()
	if s, ok := store.streams[cfg.Name]; ok {
		err := streamConflict(s.cfg, cfg)
		store.mu.Unlock()
		if err != nil {
			return err
		}
	} else {
		for _, other := range store.streams {
			for _, a := range other.cfg.Subjects {
				for _, c := range cfg.Subjects {
					if subjectsOverlap(a, c) {
						store.mu.Unlock()
						return fmt.Errorf("membus: stream %q: subject %q overlaps subject %q of stream %q: %w",
							cfg.Name, c, a, other.cfg.Name, bus.ErrStreamConflict)
					}
				}
			}
		}
		store.streams[cfg.Name] = &memStream{cfg: resolveStream(cfg), first: 1, ids: map[string]time.Time{}, consumer: map[string]*memConsumer{}}
		store.mu.Unlock()
	}
	return b.capture(ctx, store, cfg.Name)
}

// captureKey is the bus.Keeper key of a connection's capture
// subscriptions, by stream name.
type captureKey struct{}

type captures struct {
	mu   sync.Mutex
	done map[string]bool
}

// capture subscribes the connection to the stream's subjects, once, in a
// queue group of the stream's own: each core publish there is stored by
// one connection.
func (b *Bus) capture(ctx context.Context, store *streamStore, name string) error {
	cs := b.Keep(captureKey{}, func() any { return &captures{done: map[string]bool{}} }).(*captures)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.done[name] {
		return nil
	}
	store.mu.Lock()
	subjects := slices.Clone(store.streams[name].cfg.Subjects)
	store.mu.Unlock()
	for _, subject := range subjects {
		_, err := b.Subscribe(ctx, subject, func(_ context.Context, m *bus.Msg) error {
			store.mu.Lock()
			defer store.mu.Unlock()
			if s := store.streams[name]; s != nil {
				s.store(m, m.Header.Get(bus.MsgIDHeader), time.Now())
			}
			return nil
		}, bus.Queue("membus-stream."+name))
		if err != nil {
			return fmt.Errorf("membus: stream %q: capturing %q: %w", name, subject, err)
		}
	}
	cs.done[name] = true
	return nil
}

// subjectsOverlap reports whether some subject matches both patterns.
func subjectsOverlap(a, b string) bool {
	return bus.Match(a, b) || bus.Match(b, a) || overlapTokens(a, b)
}

// overlapTokens compares two patterns token by token: they overlap when
// every pair of tokens could be equal.
func overlapTokens(a, b string) bool {
	at, bt := splitTokens(a), splitTokens(b)
	for i := 0; ; i++ {
		switch {
		case i < len(at) && at[i] == ">":
			return i < len(bt)
		case i < len(bt) && bt[i] == ">":
			return i < len(at)
		case i == len(at) || i == len(bt):
			return len(at) == len(bt)
		case at[i] != "*" && bt[i] != "*" && at[i] != bt[i]:
			return false
		}
	}
}

func splitTokens(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// checkStreamConfig checks the fields of a stream configuration.
func checkStreamConfig(cfg bus.StreamConfig) error {
	if err := checkName("stream", cfg.Name); err != nil {
		return err
	}
	if len(cfg.Subjects) == 0 {
		return fmt.Errorf("membus: stream %q: StreamConfig.Subjects is empty", cfg.Name)
	}
	for _, s := range cfg.Subjects {
		if err := bus.ValidateSubscribeSubject(s); err != nil {
			return fmt.Errorf("membus: stream %q: StreamConfig.Subjects: %w", cfg.Name, err)
		}
	}
	for _, f := range []struct {
		name  string
		value int64
	}{{"MaxAge", int64(cfg.MaxAge)}, {"MaxBytes", cfg.MaxBytes}, {"MaxMsgs", cfg.MaxMsgs},
		{"Replicas", int64(cfg.Replicas)}, {"Duplicates", int64(cfg.Duplicates)}} {
		if f.value < 0 {
			return fmt.Errorf("membus: stream %q: StreamConfig.%s is negative; use zero for the default", cfg.Name, f.name)
		}
	}
	return nil
}

// checkName checks a stream or consumer name: letters, digits, '-' and
// '_', as JetStream allows in every name.
func checkName(what, name string) error {
	if name == "" {
		return fmt.Errorf("membus: the %s name is empty", what)
	}
	for i, r := range name {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("membus: %s name %q: character %q at byte %d; use letters, digits, '-' and '_'", what, name, r, i)
		}
	}
	return nil
}

// resolveStream fills the defaults of a stream configuration.
func resolveStream(cfg bus.StreamConfig) bus.StreamConfig {
	cfg.Subjects = slices.Clone(cfg.Subjects)
	if cfg.MaxAge == 0 {
		cfg.MaxAge = bus.DefaultStreamMaxAge
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = bus.DefaultStreamMaxBytes
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Duplicates == 0 {
		cfg.Duplicates = bus.DefaultDuplicates
	}
	return cfg
}

// streamConflict compares an existing stream with the configuration
// asked for: subjects and retention always, limits where cfg sets them.
func streamConflict(have, cfg bus.StreamConfig) error {
	conflict := func(setting string, has, want any) error {
		return fmt.Errorf("membus: stream %q exists with %s %v, the configuration asks for %v: %w",
			have.Name, setting, has, want, bus.ErrStreamConflict)
	}
	a, b := slices.Clone(have.Subjects), slices.Clone(cfg.Subjects)
	slices.Sort(a)
	slices.Sort(b)
	switch {
	case !slices.Equal(slices.Compact(a), slices.Compact(b)):
		return conflict("Subjects", have.Subjects, cfg.Subjects)
	case have.WorkQueue != cfg.WorkQueue:
		return conflict("WorkQueue", have.WorkQueue, cfg.WorkQueue)
	case have.Memory != cfg.Memory:
		return conflict("Memory", have.Memory, cfg.Memory)
	case cfg.MaxAge != 0 && cfg.MaxAge != have.MaxAge:
		return conflict("MaxAge", have.MaxAge, cfg.MaxAge)
	case cfg.MaxBytes != 0 && cfg.MaxBytes != have.MaxBytes:
		return conflict("MaxBytes", have.MaxBytes, cfg.MaxBytes)
	case cfg.MaxMsgs != 0 && cfg.MaxMsgs != have.MaxMsgs:
		return conflict("MaxMsgs", have.MaxMsgs, cfg.MaxMsgs)
	case cfg.Replicas != 0 && cfg.Replicas != have.Replicas:
		return conflict("Replicas", have.Replicas, cfg.Replicas)
	case cfg.Duplicates != 0 && cfg.Duplicates != have.Duplicates:
		return conflict("Duplicates", have.Duplicates, cfg.Duplicates)
	}
	return nil
}

// store appends a message, unless msgID is a duplicate within the window.
// Called with the store's lock held.
func (s *memStream) store(m *bus.Msg, msgID string, now time.Time) (uint64, bool) {
	s.expireIDs(now)
	if msgID != "" {
		if _, dup := s.ids[msgID]; dup {
			return 0, true
		}
		s.ids[msgID] = now
		s.idOrder = append(s.idOrder, msgID)
	}
	s.last++
	sm := &storedMsg{seq: s.last, subject: m.Subject, header: m.Header.Clone(), data: slices.Clip(append([]byte(nil), m.Data...)), at: now}
	sm.size = int64(m.Size())
	if len(s.msgs) == 0 {
		s.first = sm.seq
	}
	s.msgs = append(s.msgs, sm)
	s.count++
	s.bytes += sm.size
	s.enforceLimits(now)
	for _, c := range s.consumer {
		if c.matches(sm.subject) {
			c.notify()
		}
	}
	return sm.seq, false
}

// expireIDs forgets the message ids older than the duplicates window.
func (s *memStream) expireIDs(now time.Time) {
	n := 0
	for _, id := range s.idOrder {
		if now.Sub(s.ids[id]) < s.cfg.Duplicates {
			break
		}
		delete(s.ids, id)
		n++
	}
	s.idOrder = s.idOrder[n:]
}

// enforceLimits discards the oldest messages beyond the stream's limits.
func (s *memStream) enforceLimits(now time.Time) {
	for len(s.msgs) > 0 {
		head := s.msgs[0]
		over := head == nil ||
			(s.cfg.MaxMsgs > 0 && int64(s.count) > s.cfg.MaxMsgs) ||
			s.bytes > s.cfg.MaxBytes ||
			now.Sub(head.at) >= s.cfg.MaxAge
		if !over {
			return
		}
		if head != nil {
			s.count--
			s.bytes -= head.size
		}
		s.msgs[0] = nil
		s.msgs = s.msgs[1:]
		s.first++
	}
}

// get returns the message with sequence seq, or nil when it is gone.
func (s *memStream) get(seq uint64) *storedMsg {
	if seq < s.first || seq >= s.first+uint64(len(s.msgs)) {
		return nil
	}
	return s.msgs[seq-s.first]
}

// remove deletes the message with sequence seq (a work queue's, once
// acknowledged).
func (s *memStream) remove(seq uint64) {
	m := s.get(seq)
	if m == nil {
		return
	}
	s.msgs[seq-s.first] = nil
	s.count--
	s.bytes -= m.size
	s.enforceLimits(time.Now())
}

// streamFor returns the stream capturing subject. Called with the lock
// held.
func (st *streamStore) streamFor(subject string) *memStream {
	for _, s := range st.streams {
		for _, p := range s.cfg.Subjects {
			if bus.Match(p, subject) {
				return s
			}
		}
	}
	return nil
}

// PublishDurable implements bus.Durable: msg is stored in the stream that
// captures its subject, then published as a core message to the plain
// subscribers and queue groups of the subject, carrying bus.MsgIDHeader
// (msgID, or a random id when it is empty) so that the stream's own
// capture does not store it twice.
func (b *Bus) PublishDurable(ctx context.Context, msg *bus.Msg, msgID string) (bus.PubAck, error) {
	if msg == nil {
		return bus.PubAck{}, fmt.Errorf("membus: publish durable: nil message")
	}
	if b.state.Load() == stateClosed {
		return bus.PubAck{}, fmt.Errorf("membus: publish durable to %q: %w", msg.Subject, bus.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return bus.PubAck{}, err
	}
	if err := bus.ValidatePublishSubject(msg.Subject); err != nil {
		return bus.PubAck{}, fmt.Errorf("membus: publish durable: %w", err)
	}
	if msgID == "" {
		var r [12]byte
		rand.Read(r[:]) // never fails
		msgID = "membus-" + hex.EncodeToString(r[:])
	}
	out := &bus.Msg{Subject: msg.Subject, Header: msg.Header.Clone(), Data: msg.Data}
	if out.Header == nil {
		out.Header = bus.Header{}
	}
	out.Header.Set(bus.MsgIDHeader, msgID)
	if size := out.Size(); size > b.maxPayload {
		return bus.PubAck{}, fmt.Errorf("membus: publish durable to %q: %w: message is %d bytes, the limit is %d",
			msg.Subject, bus.ErrMaxPayload, size, b.maxPayload)
	}
	store := streamsOf(b.broker)
	store.mu.Lock()
	s := store.streamFor(msg.Subject)
	if s == nil {
		store.mu.Unlock()
		return bus.PubAck{}, fmt.Errorf("membus: publish durable to %q: no stream captures the subject: %w", msg.Subject, bus.ErrNoStream)
	}
	seq, dup := s.store(out, msgID, time.Now())
	ack := bus.PubAck{Stream: s.cfg.Name, Sequence: seq, Duplicate: dup}
	store.mu.Unlock()
	if dup {
		return ack, nil
	}
	if err := b.Publish(ctx, out); err != nil {
		return ack, fmt.Errorf("membus: publish durable to %q: stored as %d, the core publish failed: %w", msg.Subject, seq, err)
	}
	return ack, nil
}

// StreamOf implements bus.Durable.
func (b *Bus) StreamOf(ctx context.Context, subject string) (string, error) {
	if b.state.Load() == stateClosed {
		return "", fmt.Errorf("membus: stream of %q: %w", subject, bus.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	store := streamsOf(b.broker)
	store.mu.Lock()
	defer store.mu.Unlock()
	if s := store.streamFor(subject); s != nil {
		return s.cfg.Name, nil
	}
	return "", fmt.Errorf("membus: no stream captures %q: %w", subject, bus.ErrNoStream)
}

// resolveConsumer checks a consumer configuration and fills its defaults.
func resolveConsumer(cfg bus.ConsumerConfig) (bus.ConsumerConfig, error) {
	if err := checkName("stream", cfg.Stream); err != nil {
		return cfg, err
	}
	if err := checkName("consumer", cfg.Name); err != nil {
		return cfg, err
	}
	for _, f := range cfg.FilterSubjects {
		if err := bus.ValidateSubscribeSubject(f); err != nil {
			return cfg, fmt.Errorf("membus: consumer %q: ConsumerConfig.FilterSubjects: %w", cfg.Name, err)
		}
	}
	for _, f := range []struct {
		name  string
		value int64
	}{{"AckWait", int64(cfg.AckWait)}, {"MaxDeliver", int64(cfg.MaxDeliver)}, {"MaxAckPending", int64(cfg.MaxAckPending)}, {"Prefetch", int64(cfg.Prefetch)}} {
		if f.value < 0 {
			return cfg, fmt.Errorf("membus: consumer %q: ConsumerConfig.%s is negative; use zero for the default", cfg.Name, f.name)
		}
	}
	cfg.FilterSubjects = slices.Clone(cfg.FilterSubjects)
	if cfg.AckWait == 0 {
		cfg.AckWait = bus.DefaultAckWait
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = bus.DefaultMaxDeliver
	}
	if cfg.MaxAckPending == 0 {
		cfg.MaxAckPending = bus.DefaultMaxAckPending
	}
	return cfg, nil
}

// consumerConflict compares an existing consumer with the configuration
// asked for (raw, before defaults).
func consumerConflict(have, cfg bus.ConsumerConfig) error {
	conflict := func(setting string, has, want any) error {
		return fmt.Errorf("membus: consumer %q of stream %q exists with %s %v, the configuration asks for %v: %w",
			have.Name, have.Stream, setting, has, want, bus.ErrStreamConflict)
	}
	a, b := slices.Clone(have.FilterSubjects), slices.Clone(cfg.FilterSubjects)
	slices.Sort(a)
	slices.Sort(b)
	switch {
	case !slices.Equal(a, b):
		return conflict("FilterSubjects", have.FilterSubjects, cfg.FilterSubjects)
	case cfg.AckWait != 0 && cfg.AckWait != have.AckWait:
		return conflict("AckWait", have.AckWait, cfg.AckWait)
	case cfg.MaxDeliver != 0 && cfg.MaxDeliver != have.MaxDeliver:
		return conflict("MaxDeliver", have.MaxDeliver, cfg.MaxDeliver)
	case cfg.MaxAckPending != 0 && cfg.MaxAckPending != have.MaxAckPending:
		return conflict("MaxAckPending", have.MaxAckPending, cfg.MaxAckPending)
	}
	return nil
}

// Consume implements bus.Durable. Messages are handed over one at a time,
// when the handler is free: a membus consumption holds nothing beyond the
// message its handler has.
func (b *Bus) Consume(ctx context.Context, cfg bus.ConsumerConfig, h bus.DurableHandler) (bus.Consumption, error) {
	if b.state.Load() != stateOpen {
		return nil, fmt.Errorf("membus: consume %q: %w", cfg.Name, bus.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("membus: consume %q: nil handler", cfg.Name)
	}
	resolved, err := resolveConsumer(cfg)
	if err != nil {
		return nil, err
	}
	store := streamsOf(b.broker)
	store.mu.Lock()
	s := store.streams[cfg.Stream]
	if s == nil {
		store.mu.Unlock()
		return nil, fmt.Errorf("membus: consumer %q: stream %q does not exist: %w", cfg.Name, cfg.Stream, bus.ErrNoStream)
	}
	c := s.consumer[cfg.Name]
	if c != nil {
		if err := consumerConflict(c.cfg, cfg); err != nil {
			store.mu.Unlock()
			return nil, err
		}
	} else {
		if s.cfg.WorkQueue {
			if err := workQueueConflict(s, resolved); err != nil {
				store.mu.Unlock()
				return nil, err
			}
		}
		c = &memConsumer{cfg: resolved, stream: s, next: s.first, pending: map[uint64]*memDelivery{},
			count: map[uint64]int{}, wake: make(chan struct{})}
		s.consumer[cfg.Name] = c
	}
	store.mu.Unlock()

	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cn := &memConsumption{bus: b, store: store, c: c, h: h, ctx: hctx, cancel: cancel,
		stop: make(chan struct{}), done: make(chan struct{})}
	go cn.run()
	return cn, nil
}

// workQueueConflict refuses a second consumer on a work queue whose
// filters overlap an existing one's: each message goes to one consumer.
func workQueueConflict(s *memStream, cfg bus.ConsumerConfig) error {
	all := func(f []string) []string {
		if len(f) == 0 {
			return []string{">"}
		}
		return f
	}
	for _, other := range s.consumer {
		for _, a := range all(other.cfg.FilterSubjects) {
			for _, b := range all(cfg.FilterSubjects) {
				if subjectsOverlap(a, b) {
					return fmt.Errorf("membus: consumer %q: work-queue stream %q already has consumer %q on overlapping subjects (%q, %q): %w",
						cfg.Name, s.cfg.Name, other.cfg.Name, a, b, bus.ErrStreamConflict)
				}
			}
		}
	}
	return nil
}

// take returns the next delivery for a consumption, or nil when there is
// none now. Called with the store's lock held.
func (c *memConsumer) take(st *streamStore) *memDelivery {
	if len(c.pending) >= c.cfg.MaxAckPending {
		return nil
	}
	s := c.stream
	s.enforceLimits(time.Now())
	var m *storedMsg
	for m == nil && len(c.ready) > 0 {
		seq := c.ready[0]
		c.ready = c.ready[1:]
		if m = s.get(seq); m == nil {
			delete(c.count, seq)
		}
	}
	for m == nil && c.next <= s.last {
		seq := c.next
		c.next++
		if cand := s.get(seq); cand != nil && c.matches(cand.subject) {
			m = cand
		}
	}
	if m == nil {
		return nil
	}
	c.count[m.seq]++
	d := &memDelivery{store: st, c: c, seq: m.seq, n: c.count[m.seq],
		msg: bus.Msg{Subject: m.subject, Header: m.header, Data: m.data}}
	c.pending[m.seq] = d
	d.timer = time.AfterFunc(c.cfg.AckWait, d.expire)
	return d
}

// requeue makes seq ready for redelivery unless it has had its deliveries.
// Called with the lock held.
func (c *memConsumer) requeue(seq uint64) {
	if c.count[seq] >= c.cfg.MaxDeliver {
		delete(c.count, seq)
		return
	}
	c.ready = append(c.ready, seq)
	c.notify()
}

// done forgets seq: acknowledged or terminated.
func (c *memConsumer) done(seq uint64) {
	if p := c.pending[seq]; p != nil {
		p.timer.Stop()
		delete(c.pending, seq)
	}
	if i := slices.Index(c.ready, seq); i >= 0 {
		c.ready = slices.Delete(c.ready, i, i+1)
	}
	delete(c.count, seq)
	if c.stream.cfg.WorkQueue {
		c.stream.remove(seq)
	}
	c.notify()
}

// memDelivery is one delivery of a stored message.
type memDelivery struct {
	store   *streamStore
	c       *memConsumer
	seq     uint64
	n       int
	msg     bus.Msg
	timer   *time.Timer
	settled bool
}

func (d *memDelivery) Msg() *bus.Msg  { return &d.msg }
func (d *memDelivery) Delivered() int { return d.n }

// untake returns a delivery that never reached a handler: the message is
// first in line again and the delivery is not counted.
func (d *memDelivery) untake() {
	d.store.mu.Lock()
	defer d.store.mu.Unlock()
	c := d.c
	if c.pending[d.seq] != d {
		return // its ack wait passed already: redelivered as usual
	}
	d.timer.Stop()
	d.settled = true
	delete(c.pending, d.seq)
	if c.count[d.seq]--; c.count[d.seq] <= 0 {
		delete(c.count, d.seq)
	}
	c.ready = slices.Insert(c.ready, 0, d.seq)
	c.notify()
}

// expire runs when the ack wait passes: the message is redelivered.
func (d *memDelivery) expire() {
	d.store.mu.Lock()
	defer d.store.mu.Unlock()
	if d.c.pending[d.seq] != d {
		return
	}
	delete(d.c.pending, d.seq)
	d.c.requeue(d.seq)
}

// settle marks the delivery settled, or reports that it was.
func (d *memDelivery) settle(how string) error {
	if d.settled {
		return fmt.Errorf("membus: %s of message %d of stream %q: %w", how, d.seq, d.c.stream.cfg.Name, bus.ErrSettled)
	}
	d.settled = true
	return nil
}

// Ack implements bus.DurableMsg. An Ack from a delivery whose ack wait
// passed still acknowledges the message, as with JetStream, unless it was
// settled since.
func (d *memDelivery) Ack() error {
	d.store.mu.Lock()
	defer d.store.mu.Unlock()
	if err := d.settle("Ack"); err != nil {
		return err
	}
	if _, live := d.c.count[d.seq]; live {
		d.c.done(d.seq)
	}
	return nil
}

// Nak implements bus.DurableMsg.
func (d *memDelivery) Nak(delay time.Duration) error {
	d.store.mu.Lock()
	defer d.store.mu.Unlock()
	if err := d.settle("Nak"); err != nil {
		return err
	}
	if d.c.pending[d.seq] != d {
		return nil // redelivered already, or settled by another delivery
	}
	d.timer.Stop()
	delete(d.c.pending, d.seq)
	if delay <= 0 {
		d.c.requeue(d.seq)
		return nil
	}
	seq, c := d.seq, d.c
	time.AfterFunc(delay, func() {
		d.store.mu.Lock()
		defer d.store.mu.Unlock()
		if _, live := c.count[seq]; live && c.pending[seq] == nil && !slices.Contains(c.ready, seq) {
			c.requeue(seq)
		}
	})
	return nil
}

// InProgress implements bus.DurableMsg.
func (d *memDelivery) InProgress() error {
	d.store.mu.Lock()
	defer d.store.mu.Unlock()
	if d.settled {
		return fmt.Errorf("membus: InProgress of message %d of stream %q: %w", d.seq, d.c.stream.cfg.Name, bus.ErrSettled)
	}
	if d.c.pending[d.seq] == d {
		d.timer.Reset(d.c.cfg.AckWait)
	}
	return nil
}

// Term implements bus.DurableMsg.
func (d *memDelivery) Term() error {
	d.store.mu.Lock()
	defer d.store.mu.Unlock()
	if err := d.settle("Term"); err != nil {
		return err
	}
	if _, live := d.c.count[d.seq]; live {
		d.c.done(d.seq)
	}
	return nil
}

// memConsumption delivers a consumer's messages to one handler on one
// goroutine.
type memConsumption struct {
	bus    *Bus
	store  *streamStore
	c      *memConsumer
	h      bus.DurableHandler
	ctx    context.Context
	cancel context.CancelFunc

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

func (cn *memConsumption) Done() <-chan struct{} { return cn.done }

// Stop implements bus.Consumption. The handler's context is cancelled.
func (cn *memConsumption) Stop(ctx context.Context) error {
	cn.stopOnce.Do(func() {
		close(cn.stop)
		cn.cancel()
	})
	select {
	case <-cn.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (cn *memConsumption) run() {
	defer close(cn.done)
	defer cn.cancel()
	for {
		if cn.stopped() {
			return
		}
		cn.store.mu.Lock()
		d := cn.c.take(cn.store)
		wake := cn.c.wake
		cn.store.mu.Unlock()
		if d == nil {
			select {
			case <-wake:
				continue
			case <-cn.stop:
				return
			case <-cn.bus.done:
				return
			}
		}
		if cn.stopped() {
			// Taken as the consumption stopped: it never reached the
			// handler, so it goes back first in line, its delivery not
			// counted.
			d.untake()
			return
		}
		cn.deliver(d)
	}
}

// stopped reports whether the consumption was stopped or its bus closed.
func (cn *memConsumption) stopped() bool {
	select {
	case <-cn.stop:
		return true
	case <-cn.bus.done:
		return true
	default:
		return false
	}
}

// deliver calls the handler, reporting its error or panic.
func (cn *memConsumption) deliver(d *memDelivery) {
	defer func() {
		if r := recover(); r != nil {
			cn.bus.report(d.msg.Subject, fmt.Errorf("membus: durable handler of consumer %q panicked: %v", cn.c.cfg.Name, r))
		}
	}()
	if err := cn.h(cn.ctx, d); err != nil {
		cn.bus.report(d.msg.Subject, err)
	}
}
