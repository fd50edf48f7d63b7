package contracttest

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/heddle-go/heddle/bus"
)

// errBusHandler is the error the handler test returns.
var errBusHandler = errors.New("contracttest: handler failed on purpose")

// busDrainDeadline is how long the drain-deadline test lets Drain wait for
// a handler that is blocked until Drain has returned.
const busDrainDeadline = 50 * time.Millisecond

func busTestHandlerError(h *busHarness) {
	sub, pub := h.connect(), h.connect()
	subject := h.subject("failing")
	h.subscribe(sub, subject, func(context.Context, *bus.Msg) error { return errBusHandler })
	h.publish(pub, subject, []byte("x"))
	e := h.waitErr(sub, "the handler's error", func(e busAsyncError) bool { return errors.Is(e.err, errBusHandler) })
	if e.subject != subject {
		h.t.Errorf("handler error reported for subject %q, want %q", e.subject, subject)
	}
}

func busTestHandlerPanic(h *busHarness) {
	sub, pub := h.connect(), h.connect()
	subject := h.subject("panicking")
	in := newBusInbox(2)
	h.subscribe(sub, subject, func(ctx context.Context, m *bus.Msg) error {
		if string(m.Data) == "panic" {
			panic("contracttest: handler panics on purpose")
		}
		return in.handler(ctx, m)
	})
	h.publish(pub, subject, []byte("panic"))
	h.publish(pub, subject, []byte("after"))
	e := h.waitErr(sub, "the recovered panic", func(e busAsyncError) bool { return e.subject == subject && e.err != nil })
	h.t.Logf("panic reported as: %v", e.err)
	if got := in.recv(h.t, "the message after the panic"); string(got.Data) != "after" {
		h.t.Errorf("after the panic got %q, want %q", got.Data, "after")
	}
}

func busTestCancelledContext(h *busHarness) {
	c := h.connect()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	subject := h.subject("cancelled")
	if err := c.Publish(ctx, &bus.Msg{Subject: subject, Data: []byte("x")}); !errors.Is(err, context.Canceled) {
		h.t.Errorf("Publish: got %v, want context.Canceled", err)
	}
	sub, err := c.Subscribe(ctx, subject, func(context.Context, *bus.Msg) error { return nil })
	if !errors.Is(err, context.Canceled) {
		h.t.Errorf("Subscribe: got %v, want context.Canceled", err)
	}
	if sub != nil && err == nil {
		_ = sub.Unsubscribe()
	}
	if err := c.Flush(ctx); !errors.Is(err, context.Canceled) {
		h.t.Errorf("Flush: got %v, want context.Canceled", err)
	}
	if err := c.Drain(ctx); !errors.Is(err, context.Canceled) {
		h.t.Errorf("Drain: got %v, want context.Canceled", err)
	}
}

func busTestUnsubscribe(h *busHarness) {
	a, pub := h.connect(), h.connect()
	subject := h.subject("unsub")
	gone, control := newBusInbox(4), newBusInbox(4)
	sub := h.subscribe(a, subject, gone.handler)
	h.subscribe(a, subject, control.handler)
	h.publish(pub, subject, []byte("before"))
	gone.recv(h.t, "the message before Unsubscribe")
	control.recv(h.t, "the control subscription's message before Unsubscribe")
	if err := sub.Unsubscribe(); err != nil {
		h.t.Fatalf("Unsubscribe: %v", err)
	}
	h.publish(pub, subject, []byte("after"))
	control.recv(h.t, "the control subscription's message after Unsubscribe")
	if n := len(gone); n != 0 {
		h.t.Errorf("the unsubscribed handler got %d messages after Unsubscribe returned", n)
	}
	if err := sub.Unsubscribe(); !errors.Is(err, bus.ErrClosed) {
		h.t.Errorf("second Unsubscribe: got %v, want an error wrapping bus.ErrClosed", err)
	}
	if err := sub.Drain(h.ctx); !errors.Is(err, bus.ErrClosed) {
		h.t.Errorf("Drain after Unsubscribe: got %v, want an error wrapping bus.ErrClosed", err)
	}
}

// busBlocked subscribes a handler that blocks on the message "0" until
// gate opens and records every message it finished in handled.
func (h *busHarness) busBlocked(c *busConn, subject string, gate *busGate, handled *atomic.Int32) (bus.Subscription, <-chan struct{}) {
	h.t.Helper()
	started := make(chan struct{}, 1)
	sub := h.subscribe(c, subject, func(ctx context.Context, m *bus.Msg) error {
		if string(m.Data) == "0" {
			started <- struct{}{}
			gate.wait(ctx)
		}
		handled.Add(1)
		return nil
	})
	return sub, started
}

func busTestSubscriptionDrain(h *busHarness) {
	const pending = 3
	a, pub := h.connect(), h.connect()
	subject := h.subject("subdrain")
	gate := h.gate()
	var handled atomic.Int32
	sub, started := h.busBlocked(a, subject, gate, &handled)
	control := newBusInbox(1)
	h.subscribe(a, subject, control.handler)
	h.publish(pub, subject, []byte("0"))
	busRecv(h.t, started, "the handler to start on message 0")
	control.recv(h.t, "the control subscription's first message")
	h.publishIDsFrom(pub, subject, 1, 1+pending)
	for range pending {
		control.recv(h.t, "the control subscription's messages")
	}

	drained := make(chan error, 1)
	go func() { drained <- sub.Drain(h.ctx) }()
	gate.open()
	if err := busRecv(h.t, drained, "Subscription.Drain to return"); err != nil {
		h.t.Fatalf("Subscription.Drain: %v", err)
	}
	if got := handled.Load(); got != 1+pending {
		h.t.Errorf("when Drain returned the handler had finished %d messages, want %d", got, 1+pending)
	}
	h.publish(pub, subject, []byte("late"))
	control.recv(h.t, "the control subscription's message after Drain")
	if got := handled.Load(); got != 1+pending {
		h.t.Errorf("the drained subscription handled %d messages, want %d", got, 1+pending)
	}
	if err := sub.Drain(h.ctx); !errors.Is(err, bus.ErrClosed) {
		h.t.Errorf("second Drain: got %v, want an error wrapping bus.ErrClosed", err)
	}
	if err := sub.Unsubscribe(); !errors.Is(err, bus.ErrClosed) {
		h.t.Errorf("Unsubscribe after Drain: got %v, want an error wrapping bus.ErrClosed", err)
	}
}

func busTestDrain(h *busHarness) {
	const pending = 5
	a, pub := h.connect(), h.connect()
	subject := h.subject("drain")
	gate := h.gate()
	var handled atomic.Int32
	sub, started := h.busBlocked(a, subject, gate, &handled)
	h.publish(pub, subject, []byte("0"))
	busRecv(h.t, started, "the handler to start on message 0")
	h.publishIDsFrom(pub, subject, 1, 1+pending)

	drained := make(chan error, 1)
	go func() { drained <- a.Drain(h.ctx) }()
	gate.open()
	if err := busRecv(h.t, drained, "Drain to return"); err != nil {
		h.t.Fatalf("Drain: %v", err)
	}
	if got := handled.Load(); got != 1+pending {
		h.t.Errorf("when Drain returned the handler had finished %d messages, want %d", got, 1+pending)
	}
	busCheckClosed(h, a, sub)
}

func busTestDrainDeadline(h *busHarness) {
	a, pub := h.connect(), h.connect()
	subject := h.subject("stuck")
	gate := h.gate()
	var handled atomic.Int32
	_, started := h.busBlocked(a, subject, gate, &handled)
	h.publish(pub, subject, []byte("0"))
	busRecv(h.t, started, "the handler to start on message 0")

	ctx, cancel := context.WithTimeout(h.ctx, busDrainDeadline)
	defer cancel()
	if err := a.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		h.t.Errorf("Drain with a handler blocked past its deadline: got %v, want context.DeadlineExceeded", err)
	}
	gate.open()
	if err := a.Close(); err != nil {
		h.t.Errorf("Close after an expired Drain: got %v, want nil", err)
	}
}

func busTestCloseCancelsHandlers(h *busHarness) {
	a, pub := h.connect(), h.connect()
	subject := h.subject("cancel")
	started := make(chan struct{}, 1)
	var cancelled atomic.Bool
	// The gate only opens if the test fails, so that a bus that never
	// cancels does not hang the suite.
	gate := h.gate()
	h.subscribe(a, subject, func(ctx context.Context, _ *bus.Msg) error {
		started <- struct{}{}
		select {
		case <-ctx.Done():
			cancelled.Store(true)
			return ctx.Err()
		case <-gate.ch:
			return nil
		}
	})
	h.publish(pub, subject, []byte("x"))
	busRecv(h.t, started, "the handler to start")
	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	if err := busRecv(h.t, closed, "Close to cancel the handler's context and return"); err != nil {
		h.t.Fatalf("Close: %v", err)
	}
	if !cancelled.Load() {
		h.t.Error("Close returned before the running handler had returned")
	}
}

func busTestAfterClose(h *busHarness) {
	a := h.connect()
	sub := h.subscribe(a, h.subject("closed"), func(context.Context, *bus.Msg) error { return nil })
	if err := a.Close(); err != nil {
		h.t.Fatalf("Close: %v", err)
	}
	busCheckClosed(h, a, sub)
}

// busCheckClosed verifies every call on a closed connection and on one of
// its subscriptions.
func busCheckClosed(h *busHarness, c *busConn, sub bus.Subscription) {
	h.t.Helper()
	subject := h.subject("closed", "check")
	want := func(call string, err error) {
		h.t.Helper()
		if !errors.Is(err, bus.ErrClosed) {
			h.t.Errorf("%s on a closed connection: got %v, want an error wrapping bus.ErrClosed", call, err)
		}
	}
	want("Publish", c.Publish(h.ctx, &bus.Msg{Subject: subject, Data: []byte("x")}))
	s, err := c.Subscribe(h.ctx, subject, func(context.Context, *bus.Msg) error { return nil })
	want("Subscribe", err)
	if s != nil && err == nil {
		_ = s.Unsubscribe()
	}
	want("Flush", c.Flush(h.ctx))
	want("Drain", c.Drain(h.ctx))
	want("Subscription.Unsubscribe", sub.Unsubscribe())
	want("Subscription.Drain", sub.Drain(h.ctx))
	for i := range 2 {
		if err := c.Close(); err != nil {
			h.t.Errorf("Close #%d on a closed connection: got %v, want nil", i+1, err)
		}
	}
}

func busTestCloser(h *busHarness) {
	closed, drained := h.connect(), h.connect()
	for _, c := range []*busConn{closed, drained} {
		cl, ok := c.Bus.(bus.Closer)
		if !ok {
			h.t.Skip("the bus does not implement bus.Closer")
		}
		if err := cl.Err(); err != nil {
			h.t.Errorf("Err() on an open connection: got %v, want nil", err)
		}
		select {
		case <-cl.Done():
			h.t.Error("Done() is closed on an open connection")
		default:
		}
	}
	h.subscribe(closed, h.subject("closer"), func(context.Context, *bus.Msg) error { return nil })
	h.subscribe(drained, h.subject("closer"), func(context.Context, *bus.Msg) error { return nil })

	if err := closed.Close(); err != nil {
		h.t.Fatalf("Close: %v", err)
	}
	busCheckCloser(h, "Close", closed)
	h.drain(drained)
	busCheckCloser(h, "Drain", drained)
}

// busCheckCloser checks that c, which implements bus.Closer, says it is
// closed as soon as the call named by how has returned.
func busCheckCloser(h *busHarness, how string, c *busConn) {
	h.t.Helper()
	cl := c.Bus.(bus.Closer)
	select {
	case <-cl.Done():
	default:
		h.t.Errorf("Done() is not closed when %s has returned", how)
	}
	err := cl.Err()
	if !errors.Is(err, bus.ErrClosed) {
		h.t.Errorf("Err() after %s: got %v, want an error wrapping bus.ErrClosed", how, err)
	}
	if again := bus.Err(c.Bus); again != err {
		h.t.Errorf("Err() after %s changed from %v to %v", how, err, again)
	}
	if bus.Done(c.Bus) != cl.Done() {
		h.t.Errorf("bus.Done does not return the connection's Done channel")
	}
	h.t.Logf("Err() after %s: %v", how, err)
}
