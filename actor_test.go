package heddle_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

func TestStartReturnsOnceEveryActorIsReadyAndStopDrainsThem(t *testing.T) {
	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
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
	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
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
