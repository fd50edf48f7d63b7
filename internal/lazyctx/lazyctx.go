// Package lazyctx provides Context: context.WithDeadline made lazy, so that
// a context nobody waits on costs one allocation instead of a timer.
//
// It exists for speed. The worker runs every handler attempt under a
// context that carries the task and ends at Config.TaskTimeout, when the
// worker's drain gives up, or when the attempt returns. Most handlers
// return long before the deadline without ever waiting on that context;
// for them the timer, the registration with the parent and the cancel func
// of context.WithTimeout are pure cost. A Context makes its standard
// context, timer included, only when Done is first called (directly, or by
// a derived context or context.AfterFunc, which call it); until then Err
// compares the clock with the deadline and asks the parent.
//
// Measured on 2 shared cores (Intel Xeon, go1.26, linux/amd64):
//
//   - BenchmarkTaskPath (flow_bench_test.go: caller, router, worker and
//     back), 10 interleaved rounds of -benchtime=500ms, run twice, with
//     the worker's task context made lazily against
//     context.WithTimeout(context.WithValue(...)): context.WithTimeout
//     costs +10.1% and +13.7% per task on membus, +10.7% and +12.5% on
//     natsbus (medians of the per-round ratios).
//   - BenchmarkLazyVsStd, in this package, the context made, asked for
//     its value and ended (go test -run '^$' -bench . -benchmem -count=5
//     ./internal/lazyctx, medians): when nobody waits on it, 161 ns/op
//     and 1 allocation (176 B) against 541 ns/op and 6 allocations
//     (384 B) for context.WithDeadline of context.WithValue; with Err
//     asked once, 207 against 536 ns/op; with Done called, when the lazy
//     context makes the standard one, 691 ns/op and 6 allocations
//     against 617 ns/op and 7.
//
// So a Context pays off where most contexts are never waited on, as the
// worker's are; one that is waited on costs about 12% more than the
// standard context it then makes.
//
// # Semantics
//
// A Context made by New(parent, deadline, key, val) behaves as
// context.WithDeadline(context.WithValue(parent, key, &v), deadline) with
// its cancel func, v being a copy of val, as seen through Deadline, Done,
// Err, Value, context.Cause, context.AfterFunc and the contexts derived from
// it. In particular Cancel after the deadline has passed leaves
// context.DeadlineExceeded, as a standard context whose timer fired
// would, and a parent that is already cancelled when New is called, or
// whose deadline is earlier, ends the Context as it would end the standard
// one.
//
// One thing a Context cannot know is when its parent was cancelled. If,
// before Done was first called, the deadline passed and the parent was
// cancelled, both since the Context was last asked (by Err, context.Cause
// or Cancel), the Context ends with context.DeadlineExceeded: the
// deadline is taken to have come first, and the standard context may have
// said the parent's error instead. Either order is possible. The deadline
// is the one event whose time is known, and the parent may have been
// cancelled at any moment since the Context was last asked, after the
// deadline as well as before; deadline-first is also what the standard
// context says whenever its timer fires first, and the verdict does not
// depend on which of Err, Cause or Cancel happens to ask. A caller that
// must tell a cancelled parent from a timeout asks the parent, as the
// worker does. Once Done has been called the Context is its standard
// context, and this case cannot arise; a parent already cancelled when
// New is called is not this case either (see above).
//
// FuzzLazyContext checks Context against context.WithDeadline.
package lazyctx

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Context is a context.Context with a deadline and one key/value pair of
// its own whose standard context is made only when Done is first called
// (see the package comment). It is made by New, is safe for concurrent
// use, and must be ended with Cancel, as a standard context must be ended
// with its cancel func.
type Context[K comparable, V any] struct {
	parent   context.Context
	deadline time.Time // as given to New
	own      bool      // deadline is c's: parent has no earlier one
	key      K
	val      V

	mu sync.Mutex
	// err is the verdict given while there is no standard context:
	// context.DeadlineExceeded or, from Cancel, context.Canceled. A verdict
	// from parent makes the standard context at once, so that
	// context.Cause finds parent's cause. Guarded by mu.
	err error
	// ended is set with err, for Value to read without mu.
	ended atomic.Bool
	// ready is set once std and cancel are; they never change after.
	ready  atomic.Bool
	std    context.Context
	cancel context.CancelFunc
}

// New returns a Context with parent's values and key (with a copy of
// val), ended when parent is cancelled, when deadline passes, or when its
// Cancel method is called: a lazy
// context.WithDeadline(context.WithValue(parent, key, &val), deadline),
// where val is copied. key is compared as context.WithValue compares it.
//
// New starts no timer and no goroutine, and unless parent has already been
// cancelled it allocates only the Context.
func New[K comparable, V any](parent context.Context, deadline time.Time, key K, val V) *Context[K, V] {
	c := &Context[K, V]{parent: parent, deadline: deadline, own: true, key: key, val: val}
	if d, ok := parent.Deadline(); ok && d.Before(deadline) {
		// context.WithDeadline makes no timer of its own then: parent ends
		// the context, with parent's error and cause.
		c.own = false
	}
	if parent.Err() != nil {
		// The standard context would be cancelled as it is made, with
		// parent's error and cause, whatever its deadline.
		c.set(context.WithCancel(parent))
	}
	return c
}

// Deadline returns the deadline given to New, or parent's when that is
// earlier.
func (c *Context[K, V]) Deadline() (time.Time, bool) {
	if c.own {
		return c.deadline, true
	}
	return c.parent.Deadline()
}

// Done returns a channel closed when c ends. The first call makes c's
// standard context, whose timer closes the channel at the deadline.
func (c *Context[K, V]) Done() <-chan struct{} {
	return c.standard().Done()
}

// Err returns nil while c has not ended, and then why it ended:
// context.Canceled (Cancel), context.DeadlineExceeded, or parent's error.
// Once non-nil it never changes.
func (c *Context[K, V]) Err() error {
	if c.ready.Load() {
		return c.std.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready.Load() {
		return c.std.Err()
	}
	return c.verdictLocked()
}

// Value returns a pointer to c's copy of val (a *V) for key, and parent's
// value for any other key.
func (c *Context[K, V]) Value(key any) any {
	if k, ok := key.(K); ok && k == c.key {
		return &c.val
	}
	if c.ready.Load() {
		// The standard context has parent's values, and answers for the
		// context package's own key, which is how context.Cause and
		// derived contexts find its cause and its children.
		return c.std.Value(key)
	}
	if c.ended.Load() {
		// Ended without a standard context: parent would answer for the
		// context package's key with its own cancellation, whose cause
		// (if parent is cancelled later) is not c's. The standard context
		// made now has ended as c did.
		return c.standard().Value(key)
	}
	// While c has not ended, parent answers as the standard context
	// would: context.Cause asks for the context package's key only once
	// Err is non-nil, and derived contexts only after calling Done. (Asked
	// directly, a context.WithoutCancel would allocate on every call.)
	return c.parent.Value(key)
}

// Cancel ends c with context.Canceled unless it has already ended, and
// releases the standard context, if one was made. It may be called more
// than once, from any goroutine.
func (c *Context[K, V]) Cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready.Load() && c.verdictLocked() == nil {
		c.err = context.Canceled
		c.ended.Store(true)
	}
	if c.ready.Load() {
		c.cancel()
	}
}

// String describes c, with its deadline, for debugging.
func (c *Context[K, V]) String() string {
	d, _ := c.Deadline()
	return "lazyctx.Context(deadline " + d.String() + ")"
}

// verdictLocked returns why c ended, or nil, deciding it if c has ended
// since it was last asked. c.mu is held and there is no standard context
// yet. The deadline is tested first: see the package comment.
func (c *Context[K, V]) verdictLocked() error {
	if c.err != nil {
		return c.err
	}
	if c.own && !time.Now().Before(c.deadline) {
		c.err = context.DeadlineExceeded
		c.ended.Store(true)
		return c.err
	}
	if c.parent.Err() != nil {
		c.set(context.WithCancel(c.parent))
		return c.std.Err()
	}
	return nil
}

// standard returns c's standard context, making it on first use:
// context.WithDeadline of parent while c has not ended, and otherwise a
// context with parent's values that has ended as c did, not tied to
// parent, whose later cancellation must not change the verdict given.
func (c *Context[K, V]) standard() context.Context {
	if c.ready.Load() {
		return c.std
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready.Load() {
		return c.std
	}
	err := c.verdictLocked()
	switch {
	case c.ready.Load(): // parent's verdict
	case err == nil:
		c.set(context.WithDeadline(c.parent, c.deadline))
	case err == context.DeadlineExceeded:
		// The deadline has passed: the standard context ends as it is
		// made, with DeadlineExceeded as its error and cause.
		c.set(context.WithDeadline(context.WithoutCancel(c.parent), c.deadline))
	default: // Canceled, by Cancel
		ctx, cancel := context.WithCancel(context.WithoutCancel(c.parent))
		cancel()
		c.set(ctx, cancel)
	}
	return c.std
}

// set makes ctx c's standard context. c.mu is held, or c is not yet shared.
func (c *Context[K, V]) set(ctx context.Context, cancel context.CancelFunc) {
	c.std, c.cancel = ctx, cancel
	c.ready.Store(true)
}
