package dispatch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

type tieredIn struct {
	Text string `json:"text"`
}

// tieredOut is what the worker saw of the task besides its payload.
type tieredOut struct {
	Tier     string         `json:"tier"`
	Priority string         `json:"priority"`
	Metadata map[string]any `json:"metadata"`
}

func TestTypedCallsCarryTheirTierPriorityAndMetadataToTheWorker(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		// The worker serves the frontier tier only, and reports what the
		// task it got says.
		w, err := worker.New(connect(), "tiered", func(ctx context.Context, _ tieredIn) (tieredOut, error) {
			task, _ := worker.TaskFromContext(ctx)
			return tieredOut{Tier: string(task.ModelTier), Priority: string(task.Priority), Metadata: task.Metadata}, nil
		}, worker.Config{Tiers: []heddle.ModelTier{heddle.TierFrontier}})
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, w.Run, w.Ready())
		rt, err := router.New(connect(), router.Config{})
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, rt.Run, rt.Ready())
		b := connect()
		ctx := testkit.Context(t)
		task := []dispatch.Option{dispatch.Tier(heddle.TierFrontier), dispatch.Priority(heddle.PriorityHigh),
			dispatch.Metadata(map[string]any{"tenant": "acme"}), dispatch.Timeout(testkit.Wait)}
		check := func(t *testing.T, out tieredOut, err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			if out.Tier != "frontier" || out.Priority != "high" || out.Metadata["tenant"] != "acme" {
				t.Errorf("the worker saw tier %q, priority %q, metadata %v; want frontier, high and tenant=acme", out.Tier, out.Priority, out.Metadata)
			}
		}

		t.Run("Call through the router", func(t *testing.T) {
			out, err := dispatch.Call[tieredIn, tieredOut](ctx, b, "tiered", tieredIn{"a"}, task...)
			check(t, out, err)
		})
		t.Run("Call straight to the tier's subject", func(t *testing.T) {
			out, err := dispatch.Call[tieredIn, tieredOut](ctx, b, "tiered", tieredIn{"a"}, append(task, dispatch.Direct())...)
			check(t, out, err)
		})
		t.Run("CallWith", func(t *testing.T) {
			c, err := dispatch.NewCaller(ctx, b, heddle.SubjectResultsDefault)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			out, err := dispatch.CallWith[tieredIn, tieredOut](ctx, c, "tiered", tieredIn{"a"}, task...)
			check(t, out, err)
		})
		t.Run("CallAll", func(t *testing.T) {
			outs, err := dispatch.CallAll[tieredIn, tieredOut](ctx, b, "tiered", []tieredIn{{"a"}, {"b"}}, append(task, dispatch.MaxInFlight(1))...)
			if err != nil {
				t.Fatal(err)
			}
			for _, out := range outs {
				check(t, out, nil)
			}
		})
		t.Run("without the tier the task goes to the standard tier, which nothing serves", func(t *testing.T) {
			_, err := dispatch.Call[tieredIn, tieredOut](ctx, b, "tiered", tieredIn{"a"}, dispatch.Direct(), dispatch.Timeout(testkit.Wait))
			if !errors.Is(err, dispatch.ErrNoWorker) || !strings.Contains(err.Error(), "heddle.tasks.tiered.standard") {
				t.Fatalf("Call = %v, want dispatch.ErrNoWorker naming heddle.tasks.tiered.standard", err)
			}
		})
	})
}

func TestRequestTakesTheTaskOptionsWithoutChangingTheCallersTask(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		received := make(chan heddle.TaskMessage, 2)
		testkit.Responder(t, connect(), "seen", "", func(task heddle.TaskMessage) [][]byte {
			received <- task
			return [][]byte{testkit.Encode(t, testkit.Echo(task))}
		})
		b := connect()
		ctx := testkit.Context(t)
		mine := map[string]any{"tenant": "acme", "trace": "t-1"}
		task := heddle.NewTaskMessage("seen", nil)
		task.Metadata = mine
		opts := []dispatch.Option{dispatch.Direct(), dispatch.Timeout(testkit.Wait), dispatch.Tier(heddle.TierLocal),
			dispatch.Priority(heddle.PriorityCritical), dispatch.Metadata(map[string]any{"trace": "t-2", "stage": "one"})}
		check := func(t *testing.T, got heddle.TaskMessage) {
			t.Helper()
			if got.ModelTier != heddle.TierLocal || got.Priority != heddle.PriorityCritical {
				t.Errorf("the worker got tier %s, priority %s; want local, critical", got.ModelTier, got.Priority)
			}
			if got.Metadata["tenant"] != "acme" || got.Metadata["trace"] != "t-2" || got.Metadata["stage"] != "one" {
				t.Errorf("the worker got metadata %v; want the task's, with the option's keys replacing or added", got.Metadata)
			}
		}
		if _, err := dispatch.Request(ctx, b, task, opts...); err != nil {
			t.Fatal(err)
		}
		check(t, <-received)
		c, err := dispatch.NewCaller(ctx, b, heddle.SubjectResultsDefault)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		task.TaskID = "second"
		if _, err := c.Request(ctx, task, opts...); err != nil {
			t.Fatal(err)
		}
		check(t, <-received)
		if len(mine) != 2 || mine["trace"] != "t-1" || task.ModelTier != heddle.DefaultModelTier {
			t.Errorf("the caller's task changed: metadata %v, tier %s", mine, task.ModelTier)
		}
	})
}

func TestEveryEntryPointRefusesAnOptionThatDoesNotApplyOrCannotWork(t *testing.T) {
	contract, err := contracts.FromJSON([]byte(`{"type":"object"}`), []byte(`{"type":"object"}`))
	if err != nil {
		t.Fatal(err)
	}
	type io struct {
		N int `json:"n"`
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		b := connect()
		ctx := testkit.Context(t)
		spy, _ := testkit.Subscribe(t, connect(), ">")
		caller, err := dispatch.NewCaller(ctx, b, heddle.SubjectResultsDefault)
		if err != nil {
			t.Fatal(err)
		}
		defer caller.Close()
		task := func() heddle.TaskMessage { return heddle.NewTaskMessage("anyone", nil) }
		goal := heddle.NewOrchestratorGoal("anything", nil)
		tests := []struct {
			name string
			call func() error
			// want is in the error: the option and, for one that does
			// not apply, the entry point.
			want []string
		}{
			{"Request refuses MaxInFlight, which bounds many tasks", func() error {
				_, err := dispatch.Request(ctx, b, task(), dispatch.MaxInFlight(2))
				return err
			}, []string{"dispatch.MaxInFlight", "Request"}},
			{"Request refuses a negative timeout", func() error {
				_, err := dispatch.Request(ctx, b, task(), dispatch.Timeout(-time.Second))
				return err
			}, []string{"dispatch.Timeout(-1s)", "must not be negative"}},
			{"Caller.Request refuses To, which addresses goals", func() error {
				_, err := caller.Request(ctx, task(), dispatch.To("alpha"))
				return err
			}, []string{"dispatch.To", "Caller.Request"}},
			{"Call refuses Contract: it checks its types' own", func() error {
				_, err := dispatch.Call[io, io](ctx, b, "anyone", io{}, dispatch.Contract(contract))
				return err
			}, []string{"dispatch.Contract", "Call"}},
			{"Call refuses an unknown tier", func() error {
				_, err := dispatch.Call[io, io](ctx, b, "anyone", io{}, dispatch.Tier("gold"))
				return err
			}, []string{"dispatch.Tier", `"gold"`}},
			{"CallWith refuses an unknown priority", func() error {
				_, err := dispatch.CallWith[io, io](ctx, caller, "anyone", io{}, dispatch.Priority("urgent"))
				return err
			}, []string{"dispatch.Priority", `"urgent"`}},
			{"CallAll refuses a negative MaxInFlight before any call", func() error {
				outs, err := dispatch.CallAll[io, io](ctx, b, "anyone", []io{{}, {}}, dispatch.MaxInFlight(-1))
				if outs != nil {
					return errors.New("CallAll returned outputs")
				}
				return err
			}, []string{"dispatch.MaxInFlight(-1)"}},
			{"SubmitGoal refuses Direct, which is for tasks", func() error {
				_, err := dispatch.SubmitGoal(ctx, b, goal, dispatch.Direct())
				return err
			}, []string{"dispatch.Direct", "SubmitGoal"}},
			{"SubmitGoal refuses an empty name", func() error {
				_, err := dispatch.SubmitGoal(ctx, b, goal, dispatch.To(""))
				return err
			}, []string{`dispatch.To("")`}},
			{"SubmitGoal refuses a name that cannot be a subject token", func() error {
				_, err := dispatch.SubmitGoal(ctx, b, goal, dispatch.To("two words"))
				return err
			}, []string{`dispatch.To("two words")`, "heddle.goals.to.two words"}},
			{"NewStream refuses Tier: its tasks are given whole", func() error {
				_, err := dispatch.NewStream(ctx, b, heddle.SubjectResultsDefault, dispatch.Tier(heddle.TierLocal))
				return err
			}, []string{"dispatch.Tier", "NewStream"}},
			{"NewStream refuses a negative quorum", func() error {
				_, err := dispatch.NewStream(ctx, b, heddle.SubjectResultsDefault, dispatch.Quorum(-1))
				return err
			}, []string{"dispatch.Quorum(-1)"}},
			{"NewCaller refuses Timeout, which each of its calls takes", func() error {
				_, err := dispatch.NewCaller(ctx, b, heddle.SubjectResultsDefault, dispatch.Timeout(time.Second))
				return err
			}, []string{"dispatch.Timeout", "NewCaller"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := tt.call()
				if !errors.Is(err, heddle.ErrConfig) {
					t.Fatalf("error %v, want one matching heddle.ErrConfig", err)
				}
				for _, want := range tt.want {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
			})
		}
		// Nothing was published: a sentinel is the first message the spy
		// sees.
		testkit.Publish(t, b, "sentinel", []byte("{}"), nil)
		if m := testkit.Recv(t, spy, "the sentinel"); m.Subject != "sentinel" {
			t.Errorf("%s was published by a refused call", m.Subject)
		}
	})
}

func TestAContextDeadlineEndsAWaitWithATimeoutErrorNamingThePendingTasks(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		// A worker that takes every task and never answers.
		testkit.Responder(t, connect(), "mute", "", func(heddle.TaskMessage) [][]byte { return nil })
		b := connect()
		check := func(t *testing.T, err error, id string) {
			t.Helper()
			var te *dispatch.TimeoutError
			if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, dispatch.ErrTimeout) {
				t.Fatalf("error %v, want a *TimeoutError matching context.DeadlineExceeded and ErrTimeout", err)
			}
			if len(te.PendingTaskIDs) != 1 || te.PendingTaskIDs[0] != id || te.Timeout != time.Hour {
				t.Errorf("pending %v, timeout %s; want %s and the configured hour", te.PendingTaskIDs, te.Timeout, id)
			}
			if !strings.Contains(err.Error(), "context deadline exceeded") || !strings.Contains(err.Error(), id) {
				t.Errorf("error %q does not say the context's deadline ended the wait for %s", err, id)
			}
		}
		deadline := func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(context.Background(), testkit.ShortTimeout)
			t.Cleanup(cancel)
			return ctx
		}
		wait := []dispatch.Option{dispatch.Direct(), dispatch.Timeout(time.Hour)}

		t.Run("Request", func(t *testing.T) {
			task := heddle.NewTaskMessage("mute", nil)
			_, err := dispatch.Request(deadline(t), b, task, wait...)
			check(t, err, task.TaskID)
		})
		t.Run("Caller.Request", func(t *testing.T) {
			c, err := dispatch.NewCaller(testkit.Context(t), b, heddle.SubjectResultsDefault)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			task := heddle.NewTaskMessage("mute", nil)
			_, err = c.Request(deadline(t), task, wait...)
			check(t, err, task.TaskID)
			if st := c.Stats(); st.Timeouts != 0 {
				t.Errorf("Stats().Timeouts = %d: the caller's deadline is not the dispatch timeout", st.Timeouts)
			}
		})
		t.Run("Call", func(t *testing.T) {
			// The first typed call on b builds the pair's contract, which
			// can outlast ShortTimeout on a loaded machine before the task
			// is even published; a call with an ended context builds it
			// and publishes nothing.
			done, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := dispatch.Call[tieredIn, tieredOut](done, b, "mute", tieredIn{"a"}, wait...); !errors.Is(err, context.Canceled) {
				t.Fatalf("Call with an ended context = %v, want context.Canceled", err)
			}
			_, err := dispatch.Call[tieredIn, tieredOut](deadline(t), b, "mute", tieredIn{"a"}, wait...)
			var te *dispatch.TimeoutError
			if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) || len(te.PendingTaskIDs) != 1 {
				t.Fatalf("Call = %v, want a *TimeoutError naming the task, matching context.DeadlineExceeded", err)
			}
		})
		t.Run("a Stream, which goes on after it", func(t *testing.T) {
			s, err := dispatch.NewStream(testkit.Context(t), b, heddle.SubjectResultsDefault, wait...)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			task := heddle.NewTaskMessage("mute", nil)
			if err := s.Dispatch(testkit.Context(t), task); err != nil {
				t.Fatal(err)
			}
			_, err = s.Collect(deadline(t))
			check(t, err, task.TaskID)
			testkit.Publish(t, connect(), heddle.SubjectResultsDefault, testkit.Encode(t, testkit.Echo(task)), nil)
			results, err := s.Collect(testkit.Context(t))
			if err != nil || len(results) != 1 || results[0].TaskID != task.TaskID {
				t.Fatalf("Collect after the deadline = %v, %v; want the result", results, err)
			}
		})
		t.Run("SubmitGoal", func(t *testing.T) {
			subject, err := heddle.GoalSubject("mute")
			if err != nil {
				t.Fatal(err)
			}
			testkit.Subscribe(t, connect(), subject)
			goal := heddle.NewOrchestratorGoal("hello?", nil)
			_, err = dispatch.SubmitGoal(deadline(t), b, goal, dispatch.To("mute"), dispatch.Timeout(time.Hour))
			check(t, err, goal.GoalID)
		})
		t.Run("a cancelled context is not a deadline", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := dispatch.Request(ctx, b, heddle.NewTaskMessage("mute", nil), wait...)
				done <- err
			}()
			cancel()
			if err := <-done; err != context.Canceled {
				t.Fatalf("Request = %v, want context.Canceled itself", err)
			}
		})
	})
}
