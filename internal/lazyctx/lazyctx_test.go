package lazyctx

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type (
	pairKey   struct{} // the key of a Context's own pair
	parentKey struct{} // a key of the parent
	otherKey  struct{} // a key nobody sets
)

var (
	errParent    = errors.New("parent cause")
	errParentDue = errors.New("parent deadline cause")
)

// setup returns a parent carrying parentKey and its cancel func.
func setup(t *testing.T) (parent context.Context, cancelParent context.CancelCauseFunc) {
	t.Helper()
	parent, cancelParent = context.WithCancelCause(context.WithValue(context.Background(), parentKey{}, "parent value"))
	t.Cleanup(func() { cancelParent(nil) })
	return parent, cancelParent
}

// requireEnded requires ctx to have ended with err and cause, consistently
// through Err, Done and context.Cause, and contexts derived from it to
// have ended likewise.
func requireEnded(t *testing.T, ctx context.Context, err, cause error) {
	t.Helper()
	if got := ctx.Err(); got != err {
		t.Fatalf("Err() = %v, want %v", got, err)
	}
	if got := context.Cause(ctx); got != cause {
		t.Fatalf("context.Cause = %v, want %v", got, cause)
	}
	select {
	case <-ctx.Done():
	default:
		t.Fatal("Done() is not closed")
	}
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	if got := child.Err(); got != err {
		t.Fatalf("a derived context's Err() = %v, want %v", got, err)
	}
	if got := context.Cause(child); got != cause {
		t.Fatalf("a derived context's cause = %v, want %v", got, cause)
	}
}

// requireLive requires ctx not to have ended.
func requireLive(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err() = %v, want nil", err)
	}
	if cause := context.Cause(ctx); cause != nil {
		t.Fatalf("context.Cause = %v, want nil", cause)
	}
}

func TestContextEnds(t *testing.T) {
	const timeout = time.Minute
	tests := []struct {
		name string
		// run acts on the lazy context c within a synctest bubble, where
		// the deadline is timeout after the start, and returns what c must
		// have ended with.
		run func(t *testing.T, c *Context[pairKey, string], cancelParent context.CancelCauseFunc) (err, cause error)
	}{
		{"a context nobody waits on ends Canceled when cancelled", func(t *testing.T, c *Context[pairKey, string], _ context.CancelCauseFunc) (error, error) {
			requireLive(t, c)
			c.Cancel()
			return context.Canceled, context.Canceled
		}},
		{"Cancel after the deadline has passed leaves DeadlineExceeded", func(t *testing.T, c *Context[pairKey, string], _ context.CancelCauseFunc) (error, error) {
			time.Sleep(timeout) // sleep-ok: synctest fake clock
			c.Cancel()
			return context.DeadlineExceeded, context.DeadlineExceeded
		}},
		{"Err after the deadline gives DeadlineExceeded without Done", func(t *testing.T, c *Context[pairKey, string], _ context.CancelCauseFunc) (error, error) {
			time.Sleep(timeout - time.Nanosecond) // sleep-ok: synctest fake clock
			requireLive(t, c)
			time.Sleep(time.Nanosecond) // sleep-ok: synctest fake clock
			if err := c.Err(); err != context.DeadlineExceeded {
				t.Fatalf("Err() = %v, want DeadlineExceeded", err)
			}
			return context.DeadlineExceeded, context.DeadlineExceeded
		}},
		{"parent cancelled before the deadline gives parent's error and cause", func(t *testing.T, c *Context[pairKey, string], cancelParent context.CancelCauseFunc) (error, error) {
			cancelParent(errParent)
			return context.Canceled, errParent
		}},
		{"parent cancelled and observed before the deadline keeps parent's verdict", func(t *testing.T, c *Context[pairKey, string], cancelParent context.CancelCauseFunc) (error, error) {
			cancelParent(errParent)
			if err := c.Err(); err != context.Canceled {
				t.Fatalf("Err() = %v, want Canceled", err)
			}
			time.Sleep(timeout) // sleep-ok: synctest fake clock
			c.Cancel()
			return context.Canceled, errParent
		}},
		{"the deadline comes first when it passed and the parent was cancelled since the context was last asked", func(t *testing.T, c *Context[pairKey, string], cancelParent context.CancelCauseFunc) (error, error) {
			requireLive(t, c)
			cancelParent(errParent)
			time.Sleep(timeout) // sleep-ok: synctest fake clock
			return context.DeadlineExceeded, context.DeadlineExceeded
		}},
		{"parent cancelled after the deadline passed does not change DeadlineExceeded", func(t *testing.T, c *Context[pairKey, string], cancelParent context.CancelCauseFunc) (error, error) {
			time.Sleep(timeout) // sleep-ok: synctest fake clock
			if err := c.Err(); err != context.DeadlineExceeded {
				t.Fatalf("Err() = %v, want DeadlineExceeded", err)
			}
			cancelParent(errParent)
			return context.DeadlineExceeded, context.DeadlineExceeded
		}},
		{"parent cancelled after Cancel does not change Canceled", func(t *testing.T, c *Context[pairKey, string], cancelParent context.CancelCauseFunc) (error, error) {
			c.Cancel()
			cancelParent(errParent)
			time.Sleep(timeout) // sleep-ok: synctest fake clock
			return context.Canceled, context.Canceled
		}},
		{"Done makes a standard context that its timer ends at the deadline", func(t *testing.T, c *Context[pairKey, string], _ context.CancelCauseFunc) (error, error) {
			done := c.Done()
			start := time.Now()
			<-done
			if waited := time.Since(start); waited != timeout {
				t.Fatalf("Done closed after %v, want %v", waited, timeout)
			}
			return context.DeadlineExceeded, context.DeadlineExceeded
		}},
		{"Done after the parent was cancelled gives parent's verdict", func(t *testing.T, c *Context[pairKey, string], cancelParent context.CancelCauseFunc) (error, error) {
			cancelParent(errParent)
			<-c.Done()
			time.Sleep(timeout) // sleep-ok: synctest fake clock
			return context.Canceled, errParent
		}},
		{"Done after Cancel is closed at once", func(t *testing.T, c *Context[pairKey, string], _ context.CancelCauseFunc) (error, error) {
			c.Cancel()
			<-c.Done()
			return context.Canceled, context.Canceled
		}},
		{"Done after the deadline passed is closed at once", func(t *testing.T, c *Context[pairKey, string], cancelParent context.CancelCauseFunc) (error, error) {
			time.Sleep(timeout) // sleep-ok: synctest fake clock
			<-c.Done()
			cancelParent(errParent)
			return context.DeadlineExceeded, context.DeadlineExceeded
		}},
		{"parent cancelled after Done ends the context with parent's cause", func(t *testing.T, c *Context[pairKey, string], cancelParent context.CancelCauseFunc) (error, error) {
			done := c.Done()
			cancelParent(errParent)
			<-done
			return context.Canceled, errParent
		}},
		{"Cancel after Done ends the context Canceled", func(t *testing.T, c *Context[pairKey, string], _ context.CancelCauseFunc) (error, error) {
			done := c.Done()
			c.Cancel()
			<-done
			time.Sleep(timeout) // sleep-ok: synctest fake clock
			return context.Canceled, context.Canceled
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				parent, cancelParent := setup(t)
				c := New(parent, time.Now().Add(timeout), pairKey{}, "pair")
				defer c.Cancel()
				err, cause := tt.run(t, c, cancelParent)
				requireEnded(t, c, err, cause)
			})
		})
	}
}

func TestDeadlineComesFirstWhereAStandardContextWouldSayTheParentCameFirst(t *testing.T) {
	// The one case where a Context and the standard context differ, as
	// the package comment documents: before Done, the parent is cancelled
	// and the deadline passes with nobody asking in between.
	synctest.Test(t, func(t *testing.T) {
		parent, cancelParent := setup(t)
		deadline := time.Now().Add(time.Minute)
		c := New(parent, deadline, pairKey{}, "pair")
		defer c.Cancel()
		std, cancel := context.WithDeadline(parent, deadline)
		defer cancel()
		time.Sleep(time.Second) // sleep-ok: synctest fake clock
		cancelParent(errParent)
		time.Sleep(time.Minute) // sleep-ok: synctest fake clock
		requireEnded(t, std, context.Canceled, errParent)
		requireEnded(t, c, context.DeadlineExceeded, context.DeadlineExceeded)
	})
}

func TestParentAlreadyCancelledWhenNewIsCalledEndsTheContextAtOnceEvenPastItsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent, cancelParent := setup(t)
		cancelParent(errParent)
		c := New(parent, time.Now().Add(-time.Second), pairKey{}, "pair")
		defer c.Cancel()
		requireEnded(t, c, context.Canceled, errParent)
	})
}

func TestParentDeadlineEarlierThanTheDeadlineIsTheContextsAndEndsItWithParentsCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		due := time.Now().Add(10 * time.Second)
		parent, cancelParent := context.WithDeadlineCause(context.Background(), due, errParentDue)
		defer cancelParent()
		c := New(parent, time.Now().Add(time.Minute), pairKey{}, "pair")
		defer c.Cancel()
		if d, ok := c.Deadline(); !ok || !d.Equal(due) {
			t.Fatalf("Deadline() = %v, %v; want parent's, %v, true", d, ok, due)
		}
		time.Sleep(10 * time.Second) // sleep-ok: synctest fake clock
		synctest.Wait()              // the parent's timer fires at the instant Sleep returns
		requireEnded(t, c, context.DeadlineExceeded, errParentDue)
	})
}

func TestDeadlineIsTheOneGivenWhenParentHasNoEarlierOne(t *testing.T) {
	parent, _ := setup(t)
	due := time.Now().Add(time.Hour)
	c := New(parent, due, pairKey{}, "pair")
	defer c.Cancel()
	if d, ok := c.Deadline(); !ok || !d.Equal(due) {
		t.Fatalf("Deadline() = %v, %v; want %v, true", d, ok, due)
	}
}

func TestValueAnswersThePairTheParentsValuesAndNilOtherwise(t *testing.T) {
	check := func(t *testing.T, ctx context.Context, c *Context[pairKey, string]) {
		t.Helper()
		p, ok := ctx.Value(pairKey{}).(*string)
		if !ok || p != &c.val || *p != "pair" {
			t.Fatalf("Value(pairKey{}) = %v, want a pointer to the context's copy of %q", ctx.Value(pairKey{}), "pair")
		}
		if v := ctx.Value(parentKey{}); v != "parent value" {
			t.Fatalf("Value(parentKey{}) = %v, want %q", v, "parent value")
		}
		if v := ctx.Value(otherKey{}); v != nil {
			t.Fatalf("Value(otherKey{}) = %v, want nil", v)
		}
	}
	for _, tt := range []struct {
		name string
		act  func(c *Context[pairKey, string])
	}{
		{"while nobody waits", func(*Context[pairKey, string]) {}},
		{"after Done", func(c *Context[pairKey, string]) { c.Done() }},
		{"after Cancel", func(c *Context[pairKey, string]) { c.Cancel() }},
		{"after Cancel and Done", func(c *Context[pairKey, string]) { c.Cancel(); c.Done() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			parent, _ := setup(t)
			val := "pair"
			c := New(parent, time.Now().Add(time.Hour), pairKey{}, val)
			defer c.Cancel()
			val = "changed after New"
			tt.act(c)
			check(t, c, c)
			child, cancel := context.WithCancel(context.WithValue(c, otherKey{}, nil))
			defer cancel()
			check(t, child, c)
		})
	}
}

func TestDerivedContextsEndWhenTheContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent, _ := setup(t)
		c := New(parent, time.Now().Add(time.Minute), pairKey{}, "pair")
		withCancel, cancel1 := context.WithCancel(c)
		defer cancel1()
		withTimeout, cancel2 := context.WithTimeout(c, time.Hour)
		defer cancel2()
		withCause, cancel3 := context.WithCancelCause(c)
		defer cancel3(nil)
		withValue := context.WithValue(c, otherKey{}, "other")
		var ran atomic.Bool
		context.AfterFunc(c, func() { ran.Store(true) })
		shorter, cancel4 := context.WithTimeout(c, time.Second)
		defer cancel4()

		time.Sleep(time.Second) // sleep-ok: synctest fake clock
		synctest.Wait()         // the timer fires at the instant Sleep returns
		requireEnded(t, shorter, context.DeadlineExceeded, context.DeadlineExceeded)
		requireLive(t, c)
		requireLive(t, withCancel)

		c.Cancel()
		synctest.Wait()
		for _, ctx := range []context.Context{c, withCancel, withTimeout, withCause, withValue} {
			requireEnded(t, ctx, context.Canceled, context.Canceled)
		}
		if !ran.Load() {
			t.Fatal("a function registered with context.AfterFunc did not run when the context ended")
		}
	})
}

func TestDerivedContextsOfAnEndedContextEndAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent, _ := setup(t)
		c := New(parent, time.Now().Add(time.Minute), pairKey{}, "pair")
		defer c.Cancel()
		time.Sleep(time.Minute) // sleep-ok: synctest fake clock
		// No Done yet: the verdict is given without a standard context.
		child, cancel := context.WithTimeout(c, time.Hour)
		defer cancel()
		requireEnded(t, child, context.DeadlineExceeded, context.DeadlineExceeded)
		ran := make(chan struct{})
		context.AfterFunc(c, func() { close(ran) })
		<-ran
	})
}

func TestContextNobodyWaitsOnCostsOneAllocation(t *testing.T) {
	parent, _ := setup(t)
	allocs := testing.AllocsPerRun(100, func() {
		c := New(parent, time.Now().Add(time.Minute), pairKey{}, "pair")
		_ = c.Value(pairKey{})
		_ = c.Value(parentKey{})
		_ = c.Err()
		_ = context.Cause(c)
		c.Cancel()
		_ = c.Err()
	})
	if allocs != 1 {
		t.Fatalf("New, Value, Err, Cause and Cancel allocate %v times, want 1", allocs)
	}
}

func TestErrDoneValueCauseAndCancelMayBeCalledConcurrently(t *testing.T) {
	parent, _ := setup(t)
	for range 50 {
		c := New(parent, time.Now().Add(time.Hour), pairKey{}, "pair")
		var wg sync.WaitGroup
		seen := make(chan error, 5*3)
		for i := range 5 {
			wg.Go(func() {
				for range 3 {
					switch i {
					case 0:
						c.Cancel()
					case 1:
						<-c.Done()
					case 2:
						c.Value(pairKey{})
						c.Value(parentKey{})
					case 3:
						if cause := context.Cause(c); cause != nil {
							seen <- cause
						}
					case 4:
						if err := c.Err(); err != nil {
							seen <- err
						}
					}
				}
			})
		}
		wg.Wait()
		close(seen)
		for err := range seen {
			if err != context.Canceled {
				t.Fatalf("Err or Cause gave %v while the context was cancelled, want Canceled", err)
			}
		}
		requireEnded(t, c, context.Canceled, context.Canceled)
	}
}

func TestStringNamesTheDeadline(t *testing.T) {
	parent, _ := setup(t)
	due := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c := New(parent, due, pairKey{}, "pair")
	defer c.Cancel()
	if got, want := fmt.Sprint(c), "lazyctx.Context(deadline "+due.String()+")"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

// Operations of FuzzLazyContext: each is one input byte (modulo numOps)
// followed by one argument byte.
const (
	opErr          = iota // compare Err
	opDone                // compare whether Done is closed
	opCause               // compare context.Cause
	opValue               // compare Value of the argument's key
	opDeadline            // compare Deadline
	opDerive              // derive a context or register an AfterFunc (kind: argument)
	opCancelChild         // cancel a derived context (which: argument)
	opCancelParent        // cancel the parent (cause: argument)
	opCancel              // Cancel the lazy context, cancel the reference
	opSleep               // let time pass: argument%16+1 ms, 50 ms from 240
	opStopAfter           // stop an AfterFunc (which: argument)
	numOps
)

// Kinds of opDerive, the argument modulo numDerived.
const (
	deriveWithCancel      = iota // context.WithCancel
	deriveWithCancelCause        // context.WithCancelCause
	deriveWithTimeout            // context.WithTimeout, argument/8%20 ms + 300 µs
	deriveThroughValue           // context.WithCancel of context.WithValue
	deriveAfterFunc              // context.AfterFunc
	deriveWithValue              // context.WithValue, compared by Value only
	deriveWithoutCancel          // context.WithoutCancel, compared by Value only
	numDerived
)

// maxFuzzOps is the number of operations of a FuzzLazyContext input
// interpreted; the rest is ignored.
const maxFuzzOps = 256

var errOther = errors.New("other cause")

// derived is a context derived the same way from the lazy context and
// from the reference, with its cancel funcs (nil for the kinds that have
// none).
type derived struct {
	lazy, ref             context.Context
	cancelLazy, cancelRef func()
}

// afterFunc is a function registered with context.AfterFunc on both.
type afterFunc struct {
	lazyRan, refRan   *atomic.Bool
	stopLazy, stopRef func() bool
}

// fuzzRun is the state of one FuzzLazyContext input.
type fuzzRun struct {
	t  *testing.T
	in []byte

	parent       context.Context
	cancelParent context.CancelCauseFunc
	deadline     time.Time
	own          bool // deadline is the lazy context's: the parent's is not earlier
	lazy         *Context[pairKey, int]
	ref          context.Context
	refCancel    context.CancelFunc
	refVal       int

	// waited: Done has been called on the lazy context, directly or by
	// deriving from it. cancelled: Cancel has been called.
	waited, cancelled bool
	// unasked: the parent was cancelled, before the deadline, while the
	// lazy context had not ended and Done had not been called, and the
	// lazy context has not been asked since. If the deadline then passes
	// before it is asked, its verdict is the package comment's
	// deadline-first rule, not the reference's.
	unasked bool

	derived  []derived
	valueOf  []derived // derived contexts compared by Value only
	afterFns []afterFunc
}

// FuzzLazyContext interprets its input as a sequence of operations applied
// alike to a lazy context and to the reference,
// context.WithDeadline(context.WithValue(parent, pairKey{}, &val),
// deadline), and checks that they agree, as do the contexts derived from
// them and the functions registered with context.AfterFunc. Time is a
// synctest bubble's, so deadlines are exact; the deadline sits 100 µs, the
// parent's 200 µs and derived timeouts 300 µs past a millisecond, and time
// moves in whole milliseconds, so no two timers that could race fire at the
// same instant.
//
// The first three bytes choose the parent (bits 0-1: with a cause,
// with a deadline, with a deadline and a deadline cause, plain
// WithCancel; bit 2: cancelled before New), the deadline (byte 1%40 - 5
// ms from the start: it may have passed already) and the parent's deadline
// (byte 2%40 - 5 ms). Then each operation is two bytes (see opErr), up to
// maxFuzzOps of them.
//
// When the documented deadline-first case arises (see fuzzRun.unasked),
// the reference is replaced by a standard context whose deadline has
// passed with the parent not yet cancelled, which is what the rule says
// the lazy context must look like from then on.
func FuzzLazyContext(f *testing.F) {
	ops := func(cfg [3]byte, ops ...byte) []byte { return append(cfg[:], ops...) }
	f.Add([]byte{})
	f.Add(ops([3]byte{0, 20, 0}, opCancel, 0, opErr, 0, opCause, 0, opDone, 0))
	f.Add(ops([3]byte{0, 20, 0}, opSleep, 30, opCancel, 0, opErr, 0, opCause, 0))
	f.Add(ops([3]byte{0, 20, 0}, opDone, 0, opDerive, deriveWithTimeout+8*3, opSleep, 5, opSleep, 15, opSleep, 15, opErr, 0))
	f.Add(ops([3]byte{0, 20, 0}, opCancelParent, 1, opSleep, 30, opErr, 0, opCause, 0, opDerive, deriveAfterFunc))
	f.Add(ops([3]byte{0, 20, 0}, opCancelParent, 2, opErr, 0, opSleep, 30, opCause, 0, opCancel, 0))
	f.Add(ops([3]byte{1, 20, 10}, opSleep, 15, opErr, 0, opCause, 0, opDeadline, 0))
	f.Add(ops([3]byte{2, 20, 30}, opDerive, deriveThroughValue, opSleep, 255, opCause, 0))
	f.Add(ops([3]byte{4, 2, 0}, opErr, 0, opCause, 0, opValue, 0, opValue, 1, opValue, 2))
	f.Add(ops([3]byte{3, 20, 0}, opDerive, deriveWithValue, opDerive, deriveWithCancelCause, opDerive, deriveAfterFunc,
		opStopAfter, 0, opCancelChild, 0, opCancelParent, 0, opValue, 0))
	f.Fuzz(func(t *testing.T, in []byte) {
		// Every step compares every derived context: bound the work.
		in = in[:min(len(in), 3+2*maxFuzzOps)]
		synctest.Test(t, func(t *testing.T) {
			r := &fuzzRun{t: t, in: in}
			r.setUp()
			for len(r.in) > 0 {
				r.step(r.next()%numOps, r.next())
				synctest.Wait()
				r.checkDerived()
			}
			r.tearDown()
		})
	})
}

// next returns the next input byte, 0 once they are used up.
func (r *fuzzRun) next() byte {
	if len(r.in) == 0 {
		return 0
	}
	b := r.in[0]
	r.in = r.in[1:]
	return b
}

// setUp makes the parent, the lazy context and the reference from the
// first three bytes.
func (r *fuzzRun) setUp() {
	kind, d, pd := r.next(), r.next(), r.next()
	now := time.Now()
	r.deadline = now.Add(time.Duration(int(d%40)-5)*time.Millisecond + 100*time.Microsecond)
	parentDeadline := now.Add(time.Duration(int(pd%40)-5)*time.Millisecond + 200*time.Microsecond)
	base := context.WithValue(context.Background(), parentKey{}, "parent value")
	var stop context.CancelFunc = func() {}
	switch kind % 4 {
	case 0:
		r.parent, r.cancelParent = context.WithCancelCause(base)
	case 1:
		base, stop = context.WithDeadline(base, parentDeadline)
		r.parent, r.cancelParent = context.WithCancelCause(base)
	case 2:
		base, stop = context.WithDeadlineCause(base, parentDeadline, errParentDue)
		r.parent, r.cancelParent = context.WithCancelCause(base)
	case 3:
		var cancel context.CancelFunc
		r.parent, cancel = context.WithCancel(base)
		r.cancelParent = func(error) { cancel() }
	}
	r.t.Cleanup(stop)
	r.own = kind%4 == 0 || kind%4 == 3 || !parentDeadline.Before(r.deadline)
	if kind&4 != 0 {
		r.cancelParent(errParent)
	}
	r.refVal = int(d)
	r.lazy = New(r.parent, r.deadline, pairKey{}, r.refVal)
	r.ref, r.refCancel = context.WithDeadline(context.WithValue(r.parent, pairKey{}, &r.refVal), r.deadline)
}

// asked records that the lazy context was asked for its verdict.
func (r *fuzzRun) asked() { r.unasked = false }

// step applies one operation.
func (r *fuzzRun) step(op, arg byte) {
	t := r.t
	switch op {
	case opErr:
		r.asked()
		if l, s := r.lazy.Err(), r.ref.Err(); l != s {
			t.Fatalf("Err() = %v, want %v", l, s)
		}
	case opDone:
		r.asked()
		r.waited = true
		if l, s := closed(r.lazy.Done()), closed(r.ref.Done()); l != s {
			t.Fatalf("Done() closed = %v, want %v", l, s)
		}
	case opCause:
		r.asked()
		if l, s := context.Cause(r.lazy), context.Cause(r.ref); l != s {
			t.Fatalf("context.Cause = %v, want %v", l, s)
		}
	case opValue:
		compareValue(t, r.lazy, r.ref, []any{pairKey{}, parentKey{}, otherKey{}}[arg%3])
	case opDeadline:
		ld, lok := r.lazy.Deadline()
		sd, sok := r.ref.Deadline()
		if lok != sok || !ld.Equal(sd) {
			t.Fatalf("Deadline() = %v, %v; want %v, %v", ld, lok, sd, sok)
		}
	case opDerive:
		r.derive(arg)
	case opCancelChild:
		if len(r.derived) > 0 {
			d := r.derived[int(arg)%len(r.derived)]
			d.cancelLazy()
			d.cancelRef()
		}
	case opCancelParent:
		if r.parent.Err() == nil && r.own && !r.waited && !r.cancelled && time.Now().Before(r.deadline) {
			r.unasked = true
		}
		r.cancelParent([]error{nil, errParent, errOther}[arg%3])
	case opCancel:
		r.asked()
		r.cancelled = true
		r.lazy.Cancel()
		r.refCancel()
	case opSleep:
		d := time.Duration(arg%16+1) * time.Millisecond
		if arg >= 240 {
			d = 50 * time.Millisecond
		}
		if r.unasked && !time.Now().Add(d).Before(r.deadline) {
			// The deadline-first case: from now on the lazy context must
			// look like a standard context whose timer fired before its
			// parent was cancelled. Nothing has been derived from the
			// reference that this could affect: deriving calls Done.
			r.unasked = false
			r.refCancel()
			r.ref, r.refCancel = context.WithDeadline(
				context.WithValue(context.WithoutCancel(r.parent), pairKey{}, &r.refVal), r.deadline)
		}
		time.Sleep(d) // sleep-ok: synctest fake clock
	case opStopAfter:
		if len(r.afterFns) > 0 {
			a := r.afterFns[int(arg)%len(r.afterFns)]
			if l, s := a.stopLazy(), a.stopRef(); l != s {
				t.Fatalf("stopping an AfterFunc gave %v, want %v", l, s)
			}
		}
	}
}

// derive derives a context of the argument's kind from both.
func (r *fuzzRun) derive(arg byte) {
	var d derived
	switch arg % numDerived {
	case deriveWithCancel:
		d.lazy, d.cancelLazy = context.WithCancel(r.lazy)
		d.ref, d.cancelRef = context.WithCancel(r.ref)
	case deriveWithCancelCause:
		lazy, cancelLazy := context.WithCancelCause(r.lazy)
		ref, cancelRef := context.WithCancelCause(r.ref)
		d = derived{lazy, ref, func() { cancelLazy(errOther) }, func() { cancelRef(errOther) }}
	case deriveWithTimeout:
		timeout := time.Duration(arg/8%20)*time.Millisecond + 300*time.Microsecond
		d.lazy, d.cancelLazy = context.WithTimeout(r.lazy, timeout)
		d.ref, d.cancelRef = context.WithTimeout(r.ref, timeout)
	case deriveThroughValue:
		d.lazy, d.cancelLazy = context.WithCancel(context.WithValue(r.lazy, otherKey{}, int(arg)))
		d.ref, d.cancelRef = context.WithCancel(context.WithValue(r.ref, otherKey{}, int(arg)))
	case deriveAfterFunc:
		a := afterFunc{lazyRan: new(atomic.Bool), refRan: new(atomic.Bool)}
		a.stopLazy = context.AfterFunc(r.lazy, func() { a.lazyRan.Store(true) })
		a.stopRef = context.AfterFunc(r.ref, func() { a.refRan.Store(true) })
		r.afterFns = append(r.afterFns, a)
		r.asked()
		r.waited = true
		return
	case deriveWithValue:
		r.valueOf = append(r.valueOf, derived{lazy: context.WithValue(r.lazy, otherKey{}, int(arg)),
			ref: context.WithValue(r.ref, otherKey{}, int(arg))})
		return
	case deriveWithoutCancel:
		r.valueOf = append(r.valueOf, derived{lazy: context.WithoutCancel(r.lazy), ref: context.WithoutCancel(r.ref)})
		return
	}
	r.asked()
	r.waited = true
	r.derived = append(r.derived, d)
}

// checkDerived compares the derived contexts and AfterFuncs. It asks the
// lazy context nothing but Value: those derived by cancellation hold their
// own verdict.
func (r *fuzzRun) checkDerived() {
	t := r.t
	for i, d := range r.derived {
		if l, s := d.lazy.Err(), d.ref.Err(); l != s {
			t.Fatalf("derived context %d: Err() = %v, want %v", i, l, s)
		}
		if l, s := context.Cause(d.lazy), context.Cause(d.ref); l != s {
			t.Fatalf("derived context %d: context.Cause = %v, want %v", i, l, s)
		}
		if l, s := closed(d.lazy.Done()), closed(d.ref.Done()); l != s {
			t.Fatalf("derived context %d: Done() closed = %v, want %v", i, l, s)
		}
		ld, lok := d.lazy.Deadline()
		sd, sok := d.ref.Deadline()
		if lok != sok || !ld.Equal(sd) {
			t.Fatalf("derived context %d: Deadline() = %v, %v; want %v, %v", i, ld, lok, sd, sok)
		}
	}
	for _, d := range append(r.derived, r.valueOf...) {
		for _, key := range []any{pairKey{}, parentKey{}, otherKey{}} {
			compareValue(t, d.lazy, d.ref, key)
		}
	}
	for i, a := range r.afterFns {
		if l, s := a.lazyRan.Load(), a.refRan.Load(); l != s {
			t.Fatalf("AfterFunc %d ran = %v, want %v", i, l, s)
		}
	}
}

// tearDown ends everything, checks the final verdicts and leaves no
// goroutine or timer behind.
func (r *fuzzRun) tearDown() {
	r.step(opCancel, 0)
	for _, d := range r.derived {
		d.cancelLazy()
		d.cancelRef()
	}
	r.cancelParent(nil)
	synctest.Wait()
	r.checkDerived()
	for _, op := range []byte{opErr, opCause, opDone} {
		r.step(op, 0)
	}
}

// compareValue requires lazy and ref to give the same value for key; the
// pair's values are compared by what they point to.
func compareValue(t *testing.T, lazy, ref context.Context, key any) {
	t.Helper()
	l, s := lazy.Value(key), ref.Value(key)
	if lp, ok := l.(*int); ok {
		if sp, ok := s.(*int); !ok || *lp != *sp {
			t.Fatalf("Value(%T) = %v, want %v", key, l, s)
		}
		return
	}
	if l != s {
		t.Fatalf("Value(%T) = %v, want %v", key, l, s)
	}
}

// closed reports whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
