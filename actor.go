package heddle

import (
	"context"
	"errors"
	"sync"
)

// Actor is what worker.Worker, router.Router, deadletter.Consumer,
// orchestrator.Orchestrator and pipeline.Pipeline have in common: Run
// serves until its context ends and returns after draining; Ready is
// closed once its subscriptions are live.
//
// Run also returns, with an error wrapping bus.ErrClosed, when the actor's
// bus closes for good (a reconnect budget spent, Close called elsewhere,
// credentials revoked), so that a process never stays up serving nothing.
type Actor interface {
	Run(ctx context.Context) error
	Ready() <-chan struct{}
}

// Group is a set of actors started together by Start. It behaves like
// golang.org/x/sync/errgroup: the first actor whose Run fails cancels the
// others, which drain and return, and Wait reports that first error. A
// main typically blocks on Wait (or selects on Done beside a signal) and
// exits non-zero on an error, so that its supervisor restarts it.
type Group struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	first error
	errs  []error
}

// Start runs each actor on its own goroutine and returns once every one of
// them is ready, so a task published afterwards finds its subscribers. The
// actors run until Stop is called, ctx ends, or one of them fails.
//
// If an actor's Run fails before every actor is ready, or ctx ends first,
// Start stops the others, waits for them, and returns that error (or,
// when ctx ended, the actors' own errors from their drain, if any) with a
// nil Group.
func Start(ctx context.Context, actors ...Actor) (*Group, error) {
	runCtx, cancel := context.WithCancel(ctx)
	g := &Group{cancel: cancel, done: make(chan struct{}), errs: make([]error, len(actors))}
	var wg sync.WaitGroup
	failed := make(chan error, len(actors))
	for i, a := range actors {
		wg.Go(func() {
			if err := a.Run(runCtx); err != nil {
				g.mu.Lock()
				g.errs[i] = err
				if g.first == nil {
					g.first = err
				}
				g.mu.Unlock()
				cancel()
				failed <- err
			}
		})
	}
	go func() {
		wg.Wait()
		cancel()
		close(g.done)
	}()
	for _, a := range actors {
		select {
		case <-a.Ready():
		case err := <-failed:
			_ = g.Stop()
			return nil, err
		case <-ctx.Done():
			// A drain that went wrong says more than the cancellation.
			if err := g.Stop(); err != nil {
				return nil, err
			}
			return nil, ctx.Err()
		}
	}
	return g, nil
}

// Stop cancels every actor, waits for each Run to return after draining,
// and returns their errors joined. It may be called more than once and
// from several goroutines; each call returns the same errors.
func (g *Group) Stop() error {
	g.cancel()
	<-g.done
	g.mu.Lock()
	defer g.mu.Unlock()
	return errors.Join(g.errs...)
}

// Done returns a channel that is closed once every actor's Run has
// returned: after Stop, after the Start context ended, or after one actor
// failed and the others drained.
func (g *Group) Done() <-chan struct{} { return g.done }

// Wait blocks until every actor's Run has returned and returns the first
// error one of them returned, or nil.
func (g *Group) Wait() error {
	<-g.done
	return g.Err()
}

// Err returns the first error an actor's Run returned so far, or nil.
func (g *Group) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.first
}
