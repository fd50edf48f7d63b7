package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/emit"
)

// Errors specific to natsbus, wrapped with %w like the bus sentinels.
var (
	// ErrBadHeader reports a header NATS cannot carry unchanged: an
	// invalid key, or a value with leading or trailing whitespace or a
	// line break.
	ErrBadHeader = errors.New("natsbus: header cannot be carried by NATS")
	// ErrHandlerPanic is reported to the error handler when a handler
	// panicked; the error's text holds the panic value.
	ErrHandlerPanic = errors.New("natsbus: handler panicked")
)

// Bus is a bus.Bus over one NATS connection. It is safe for concurrent use.
type Bus struct {
	nc    *nats.Conn
	log   *emit.Emitter
	errh  bus.ErrorHandler
	stats stats
	// prefix is the subject namespace (WithSubjectPrefix): prepended to
	// every subject sent to the server, removed from every subject
	// received.
	prefix string

	// closed is set once Close has begun; every call then returns
	// bus.ErrClosed.
	closed    atomic.Bool
	closeOnce sync.Once
	// closing is set when Close or Drain begins, so the disconnect they
	// cause is not reported as a lost connection.
	closing atomic.Bool
	// connClosed is closed when the NATS connection has reached its
	// terminal state, whoever closed it.
	connClosed     chan struct{}
	connClosedOnce sync.Once
	// drainTimedOut records that nats.go gave up draining (its
	// DrainTimeout), so Drain can say so.
	drainTimedOut atomic.Bool
	// draining is set when Drain begins: from then on every handler call
	// records its subscription's drop count, which nats.go forgets once
	// the drain has closed the subscription.
	draining atomic.Bool

	// done is closed once Close has finished, whoever called it; why is
	// written just before and says how the bus closed (bus.Closer).
	done chan struct{}
	why  error
	// servers is the server list the bus was given, passwords redacted,
	// for the error that says why it closed.
	servers string
	// countsAttempts says that failed reconnect attempts reach
	// onReconnectErr: Connect installs it, New cannot.
	countsAttempts bool

	// reasonMu guards the fields below.
	reasonMu sync.Mutex
	// reason, set once, is why the bus is closing; deliberate says it was
	// Close or Drain, not NATS giving up the connection.
	reason     error
	deliberate bool
	// outage is the connection outage in progress, if any.
	outage outage

	mu   sync.Mutex // guards subs
	subs map[*nats.Subscription]*subscription

	kept bus.Values
}

// outage is what the bus knows of a lost connection while nats.go tries to
// win it back.
type outage struct {
	down     bool
	since    time.Time
	cause    error // the error the connection was lost with
	attempts int   // failed reconnect attempts so far
	lastErr  error // why the last attempt failed
}

var (
	_ bus.Bus    = (*Bus)(nil)
	_ bus.Keeper = (*Bus)(nil)
	_ bus.Closer = (*Bus)(nil)
)

// Keep implements bus.Keeper: each Bus keeps its own values.
func (b *Bus) Keep(key any, create func() any) any { return b.kept.Keep(key, create) }

// Connect dials the NATS server(s) at url (comma-separated for a cluster;
// empty means DefaultURL) and returns a Bus that owns the connection.
//
// When no server can be reached the error reads "cannot connect to NATS at
// <url>: <cause>. Is NATS running? Try: nats-server -p 4222", with any
// password in url redacted, and wraps the nats.go cause (for example
// nats.ErrNoServers or nats.ErrAuthorization) for errors.Is.
func Connect(url string, opts ...Option) (*Bus, error) {
	if url == "" {
		url = DefaultURL
	}
	o := newOptions(opts)
	if err := o.validate(); err != nil {
		return nil, err
	}
	b := newBus(o, redactURLs(strings.Join(splitURLs(url), ",")))

	no := nats.GetDefaultOptions()
	no.Servers = splitURLs(url)
	no.Name = o.name
	no.Timeout = o.connectTimeout
	no.ReconnectWait = o.reconnectWait
	no.MaxReconnect = o.maxReconnects
	no.AllowReconnect = o.maxReconnects != 0
	for _, opt := range o.natsOpts {
		if err := opt(&no); err != nil {
			return nil, fmt.Errorf("natsbus: invalid NATS option: %w", err)
		}
	}
	no.NoCallbacksAfterClientClose = false

	userDisconnect, userDisconnectOld := no.DisconnectedErrCB, no.DisconnectedCB
	no.DisconnectedErrCB = func(nc *nats.Conn, err error) {
		b.onDisconnect(nc, err)
		if userDisconnect != nil {
			userDisconnect(nc, err)
		} else if userDisconnectOld != nil {
			userDisconnectOld(nc)
		}
	}
	no.DisconnectedCB = nil
	no.ReconnectedCB = chainConn(b.onReconnect, no.ReconnectedCB)
	no.ReconnectErrCB = chainConnErr(b.onReconnectErr, no.ReconnectErrCB)
	b.countsAttempts = true
	no.ClosedCB = chainConn(b.onClosed, no.ClosedCB)
	no.AsyncErrorCB = chainErr(b.onAsyncError, no.AsyncErrorCB)

	nc, err := no.Connect()
	if err != nil {
		return nil, fmt.Errorf("cannot connect to NATS at %s: %w. Is NATS running? Try: nats-server -p 4222", redactURLs(url), err)
	}
	b.nc = nc
	b.logConnected()
	return b, nil
}

// logConnected reports the connection, once per Bus, before any actor on
// it subscribes: actor.connected with the server's URL, any credentials
// in it redacted.
func (b *Bus) logConnected() {
	url := b.nc.ConnectedUrlRedacted()
	b.log.Emit(context.Background(), slog.LevelInfo, event.Event{Name: event.ActorConnected, Detail: url},
		slog.String("url", url), slog.String("server_id", b.nc.ConnectedServerId()))
}

// New wraps a connection the caller has already established and takes
// ownership of it: Drain and Close close nc, and nc must not be closed,
// drained or shared with another Bus behind the bus's back.
//
// New installs the bus's disconnect, reconnect, closed and async-error
// handlers on nc; handlers already set on nc are kept and called after the
// bus's own. nats.go offers no way to add a handler for failed reconnect
// attempts to a dialled connection, so a bus made by New does not count
// them: its bus.reconnected and bus.closed events and Err leave the number
// of attempts out. Options that configure dialling (WithReconnectWait,
// WithMaxReconnects, WithConnectTimeout, WithName, WithNATSOptions) are
// rejected, since nc is already dialled. nc must not have been created with
// nats.NoCallbacksAfterClientClose, because Drain waits for the closed
// callback.
func New(nc *nats.Conn, opts ...Option) (*Bus, error) {
	if nc == nil {
		return nil, errors.New("natsbus: New: nil connection")
	}
	o := newOptions(opts)
	if err := o.validate(); err != nil {
		return nil, err
	}
	if len(o.connectOnly) > 0 {
		return nil, fmt.Errorf("natsbus: New: %s configures dialling and applies to Connect only; set it on the nats.Conn instead", strings.Join(o.connectOnly, ", "))
	}
	if nc.Opts.NoCallbacksAfterClientClose {
		return nil, errors.New("natsbus: New: the connection was created with nats.NoCallbacksAfterClientClose; the bus needs the closed callback to drain")
	}
	if nc.IsClosed() || nc.IsDraining() {
		return nil, fmt.Errorf("natsbus: New: connection is closed or draining: %w", bus.ErrClosed)
	}
	b := newBus(o, redactURLs(strings.Join(nc.Servers(), ",")))
	b.nc = nc
	nc.SetDisconnectErrHandler(chainConnErr(b.onDisconnect, nc.DisconnectErrHandler()))
	nc.SetReconnectHandler(chainConn(b.onReconnect, nc.ReconnectHandler()))
	nc.SetClosedHandler(chainConn(b.onClosed, nc.ClosedHandler()))
	nc.SetErrorHandler(chainErr(b.onAsyncError, nc.ErrorHandler()))
	if nc.IsClosed() {
		// Closed before the handler was installed, so the callback may
		// never come; onClosed may run twice, which it allows.
		b.onClosed(nc)
	} else {
		b.logConnected()
	}
	return b, nil
}

func newBus(o options, servers string) *Bus {
	return &Bus{
		log:        emit.New(emit.Config{Logger: o.logger, Actor: "natsbus", Observers: o.observers}),
		errh:       o.errorHandler,
		prefix:     o.subjectPrefix,
		servers:    servers,
		connClosed: make(chan struct{}),
		done:       make(chan struct{}),
		subs:       make(map[*nats.Subscription]*subscription),
	}
}

// Done implements bus.Closer: the channel is closed once the bus has
// closed, by Close or Drain or because NATS closed the connection for good
// (see WithMaxReconnects), and every call on the bus returns an error
// wrapping bus.ErrClosed.
func (b *Bus) Done() <-chan struct{} { return b.done }

// Err implements bus.Closer: nil while the bus is open (reconnecting
// included); once Done is closed, an error wrapping bus.ErrClosed that
// says why, such as
//
//	natsbus: connection closed after 60 reconnect attempts to nats://127.0.0.1:4222: dial tcp 127.0.0.1:4222: connect: connection refused: bus: closed
func (b *Bus) Err() error {
	select {
	case <-b.done:
		return b.why
	default:
		return nil
	}
}

// closeReason records why the bus is closing; the first reason given
// stands.
func (b *Bus) closeReason(err error, deliberate bool) {
	b.reasonMu.Lock()
	defer b.reasonMu.Unlock()
	if b.reason == nil {
		b.reason, b.deliberate = err, deliberate
	}
}

// Conn returns the underlying connection, for inspection (server info,
// statistics). Closing or draining it directly bypasses the bus, and so
// does publishing or subscribing on it: those use wire subjects, with the
// WithSubjectPrefix namespace spelled out.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// Publish sends msg to msg.Subject (in the bus's namespace, see
// WithSubjectPrefix). It returns once the message is buffered for the
// server; a publish no subscription matches is dropped by the server and is
// not an error. Errors wrap bus.ErrBadSubject (msg.Subject is checked with
// bus.ValidatePublishSubject; nothing is sent or counted then),
// bus.ErrMaxPayload (the limit is the server's, nats.Conn.MaxPayload, and
// counts the encoded headers), ErrBadHeader or bus.ErrClosed; a cancelled
// ctx returns ctx.Err().
func (b *Bus) Publish(ctx context.Context, msg *bus.Msg) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if msg == nil {
		return errors.New("natsbus: publish: nil message")
	}
	if b.closed.Load() {
		return fmt.Errorf("natsbus: publish to %q: %w", msg.Subject, bus.ErrClosed)
	}
	if err := bus.ValidatePublishSubject(msg.Subject); err != nil {
		return fmt.Errorf("natsbus: publish: %w", err)
	}
	var err error
	switch {
	case msg.Reply != "":
		if err = bus.ValidatePublishSubject(msg.Reply); err != nil {
			return fmt.Errorf("natsbus: publish: reply: %w", err)
		}
		if err = checkHeader(msg.Header); err != nil {
			return fmt.Errorf("natsbus: publish to %q: %w", msg.Subject, err)
		}
		// The server answers a publish with a reply subject and no
		// subscriber with a no-responders status on the reply subject.
		err = b.nc.PublishMsg(&nats.Msg{Subject: b.wire(msg.Subject), Reply: b.wire(msg.Reply), Header: nats.Header(msg.Header), Data: msg.Data})
	case len(msg.Header) == 0:
		err = b.nc.Publish(b.wire(msg.Subject), msg.Data)
	default:
		if err = checkHeader(msg.Header); err != nil {
			return fmt.Errorf("natsbus: publish to %q: %w", msg.Subject, err)
		}
		err = b.nc.PublishMsg(&nats.Msg{Subject: b.wire(msg.Subject), Header: nats.Header(msg.Header), Data: msg.Data})
	}
	if err != nil {
		return b.publishError(msg, err)
	}
	return nil
}

// wire returns the subject the server sees for a logical subject.
func (b *Bus) wire(subject string) string {
	if b.prefix == "" {
		return subject
	}
	return b.prefix + subject
}

// logical returns the subject the bus's user sees for a wire subject.
// Every subject delivered to the bus's subscriptions carries the prefix,
// since every pattern it subscribes to starts with it.
func (b *Bus) logical(subject string) string {
	return strings.TrimPrefix(subject, b.prefix)
}

func (b *Bus) publishError(msg *bus.Msg, err error) error {
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return fmt.Errorf("natsbus: publish to %q: message is %d bytes, the server accepts at most %d: %w",
			msg.Subject, encodedSize(msg), b.nc.MaxPayload(), bus.ErrMaxPayload)
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining):
		return fmt.Errorf("natsbus: publish to %q: %w", msg.Subject, bus.ErrClosed)
	case errors.Is(err, nats.ErrBadHeaderMsg):
		return fmt.Errorf("natsbus: publish to %q: %w: %w", msg.Subject, ErrBadHeader, err)
	case errors.Is(err, nats.ErrBadSubject):
		return fmt.Errorf("natsbus: publish to %q: %w: %w", msg.Subject, bus.ErrBadSubject, err)
	}
	return fmt.Errorf("natsbus: publish to %q: %w", msg.Subject, err)
}

// encodedSize is the message's size as NATS counts it against the maximum
// payload: data plus the encoded header block.
func encodedSize(msg *bus.Msg) int {
	n := len(msg.Data)
	if len(msg.Header) > 0 {
		n += len("NATS/1.0\r\n\r\n")
		for k, vs := range msg.Header {
			for _, v := range vs {
				n += len(k) + len(": \r\n") + len(v)
			}
		}
	}
	return n
}

// checkHeader rejects header values nats.go would alter on the wire. Keys
// are checked by nats.go itself.
func checkHeader(h bus.Header) error {
	for k, vs := range h {
		for _, v := range vs {
			if v == "" {
				continue
			}
			if isHeaderSpace(v[0]) || isHeaderSpace(v[len(v)-1]) || strings.ContainsAny(v, "\r\n") {
				return fmt.Errorf("%w: value %q of key %q has leading or trailing whitespace or a line break", ErrBadHeader, v, k)
			}
		}
	}
	return nil
}

func isHeaderSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

// Flush returns when the server has processed everything this bus
// published before the call, or when ctx ends. It fails if the connection
// breaks while flushing; messages published before it may then be lost.
func (b *Bus) Flush(ctx context.Context) error {
	if b.closed.Load() {
		return fmt.Errorf("natsbus: flush: %w", bus.ErrClosed)
	}
	return b.flush(ctx)
}

func (b *Bus) flush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		fctx = unbounded{ctx}
	}
	err := b.nc.FlushWithContext(fctx)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, nats.ErrConnectionClosed):
		if b.nc.IsClosed() {
			return fmt.Errorf("natsbus: flush: %w", bus.ErrClosed)
		}
		return fmt.Errorf("natsbus: flush interrupted by a disconnect, messages published before it may be lost: %w", err)
	}
	return fmt.Errorf("natsbus: flush: %w", err)
}

// unbounded lets a context without a deadline through nats.go's
// FlushWithContext, which insists on one. The flush still ends when the
// context is cancelled or the connection closes.
type unbounded struct{ context.Context }

func (unbounded) Deadline() (time.Time, bool) {
	return time.Now().Add(100 * 365 * 24 * time.Hour), true
}

// Drain stops every subscription's interest at the server, lets the
// handlers process the messages already pending, flushes what was
// published, and closes the connection. Handlers may still publish while
// their subscriptions drain. When ctx ends first, Drain closes the bus at
// once (discarding what is still pending) and returns ctx.Err(). The
// connection's nats.DrainTimeout (30s unless set through WithNATSOptions)
// also bounds it; hitting it returns an error wrapping nats.ErrDrainTimeout.
func (b *Bus) Drain(ctx context.Context) error {
	if b.closed.Load() {
		return fmt.Errorf("natsbus: drain: %w", bus.ErrClosed)
	}
	b.closeReason(fmt.Errorf("natsbus: connection closed by Drain: %w", bus.ErrClosed), true)
	if err := ctx.Err(); err != nil {
		b.Close()
		return err
	}
	b.closing.Store(true)
	b.draining.Store(true)
	b.recordDrops()
	if err := b.nc.Drain(); err != nil {
		b.Close()
		if errors.Is(err, nats.ErrConnectionClosed) {
			return fmt.Errorf("natsbus: drain: %w", bus.ErrClosed)
		}
		// nats.go closes a reconnecting connection instead of draining it.
		return fmt.Errorf("natsbus: drain: pending messages discarded: %w", err)
	}
	select {
	case <-b.connClosed:
	case <-ctx.Done():
		b.Close()
		return ctx.Err()
	}
	b.Close()
	if b.drainTimedOut.Load() {
		return fmt.Errorf("natsbus: drain: pending messages discarded: %w", nats.ErrDrainTimeout)
	}
	return nil
}

// Close closes the connection at once: messages pending for handlers are
// discarded, handler contexts are cancelled, and Close returns when no
// handler is running any more, with Done closed. Every later call returns
// an error wrapping bus.ErrClosed. Close is idempotent; concurrent calls
// all wait. It must not be called from a handler of this bus.
func (b *Bus) Close() error { return b.close(b.nc) }

// close closes the bus and nc, its connection. nats.go's callbacks pass
// the connection they were given rather than read b.nc, which Connect
// writes after nats.go has started the goroutine they run on.
func (b *Bus) close(nc *nats.Conn) error {
	b.closeOnce.Do(func() {
		b.closeReason(fmt.Errorf("natsbus: connection closed by Close: %w", bus.ErrClosed), true)
		b.closing.Store(true)
		b.mu.Lock()
		b.closed.Store(true)
		subs := make([]*subscription, 0, len(b.subs))
		for _, s := range b.subs {
			subs = append(subs, s)
		}
		clear(b.subs)
		b.mu.Unlock()

		for _, s := range subs {
			s.finalDrops()
		}
		nc.Close()
		b.markConnClosed()
		for _, s := range subs {
			s.stop()
		}

		b.reasonMu.Lock()
		b.why = b.reason
		deliberate, attempts := b.deliberate, b.outage.attempts
		b.reasonMu.Unlock()
		if deliberate {
			b.log.Emit(context.Background(), slog.LevelDebug, event.Event{Name: event.BusClosed, Reason: "closed", Err: b.why},
				slog.Any("error", b.why))
		} else {
			attrs := []slog.Attr{slog.Any("error", b.why), slog.String("url", b.servers)}
			if b.countsAttempts {
				attrs = append(attrs, slog.Int("reconnect_attempts", attempts))
			}
			b.log.Emit(context.Background(), slog.LevelError, event.Event{Name: event.BusClosed, Reason: "lost", Err: b.why}, attrs...)
		}
		close(b.done)
	})
	return nil
}

// recordDrops has every subscription record its drop count.
func (b *Bus) recordDrops() {
	b.mu.Lock()
	subs := make([]*subscription, 0, len(b.subs))
	for _, s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	for _, s := range subs {
		s.Dropped()
	}
}

func (b *Bus) markConnClosed() {
	b.connClosedOnce.Do(func() { close(b.connClosed) })
}

func (b *Bus) register(s *subscription) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return false
	}
	b.subs[s.ns] = s
	return true
}

func (b *Bus) unregister(s *subscription) {
	b.mu.Lock()
	delete(b.subs, s.ns)
	b.mu.Unlock()
}

func (b *Bus) lookup(ns *nats.Subscription) *subscription {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.subs[ns]
}

// splitURLs splits a comma-separated server list, as nats.Connect does.
func splitURLs(urls string) []string {
	var out []string
	for _, u := range strings.Split(urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// redactURLs hides passwords in a comma-separated server list.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}
