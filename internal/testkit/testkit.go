// Package testkit holds the helpers the SDK's own tests share: running an
// actor until it is ready, playing a worker or a caller on a bus, and
// bounded waits. Only tests import it.
package testkit

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
)

// Wait bounds every wait in the tests, so that a bug fails a test instead
// of hanging it; only a broken implementation reaches it.
const Wait = 15 * time.Second

// ShortTimeout is the configured timeout of waits meant to time out: no
// result for them is ever published before it fires.
const ShortTimeout = 20 * time.Millisecond

// Context returns a context that ends after Wait or when the test ends.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	t.Cleanup(cancel)
	return ctx
}

// StartActor runs an actor's Run in a goroutine, waits until it is ready
// and returns a stop function that cancels it and checks that Run
// returned nil. stop is idempotent and also runs at cleanup, before the
// buses close.
func StartActor(t testing.TB, run func(context.Context) error, ready <-chan struct{}) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Run returned before it was ready: %v", err)
	case <-time.After(Wait):
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
			case <-time.After(Wait):
				t.Error("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// Subscribe collects copies of the messages on subject.
func Subscribe(t testing.TB, b bus.Bus, subject string) (<-chan *bus.Msg, bus.Subscription) {
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

// Recv returns the next message on ch, failing the test after Wait.
func Recv(t testing.TB, ch <-chan *bus.Msg, what string) *bus.Msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(Wait):
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

// Publish publishes data on subject, failing the test on an error.
func Publish(t testing.TB, b bus.Bus, subject string, data []byte, h bus.Header) {
	t.Helper()
	if err := b.Publish(t.Context(), &bus.Msg{Subject: subject, Header: h, Data: data}); err != nil {
		t.Fatal(err)
	}
}

// Task returns a fresh task for workerType at tier and its wire form.
func Task(t testing.TB, workerType string, tier heddle.ModelTier) (heddle.TaskMessage, []byte) {
	t.Helper()
	m := heddle.NewTaskMessage(workerType, map[string]any{"text": "Heddle routes tasks."})
	m.ModelTier = tier
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return m, data
}

// FailingBus refuses publishes to subjects starting with one of Fail.
type FailingBus struct {
	bus.Bus
	Fail []string
}

// Publish refuses msg when its subject starts with one of b.Fail.
func (b FailingBus) Publish(ctx context.Context, msg *bus.Msg) error {
	for _, prefix := range b.Fail {
		if strings.HasPrefix(msg.Subject, prefix) {
			return fmt.Errorf("test bus refuses %s: %w", msg.Subject, bus.ErrMaxPayload)
		}
	}
	return b.Bus.Publish(ctx, msg)
}

// Done forwards to the wrapped bus, so actors on a FailingBus still see
// it close (bus.Closer).
func (b FailingBus) Done() <-chan struct{} { return bus.Done(b.Bus) }

// Err forwards to the wrapped bus (bus.Closer).
func (b FailingBus) Err() error { return bus.Err(b.Bus) }

// Responder serves workerType on conn (in queue group queue when not
// empty): for each task it publishes, in order, the messages reply returns
// to the task's result subject.
func Responder(t testing.TB, conn bus.Bus, workerType, queue string, reply func(task heddle.TaskMessage) [][]byte) {
	t.Helper()
	var opts []bus.SubscribeOption
	if queue != "" {
		opts = append(opts, bus.Queue(queue))
	}
	_, err := conn.Subscribe(context.Background(), heddle.WorkerSubjectAllTiers(workerType), func(ctx context.Context, m *bus.Msg) error {
		task, err := heddle.DecodeTaskMessage(m.Data)
		if err != nil {
			t.Errorf("responder %s: %v", workerType, err)
			return nil
		}
		for _, data := range reply(task) {
			if err := conn.Publish(ctx, &bus.Msg{Subject: task.ResultSubject(), Data: data}); err != nil {
				t.Errorf("responder %s: %v", workerType, err)
			}
		}
		return nil
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
}

// Encode returns r's wire form.
func Encode(t testing.TB, r heddle.TaskResult) []byte {
	t.Helper()
	data, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Echo is a completed result echoing the task's payload.
func Echo(task heddle.TaskMessage) heddle.TaskResult {
	return task.Result(heddle.StatusCompleted, map[string]any{"echo": task.Payload}, nil)
}

// Latencies records each benchmark iteration's duration and reports the
// p50 and p99 in microseconds.
type Latencies []time.Duration

// Report adds the p50_us and p99_us metrics to b.
func (l Latencies) Report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	b.ReportMetric(l.Percentile(0.50), "p50_us")
	b.ReportMetric(l.Percentile(0.99), "p99_us")
}

// Percentile returns the p-th percentile (0 < p < 1) in microseconds.
func (l Latencies) Percentile(p float64) float64 {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return float64(s[int(p*float64(len(s)-1))].Nanoseconds()) / 1e3
}
