package heddle

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Serve runs actors until the process gets SIGINT or SIGTERM, ctx ends or
// one of them fails, and returns once every actor has drained (each within
// its own drain timeout). It is the body of a main that serves actors:
//
//	if err := heddle.Serve(context.Background(), w); err != nil {
//		log.Fatal(err) // exit non-zero, so that a supervisor restarts the process
//	}
//
// Serve returns nil when a signal or the end of ctx stopped the actors and
// each drained completely. Otherwise it returns the first error an actor's
// Run returned: one wrapping bus.ErrClosed when the bus closed for good,
// one wrapping context.DeadlineExceeded when a drain was cut short, or the
// error that kept an actor from starting.
//
// The first signal starts the drain; a second one ends the process at once,
// as it would without Serve.
func Serve(ctx context.Context, actors ...Actor) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Once the drain has begun, the signals' default action comes back.
	defer context.AfterFunc(ctx, stop)()
	g, err := Start(ctx, actors...)
	if err != nil {
		if err == ctx.Err() {
			// Stopped before every actor was ready; the others drained.
			return nil
		}
		return err
	}
	return g.Wait()
}
