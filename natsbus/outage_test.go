package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/natsbus"
)

// outageWait is the pause between reconnect attempts in the outage tests,
// without nats.go's random jitter, so that many attempts fit in a short
// test.
const outageWait = 5 * time.Millisecond

func quickReconnects(wait time.Duration, more ...nats.Option) []natsbus.Option {
	return []natsbus.Option{
		natsbus.WithReconnectWait(wait),
		natsbus.WithNATSOptions(append([]nats.Option{nats.ReconnectJitter(0, 0)}, more...)...),
	}
}

func isOpen(b *natsbus.Bus) bool {
	select {
	case <-b.Done():
		return false
	default:
		return b.Err() == nil
	}
}

func TestByDefaultABusReconnectsForEverAndReportsTheOutageOnce(t *testing.T) {
	ctx := testContext(t)
	srv := natstest.StartRestartableServer(t, nil)
	logs := newLogRecorder()
	// nats.go's own default gives up after 60 attempts; the test waits for
	// one more.
	const beyond = nats.DefaultMaxReconnect + 1
	var failed atomic.Int64
	pastBudget := make(chan struct{})
	opts := append(quickReconnects(outageWait, nats.ReconnectErrHandler(func(*nats.Conn, error) {
		if failed.Add(1) == beyond {
			close(pastBudget)
		}
	})), natsbus.WithLogger(logs.logger()))
	b := connect(t, srv.ClientURL(), opts...)

	got := make(chan string, 1)
	if _, err := b.Subscribe(ctx, "natsbus.forever", func(_ context.Context, m *bus.Msg) error {
		got <- string(m.Data)
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	recv(t, pastBudget, fmt.Sprintf("%d failed reconnect attempts", beyond))
	if !isOpen(b) {
		t.Fatalf("the bus closed after %d failed attempts: %v", failed.Load(), b.Err())
	}
	srv.Start()
	rec := logs.wait(t, "bus.reconnected")
	if n, err := strconv.Atoi(rec["reconnect_attempts"]); err != nil || n <= beyond {
		t.Fatalf("bus.reconnected reconnect_attempts = %q, want more than %d", rec["reconnect_attempts"], beyond)
	}
	if rec["disconnected_for"] == "" {
		t.Fatalf("bus.reconnected without disconnected_for: %v", rec)
	}

	if err := b.Publish(ctx, &bus.Msg{Subject: "natsbus.forever", Data: []byte("back")}); err != nil {
		t.Fatal(err)
	}
	if v := recv(t, got, "a message after the outage"); v != "back" {
		t.Fatalf("got %q", v)
	}
	if !isOpen(b) {
		t.Fatalf("the bus is closed after the outage: %v", b.Err())
	}
	loud := logs.atLeast(slog.LevelWarn)
	if len(loud) != 1 || loud[0].msg != "bus.disconnected" {
		t.Fatalf("records at warn or above: %+v; want the one bus.disconnected for the whole outage", loud)
	}
	if s := b.Stats(); s.Disconnects != 1 || s.Reconnects != 1 {
		t.Fatalf("Stats() = %+v, want one disconnect and one reconnect", s)
	}
}

func TestABusThatSpendsItsReconnectBudgetClosesItselfAndSaysWhy(t *testing.T) {
	ctx := testContext(t)
	srv := natstest.StartRestartableServer(t, nil)
	logs := newLogRecorder()
	opts := append(quickReconnects(20*time.Millisecond), natsbus.WithMaxReconnects(3), natsbus.WithLogger(logs.logger()))
	b := connect(t, srv.ClientURL(), opts...)
	if !isOpen(b) {
		t.Fatalf("a new bus is closed: %v", b.Err())
	}

	srv.Stop()
	recv(t, b.Done(), "the bus to close once its reconnect budget is spent")
	err := b.Err()
	if !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Err() = %v, want an error wrapping bus.ErrClosed", err)
	}
	t.Logf("Err() = %v", err)
	prefix := "natsbus: connection closed after 3 reconnect attempts to " + srv.ClientURL() + ": "
	if !strings.HasPrefix(err.Error(), prefix) || !strings.HasSuffix(err.Error(), ": "+bus.ErrClosed.Error()) {
		t.Fatalf("Err() = %q, want %q, the cause and %q", err, prefix, bus.ErrClosed)
	}
	if err := b.Publish(ctx, &bus.Msg{Subject: "natsbus.budget"}); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Publish after the bus closed itself = %v, want ErrClosed", err)
	}

	closed := logs.find("bus.closed")
	if len(closed) != 1 || closed[0].level != slog.LevelError {
		t.Fatalf("bus.closed records %+v, want one at error level", closed)
	}
	if a := closed[0].attrs; a["error"] != err.Error() || a["reconnect_attempts"] != "3" || a["url"] != srv.ClientURL() {
		t.Fatalf("bus.closed attributes %v", a)
	}
	loud := logs.atLeast(slog.LevelWarn)
	if len(loud) != 2 || loud[0].msg != "bus.disconnected" {
		t.Fatalf("records at warn or above: %+v; want bus.disconnected, then bus.closed", loud)
	}
}

func TestABusWhoseServerIsGoneForGoodClosesItself(t *testing.T) {
	ctx := testContext(t)
	s := natstest.StartServer(t, nil)
	closed := make(chan struct{})
	logs := newLogRecorder()
	b := connect(t, s.ClientURL(),
		natsbus.WithLogger(logs.logger()),
		natsbus.WithMaxReconnects(0),
		natsbus.WithNATSOptions(nats.ClosedHandler(func(*nats.Conn) { close(closed) })))

	handlerDone := make(chan error, 1)
	started := make(chan struct{})
	if _, err := b.Subscribe(ctx, "natsbus.gone", func(ctx context.Context, _ *bus.Msg) error {
		close(started)
		<-ctx.Done()
		handlerDone <- ctx.Err()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, &bus.Msg{Subject: "natsbus.gone"}); err != nil {
		t.Fatal(err)
	}
	recv(t, started, "the handler to start")

	s.Shutdown()
	// The bus's own closed callback runs before the one set here, and it
	// closes the bus.
	recv(t, closed, "the connection to close")
	if err := recv(t, handlerDone, "the handler's context to end"); !errors.Is(err, context.Canceled) {
		t.Fatalf("handler context ended with %v", err)
	}
	recv(t, b.Done(), "Done to be closed")
	if err := b.Err(); !errors.Is(err, bus.ErrClosed) || !strings.Contains(err.Error(), "reconnecting is disabled") {
		t.Fatalf("Err() = %v, want ErrClosed saying that reconnecting is disabled", err)
	}
	if err := b.Publish(ctx, &bus.Msg{Subject: "natsbus.gone"}); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Publish after the connection closed = %v, want ErrClosed", err)
	}
	// The bus knew at once that the connection was gone for good: one
	// report, the close.
	loud := logs.atLeast(slog.LevelWarn)
	if len(loud) != 1 || loud[0].msg != "bus.closed" || loud[0].level != slog.LevelError {
		t.Fatalf("records at warn or above: %+v; want one bus.closed at error level", loud)
	}
}

func TestCloseAndDrainAreLoggedQuietlyAndErrSaysWhichClosedTheBus(t *testing.T) {
	url := natstest.RunServer(t)
	for _, how := range []string{"Close", "Drain"} {
		t.Run(how, func(t *testing.T) {
			logs := newLogRecorder()
			b := connect(t, url, natsbus.WithLogger(logs.logger()))
			if how == "Close" {
				if err := b.Close(); err != nil {
					t.Fatal(err)
				}
			} else if err := b.Drain(testContext(t)); err != nil {
				t.Fatal(err)
			}
			select {
			case <-b.Done():
			default:
				t.Fatalf("Done is not closed when %s has returned", how)
			}
			want := "natsbus: connection closed by " + how + ": " + bus.ErrClosed.Error()
			if err := b.Err(); !errors.Is(err, bus.ErrClosed) || err.Error() != want {
				t.Fatalf("Err() = %v, want %q", err, want)
			}
			closed := logs.find("bus.closed")
			if len(closed) != 1 || closed[0].level != slog.LevelDebug || closed[0].attrs["error"] != want {
				t.Fatalf("bus.closed records %+v, want one at debug level saying %q", closed, want)
			}
			if loud := logs.atLeast(slog.LevelWarn); len(loud) != 0 {
				t.Fatalf("a deliberate %s logged %+v", how, loud)
			}
		})
	}
}

func TestWithoutALoggerTheBusReportsToTheDefaultLogger(t *testing.T) {
	logs := newLogRecorder()
	prev := slog.Default()
	slog.SetDefault(logs.logger())
	t.Cleanup(func() { slog.SetDefault(prev) })

	srv := natstest.StartRestartableServer(t, nil)
	b := connect(t, srv.ClientURL(), quickReconnects(outageWait)...)
	srv.Stop()
	if rec := logs.wait(t, "bus.disconnected"); rec["error"] == "" {
		t.Fatalf("bus.disconnected without an error: %v", rec)
	}
	srv.Start()
	logs.wait(t, "bus.reconnected")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	logs.wait(t, "bus.closed")
}

func TestDropsCountedBeforeTheBusClosesItselfAreKept(t *testing.T) {
	const (
		limit = 10
		total = 1000
	)
	ctx := testContext(t)
	srv := natstest.StartRestartableServer(t, nil)
	logs := newLogRecorder()
	slow := make(chan error, 1)
	opts := append(quickReconnects(20*time.Millisecond), natsbus.WithMaxReconnects(3), natsbus.WithLogger(logs.logger()),
		natsbus.WithErrorHandler(func(_ string, err error) {
			if errors.Is(err, bus.ErrSlowConsumer) {
				select {
				case slow <- err:
				default:
				}
			}
		}))
	b := connect(t, srv.ClientURL(), opts...)

	started := make(chan struct{})
	sub, err := b.Subscribe(ctx, "natsbus.flood", func(ctx context.Context, m *bus.Msg) error {
		if string(m.Data) == "0" {
			close(started)
			<-ctx.Done() // stuck until the bus closes
		}
		return nil
	}, bus.PendingLimits(limit, bus.DefaultPendingBytes))
	if err != nil {
		t.Fatal(err)
	}
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := b.Publish(ctx, &bus.Msg{Subject: "natsbus.flood", Data: []byte(strconv.Itoa(i))}); err != nil {
				t.Fatal(err)
			}
		}
		// The server sends this connection its own messages ahead of the
		// answer to its flush: once Flush returns, all of them have
		// arrived.
		if err := b.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	publish(0, 1)
	recv(t, started, "the handler to start")
	publish(1, total/5)
	recv(t, slow, "the slow-consumer report")
	// These drops continue the episode just reported: no report of their
	// own, only the count.
	publish(total/5, total)

	srv.Stop()
	recv(t, b.Done(), "the bus to close itself")
	// The message being handled and the 9 behind it were accepted.
	if n := sub.Dropped(); n != total-limit {
		t.Fatalf("Dropped() = %d after the bus closed itself, want %d", n, total-limit)
	}
	rec := logs.wait(t, "bus.slow_consumer")
	if n, err := strconv.Atoi(rec["dropped"]); err != nil || n < 1 || n > total-limit {
		t.Fatalf("bus.slow_consumer dropped = %q, want the count when it was logged, between 1 and %d", rec["dropped"], total-limit)
	}
}

func TestABusWhoseCredentialsAreRefusedClosesItselfAndSaysWhy(t *testing.T) {
	srv := natstest.StartRestartableServer(t, &server.Options{Authorization: "first"})
	logs := newLogRecorder()
	opts := append(quickReconnects(outageWait, nats.Token("first")), natsbus.WithLogger(logs.logger()))
	b := connect(t, srv.ClientURL(), opts...)

	// The server comes back on the same port with other credentials, as
	// when an operator revokes the application's.
	srv.Stop()
	logs.wait(t, "bus.disconnected")
	natstest.StartServer(t, &server.Options{Port: srv.Port(), Authorization: "second"})
	recv(t, b.Done(), "the bus to close once its credentials are refused")
	err := b.Err()
	if !errors.Is(err, bus.ErrClosed) || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("Err() = %v, want ErrClosed naming the authorization violation", err)
	}
	t.Logf("Err() = %v", err)
	closed := logs.find("bus.closed")
	if len(closed) != 1 || closed[0].level != slog.LevelError {
		t.Fatalf("bus.closed records %+v, want one at error level", closed)
	}
}
