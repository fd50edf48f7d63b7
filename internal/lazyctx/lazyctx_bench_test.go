package lazyctx

import (
	"context"
	"testing"
	"time"
)

// benchPayload stands for the value a worker attaches: the task.
type benchPayload struct {
	id, kind string
	retries  int
	data     []byte
}

var sink any

// BenchmarkLazyVsStd compares a Context with the standard context it
// stands for, context.WithDeadline(context.WithValue(parent, key, &v), d)
// and its cancel func, each made, asked for the value, and ended, as the
// worker does for every handler attempt:
//
//   - no_done: nobody waits on the context;
//   - err: Err is asked once as well, as a handler checking for
//     cancellation between steps does;
//   - done: Done is called as well, so the lazy context makes the
//     standard one.
//
// The parent is a context.WithCancel of a context.WithoutCancel, as the
// worker's is.
func BenchmarkLazyVsStd(b *testing.B) {
	root, cancelRoot := context.WithCancel(context.Background())
	defer cancelRoot()
	parent, cancel := context.WithCancel(context.WithoutCancel(context.WithValue(root, parentKey{}, "parent value")))
	defer cancel()
	p := benchPayload{id: "0190c2c8-6f0b-7f43-9d44-4c5c2a1e8b11", kind: "echo", retries: 1, data: make([]byte, 64)}
	const timeout = time.Minute

	lazy := func(use func(context.Context)) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c := New(parent, time.Now().Add(timeout), pairKey{}, p)
				sink = c.Value(pairKey{})
				use(c)
				c.Cancel()
			}
		}
	}
	std := func(use func(context.Context)) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v := new(benchPayload)
				*v = p
				ctx, cancel := context.WithDeadline(context.WithValue(parent, pairKey{}, v), time.Now().Add(timeout))
				sink = ctx.Value(pairKey{})
				use(ctx)
				cancel()
			}
		}
	}
	for _, u := range []struct {
		name string
		use  func(context.Context)
	}{
		{"no_done", func(context.Context) {}},
		{"err", func(ctx context.Context) { sink = ctx.Err() }},
		{"done", func(ctx context.Context) { sink = ctx.Done() }},
	} {
		b.Run(u.name+"/lazy", lazy(u.use))
		b.Run(u.name+"/std", std(u.use))
	}
}
