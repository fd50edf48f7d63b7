package heddle_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
)

// routerTestTimeout bounds every wait in the router and dead-letter tests,
// so a bug fails the test instead of hanging it.
const routerTestTimeout = 15 * time.Second

// routerStartActor runs an actor's Run in a goroutine, waits until it is
// ready and returns a stop function that cancels it and checks that Run
// returned nil. stop is idempotent and also runs at cleanup, before the
// buses close.
func routerStartActor(t *testing.T, run func(context.Context) error, ready <-chan struct{}) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Run returned before it was ready: %v", err)
	case <-time.After(routerTestTimeout):
		cancel()
		t.Fatal("timed out waiting for Run to be ready")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v after its context ended, want nil", err)
				}
			case <-time.After(routerTestTimeout):
				t.Error("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// routerStart makes a Router on b and runs it.
func routerStart(t *testing.T, b bus.Bus, cfg heddle.RouterConfig) (*heddle.Router, *logRecorder, func()) {
	t.Helper()
	logs := newLogRecorder()
	r, err := heddle.NewRouter(b, cfg, heddle.WithLogger(logs.logger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := routerStartActor(t, r.Run, r.Ready())
	return r, logs, stop
}

// routerStartConsumer makes a DeadLetterConsumer on b and runs it.
func routerStartConsumer(t *testing.T, b bus.Bus, cfg heddle.DeadLetterConfig) (*heddle.DeadLetterConsumer, *logRecorder, func()) {
	t.Helper()
	logs := newLogRecorder()
	c, err := heddle.NewDeadLetterConsumer(b, cfg, heddle.WithLogger(logs.logger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := routerStartActor(t, c.Run, c.Ready())
	return c, logs, stop
}

// routerSubscribe collects the messages on subject; it plays the worker.
func routerSubscribe(t *testing.T, b bus.Bus, subject string) (<-chan *bus.Msg, bus.Subscription) {
	t.Helper()
	ch := make(chan *bus.Msg, 256)
	sub, err := b.Subscribe(t.Context(), subject, func(_ context.Context, m *bus.Msg) error {
		ch <- &bus.Msg{Subject: m.Subject, Header: m.Header.Clone(), Data: bytes.Clone(m.Data)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ch, sub
}

func routerRecv(t *testing.T, ch <-chan *bus.Msg, what string) *bus.Msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(routerTestTimeout):
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

func routerPublish(t *testing.T, b bus.Bus, subject string, data []byte, h bus.Header) {
	t.Helper()
	if err := b.Publish(t.Context(), &bus.Msg{Subject: subject, Header: h, Data: data}); err != nil {
		t.Fatal(err)
	}
}

// routerTask returns the wire form of a fresh task.
func routerTask(t *testing.T, workerType string, tier heddle.ModelTier) (heddle.TaskMessage, []byte) {
	t.Helper()
	m := heddle.NewTaskMessage(workerType, map[string]any{"text": "Heddle routes tasks."})
	m.ModelTier = tier
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return m, data
}

func routerWriteRules(t *testing.T, path, yaml string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}

// routerFailingBus refuses publishes to subjects starting with one of
// fail.
type routerFailingBus struct {
	bus.Bus
	fail []string
}

func (b routerFailingBus) Publish(ctx context.Context, msg *bus.Msg) error {
	for _, prefix := range b.fail {
		if strings.HasPrefix(msg.Subject, prefix) {
			return fmt.Errorf("test bus refuses %s: %w", msg.Subject, bus.ErrMaxPayload)
		}
	}
	return b.Bus.Publish(ctx, msg)
}
