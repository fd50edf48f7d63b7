package heddle_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/worker"
)

// serveTestActor is ready as soon as it runs, serves until its context
// ends (or fails at once with fail), and then returns drainErr.
type serveTestActor struct {
	ready    chan struct{}
	fail     error
	drainErr error
	returned chan struct{}
}

func newServeTestActor() *serveTestActor {
	return &serveTestActor{ready: make(chan struct{}), returned: make(chan struct{})}
}

func (a *serveTestActor) Run(ctx context.Context) error {
	defer close(a.returned)
	close(a.ready)
	if a.fail != nil {
		return a.fail
	}
	<-ctx.Done()
	return a.drainErr
}

func (a *serveTestActor) Ready() <-chan struct{} { return a.ready }

// serveInBackground runs Serve on its own goroutine; the channel yields
// its error.
func serveInBackground(ctx context.Context, actors ...heddle.Actor) <-chan error {
	served := make(chan error, 1)
	go func() { served <- heddle.Serve(ctx, actors...) }()
	return served
}

// serveTestResult waits for Serve's error, failing the test if Serve is
// still running after a generous bound.
func serveTestResult(t *testing.T, served <-chan error) error {
	t.Helper()
	select {
	case err := <-served:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

// requireReturned fails the test unless every actor's Run has returned;
// Serve must not return before that.
func requireReturned(t *testing.T, actors ...*serveTestActor) {
	t.Helper()
	for i, a := range actors {
		select {
		case <-a.returned:
		default:
			t.Errorf("Serve returned while actor %d was still running", i)
		}
	}
}

func TestServeReturnsNilOnceItsContextEndsAndEveryActorHasDrained(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := newServeTestActor(), newServeTestActor()
	served := serveInBackground(ctx, a, b)
	<-a.Ready()
	<-b.Ready()
	cancel()
	if err := serveTestResult(t, served); err != nil {
		t.Fatalf("Serve = %v, want nil after a clean stop", err)
	}
	requireReturned(t, a, b)
}

func TestServeReturnsTheFirstActorErrorAndStopsTheOthers(t *testing.T) {
	failing, other := newServeTestActor(), newServeTestActor()
	failing.fail = fmt.Errorf("worker: %w: nats: connection closed", bus.ErrClosed)
	// Start may see the failure before every actor is ready, or after;
	// either way Serve returns it and the other actor is stopped.
	err := serveTestResult(t, serveInBackground(context.Background(), other, failing))
	if !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Serve = %v, want the failing actor's error wrapping bus.ErrClosed", err)
	}
	requireReturned(t, failing, other)
}

func TestServeReturnsTheErrorOfADrainCutShort(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow := newServeTestActor()
	slow.drainErr = fmt.Errorf("drain: %w", context.DeadlineExceeded)
	served := serveInBackground(ctx, slow)
	<-slow.Ready()
	cancel()
	if err := serveTestResult(t, served); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Serve = %v, want the drain's error", err)
	}
}

func TestServeReturnsNilWhenItsContextHasEndedBeforeTheActorsAreReady(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Never ready: Start gives up on it when ctx ends.
	neverReady := serveTestBlocked{}
	if err := serveTestResult(t, serveInBackground(ctx, neverReady)); err != nil {
		t.Fatalf("Serve = %v, want nil: the stop was asked for", err)
	}
}

// serveTestBlocked runs until its context ends and is never ready.
type serveTestBlocked struct{}

func (serveTestBlocked) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (serveTestBlocked) Ready() <-chan struct{}        { return nil }

func TestServeStopsTheActorsOnSIGINTOrSIGTERMAndReturnsNil(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("a process cannot send itself SIGINT or SIGTERM on Windows")
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			a := newServeTestActor()
			served := serveInBackground(context.Background(), a)
			// Serve listens for signals before it starts any actor, so
			// once one is ready the signal cannot kill the test process.
			<-a.Ready()
			self, err := os.FindProcess(os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			if err := self.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := serveTestResult(t, served); err != nil {
				t.Fatalf("Serve = %v, want nil after %v", err, sig)
			}
			requireReturned(t, a)
		})
	}
}

// The main of a process serving one worker over NATS until SIGINT or
// SIGTERM. It exits non-zero only when the bus closes for good or a drain
// is cut short, so that its supervisor restarts it.
func ExampleServe() {
	type GreetIn struct {
		Name string `json:"name"`
	}
	type GreetOut struct {
		Greeting string `json:"greeting"`
	}
	b, err := natsbus.Connect(natsbus.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	w, err := worker.New(b, "greeter", func(_ context.Context, in GreetIn) (GreetOut, error) {
		return GreetOut{Greeting: "Hello, " + in.Name + "!"}, nil
	}, worker.Config{})
	if err != nil {
		log.Fatal(err)
	}
	err = heddle.Serve(context.Background(), w)
	b.Close()
	if err != nil {
		log.Fatal(err)
	}
}
