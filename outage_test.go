package heddle_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// outageMaxWait bounds each wait of the outage tests; a working mesh
// needs a fraction of it.
const outageMaxWait = 10 * time.Second

// outageBus connects to srv with quick reconnect attempts, evenly spaced
// (no jitter), logging to rec; more options follow those. It is closed
// when the test ends.
func outageBus(t *testing.T, srv *natstest.RestartableServer, rec *testlog.Recorder, wait time.Duration, more ...natsbus.Option) *natsbus.Bus {
	t.Helper()
	opts := append([]natsbus.Option{
		natsbus.WithReconnectWait(wait),
		natsbus.WithNATSOptions(nats.ReconnectJitter(0, 0)),
		natsbus.WithLogger(rec.Logger()),
	}, more...)
	b, err := natsbus.Connect(srv.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// outageMesh starts a router and an "upper" worker, each on a bus of its
// own and in a group of its own, as two processes would run them, and
// checks that a task flows through them from caller.
func outageMesh(t *testing.T, ctx context.Context, routerBus, workerBus, caller bus.Bus) ([]*heddle.Group, []*actorTestWatched) {
	t.Helper()
	rt, err := router.New(routerBus, router.Config{})
	if err != nil {
		t.Fatal(err)
	}
	wk, err := worker.New(workerBus, "upper", flowUpper, worker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	watched := []*actorTestWatched{
		{Actor: rt, returned: make(chan error, 1)},
		{Actor: wk, returned: make(chan error, 1)},
	}
	var groups []*heddle.Group
	for _, a := range watched {
		g, err := heddle.Start(ctx, a)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		t.Cleanup(func() { _ = g.Stop() })
		groups = append(groups, g)
	}
	outageCall(t, ctx, caller, "before")
	return groups, watched
}

// outageCall sends one task through the mesh and checks its result.
func outageCall(t *testing.T, ctx context.Context, caller bus.Bus, text string) {
	t.Helper()
	task := heddle.NewTaskMessage("upper", map[string]any{"text": text})
	res, err := dispatch.Request(ctx, caller, task, dispatch.Timeout(outageMaxWait))
	if err != nil {
		t.Fatalf("a task %s the outage: %v", text, err)
	}
	if res.Status != heddle.StatusCompleted || res.Output["upper"] != strings.ToUpper(text) {
		t.Fatalf("a task %s the outage: got %+v", text, res)
	}
}

func outageWait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(outageMaxWait)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", outageMaxWait, what)
		panic("unreachable")
	}
}

func TestOutageLongerThanTheReconnectBudgetEndsEveryActorsRunWithErrClosed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*outageMaxWait)
	defer cancel()
	srv := natstest.StartRestartableServer(t, nil)
	rec := testlog.New()
	budget := natsbus.WithMaxReconnects(3)
	routerBus := outageBus(t, srv, rec, 20*time.Millisecond, budget)
	workerBus := outageBus(t, srv, rec, 20*time.Millisecond, budget)
	caller := outageBus(t, srv, rec, 20*time.Millisecond, budget)
	groups, watched := outageMesh(t, ctx, routerBus, workerBus, caller)

	srv.Stop()
	for _, b := range []*natsbus.Bus{routerBus, workerBus, caller} {
		outageWait(t, b.Done(), "the bus to close once its reconnect budget is spent")
		if err := b.Err(); !errors.Is(err, bus.ErrClosed) {
			t.Fatalf("the bus closed with Err() = %v, want an error wrapping bus.ErrClosed", err)
		}
	}
	for i, name := range []string{"router", "worker"} {
		err := outageWait(t, watched[i].returned, fmt.Sprintf("the %s's Run to return after its bus closed", name))
		if !errors.Is(err, bus.ErrClosed) {
			t.Errorf("the %s's Run returned %v, want an error wrapping bus.ErrClosed", name, err)
		}
		g := groups[i]
		outageWait(t, g.Done(), fmt.Sprintf("the %s's group to end", name))
		if err := g.Wait(); !errors.Is(err, bus.ErrClosed) {
			t.Errorf("the %s's Group.Wait() = %v, want an error wrapping bus.ErrClosed", name, err)
		}
	}
	if n := len(rec.All("bus.closed")); n != 3 {
		t.Fatalf("bus.closed logged %d times, want once per bus (3)", n)
	}
}

func TestOutageLongerThanNATSDefaultBudgetIsSurvivedAndReportedOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*outageMaxWait)
	defer cancel()
	srv := natstest.StartRestartableServer(t, nil)
	// nats.go's own default gives up after 60 attempts; the outage lasts
	// until the worker's bus has failed one more.
	const beyond = nats.DefaultMaxReconnect + 1
	var failed atomic.Int64
	pastBudget := make(chan struct{})
	countAttempts := natsbus.WithNATSOptions(nats.ReconnectErrHandler(func(*nats.Conn, error) {
		if failed.Add(1) == beyond {
			close(pastBudget)
		}
	}))
	const wait = 5 * time.Millisecond
	logs := []*testlog.Recorder{testlog.New(), testlog.New(), testlog.New()}
	routerBus := outageBus(t, srv, logs[0], wait)
	workerBus := outageBus(t, srv, logs[1], wait, countAttempts)
	caller := outageBus(t, srv, logs[2], wait)
	buses := []*natsbus.Bus{routerBus, workerBus, caller}
	groups, _ := outageMesh(t, ctx, routerBus, workerBus, caller)

	srv.Stop()
	outageWait(t, pastBudget, fmt.Sprintf("%d failed reconnect attempts", beyond))
	for i, b := range buses {
		if err := b.Err(); err != nil {
			t.Fatalf("bus %d closed during the outage: %v", i, err)
		}
	}
	srv.Start()
	for i, b := range buses {
		logs[i].Wait(t, "bus.reconnected", 1)
		// The bus sent its subscriptions again before it reported the
		// reconnect; a flush makes sure the server has them before the
		// caller publishes on another connection.
		if err := b.Flush(ctx); err != nil {
			t.Fatalf("bus %d after the outage: %v", i, err)
		}
	}
	outageCall(t, ctx, caller, "after")

	// The outage is one warning per bus, whatever the number of attempts;
	// nothing else the bus logs at warn level or above was logged.
	for i, rec := range logs {
		if loud := rec.Events("bus.disconnected", ""); len(loud) != 1 || loud[0].Level != slog.LevelWarn {
			t.Errorf("bus %d: bus.disconnected records %+v, want one at warn level", i, loud)
		}
		for _, name := range []string{"bus.closed", "bus.error", "bus.slow_consumer", "bus.handler_error", "bus.handler_panic"} {
			if n := len(rec.Events(name, "")); n != 0 {
				t.Errorf("bus %d: %s logged %d times", i, name, n)
			}
		}
	}
	for _, g := range groups {
		select {
		case <-g.Done():
			t.Fatalf("a group ended during the outage: %v", g.Err())
		default:
		}
		if err := g.Stop(); err != nil {
			t.Fatalf("Stop after the outage: %v", err)
		}
	}
}
