package natsbus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/natsbus"
)

// waitTimeout bounds every wait; a working bus never comes near it.
const waitTimeout = 10 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, url string, opts ...natsbus.Option) *natsbus.Bus {
	t.Helper()
	b, err := natsbus.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// closedPortURL returns a loopback URL nothing listens on.
func closedPortURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("nats://127.0.0.1:%d", port)
}

func TestConnectFailureSaysWhereAndWhatToDo(t *testing.T) {
	url := closedPortURL(t)
	b, err := natsbus.Connect(url, natsbus.WithConnectTimeout(time.Second), natsbus.WithMaxReconnects(0))
	if err == nil {
		b.Close()
		t.Fatalf("Connect(%s) succeeded with nothing listening", url)
	}
	want := "cannot connect to NATS at " + url + ": " + nats.ErrNoServers.Error() + ". Is NATS running? Try: nats-server -p 4222"
	if err.Error() != want {
		t.Fatalf("error text:\n got %q\nwant %q", err, want)
	}
	if !errors.Is(err, nats.ErrNoServers) {
		t.Fatalf("error does not wrap nats.ErrNoServers: %v", err)
	}
}

func TestConnectFailureHidesThePassword(t *testing.T) {
	url := strings.Replace(closedPortURL(t), "nats://", "nats://alice:s3cret@", 1)
	_, err := natsbus.Connect(url, natsbus.WithConnectTimeout(time.Second))
	if err == nil {
		t.Fatal("Connect succeeded with nothing listening")
	}
	if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "nats://alice:xxxxx@127.0.0.1:") {
		t.Fatalf("password not redacted: %v", err)
	}
}

func TestConnectTriesEveryServerOfACommaSeparatedList(t *testing.T) {
	url := closedPortURL(t) + ", " + natstest.RunServer(t)
	b := connect(t, url, natsbus.WithConnectTimeout(time.Second))
	if err := b.Flush(testContext(t)); err != nil {
		t.Fatal(err)
	}
}

func TestNewWrapsAConnectionAndTakesOwnershipOfIt(t *testing.T) {
	url := natstest.RunServer(t)
	ctx := testContext(t)
	userClosed := make(chan struct{})
	nc, err := nats.Connect(url, nats.ClosedHandler(func(*nats.Conn) { close(userClosed) }))
	if err != nil {
		t.Fatal(err)
	}
	b, err := natsbus.New(nc)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	if b.Conn() != nc {
		t.Fatal("Conn() is not the wrapped connection")
	}

	got := make(chan string, 1)
	if _, err := b.Subscribe(ctx, "natsbus.new", func(_ context.Context, m *bus.Msg) error {
		got <- string(m.Data)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("natsbus.new", []byte("raw")); err != nil {
		t.Fatal(err)
	}
	if v := recv(t, got, "a raw publish on the wrapped connection"); v != "raw" {
		t.Fatalf("got %q", v)
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if !nc.IsClosed() {
		t.Fatal("Close left the wrapped connection open")
	}
	recv(t, userClosed, "the closed handler set on the connection before New")
}

func TestNewRejectsWhatItCannotHonour(t *testing.T) {
	url := natstest.RunServer(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	tests := []struct {
		name string
		nc   *nats.Conn
		opts []natsbus.Option
		want string
	}{
		{"a nil connection", nil, nil, "nil connection"},
		{"a dialling option", nc, []natsbus.Option{natsbus.WithReconnectWait(time.Second)}, "WithReconnectWait"},
		{"NATS options", nc, []natsbus.Option{natsbus.WithNATSOptions(nats.Name("x"))}, "WithNATSOptions"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := natsbus.New(tc.nc, tc.opts...)
			if err == nil {
				b.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}

	t.Run("a closed connection", func(t *testing.T) {
		closed, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		closed.Close()
		if _, err := natsbus.New(closed); !errors.Is(err, bus.ErrClosed) {
			t.Fatalf("New(closed connection) = %v, want ErrClosed", err)
		}
	})
}

func TestHeadersKeepTheCaseOfTheirKeys(t *testing.T) {
	url := natstest.RunServer(t)
	ctx := testContext(t)
	b := connect(t, url)

	got := make(chan *bus.Msg, 1)
	if _, err := b.Subscribe(ctx, "natsbus.headers", func(_ context.Context, m *bus.Msg) error {
		got <- m
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h := bus.Header{"X-Trace": {"upper"}, "x-trace": {"lower", "second"}, "x-TRACE": {""}}
	if err := b.Publish(ctx, &bus.Msg{Subject: "natsbus.headers", Header: h, Data: []byte{0, 1, 2}}); err != nil {
		t.Fatal(err)
	}
	m := recv(t, got, "the message with headers")
	if fmt.Sprint(m.Header) != fmt.Sprint(h) {
		t.Fatalf("headers:\n got %v\nwant %v", m.Header, h)
	}
	if !bytes.Equal(m.Data, []byte{0, 1, 2}) {
		t.Fatalf("data = %v", m.Data)
	}
}

func TestHeadersNATSWouldAlterAreRejected(t *testing.T) {
	url := natstest.RunServer(t)
	ctx := testContext(t)
	b := connect(t, url)
	for _, h := range []bus.Header{
		{"K": {" leading"}},
		{"K": {"trailing\t"}},
		{"K": {"line\nbreak"}},
		{"K": {"carriage\rreturn"}},
		{"bad key": {"v"}},
		{"bad:key": {"v"}},
	} {
		err := b.Publish(ctx, &bus.Msg{Subject: "natsbus.badheader", Header: h})
		if !errors.Is(err, natsbus.ErrBadHeader) {
			t.Errorf("Publish with header %q = %v, want ErrBadHeader", h, err)
		}
	}
}

func TestMaxPayloadErrorNamesSizeAndLimit(t *testing.T) {
	url := natstest.RunServer(t)
	ctx := testContext(t)
	b := connect(t, url)
	limit := int(b.Conn().MaxPayload())
	err := b.Publish(ctx, &bus.Msg{Subject: "natsbus.big", Data: make([]byte, limit+1)})
	if !errors.Is(err, bus.ErrMaxPayload) {
		t.Fatalf("Publish(limit+1 bytes) = %v, want ErrMaxPayload", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(limit+1)) || !strings.Contains(err.Error(), fmt.Sprint(limit)) {
		t.Fatalf("error %q does not name the size %d and the limit %d", err, limit+1, limit)
	}
	if err := b.Publish(ctx, &bus.Msg{Subject: "natsbus.big", Data: make([]byte, limit)}); err != nil {
		t.Fatalf("Publish(limit bytes) = %v", err)
	}
}

func TestSlowConsumerIsLoggedCountedAndReported(t *testing.T) {
	url := natstest.RunServer(t)
	ctx := testContext(t)
	logs := newLogRecorder()
	errs := make(chan error, 16)
	b := connect(t, url, natsbus.WithLogger(logs.logger()), natsbus.WithErrorHandler(func(subject string, err error) {
		if subject == "natsbus.slow" {
			errs <- err
		}
	}))

	started := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before Close, which waits for the handler
	sub, err := b.Subscribe(ctx, "natsbus.slow", func(ctx context.Context, m *bus.Msg) error {
		select {
		case started <- struct{}{}:
		default:
		}
		<-release
		return nil
	}, bus.PendingLimits(1, bus.DefaultPendingBytes))
	if err != nil {
		t.Fatal(err)
	}
	publish := func() {
		if err := b.Publish(ctx, &bus.Msg{Subject: "natsbus.slow", Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	publish()
	recv(t, started, "the handler to start")
	// The message being handled fills the pending limit of 1, so every
	// message from here on is dropped; Flush returns after the server has
	// sent them all to this connection, ahead of its PONG.
	for range 9 {
		publish()
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	err = recv(t, errs, "the slow-consumer report")
	if !errors.Is(err, bus.ErrSlowConsumer) || !errors.Is(err, nats.ErrSlowConsumer) || !strings.Contains(err.Error(), `"natsbus.slow"`) {
		t.Fatalf("reported %v; want an error wrapping bus.ErrSlowConsumer that names the subject", err)
	}
	rec := logs.wait(t, "bus.slow_consumer")
	if rec["subject"] != "natsbus.slow" {
		t.Fatalf("bus.slow_consumer attributes %v", rec)
	}
	if n := sub.Dropped(); n != 9 {
		t.Fatalf("Dropped() = %d, want 9", n)
	}
	if n := b.Stats().SlowConsumers; n != 1 {
		t.Fatalf("Stats().SlowConsumers = %d, want 1 (one report per run of drops)", n)
	}
}

func TestHandlerPanicIsLoggedWithItsStack(t *testing.T) {
	url := natstest.RunServer(t)
	ctx := testContext(t)
	logs := newLogRecorder()
	errs := make(chan error, 1)
	b := connect(t, url, natsbus.WithLogger(logs.logger()), natsbus.WithErrorHandler(func(_ string, err error) { errs <- err }))
	if _, err := b.Subscribe(ctx, "natsbus.panic", func(context.Context, *bus.Msg) error {
		panic("boom")
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, &bus.Msg{Subject: "natsbus.panic"}); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, errs, "the panic report"); !errors.Is(err, natsbus.ErrHandlerPanic) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("reported %v, want ErrHandlerPanic with the panic value", err)
	}
	rec := logs.wait(t, "bus.handler_panic")
	if rec["panic"] != "boom" || !strings.Contains(rec["stack"], "natsbus_test") {
		t.Fatalf("bus.handler_panic attributes %v", rec)
	}
	if s := b.Stats(); s.HandlerPanics != 1 || s.HandlerErrors != 0 {
		t.Fatalf("Stats() = %+v", s)
	}
}

// startServerOn starts an embedded server on a given loopback port.
func startServerOn(t *testing.T, port int) *server.Server {
	return natstest.StartServer(t, &server.Options{Port: port})
}

func TestLostServerIsLoggedAndTheBusReconnects(t *testing.T) {
	ctx := testContext(t)
	first := natstest.StartServer(t, nil)
	port := first.Addr().(*net.TCPAddr).Port
	logs := newLogRecorder()
	b := connect(t, first.ClientURL(),
		natsbus.WithLogger(logs.logger()),
		natsbus.WithReconnectWait(10*time.Millisecond),
		natsbus.WithMaxReconnects(-1),
		natsbus.WithNATSOptions(nats.ReconnectJitter(0, 0)))

	got := make(chan string, 1)
	if _, err := b.Subscribe(ctx, "natsbus.reconnect", func(_ context.Context, m *bus.Msg) error {
		got <- string(m.Data)
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	first.Shutdown()
	first.WaitForShutdown()
	rec := logs.wait(t, "bus.disconnected")
	if rec["error"] == "" || rec["error"] == "<nil>" {
		t.Fatalf("bus.disconnected without an error: %v", rec)
	}

	second := startServerOn(t, port)
	rec = logs.wait(t, "bus.reconnected")
	if rec["url"] != second.ClientURL() {
		t.Fatalf("bus.reconnected url = %q, want %q", rec["url"], second.ClientURL())
	}
	if s := b.Stats(); s.Disconnects != 1 || s.Reconnects != 1 {
		t.Fatalf("Stats() = %+v, want one disconnect and one reconnect", s)
	}

	// The subscription was re-established on the new server before the
	// reconnect was reported, and this publish follows it on the wire.
	if err := b.Publish(ctx, &bus.Msg{Subject: "natsbus.reconnect", Data: []byte("again")}); err != nil {
		t.Fatal(err)
	}
	if v := recv(t, got, "a message after the reconnect"); v != "again" {
		t.Fatalf("got %q", v)
	}
}

func TestDeliberateCloseIsNotLoggedAsADisconnect(t *testing.T) {
	url := natstest.RunServer(t)
	logs := newLogRecorder()
	closed := make(chan struct{})
	b := connect(t, url, natsbus.WithLogger(logs.logger()),
		natsbus.WithNATSOptions(nats.ClosedHandler(func(*nats.Conn) { close(closed) })))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Callbacks run in order on one goroutine: the disconnect callback, if
	// any, has run once the closed one has.
	recv(t, closed, "the closed callback")
	if n := logs.count("bus.disconnected"); n != 0 {
		t.Fatalf("bus.disconnected logged %d times on Close", n)
	}
	if s := b.Stats(); s.Disconnects != 0 {
		t.Fatalf("Stats() = %+v", s)
	}
}

func TestSubscribeFailsWithTheContextWhenTheServerCannotConfirm(t *testing.T) {
	ctx := testContext(t)
	s := natstest.StartServer(t, nil)
	logs := newLogRecorder()
	b := connect(t, s.ClientURL(), natsbus.WithLogger(logs.logger()),
		natsbus.WithMaxReconnects(-1), natsbus.WithReconnectWait(time.Hour))
	s.Shutdown()
	s.WaitForShutdown()
	// Once the disconnect is reported, nats.go has failed the flushes that
	// were in flight; the one Subscribe makes waits for a server.
	logs.wait(t, "bus.disconnected")

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err := b.Subscribe(short, "natsbus.unconfirmed", func(context.Context, *bus.Msg) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Subscribe while disconnected = %v, want context.DeadlineExceeded", err)
	}
}

func TestHandlersMayPublishWhileTheBusDrains(t *testing.T) {
	url := natstest.RunServer(t)
	ctx := testContext(t)
	worker := connect(t, url)
	observer := connect(t, url)

	results := make(chan string, 3)
	if _, err := observer.Subscribe(ctx, "natsbus.drain.results", func(_ context.Context, m *bus.Msg) error {
		results <- string(m.Data)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	if _, err := worker.Subscribe(ctx, "natsbus.drain.tasks", func(ctx context.Context, m *bus.Msg) error {
		<-gate
		return worker.Publish(ctx, &bus.Msg{Subject: "natsbus.drain.results", Data: m.Data})
	}); err != nil {
		t.Fatal(err)
	}
	for _, task := range []string{"a", "b", "c"} {
		if err := observer.Publish(ctx, &bus.Msg{Subject: "natsbus.drain.tasks", Data: []byte(task)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := observer.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	drained := make(chan error, 1)
	go func() { drained <- worker.Drain(ctx) }()
	close(gate)
	if err := recv(t, drained, "Drain to return"); err != nil {
		t.Fatalf("Drain = %v", err)
	}
	for _, want := range []string{"a", "b", "c"} {
		if got := recv(t, results, "a result published during the drain"); got != want {
			t.Fatalf("result %q, want %q", got, want)
		}
	}
	if err := worker.Publish(ctx, &bus.Msg{Subject: "natsbus.drain.results"}); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Publish after Drain = %v, want ErrClosed", err)
	}
}
