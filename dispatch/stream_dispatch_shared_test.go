package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
)

// recordingBus records the Subscribe, Publish and Unsubscribe calls made
// through it, in order. It does not implement bus.Keeper, even when the
// bus it wraps does.
type recordingBus struct {
	bus.Bus
	mu           sync.Mutex
	calls        []string
	unsubscribed chan string // receives each unsubscribed subject
}

func newRecordingBus(b bus.Bus) *recordingBus {
	return &recordingBus{Bus: b, unsubscribed: make(chan string, 64)}
}

func (r *recordingBus) record(call string) {
	r.mu.Lock()
	r.calls = append(r.calls, call)
	r.mu.Unlock()
}

func (r *recordingBus) recorded() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// count returns how many recorded calls are call.
func (r *recordingBus) count(call string) int {
	n := 0
	for _, c := range r.recorded() {
		if c == call {
			n++
		}
	}
	return n
}

func (r *recordingBus) Subscribe(ctx context.Context, subject string, h bus.Handler, opts ...bus.SubscribeOption) (bus.Subscription, error) {
	sub, err := r.Bus.Subscribe(ctx, subject, h, opts...)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(subject, "_INBOX.") {
		// A Caller's status inbox goes with its result subscription; the
		// tests count the result subscriptions.
		return sub, nil
	}
	r.record("subscribe " + subject)
	return &recordingSub{Subscription: sub, r: r}, nil
}

func (r *recordingBus) Publish(ctx context.Context, m *bus.Msg) error {
	r.record("publish " + m.Subject)
	return r.Bus.Publish(ctx, m)
}

type recordingSub struct {
	bus.Subscription
	r *recordingBus
}

func (s *recordingSub) Unsubscribe() error {
	err := s.Subscription.Unsubscribe()
	s.r.record("unsubscribe " + s.Subject())
	s.r.unsubscribed <- s.Subject()
	return err
}

// keepingBus is a recordingBus that implements bus.Keeper.
type keepingBus struct {
	*recordingBus
	bus.Values
}

// dispatchEcho serves workerType on conn with echo results.
func dispatchEcho(t *testing.T, conn bus.Bus, workerType string) {
	t.Helper()
	testkit.Responder(t, conn, workerType, "", func(task heddle.TaskMessage) [][]byte {
		return [][]byte{testkit.Encode(t, testkit.Echo(task))}
	})
}

// dispatchEchoCall makes one DispatchAndWait call to an echo worker and
// fails the test unless the task's own result comes back.
func dispatchEchoCall(t *testing.T, b bus.Bus, workerType string, opts ...dispatch.Option) {
	t.Helper()
	task := heddle.NewTaskMessage(workerType, map[string]any{"text": "hi"})
	res, err := dispatch.Request(testkit.Context(t), b, task,
		append([]dispatch.Option{dispatch.Direct(), dispatch.Timeout(testkit.Wait)}, opts...)...)
	if err != nil || res.TaskID != task.TaskID || res.Status != heddle.StatusCompleted {
		t.Fatalf("DispatchAndWait = %+v, %v; want the completed result of %s", res, err, task.TaskID)
	}
}

func TestDispatchAndWaitSharesASubscriptionPerBus(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wk := connect()
		dispatchEcho(t, wk, "shared_echo")

		t.Run("calls one after another share one subscription, made before the first publish", func(t *testing.T) {
			kb := &keepingBus{recordingBus: newRecordingBus(connect())}
			for range 50 {
				dispatchEchoCall(t, kb, "shared_echo")
			}
			calls := kb.recorded()
			if len(calls) != 51 || calls[0] != "subscribe "+heddle.SubjectResultsDefault ||
				kb.count("publish heddle.tasks.shared_echo.standard") != 50 {
				t.Fatalf("bus calls %q; want one subscribe to %s, then the 50 publishes", calls, heddle.SubjectResultsDefault)
			}
		})

		t.Run("concurrent calls each get their own result and one subscription stays", func(t *testing.T) {
			kb := &keepingBus{recordingBus: newRecordingBus(connect())}
			var wg sync.WaitGroup
			for range 10 {
				wg.Go(func() {
					for range 10 {
						dispatchEchoCall(t, kb, "shared_echo")
					}
				})
			}
			wg.Wait()
			sub, unsub := kb.count("subscribe "+heddle.SubjectResultsDefault), kb.count("unsubscribe "+heddle.SubjectResultsDefault)
			if sub < 1 || sub-unsub != 1 {
				t.Fatalf("%d subscribes and %d unsubscribes; want exactly one subscription left: %q", sub, unsub, kb.recorded())
			}
		})

		t.Run("the subscription ends a linger after the last call, and the next call subscribes again", func(t *testing.T) {
			kb := &keepingBus{recordingBus: newRecordingBus(connect())}
			dispatchEchoCall(t, kb, "shared_echo")
			returned := time.Now()
			select {
			case subject := <-kb.unsubscribed:
				if subject != heddle.SubjectResultsDefault {
					t.Fatalf("unsubscribed from %s, want %s", subject, heddle.SubjectResultsDefault)
				}
			case <-time.After(dispatch.Linger + testkit.Wait):
				t.Fatalf("the subscription was still there %s after the last call", dispatch.Linger+testkit.Wait)
			}
			if idle := time.Since(returned); idle < dispatch.Linger {
				t.Fatalf("unsubscribed after %s idle, before the linger (%s)", idle, dispatch.Linger)
			}
			dispatchEchoCall(t, kb, "shared_echo")
			if n := kb.count("subscribe " + heddle.SubjectResultsDefault); n != 2 {
				t.Fatalf("%d subscribes, want 2: %q", n, kb.recorded())
			}
		})

		t.Run("at most the idle bound of unused subscriptions are kept, the oldest ending first", func(t *testing.T) {
			kb := &keepingBus{recordingBus: newRecordingBus(connect())}
			call := func(parent string) {
				t.Helper()
				task := heddle.NewTaskMessage("shared_echo", nil)
				task.ParentTaskID = parent
				res, err := dispatch.Request(testkit.Context(t), kb, task, dispatch.Direct(), dispatch.Timeout(testkit.Wait))
				if err != nil || res.TaskID != task.TaskID {
					t.Fatalf("DispatchAndWait = %+v, %v; want the result of %s", res, err, task.TaskID)
				}
			}
			parents := make([]string, dispatch.MaxIdle+1)
			for i := range parents {
				parents[i] = fmt.Sprintf("goal-%d", i)
				call(parents[i])
			}
			// The last call's return ended the oldest idle subscription.
			oldest := heddle.ResultSubject(parents[0])
			if n, m := kb.count("unsubscribe "+oldest), len(kb.unsubscribed); n != 1 || m != 1 {
				t.Fatalf("%d unsubscribes from %s and %d in all, want 1 and 1: %q", n, oldest, m, kb.recorded())
			}
			call(parents[1])
			if n := kb.count("subscribe " + heddle.ResultSubject(parents[1])); n != 1 {
				t.Fatalf("%d subscribes to %s, want 1: an idle subscription is reused", n, heddle.ResultSubject(parents[1]))
			}
		})

		t.Run("calls with different loggers share the subscription, and each logger sees its own calls", func(t *testing.T) {
			kb := &keepingBus{recordingBus: newRecordingBus(connect())}
			recA, recB := testlog.New(), testlog.New()
			// A logger made for each call, as logger.With(...) makes one.
			dispatchEchoCall(t, kb, "shared_echo", dispatch.With(heddle.WithLogger(recA.Logger())))
			dispatchEchoCall(t, kb, "shared_echo", dispatch.With(heddle.WithLogger(recB.Logger())))
			dispatchEchoCall(t, kb, "shared_echo", dispatch.With(heddle.WithLogger(recA.Logger())))
			if n := kb.count("subscribe " + heddle.SubjectResultsDefault); n != 1 {
				t.Fatalf("%d subscribes, want 1: %q", n, kb.recorded())
			}
			if a, b := len(recA.All("result_stream.collected")), len(recB.All("result_stream.collected")); a != 2 || b != 1 {
				t.Fatalf("collected events: %d on the first logger, %d on the second; want 2 and 1", a, b)
			}
		})

		t.Run("a malformed result is a parse_error on the waiting call's logger, and the valid one is returned", func(t *testing.T) {
			testkit.Responder(t, wk, "garbled_first", "", func(task heddle.TaskMessage) [][]byte {
				return [][]byte{[]byte(`{"task_id": 42, "status": `), testkit.Encode(t, testkit.Echo(task))}
			})
			caller := connect()
			dispatchEchoCall(t, caller, "shared_echo") // another logger's call made the subscription
			rec := testlog.New()
			dispatchEchoCall(t, caller, "garbled_first", dispatch.With(heddle.WithLogger(rec.Logger())))
			if got := rec.All("result_stream.parse_error"); len(got) != 1 || got[0].Str("error") == "" {
				t.Fatalf("parse_error events %+v, want one with its error", got)
			}
		})

		t.Run("while a call waits, another for its task_id is refused, and a result after a call timed out is late", func(t *testing.T) {
			caller := connect()
			rec := testlog.New()
			spy := newStreamSpy(t, wk, "heddle.tasks.holder.>")
			holder := heddle.NewTaskMessage("holder", nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := dispatch.Request(ctx, caller, holder, dispatch.Direct(),
					dispatch.Timeout(testkit.Wait), dispatch.With(heddle.WithLogger(rec.Logger())))
				done <- err
			}()
			// The task is published after the call began waiting for it,
			// and the waiting call keeps the subscription.
			select {
			case <-spy.msgs:
			case <-testkit.Context(t).Done():
				t.Fatal("the holding call never published its task")
			}
			res, err := dispatch.Request(testkit.Context(t), caller, holder, dispatch.Direct(),
				dispatch.Timeout(testkit.Wait), dispatch.With(heddle.WithLogger(rec.Logger())))
			if res != nil || !errors.Is(err, dispatch.ErrDuplicateTaskID) || !strings.Contains(err.Error(), holder.TaskID) {
				t.Fatalf("second call for the waited-for task = %v, %v; want ErrDuplicateTaskID naming it", res, err)
			}

			// A worker that takes the task and never answers.
			testkit.Responder(t, wk, "silent_late", "", func(heddle.TaskMessage) [][]byte { return nil })
			task := heddle.NewTaskMessage("silent_late", nil)
			res, err = dispatch.Request(testkit.Context(t), caller, task, dispatch.Direct(),
				dispatch.Timeout(testkit.ShortTimeout), dispatch.With(heddle.WithLogger(rec.Logger())))
			var te *dispatch.TimeoutError
			if res != nil || !errors.As(err, &te) {
				t.Fatalf("call to a silent worker = %v, %v; want a timeout", res, err)
			}
			if err := wk.Publish(testkit.Context(t), &bus.Msg{Subject: heddle.SubjectResultsDefault,
				Data: testkit.Encode(t, testkit.Echo(task))}); err != nil {
				t.Fatal(err)
			}
			if late := rec.WaitFor(t, "result_stream.late", task.TaskID, 1); len(late) != 1 {
				t.Fatalf("late events %+v, want one", late)
			}
			if got := rec.Events("result_stream.collected", task.TaskID); len(got) != 0 {
				t.Fatalf("the late result was collected: %+v", got)
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("holding call ended with %v, want context.Canceled", err)
			}
		})

		t.Run("a task can be waited for again after its call timed out", func(t *testing.T) {
			// "second_time" answers a task the second time it gets it.
			var mu sync.Mutex
			seen := map[string]int{}
			testkit.Responder(t, wk, "second_time", "", func(task heddle.TaskMessage) [][]byte {
				mu.Lock()
				defer mu.Unlock()
				if seen[task.TaskID]++; seen[task.TaskID] < 2 {
					return nil
				}
				return [][]byte{testkit.Encode(t, testkit.Echo(task))}
			})
			caller := connect()
			rec := testlog.New()
			task := heddle.NewTaskMessage("second_time", nil)
			res, err := dispatch.Request(testkit.Context(t), caller, task, dispatch.Direct(),
				dispatch.Timeout(testkit.ShortTimeout), dispatch.With(heddle.WithLogger(rec.Logger())))
			var te *dispatch.TimeoutError
			if res != nil || !errors.As(err, &te) || !slices.Equal(te.PendingTaskIDs, []string{task.TaskID}) {
				t.Fatalf("first call = %v, %v; want a timeout naming the task", res, err)
			}
			res, err = dispatch.Request(testkit.Context(t), caller, task, dispatch.Direct(),
				dispatch.Timeout(testkit.Wait), dispatch.With(heddle.WithLogger(rec.Logger())))
			if err != nil || res.TaskID != task.TaskID {
				t.Fatalf("second call = %v, %v; want the result", res, err)
			}
			// A repeat of a collected result is a duplicate.
			if err := wk.Publish(testkit.Context(t), &bus.Msg{Subject: heddle.SubjectResultsDefault,
				Data: testkit.Encode(t, testkit.Echo(task))}); err != nil {
				t.Fatal(err)
			}
			rec.WaitFor(t, "result_stream.duplicate", task.TaskID, 1)
			if n := len(rec.Events("result_stream.collected", task.TaskID)); n != 1 {
				t.Fatalf("%d collected events for the task, want 1", n)
			}
		})

		t.Run("on a bus without bus.Keeper each call subscribes first and unsubscribes before it returns", func(t *testing.T) {
			rb := newRecordingBus(connect())
			var want []string
			for range 3 {
				dispatchEchoCall(t, rb, "shared_echo")
				want = append(want, "subscribe "+heddle.SubjectResultsDefault, "publish heddle.tasks.shared_echo.standard",
					"unsubscribe "+heddle.SubjectResultsDefault)
			}
			if got := rb.recorded(); !slices.Equal(got, want) {
				t.Fatalf("bus calls %q, want %q", got, want)
			}
		})

		t.Run("after the bus closes a call fails with bus.ErrClosed", func(t *testing.T) {
			caller := connect()
			dispatchEchoCall(t, caller, "shared_echo")
			if err := caller.Close(); err != nil {
				t.Fatal(err)
			}
			res, err := dispatch.Request(testkit.Context(t), caller, heddle.NewTaskMessage("shared_echo", nil),
				dispatch.Direct(), dispatch.Timeout(testkit.Wait))
			if res != nil || !errors.Is(err, bus.ErrClosed) {
				t.Fatalf("DispatchAndWait on a closed bus = %v, %v; want bus.ErrClosed", res, err)
			}
		})
	})
}
