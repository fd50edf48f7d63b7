package membus_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest"
	"github.com/heddle-go/heddle/membus"
)

const waitTimeout = 10 * time.Second

// factory returns a contracttest.BusFactory whose connections share one
// broker per test.
func factory(opts ...membus.Option) contracttest.BusFactory {
	var mu sync.Mutex
	roots := map[*testing.T]*membus.Bus{}
	return func(t *testing.T, errs bus.ErrorHandler) bus.Bus {
		mu.Lock()
		defer mu.Unlock()
		root, ok := roots[t]
		if !ok {
			root = membus.New()
			roots[t] = root
			t.Cleanup(func() {
				_ = root.Close()
				mu.Lock()
				delete(roots, t)
				mu.Unlock()
			})
		}
		return root.Connect(append([]membus.Option{membus.WithErrorHandler(errs)}, opts...)...)
	}
}

func TestMembusKeepsEveryPromiseOfTheBusContract(t *testing.T) {
	contracttest.TestBus(t, factory())
}

// TestBusContractZeroCopy runs the suite on connections that hand their
// published buffers over; only the subtest that checks the publisher may
// reuse them is left out.
func TestBusContractZeroCopy(t *testing.T) {
	contracttest.TestBus(t, factory(membus.WithZeroCopyPublish()), contracttest.PublishTakesBuffers())
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		var zero T
		return zero
	}
}

func TestStatsCountPublishesDeliveriesAndDrops(t *testing.T) {
	ctx := context.Background()
	pub := membus.New()
	sub := pub.Connect()
	t.Cleanup(func() { _ = pub.Close(); _ = sub.Close() })

	release := make(chan struct{})
	started := make(chan struct{}, 1)
	handled := make(chan string, 20)
	s, err := sub.Subscribe(ctx, "stats.x", func(ctx context.Context, m *bus.Msg) error {
		if string(m.Data) == "0" {
			started <- struct{}{}
			<-release
		}
		handled <- string(m.Data)
		return nil
	}, bus.PendingLimits(3, 0))
	if err != nil {
		t.Fatal(err)
	}
	publish := func(subject, data string) {
		t.Helper()
		if err := pub.Publish(ctx, &bus.Msg{Subject: subject, Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
	}
	publish("stats.x", "0")
	recv(t, started, "the handler to start")
	// The message in the handler counts against the limit, as in nats.go:
	// 1 and 2 are queued, 3..9 are dropped.
	for i := 1; i < 10; i++ {
		publish("stats.x", strconv.Itoa(i))
	}
	publish("stats.nobody", "lost")
	close(release)
	for _, want := range []string{"0", "1", "2"} {
		if got := recv(t, handled, "message "+want); got != want {
			t.Fatalf("handled %q, want %q", got, want)
		}
	}
	// After the episode, the queue accepts again.
	publish("stats.x", "10")
	if got := recv(t, handled, "the message after the episode"); got != "10" {
		t.Fatalf("handled %q, want %q", got, "10")
	}

	if got := s.Dropped(); got != 7 {
		t.Errorf("Dropped() = %d, want 7", got)
	}
	ps, ss := pub.Stats(), sub.Stats()
	if want := (membus.Stats{Published: 12, NoSubscriber: 1}); ps != want {
		t.Errorf("publisher stats = %+v, want %+v", ps, want)
	}
	if want := (membus.Stats{Delivered: 4, SlowConsumerDropped: 7}); ss != want {
		t.Errorf("subscriber stats = %+v, want %+v", ss, want)
	}
}

// logBuffer collects slog records as text lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) lines(msg string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.buf.String(), "\n") {
		if strings.Contains(line, "msg="+msg+" ") {
			out = append(out, line)
		}
	}
	return out
}

func newLogger(l *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestSlowConsumerIsLoggedAndReportedOncePerEpisode(t *testing.T) {
	ctx := context.Background()
	var logs logBuffer
	var reports []error
	var mu sync.Mutex
	b := membus.New(membus.WithLogger(newLogger(&logs)), membus.WithErrorHandler(func(subject string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if subject != "slow.*" {
			t.Errorf("error reported for subject %q, want the subscription subject slow.*", subject)
		}
		reports = append(reports, err)
	}))
	t.Cleanup(func() { _ = b.Close() })

	release := make(chan struct{})
	started := make(chan struct{}, 1)
	_, err := b.Subscribe(ctx, "slow.*", func(ctx context.Context, m *bus.Msg) error {
		if string(m.Data) == "block" {
			started <- struct{}{}
			<-release
		}
		return nil
	}, bus.PendingLimits(2, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, &bus.Msg{Subject: "slow.sub", Data: []byte("block")}); err != nil {
		t.Fatal(err)
	}
	recv(t, started, "the handler to start")
	for range 1000 {
		if err := b.Publish(ctx, &bus.Msg{Subject: "slow.sub", Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	close(release)

	mu.Lock()
	defer mu.Unlock()
	if len(reports) != 1 {
		t.Fatalf("error handler called %d times for one episode, want 1: %v", len(reports), reports)
	}
	err = reports[0]
	if !errors.Is(err, bus.ErrSlowConsumer) || !strings.Contains(err.Error(), `"slow.*"`) {
		t.Errorf("reported %v, want an error wrapping bus.ErrSlowConsumer naming the subscription subject", err)
	}
	lines := logs.lines("bus.slow_consumer")
	if len(lines) != 1 || !strings.Contains(lines[0], "subject=slow.*") {
		t.Errorf("bus.slow_consumer log lines = %q, want one with subject=slow.*", lines)
	}
	if got := b.Stats().SlowConsumerDropped; got != 999 {
		t.Errorf("SlowConsumerDropped = %d, want 999", got)
	}
}

func TestNoSubscriberIsCountedAndDebugLogged(t *testing.T) {
	var logs logBuffer
	b := membus.New(membus.WithLogger(newLogger(&logs)))
	t.Cleanup(func() { _ = b.Close() })
	if err := b.Publish(context.Background(), &bus.Msg{Subject: "nobody.home"}); err != nil {
		t.Fatal(err)
	}
	if got := b.Stats().NoSubscriber; got != 1 {
		t.Errorf("NoSubscriber = %d, want 1", got)
	}
	lines := logs.lines("bus.no_subscriber")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=DEBUG") || !strings.Contains(lines[0], "subject=nobody.home") {
		t.Errorf("bus.no_subscriber log lines = %q, want one at debug level with subject=nobody.home", lines)
	}
}

func TestMaxPayloadErrorNamesSizeAndLimit(t *testing.T) {
	b := membus.New(membus.WithMaxPayload(10))
	t.Cleanup(func() { _ = b.Close() })
	ctx := context.Background()
	if err := b.Publish(ctx, &bus.Msg{Subject: "a", Data: make([]byte, 10)}); err != nil {
		t.Fatalf("10 bytes with a limit of 10: %v", err)
	}
	err := b.Publish(ctx, &bus.Msg{Subject: "a", Data: make([]byte, 11)})
	if !errors.Is(err, bus.ErrMaxPayload) || !strings.Contains(err.Error(), "11 bytes") || !strings.Contains(err.Error(), "limit is 10") {
		t.Errorf("11 bytes with a limit of 10: got %v, want bus.ErrMaxPayload naming size and limit", err)
	}
	// Headers count too.
	err = b.Publish(ctx, &bus.Msg{Subject: "a", Header: bus.Header{"K": {"v"}}, Data: make([]byte, 8)})
	if !errors.Is(err, bus.ErrMaxPayload) {
		t.Errorf("8 bytes plus a header with a limit of 10: got %v, want bus.ErrMaxPayload", err)
	}
}

func TestSubscriptionsShareOneCopyOfEachPayload(t *testing.T) {
	b := membus.New()
	t.Cleanup(func() { _ = b.Close() })
	data := []byte("payload")
	hdr := bus.Header{"K": {"v"}}
	m1, m2 := publishToTwoSubscriptions(t, b, b, "share", data, hdr)
	if m1 == m2 {
		t.Error("the two subscriptions got the same *bus.Msg, want one each")
	}
	if &m1.Data[0] != &m2.Data[0] {
		t.Error("the two subscriptions got different copies of Data, want one shared copy")
	}
	if &m1.Data[0] == &data[0] {
		t.Error("the delivered Data aliases the publisher's buffer")
	}
	hdr["K"][0] = "changed"
	if m1.Header.Get("K") != "v" {
		t.Error("the delivered Header aliases the publisher's")
	}
}

func TestHandlerErrorIsLoggedWithoutErrorHandler(t *testing.T) {
	ctx := context.Background()
	var logs logBuffer
	b := membus.New(membus.WithLogger(newLogger(&logs)))
	t.Cleanup(func() { _ = b.Close() })
	if _, err := b.Subscribe(ctx, "fail", func(context.Context, *bus.Msg) error { return errors.New("boom") }); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, &bus.Msg{Subject: "fail"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if lines := logs.lines("bus.handler_error"); len(lines) != 1 || !strings.Contains(lines[0], "boom") {
		t.Errorf("bus.handler_error log lines = %q, want one naming the error", lines)
	}
	if got := b.Stats().HandlerErrors; got != 1 {
		t.Errorf("HandlerErrors = %d, want 1", got)
	}
}

func TestQueueGroupSpreadsMessagesOverMembers(t *testing.T) {
	ctx := context.Background()
	b := membus.New()
	t.Cleanup(func() { _ = b.Close() })
	const members, n = 3, 300
	var counts [members]atomic.Int32
	for i := range members {
		_, err := b.Subscribe(ctx, "spread", func(context.Context, *bus.Msg) error {
			counts[i].Add(1)
			return nil
		}, bus.Queue("q"))
		if err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		if err := b.Publish(ctx, &bus.Msg{Subject: "spread"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	total := int32(0)
	for i := range members {
		c := counts[i].Load()
		if c == 0 {
			t.Errorf("member %d got no message out of %d", i, n)
		}
		total += c
	}
	if total != n {
		t.Errorf("members got %d messages in total, want %d", total, n)
	}
}

func TestUnsubscribeRemovesCachedWildcardRoutes(t *testing.T) {
	ctx := context.Background()
	b := membus.New()
	t.Cleanup(func() { _ = b.Close() })
	got := make(chan string, 4)
	sub, err := b.Subscribe(ctx, "cache.*", func(_ context.Context, m *bus.Msg) error { got <- m.Subject; return nil })
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second publish uses the cached route
		if err := b.Publish(ctx, &bus.Msg{Subject: "cache.a"}); err != nil {
			t.Fatal(err)
		}
		recv(t, got, "a message on the wildcard subscription")
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, &bus.Msg{Subject: "cache.a"}); err != nil {
		t.Fatal(err)
	}
	if got := b.Stats().NoSubscriber; got != 1 {
		t.Errorf("NoSubscriber = %d after Unsubscribe, want 1", got)
	}
}

func TestConcurrentSubscribePublishUnsubscribe(t *testing.T) {
	ctx := context.Background()
	b := membus.New()
	t.Cleanup(func() { _ = b.Close() })
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 4 {
		wg.Add(2)
		go func() { // churns subscriptions
			defer wg.Done()
			conn := b.Connect()
			defer conn.Close()
			for i := range 200 {
				subject := "churn." + strconv.Itoa(w) + ".*"
				opts := []bus.SubscribeOption{}
				if i%2 == 0 {
					opts = append(opts, bus.Queue("q"))
				}
				sub, err := conn.Subscribe(ctx, subject, func(context.Context, *bus.Msg) error { return nil }, opts...)
				if err != nil {
					errs <- err
					return
				}
				if err := sub.Unsubscribe(); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() { // publishes meanwhile
			defer wg.Done()
			for i := range 2000 {
				subject := "churn." + strconv.Itoa(w) + "." + strconv.Itoa(i%7)
				if err := b.Publish(ctx, &bus.Msg{Subject: subject, Data: []byte("x")}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNoGoroutineOutlivesClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	b := membus.New()
	other := b.Connect()
	started := make(chan struct{}, 10)
	for i := range 10 {
		_, err := b.Subscribe(ctx, "leak."+strconv.Itoa(i), func(ctx context.Context, _ *bus.Msg) error {
			started <- struct{}{}
			<-ctx.Done()
			return nil
		}, bus.PendingLimits(100, 0))
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			if err := other.Publish(ctx, &bus.Msg{Subject: "leak." + strconv.Itoa(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 10 {
		recv(t, started, "every handler to start")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCloseDuringDrainDiscardsPendingAndCancels(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drain func(ctx context.Context, b *membus.Bus, sub bus.Subscription) error
	}{
		{"connection Drain", func(ctx context.Context, b *membus.Bus, _ bus.Subscription) error { return b.Drain(ctx) }},
		{"subscription Drain", func(ctx context.Context, _ *membus.Bus, sub bus.Subscription) error { return sub.Drain(ctx) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			b := membus.New()
			started := make(chan struct{}, 1)
			var handled atomic.Int32
			sub, err := b.Subscribe(ctx, "d", func(ctx context.Context, m *bus.Msg) error {
				handled.Add(1)
				if string(m.Data) == "block" {
					started <- struct{}{}
					<-ctx.Done()
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{"block", "pending", "pending"} {
				if err := b.Publish(ctx, &bus.Msg{Subject: "d", Data: []byte(d)}); err != nil {
					t.Fatal(err)
				}
			}
			recv(t, started, "the handler to block")
			drainCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			drained := make(chan error, 1)
			go func() { drained <- tc.drain(drainCtx, b, sub) }()
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if got := handled.Load(); got != 1 {
				t.Errorf("handled %d messages, want 1: Close must discard what the drain had pending", got)
			}
			cancel()
			recv(t, drained, "Drain to return")
		})
	}
}
