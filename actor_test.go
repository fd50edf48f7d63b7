package heddle_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/deadletter"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/orchestrator"
	"github.com/heddle-go/heddle/pipeline"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

func TestStartReturnsOnceEveryActorIsReadyAndStopDrainsThem(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		rt, err := router.New(connect(), router.Config{})
		if err != nil {
			t.Fatal(err)
		}
		wk, err := worker.New(connect(), "upper", flowUpper, worker.Config{})
		if err != nil {
			t.Fatal(err)
		}
		g, err := heddle.Start(ctx, rt, wk)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		// No waiting on Ready here: Start promised it.
		task := heddle.NewTaskMessage("upper", map[string]any{"text": "ready"})
		res, err := dispatch.Request(ctx, connect(), task, dispatch.Timeout(10*time.Second))
		if err != nil || res.Output["upper"] != "READY" {
			t.Fatalf("DispatchAndWait = %+v, %v", res, err)
		}
		if err := g.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	})
}

// actorTestBroken is an actor whose Run fails before it is ready, as a
// Run whose subscription the bus refuses does.
type actorTestBroken struct{ err error }

func (a actorTestBroken) Run(context.Context) error { return a.err }
func (a actorTestBroken) Ready() <-chan struct{}    { return nil }

// actorTestWatched reports when the actor's Run has returned.
type actorTestWatched struct {
	heddle.Actor
	returned chan error
}

func (a *actorTestWatched) Run(ctx context.Context) error {
	err := a.Actor.Run(ctx)
	a.returned <- err
	return err
}

func TestStartFailsAndStopsTheOthersWhenAnActorCannotRun(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		rt, err := router.New(connect(), router.Config{})
		if err != nil {
			t.Fatal(err)
		}
		broken := errors.New("subscription refused")
		watched := &actorTestWatched{Actor: rt, returned: make(chan error, 1)}
		g, err := heddle.Start(ctx, watched, actorTestBroken{err: broken})
		if !errors.Is(err, broken) || g != nil {
			t.Fatalf("Start = group %v, %v; want the actor's error and no group", g != nil, err)
		}
		// The router was stopped, and its Run had returned, before Start
		// did (with nil or the cancelled subscribe: it may be cut short).
		select {
		case err := <-watched.returned:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("router Run = %v, want nil or context.Canceled", err)
			}
		default:
			t.Fatal("Start returned while the router was still running")
		}
	})
}

func TestEveryActorsRunReturnsErrClosedWhenItsBusCloses(t *testing.T) {
	quiet := heddle.WithLogger(slog.New(slog.DiscardHandler))
	actors := []struct {
		name string
		make func(t *testing.T, b bus.Bus) heddle.Actor
	}{
		{"router", func(t *testing.T, b bus.Bus) heddle.Actor {
			a, err := router.New(b, router.Config{}, quiet)
			must(t, err)
			return a
		}},
		{"worker", func(t *testing.T, b bus.Bus) heddle.Actor {
			a, err := worker.New(b, "upper", flowUpper, worker.Config{}, quiet)
			must(t, err)
			return a
		}},
		{"orchestrator", func(t *testing.T, b bus.Bus) heddle.Actor {
			a, err := orchestrator.New(b, orchestrator.Config{
				Decompose: func(context.Context, heddle.OrchestratorGoal) ([]heddle.TaskMessage, error) { return nil, nil },
			}, quiet)
			must(t, err)
			return a
		}},
		{"pipeline", func(t *testing.T, b bus.Bus) heddle.Actor {
			a, err := pipeline.New(b, pipeline.Config{Name: "p", Stages: []pipeline.Stage{{Name: "s", WorkerType: "upper"}}}, quiet)
			must(t, err)
			return a
		}},
		{"dead-letter consumer", func(t *testing.T, b bus.Bus) heddle.Actor {
			a, err := deadletter.New(b, deadletter.Config{}, quiet)
			must(t, err)
			return a
		}},
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		for _, tt := range actors {
			t.Run(tt.name, func(t *testing.T) {
				b := connect()
				g, err := heddle.Start(t.Context(), tt.make(t, b))
				if err != nil {
					t.Fatal(err)
				}
				// The bus closes under the actor, as when NATS gives up
				// reconnecting; nobody cancels the actor's context.
				if err := b.Close(); err != nil {
					t.Fatal(err)
				}
				select {
				case <-g.Done():
				case <-time.After(20 * time.Second):
					t.Fatal("the actor kept running on a closed bus")
				}
				if err := g.Wait(); !errors.Is(err, bus.ErrClosed) {
					t.Fatalf("Wait = %v, want an error wrapping bus.ErrClosed", err)
				}
			})
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
