package heddle

import (
	"context"
	"errors"
	"sync"
)

// Actor is what Worker, Router, DeadLetterConsumer, Orchestrator and
// Pipeline have in common: Run serves until its context ends and returns
// after draining; Ready is closed once its subscriptions are live.
type Actor interface {
	Run(ctx context.Context) error
	Ready() <-chan struct{}
}

// Start runs each actor on its own goroutine and returns once every one of
// them is ready, so a task published afterwards finds its subscribers. The
// actors run until stop is called or ctx ends; stop cancels them, waits
// for each Run to return after draining, and returns their errors joined.
// Call stop exactly once.
//
// If an actor's Run fails before every actor is ready, or ctx ends first,
// Start stops the others and returns that error with a nil stop.
func Start(ctx context.Context, actors ...Actor) (stop func() error, err error) {
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make([]error, len(actors))
	failed := make(chan error, len(actors))
	for i, a := range actors {
		wg.Go(func() {
			if err := a.Run(runCtx); err != nil {
				errs[i] = err
				failed <- err
			}
		})
	}
	stop = func() error {
		cancel()
		wg.Wait()
		return errors.Join(errs...)
	}
	for _, a := range actors {
		select {
		case <-a.Ready():
		case err := <-failed:
			_ = stop()
			return nil, err
		case <-ctx.Done():
			_ = stop()
			return nil, ctx.Err()
		}
	}
	return stop, nil
}
