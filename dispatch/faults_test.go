package dispatch_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/membus"
)

// returns runs call on a goroutine of its own and returns what it
// returned. It fails the test if call never returns, or if its goroutine
// ends without call returning (a runtime.Goexit that got through).
func returns[T any](t *testing.T, call func() (T, error)) (T, error) {
	t.Helper()
	type out struct {
		v   T
		err error
	}
	got := make(chan out, 1)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		v, err := call()
		got <- out{v, err}
	}()
	select {
	case <-ended:
	case <-time.After(testkit.Wait):
		t.Fatal("the call did not return")
	}
	select {
	case o := <-got:
		return o.v, o.err
	default:
		t.Fatal("the call's goroutine ended and the call never returned")
		var zero T
		return zero, nil
	}
}

// misbehaving returns an observer that calls misbehave on every
// result_stream.* event.
func misbehaving(misbehave func()) heddle.Option {
	return heddle.WithObserver(event.ObserverFunc(func(_ context.Context, e event.Event) {
		if strings.HasPrefix(e.Name, "result_stream.") {
			misbehave()
		}
	}))
}

func TestAnObserverCannotKeepACallFromReturning(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wk := connect()
		dispatchEcho(t, wk, "observed_echo")
		testkit.Responder(t, wk, "observed_silent", "", func(heddle.TaskMessage) [][]byte { return nil })
		for _, tc := range []struct {
			name      string
			misbehave func()
		}{
			{"panics", func() { panic("observer bug") }},
			{"calls runtime.Goexit", runtime.Goexit},
		} {
			t.Run("an observer that "+tc.name, func(t *testing.T) {
				b := connect()
				ctx := testkit.Context(t)
				obs := misbehaving(tc.misbehave)
				echo := func(i int) heddle.TaskMessage {
					return heddle.NewTaskMessage("observed_echo", map[string]any{"i": i})
				}

				// result_stream.collected, on the delivery goroutine of the
				// subscription the calls share: the second call proves it
				// still delivers.
				for i := range 2 {
					task := echo(i)
					res, err := returns(t, func() (*heddle.TaskResult, error) {
						return dispatch.Request(ctx, b, task, dispatch.Direct(), dispatch.Timeout(testkit.Wait), dispatch.With(obs))
					})
					if err != nil || res.TaskID != task.TaskID {
						t.Fatalf("Request %d = %+v, %v; want its result", i, res, err)
					}
				}
				// result_stream.timeout, on the calling goroutine.
				_, err := returns(t, func() (*heddle.TaskResult, error) {
					return dispatch.Request(ctx, b, heddle.NewTaskMessage("observed_silent", nil), dispatch.Direct(),
						dispatch.Timeout(testkit.ShortTimeout), dispatch.With(obs))
				})
				if !errors.Is(err, dispatch.ErrTimeout) {
					t.Fatalf("Request to a silent worker = %v, want a timeout", err)
				}

				c, err := dispatch.NewCaller(ctx, b, heddle.SubjectResultsDefault, dispatch.With(obs))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				for i := range 2 {
					task := echo(10 + i)
					res, err := returns(t, func() (*heddle.TaskResult, error) {
						return c.Request(ctx, task, dispatch.Direct(), dispatch.Timeout(testkit.Wait))
					})
					if err != nil || res.TaskID != task.TaskID {
						t.Fatalf("Caller.Request %d = %+v, %v; want its result", i, res, err)
					}
				}

				s, err := dispatch.NewStream(ctx, b, heddle.SubjectResultsDefault, dispatch.Direct(), dispatch.Timeout(testkit.Wait), dispatch.With(obs))
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if err := s.Dispatch(ctx, echo(20), echo(21)); err != nil {
					t.Fatal(err)
				}
				results, err := returns(t, func() ([]heddle.TaskResult, error) { return s.Collect(ctx) })
				if err != nil || len(results) != 2 {
					t.Fatalf("Stream.Collect = %d results, %v; want both", len(results), err)
				}
			})
		}
	})
}

// anyTaskIDs are task_ids heddle.TaskMessage.Validate accepts and the
// Python Heddle sends, none of which could be a subject token.
var anyTaskIDs = []string{"order 42", "a..b", ">", "*", "tab\there", "line\nbreak", ".lead", "trail.", "ünïcödé 任务", "_INBOX.x.>"}

func TestAnyValidTaskIDCanBeDispatched(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		wk := connect()
		dispatchEcho(t, wk, "any_id")
		// A stand-in for the router, answering on heddle.tasks.incoming.
		if _, err := wk.Subscribe(t.Context(), heddle.SubjectTasksIncoming, func(ctx context.Context, m *bus.Msg) error {
			task, err := heddle.DecodeTaskMessage(m.Data)
			if err != nil {
				return err
			}
			return wk.Publish(ctx, &bus.Msg{Subject: task.ResultSubject(), Data: testkit.Encode(t, testkit.Echo(task))})
		}); err != nil {
			t.Fatal(err)
		}
		b := connect()
		ctx := testkit.Context(t)
		// A Caller refuses a task_id it saw: each call gets one of its own.
		callerRequest := func(task heddle.TaskMessage, opts ...dispatch.Option) (*heddle.TaskResult, error) {
			c, err := dispatch.NewCaller(ctx, b, heddle.SubjectResultsDefault)
			if err != nil {
				return nil, err
			}
			defer c.Close()
			return c.Request(ctx, task, opts...)
		}
		for _, id := range anyTaskIDs {
			t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
				for _, way := range []struct {
					name string
					call func(heddle.TaskMessage, ...dispatch.Option) (*heddle.TaskResult, error)
				}{
					{"Request", func(task heddle.TaskMessage, opts ...dispatch.Option) (*heddle.TaskResult, error) {
						return dispatch.Request(ctx, b, task, opts...)
					}},
					{"Caller.Request", callerRequest},
				} {
					for _, direct := range []bool{false, true} {
						task := heddle.NewTaskMessage("any_id", map[string]any{"text": "hi"})
						task.TaskID = id
						if err := task.Validate(); err != nil {
							t.Fatalf("Validate refuses %q: %v", id, err)
						}
						opts := []dispatch.Option{dispatch.Timeout(testkit.Wait)}
						if direct {
							opts = append(opts, dispatch.Direct())
						}
						res, err := way.call(task, opts...)
						if err != nil || res.TaskID != id || res.Status != heddle.StatusCompleted {
							t.Errorf("%s (Direct %v) = %+v, %v; want its result", way.name, direct, res, err)
						}
					}
					// The bus's no-responders report reaches the call too.
					task := heddle.NewTaskMessage("nobody_serves", nil)
					task.TaskID = id
					if _, err := way.call(task, dispatch.Direct(), dispatch.Timeout(time.Minute)); !errors.Is(err, dispatch.ErrNoWorker) {
						t.Errorf("%s to nobody = %v, want ErrNoWorker", way.name, err)
					}
				}
			})
		}
	})
}

func TestAResultRepeatingItsTaskIDUnderAnEscapedKeyIsCollected(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		// The last task_id counts, as in encoding/json and Python: this
		// result is the task's, although it starts with another task_id.
		testkit.Responder(t, connect(), "escaped_id", "", func(task heddle.TaskMessage) [][]byte {
			data := testkit.Encode(t, testkit.Echo(task))
			first := []byte(`{"task_id":"` + task.TaskID + `"`)
			if !bytes.HasPrefix(data, first) {
				t.Errorf("the result does not start with its task_id: %s", data)
			}
			data = append([]byte(`{"task_id":"someone-else"`), data[len(first):len(data)-1]...)
			data = append(data, `,"task\u005fid":"`+task.TaskID+`"}`...)
			if res, err := heddle.DecodeTaskResult(data); err != nil || res.TaskID != task.TaskID {
				t.Errorf("the crafted result decodes as %q, %v; want task %s", res.TaskID, err, task.TaskID)
			}
			return [][]byte{data}
		})
		ctx := testkit.Context(t)
		c, err := dispatch.NewCaller(ctx, connect(), heddle.SubjectResultsDefault)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		task := heddle.NewTaskMessage("escaped_id", nil)
		res, err := c.Request(ctx, task, dispatch.Direct(), dispatch.Timeout(testkit.Wait))
		if err != nil || res.TaskID != task.TaskID {
			t.Fatalf("Request = %+v, %v; want its result", res, err)
		}
		if st := c.Stats(); st != (dispatch.StreamStats{Collected: 1}) {
			t.Fatalf("stats %+v, want the result collected and nothing ignored", st)
		}
	})
}

func TestEveryWaitEndsWhenTheBusCloses(t *testing.T) {
	type echoIn struct {
		Text string `json:"text"`
	}
	for _, tc := range []struct {
		name string
		wait func(ctx context.Context, b bus.Bus) error
	}{
		{"Request", func(ctx context.Context, b bus.Bus) error {
			_, err := dispatch.Request(ctx, b, heddle.NewTaskMessage("closing_silent", nil), dispatch.Direct(), dispatch.Timeout(time.Minute))
			return err
		}},
		{"Caller.Request", func(ctx context.Context, b bus.Bus) error {
			c, err := dispatch.NewCaller(ctx, b, heddle.SubjectResultsDefault)
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Request(ctx, heddle.NewTaskMessage("closing_silent", nil), dispatch.Direct(), dispatch.Timeout(time.Minute))
			return err
		}},
		{"Call", func(ctx context.Context, b bus.Bus) error {
			_, err := dispatch.Call[echoIn, echoIn](ctx, b, "closing_silent", echoIn{"hi"}, dispatch.Direct(), dispatch.Timeout(time.Minute))
			return err
		}},
		{"Stream.Collect", func(ctx context.Context, b bus.Bus) error {
			s, err := dispatch.NewStream(ctx, b, heddle.SubjectResultsDefault, dispatch.Direct(), dispatch.Timeout(time.Minute))
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.Dispatch(ctx, heddle.NewTaskMessage("closing_silent", nil)); err != nil {
				return err
			}
			_, err = s.Collect(ctx)
			return err
		}},
		{"SubmitGoal", func(ctx context.Context, b bus.Bus) error {
			_, err := dispatch.SubmitGoal(ctx, b, heddle.NewOrchestratorGoal("never answered", nil), dispatch.Timeout(time.Minute))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broker := membus.New()
			defer broker.Close()
			caller := broker.Connect()
			defer caller.Close()
			// Something takes the task or goal and never answers.
			seen, _ := testkit.Subscribe(t, broker, "heddle.*.>")
			ctx := testkit.Context(t)
			done := make(chan error, 1)
			go func() { done <- tc.wait(ctx, caller) }()
			testkit.Recv(t, seen, "the task")
			if err := caller.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if !errors.Is(err, bus.ErrClosed) {
					t.Fatalf("%s = %v, want an error wrapping bus.ErrClosed", tc.name, err)
				}
			case <-time.After(testkit.Wait):
				t.Fatalf("%s did not return when its bus closed", tc.name)
			}
		})
	}
}
