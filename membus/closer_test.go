package membus_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/membus"
)

var _ bus.Closer = (*membus.Bus)(nil)

func TestCloseAndDrainSayWhichClosedTheConnection(t *testing.T) {
	var logs logBuffer
	root := membus.New()
	t.Cleanup(func() { _ = root.Close() })
	for _, how := range []string{"Close", "Drain"} {
		t.Run(how, func(t *testing.T) {
			b := root.Connect(membus.WithLogger(newLogger(&logs)))
			if err := b.Err(); err != nil {
				t.Fatalf("Err() on an open connection = %v", err)
			}
			if how == "Close" {
				_ = b.Close()
			} else if err := b.Drain(context.Background()); err != nil {
				t.Fatal(err)
			}
			select {
			case <-b.Done():
			default:
				t.Fatalf("Done is not closed when %s has returned", how)
			}
			want := "membus: connection closed by " + how + ": " + bus.ErrClosed.Error()
			if err := b.Err(); !errors.Is(err, bus.ErrClosed) || err.Error() != want {
				t.Fatalf("Err() = %v, want %q", err, want)
			}
		})
	}
	lines := logs.lines("bus.closed")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=DEBUG") || !strings.Contains(lines[1], "closed by Drain") {
		t.Fatalf("bus.closed log lines = %q, want one at debug level per connection", lines)
	}
}

func TestWithoutALoggerTheConnectionReportsToTheDefaultLogger(t *testing.T) {
	var logs logBuffer
	prev := slog.Default()
	slog.SetDefault(newLogger(&logs))
	t.Cleanup(func() { slog.SetDefault(prev) })

	ctx := context.Background()
	b := membus.New()
	t.Cleanup(func() { _ = b.Close() })
	release := make(chan struct{})
	started := make(chan struct{})
	if _, err := b.Subscribe(ctx, "slow", func(context.Context, *bus.Msg) error {
		close(started)
		<-release
		return nil
	}, bus.PendingLimits(1, 0)); err != nil {
		t.Fatal(err)
	}
	publish := func() {
		t.Helper()
		if err := b.Publish(ctx, &bus.Msg{Subject: "slow"}); err != nil {
			t.Fatal(err)
		}
	}
	publish()
	recv(t, started, "the handler to start")
	// The message being handled fills the limit of 1: both are dropped,
	// one episode.
	publish()
	publish()
	close(release)
	if lines := logs.lines("bus.slow_consumer"); len(lines) != 1 || !strings.Contains(lines[0], "dropped=1") {
		t.Fatalf("bus.slow_consumer lines on the default logger = %q, want one with dropped=1", lines)
	}
}
