package contracttest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heddle-go/heddle/bus"
)

// Bounds used only to fail a broken implementation with a clear message;
// a conforming bus never comes near them.
const (
	// busWaitTimeout bounds each wait for a delivery, an error or a
	// condition.
	busWaitTimeout = 10 * time.Second
	// busCallTimeout bounds the context the bus calls of one subtest use.
	busCallTimeout = 60 * time.Second
	// busErrBuffer is how many asynchronous errors a connection keeps for
	// the suite to inspect; later ones are dropped.
	busErrBuffer = 1024
)

var busSubjectSeq atomic.Uint64

// busHarness is the state of one subtest: the factory, the suite's
// options, a context for bus calls and a subject prefix no other subtest
// (or test run sharing a server) uses.
type busHarness struct {
	t      *testing.T
	newBus BusFactory
	cfg    busConfig
	ctx    context.Context
	prefix string
}

func newBusHarness(t *testing.T, newBus BusFactory, cfg busConfig) *busHarness {
	ctx, cancel := context.WithTimeout(context.Background(), busCallTimeout)
	t.Cleanup(cancel)
	return &busHarness{
		t:      t,
		newBus: newBus,
		cfg:    cfg,
		ctx:    ctx,
		prefix: fmt.Sprintf("contracttest.r%08x.s%d", rand.Uint32(), busSubjectSeq.Add(1)),
	}
}

// subject returns a subject under the subtest's prefix.
func (h *busHarness) subject(tokens ...string) string {
	return h.prefix + "." + strings.Join(tokens, ".")
}

// busAsyncError is one call of a connection's error handler.
type busAsyncError struct {
	subject string
	err     error
}

// busConn is one connection of a subtest and the asynchronous errors its
// error handler received.
type busConn struct {
	bus.Bus
	errs chan busAsyncError
}

// connect opens a connection through the factory; it is closed when the
// subtest ends.
func (h *busHarness) connect() *busConn {
	h.t.Helper()
	c := &busConn{errs: make(chan busAsyncError, busErrBuffer)}
	b := h.newBus(h.t, func(subject string, err error) {
		select {
		case c.errs <- busAsyncError{subject: subject, err: err}:
		default:
		}
	})
	if b == nil {
		h.t.Fatal("the bus factory returned nil")
	}
	c.Bus = b
	h.t.Cleanup(func() { _ = b.Close() })
	return c
}

// subscribe subscribes or fails the test.
func (h *busHarness) subscribe(c *busConn, subject string, fn bus.Handler, opts ...bus.SubscribeOption) bus.Subscription {
	h.t.Helper()
	sub, err := c.Subscribe(h.ctx, subject, fn, opts...)
	if err != nil {
		h.t.Fatalf("Subscribe(%q): %v", subject, err)
	}
	return sub
}

// publish publishes or fails the test.
func (h *busHarness) publish(c *busConn, subject string, data []byte) {
	h.t.Helper()
	if err := c.Publish(h.ctx, &bus.Msg{Subject: subject, Data: data}); err != nil {
		h.t.Fatalf("Publish(%q): %v", subject, err)
	}
}

// flush flushes or fails the test.
func (h *busHarness) flush(c *busConn) {
	h.t.Helper()
	if err := c.Flush(h.ctx); err != nil {
		h.t.Fatalf("Flush: %v", err)
	}
}

// drain drains the connection or fails the test.
func (h *busHarness) drain(c *busConn) {
	h.t.Helper()
	if err := c.Drain(h.ctx); err != nil {
		h.t.Fatalf("Drain: %v", err)
	}
}

// waitErr waits for an asynchronous error on c that satisfies match,
// skipping others.
func (h *busHarness) waitErr(c *busConn, what string, match func(busAsyncError) bool) busAsyncError {
	h.t.Helper()
	timer := time.NewTimer(busWaitTimeout)
	defer timer.Stop()
	for {
		select {
		case e := <-c.errs:
			if match(e) {
				return e
			}
			h.t.Logf("ignoring asynchronous error while waiting for %s: subject %q: %v", what, e.subject, e.err)
		case <-timer.C:
			h.t.Fatalf("timed out after %v waiting for %s", busWaitTimeout, what)
		}
	}
}

// busRecv receives one value from ch or fails the test after
// busWaitTimeout, naming what it waited for.
func busRecv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(busWaitTimeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", busWaitTimeout, what)
		var zero T
		return zero
	}
}

// busEventually waits until cond holds, checking it every millisecond, or
// fails the test after busWaitTimeout. It is for conditions a bus exposes
// only as a counter (Subscription.Dropped), never to let time pass.
func busEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if cond() {
		return
	}
	timer := time.NewTimer(busWaitTimeout)
	defer timer.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return
			}
		case <-timer.C:
			t.Fatalf("timed out after %v waiting for %s", busWaitTimeout, what)
		}
	}
}

// busGate blocks handlers until the test opens it. It opens by itself when
// the subtest ends, before the connections close, so a failing test never
// leaves a handler blocked.
type busGate struct {
	ch   chan struct{}
	once sync.Once
}

// gate returns a closed gate. Call it after connect, so that its cleanup
// runs before the connections' Close.
func (h *busHarness) gate() *busGate {
	g := &busGate{ch: make(chan struct{})}
	h.t.Cleanup(g.open)
	return g
}

func (g *busGate) open() { g.once.Do(func() { close(g.ch) }) }

// wait blocks until the gate opens or ctx ends, and reports whether the
// gate opened.
func (g *busGate) wait(ctx context.Context) bool {
	select {
	case <-g.ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// busInbox collects copies of delivered messages.
type busInbox chan *bus.Msg

func newBusInbox(n int) busInbox { return make(busInbox, n) }

// handler copies the message into the inbox; copying keeps the test
// independent of whether the bus shares or reuses message memory.
func (in busInbox) handler(ctx context.Context, m *bus.Msg) error {
	c := &bus.Msg{Subject: m.Subject, Reply: m.Reply, Header: m.Header.Clone(), Data: bytes.Clone(m.Data)}
	select {
	case in <- c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// recv returns the next delivered message or fails the test.
func (in busInbox) recv(t *testing.T, what string) *bus.Msg {
	t.Helper()
	return busRecv(t, (<-chan *bus.Msg)(in), what)
}
