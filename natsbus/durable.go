package natsbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heddle-go/heddle/bus"
)

// The durable capability (bus.Durable) on JetStream: streams with file
// storage (unless StreamConfig.Memory), durable pull consumers with
// explicit acknowledgements, publishes acknowledged by the stream.
//
// With WithSubjectPrefix, stream subjects and filters are in the bus's
// namespace, and stream names are prefixed too ('.' becoming '_'), so
// that tests sharing one server keep their streams apart.

var _ bus.Durable = (*Bus)(nil)

// errCodeSubjectOverlap is the JetStream API error code of a stream whose
// subjects overlap another stream's (nats.go names no constant for it).
const errCodeSubjectOverlap jetstream.ErrorCode = 10065

// pullExpiry is how long a consumption's pull request stays open at the
// server; see Consume.
const pullExpiry = 2 * time.Second

// jsKey is the bus.Keeper key of the bus's JetStream context.
type jsKey struct{}

type jsHandle struct {
	js  jetstream.JetStream
	err error
}

// jetStream returns the bus's JetStream context, made once.
func (b *Bus) jetStream() (jetstream.JetStream, error) {
	h := b.Keep(jsKey{}, func() any {
		js, err := jetstream.New(b.nc)
		return &jsHandle{js: js, err: err}
	}).(*jsHandle)
	if h.err != nil {
		return nil, fmt.Errorf("natsbus: JetStream: %w", h.err)
	}
	return h.js, nil
}

// JetStream returns the bus's JetStream context (nats.go's jetstream
// package), for what the bus does not cover: reading a stream, an
// operator's tools. Its subjects and stream names are wire names (see
// WireStreamName and WithSubjectPrefix).
func (b *Bus) JetStream() (jetstream.JetStream, error) { return b.jetStream() }

// WireStreamName returns the name the server knows a stream by: name
// itself, or with WithSubjectPrefix, the prefix ('.' written '_') then
// name.
func (b *Bus) WireStreamName(name string) string {
	if b.prefix == "" {
		return name
	}
	return strings.ReplaceAll(b.prefix, ".", "_") + name
}

// WireSubject returns the subject the server sees for a logical subject
// (the same subject, unless WithSubjectPrefix).
func (b *Bus) WireSubject(subject string) string { return b.wire(subject) }

// EnsureStream implements bus.Durable on JetStream; see bus.Durable.
// A stream is created with file storage unless cfg.Memory, the limits of
// cfg (with the bus package's defaults for zero fields) and cfg.Replicas
// replicas; a replica count the cluster cannot hold is the server's error.
func (b *Bus) EnsureStream(ctx context.Context, cfg bus.StreamConfig) error {
	if b.closed.Load() {
		return fmt.Errorf("natsbus: stream %q: %w", cfg.Name, bus.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkStreamConfig(cfg); err != nil {
		return err
	}
	js, err := b.jetStream()
	if err != nil {
		return err
	}
	want := b.streamConfig(cfg)
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err = js.CreateStream(ctx, want); err == nil {
			return nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeSubjectOverlap {
			return fmt.Errorf("natsbus: stream %q: its subjects %v overlap another stream's: %w: %w", cfg.Name, cfg.Subjects, bus.ErrStreamConflict, err)
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("natsbus: creating stream %q: %w", cfg.Name, err)
		}
		// Created meanwhile by another process: check it as any other.
		s, err = js.Stream(ctx, want.Name)
	}
	if err != nil {
		return b.durableError(fmt.Sprintf("stream %q", cfg.Name), err)
	}
	return streamConflict(cfg, s.CachedInfo().Config, b)
}

// streamConfig is the JetStream configuration of cfg, defaults filled.
func (b *Bus) streamConfig(cfg bus.StreamConfig) jetstream.StreamConfig {
	sc := jetstream.StreamConfig{
		Name:       b.WireStreamName(cfg.Name),
		Retention:  jetstream.LimitsPolicy,
		Storage:    jetstream.FileStorage,
		MaxAge:     cmpOr(cfg.MaxAge, bus.DefaultStreamMaxAge),
		MaxBytes:   cmpOr(cfg.MaxBytes, bus.DefaultStreamMaxBytes),
		MaxMsgs:    cmpOr(cfg.MaxMsgs, -1),
		Replicas:   cmpOr(cfg.Replicas, 1),
		Duplicates: cmpOr(cfg.Duplicates, bus.DefaultDuplicates),
		Discard:    jetstream.DiscardOld,
	}
	for _, s := range cfg.Subjects {
		sc.Subjects = append(sc.Subjects, b.wire(s))
	}
	if cfg.WorkQueue {
		sc.Retention = jetstream.WorkQueuePolicy
	}
	if cfg.Memory {
		sc.Storage = jetstream.MemoryStorage
	}
	return sc
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// streamConflict compares an existing stream with the configuration asked
// for: subjects, retention and storage always, limits where cfg sets them.
func streamConflict(cfg bus.StreamConfig, have jetstream.StreamConfig, b *Bus) error {
	want := b.streamConfig(cfg)
	conflict := func(setting string, has, asked any) error {
		return fmt.Errorf("natsbus: stream %q exists with %s %v, the configuration asks for %v; change the configuration or the stream (nats stream edit %s): %w",
			have.Name, setting, has, asked, have.Name, bus.ErrStreamConflict)
	}
	hs, ws := slices.Clone(have.Subjects), slices.Clone(want.Subjects)
	slices.Sort(hs)
	slices.Sort(ws)
	switch {
	case !slices.Equal(slices.Compact(hs), slices.Compact(ws)):
		return conflict("Subjects", have.Subjects, want.Subjects)
	case have.Retention != want.Retention:
		return conflict("Retention", have.Retention, want.Retention)
	case have.Storage != want.Storage:
		return conflict("Storage", have.Storage, want.Storage)
	case cfg.MaxAge != 0 && have.MaxAge != cfg.MaxAge:
		return conflict("MaxAge", have.MaxAge, cfg.MaxAge)
	case cfg.MaxBytes != 0 && have.MaxBytes != cfg.MaxBytes:
		return conflict("MaxBytes", have.MaxBytes, cfg.MaxBytes)
	case cfg.MaxMsgs != 0 && have.MaxMsgs != cfg.MaxMsgs:
		return conflict("MaxMsgs", have.MaxMsgs, cfg.MaxMsgs)
	case cfg.Replicas != 0 && have.Replicas != cfg.Replicas:
		return conflict("Replicas", have.Replicas, cfg.Replicas)
	case cfg.Duplicates != 0 && have.Duplicates != cfg.Duplicates:
		return conflict("Duplicates", have.Duplicates, cfg.Duplicates)
	}
	return nil
}

// checkStreamConfig checks what the server would refuse less clearly.
func checkStreamConfig(cfg bus.StreamConfig) error {
	if err := checkName("stream", cfg.Name); err != nil {
		return err
	}
	if len(cfg.Subjects) == 0 {
		return fmt.Errorf("natsbus: stream %q: StreamConfig.Subjects is empty", cfg.Name)
	}
	for _, s := range cfg.Subjects {
		if err := bus.ValidateSubscribeSubject(s); err != nil {
			return fmt.Errorf("natsbus: stream %q: StreamConfig.Subjects: %w", cfg.Name, err)
		}
	}
	for _, f := range []struct {
		name  string
		value int64
	}{{"MaxAge", int64(cfg.MaxAge)}, {"MaxBytes", cfg.MaxBytes}, {"MaxMsgs", cfg.MaxMsgs},
		{"Replicas", int64(cfg.Replicas)}, {"Duplicates", int64(cfg.Duplicates)}} {
		if f.value < 0 {
			return fmt.Errorf("natsbus: stream %q: StreamConfig.%s is negative; use zero for the default", cfg.Name, f.name)
		}
	}
	return nil
}

// checkName checks a stream or consumer name: letters, digits, '-' and
// '_'.
func checkName(what, name string) error {
	if name == "" {
		return fmt.Errorf("natsbus: the %s name is empty", what)
	}
	for i, r := range name {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("natsbus: %s name %q: character %q at byte %d; use letters, digits, '-' and '_'", what, name, r, i)
		}
	}
	return nil
}

// durableError wraps a JetStream error with what it concerns, mapping the
// closed connection to bus.ErrClosed and a missing stream to
// bus.ErrNoStream.
func (b *Bus) durableError(what string, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, jetstream.ErrNoStreamResponse):
		return fmt.Errorf("natsbus: %s: %w: %w", what, bus.ErrNoStream, err)
	case errors.Is(err, nats.ErrConnectionClosed), b.closed.Load():
		return fmt.Errorf("natsbus: %s: %w: %w", what, bus.ErrClosed, err)
	case errors.Is(err, nats.ErrMaxPayload):
		return fmt.Errorf("natsbus: %s: %w: %w", what, bus.ErrMaxPayload, err)
	}
	return fmt.Errorf("natsbus: %s: %w", what, err)
}

// PublishDurable implements bus.Durable: a JetStream publish, which
// returns once the stream stored the message, with msgID as its
// Nats-Msg-Id. msg.Header is not modified.
func (b *Bus) PublishDurable(ctx context.Context, msg *bus.Msg, msgID string) (bus.PubAck, error) {
	if msg == nil {
		return bus.PubAck{}, errors.New("natsbus: publish durable: nil message")
	}
	if b.closed.Load() {
		return bus.PubAck{}, fmt.Errorf("natsbus: publish durable to %q: %w", msg.Subject, bus.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return bus.PubAck{}, err
	}
	if err := bus.ValidatePublishSubject(msg.Subject); err != nil {
		return bus.PubAck{}, fmt.Errorf("natsbus: publish durable: %w", err)
	}
	if err := checkHeader(msg.Header); err != nil {
		return bus.PubAck{}, fmt.Errorf("natsbus: publish durable to %q: %w", msg.Subject, err)
	}
	js, err := b.jetStream()
	if err != nil {
		return bus.PubAck{}, err
	}
	m := &nats.Msg{Subject: b.wire(msg.Subject), Data: msg.Data}
	if len(msg.Header) > 0 || msgID != "" {
		m.Header = nats.Header(msg.Header.Clone())
		if m.Header == nil {
			m.Header = nats.Header{}
		}
	}
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	pa, err := js.PublishMsg(ctx, m, opts...)
	if err != nil {
		if ctx.Err() != nil {
			return bus.PubAck{}, fmt.Errorf("natsbus: publish durable to %q: %w", msg.Subject, ctx.Err())
		}
		return bus.PubAck{}, b.durableError(fmt.Sprintf("publish durable to %q", msg.Subject), err)
	}
	return bus.PubAck{Stream: strings.TrimPrefix(pa.Stream, b.WireStreamName("")), Sequence: pa.Sequence, Duplicate: pa.Duplicate}, nil
}

// StreamOf implements bus.Durable: the server's answer, in the bus's
// namespace.
func (b *Bus) StreamOf(ctx context.Context, subject string) (string, error) {
	if b.closed.Load() {
		return "", fmt.Errorf("natsbus: stream of %q: %w", subject, bus.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	js, err := b.jetStream()
	if err != nil {
		return "", err
	}
	name, err := js.StreamNameBySubject(ctx, b.wire(subject))
	if err != nil {
		return "", b.durableError(fmt.Sprintf("stream of %q", subject), err)
	}
	return strings.TrimPrefix(name, b.WireStreamName("")), nil
}

// Consume implements bus.Durable with a JetStream pull consumer: explicit
// acknowledgements, delivery of every stored message, and a client buffer
// of cfg.Prefetch messages (1 when zero). On Stop, the buffered messages
// are handed back (Nak).
func (b *Bus) Consume(ctx context.Context, cfg bus.ConsumerConfig, h bus.DurableHandler) (bus.Consumption, error) {
	if b.closed.Load() {
		return nil, fmt.Errorf("natsbus: consume %q: %w", cfg.Name, bus.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("natsbus: consume %q: nil handler", cfg.Name)
	}
	if err := checkConsumerConfig(cfg); err != nil {
		return nil, err
	}
	js, err := b.jetStream()
	if err != nil {
		return nil, err
	}
	stream := b.WireStreamName(cfg.Stream)
	want := jetstream.ConsumerConfig{
		Durable:       cfg.Name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       cmpOr(cfg.AckWait, bus.DefaultAckWait),
		MaxDeliver:    cmpOr(cfg.MaxDeliver, bus.DefaultMaxDeliver),
		MaxAckPending: cmpOr(cfg.MaxAckPending, bus.DefaultMaxAckPending),
	}
	for _, f := range cfg.FilterSubjects {
		want.FilterSubjects = append(want.FilterSubjects, b.wire(f))
	}
	if len(want.FilterSubjects) == 1 {
		want.FilterSubject, want.FilterSubjects = want.FilterSubjects[0], nil
	}
	what := fmt.Sprintf("consumer %q of stream %q", cfg.Name, cfg.Stream)
	cons, err := js.Consumer(ctx, stream, cfg.Name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = js.CreateConsumer(ctx, stream, want)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			cons, err = js.Consumer(ctx, stream, cfg.Name)
		}
	}
	if err != nil {
		return nil, b.durableError(what, err)
	}
	if err := consumerConflict(cfg, want, cons.CachedInfo().Config, stream); err != nil {
		return nil, err
	}
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cn := &natsConsumption{bus: b, h: h, ctx: hctx, cancel: cancel, name: cfg.Name, done: make(chan struct{})}
	cc, err := cons.Consume(cn.handle,
		jetstream.PullMaxMessages(max(cfg.Prefetch, 1)),
		// nats.go skips the next pull when a batch is used up before the
		// previous pull request has finished going out, and pulls again
		// only when the request expires: a short expiry bounds that stall.
		jetstream.PullExpiry(pullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if b.errh != nil && !cn.stopping.Load() {
				b.errh(strings.Join(cfg.FilterSubjects, ","), fmt.Errorf("natsbus: %s: %w", what, err))
			}
		}))
	if err != nil {
		cancel()
		return nil, b.durableError(what, err)
	}
	cn.cc = cc
	closed := cc.Closed()
	go func() {
		select {
		case <-closed:
		case <-b.done:
			cn.stopOnce.Do(func() {
				cn.stopping.Store(true)
				cn.cancel()
				cc.Stop()
			})
			<-closed
		}
		cancel()
		close(cn.done)
	}()
	return cn, nil
}

// checkConsumerConfig checks the fields of a consumer configuration.
func checkConsumerConfig(cfg bus.ConsumerConfig) error {
	if err := checkName("stream", cfg.Stream); err != nil {
		return err
	}
	if err := checkName("consumer", cfg.Name); err != nil {
		return err
	}
	for _, f := range cfg.FilterSubjects {
		if err := bus.ValidateSubscribeSubject(f); err != nil {
			return fmt.Errorf("natsbus: consumer %q: ConsumerConfig.FilterSubjects: %w", cfg.Name, err)
		}
	}
	for _, f := range []struct {
		name  string
		value int64
	}{{"AckWait", int64(cfg.AckWait)}, {"MaxDeliver", int64(cfg.MaxDeliver)}, {"MaxAckPending", int64(cfg.MaxAckPending)}, {"Prefetch", int64(cfg.Prefetch)}} {
		if f.value < 0 {
			return fmt.Errorf("natsbus: consumer %q: ConsumerConfig.%s is negative; use zero for the default", cfg.Name, f.name)
		}
	}
	return nil
}

// consumerConflict compares an existing consumer with the one asked for:
// filters always, the other settings where cfg sets them.
func consumerConflict(cfg bus.ConsumerConfig, want, have jetstream.ConsumerConfig, stream string) error {
	conflict := func(setting string, has, asked any) error {
		return fmt.Errorf("natsbus: consumer %q of stream %q exists with %s %v, the configuration asks for %v: %w",
			want.Durable, stream, setting, has, asked, bus.ErrStreamConflict)
	}
	filters := func(c jetstream.ConsumerConfig) []string {
		f := slices.Clone(c.FilterSubjects)
		if c.FilterSubject != "" {
			f = append(f, c.FilterSubject)
		}
		slices.Sort(f)
		return f
	}
	switch {
	case !slices.Equal(filters(have), filters(want)):
		return conflict("FilterSubjects", filters(have), filters(want))
	case have.AckPolicy != jetstream.AckExplicitPolicy:
		return conflict("AckPolicy", have.AckPolicy, jetstream.AckExplicitPolicy)
	case cfg.AckWait != 0 && have.AckWait != cfg.AckWait:
		return conflict("AckWait", have.AckWait, cfg.AckWait)
	case cfg.MaxDeliver != 0 && have.MaxDeliver != cfg.MaxDeliver:
		return conflict("MaxDeliver", have.MaxDeliver, cfg.MaxDeliver)
	case cfg.MaxAckPending != 0 && have.MaxAckPending != cfg.MaxAckPending:
		return conflict("MaxAckPending", have.MaxAckPending, cfg.MaxAckPending)
	}
	return nil
}

// natsConsumption is one JetStream Consume feeding a bus.DurableHandler.
type natsConsumption struct {
	bus    *Bus
	h      bus.DurableHandler
	ctx    context.Context
	cancel context.CancelFunc
	name   string
	cc     jetstream.ConsumeContext

	stopping atomic.Bool
	stopOnce sync.Once
	done     chan struct{}
}

func (cn *natsConsumption) Done() <-chan struct{} { return cn.done }

// Stop implements bus.Consumption: the handler's context is cancelled,
// and the messages nats.go buffered are handed back as the drain passes
// them through.
func (cn *natsConsumption) Stop(ctx context.Context) error {
	cn.stopOnce.Do(func() {
		cn.stopping.Store(true)
		cn.cancel()
		cn.cc.Drain()
	})
	select {
	case <-cn.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// handle runs on the subscription's goroutine for each message.
func (cn *natsConsumption) handle(m jetstream.Msg) {
	if cn.stopping.Load() {
		_ = m.Nak()
		return
	}
	d := &natsDelivery{m: m, msg: bus.Msg{Subject: cn.bus.logical(m.Subject()), Data: m.Data()}, n: 1}
	if h := m.Headers(); len(h) > 0 {
		d.msg.Header = bus.Header(h)
	}
	if md, err := m.Metadata(); err == nil {
		d.n = int(md.NumDelivered)
	}
	defer func() {
		if r := recover(); r != nil {
			cn.bus.report(d.msg.Subject, fmt.Errorf("%w: durable handler of consumer %q: %v", ErrHandlerPanic, cn.name, r))
		}
	}()
	if err := cn.h(cn.ctx, d); err != nil {
		cn.bus.report(d.msg.Subject, err)
	}
}

// natsDelivery is one JetStream delivery.
type natsDelivery struct {
	m   jetstream.Msg
	msg bus.Msg
	n   int
}

func (d *natsDelivery) Msg() *bus.Msg  { return &d.msg }
func (d *natsDelivery) Delivered() int { return d.n }

func (d *natsDelivery) Ack() error { return settleError("Ack", d.m.Ack()) }

func (d *natsDelivery) Nak(delay time.Duration) error {
	if delay > 0 {
		return settleError("Nak", d.m.NakWithDelay(delay))
	}
	return settleError("Nak", d.m.Nak())
}

func (d *natsDelivery) InProgress() error { return settleError("InProgress", d.m.InProgress()) }
func (d *natsDelivery) Term() error       { return settleError("Term", d.m.Term()) }

func settleError(how string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrMsgAlreadyAckd):
		return fmt.Errorf("natsbus: %s: %w", how, bus.ErrSettled)
	case errors.Is(err, nats.ErrConnectionClosed):
		return fmt.Errorf("natsbus: %s: %w", how, bus.ErrClosed)
	}
	return fmt.Errorf("natsbus: %s: %w", how, err)
}
