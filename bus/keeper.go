package bus

import "sync"

// Keeper is an optional interface of a Bus: it keeps values on behalf of
// the code that uses the bus, for as long as the Bus value lives, so that
// a library can share state among its calls on one connection without
// package-level state. dispatch.Request keeps its result
// subscriptions there: successive calls on one connection reuse one
// subscription, as nats.go's Request reuses one reply inbox.
//
// membus and natsbus implement it. A Bus that does not is still fully
// usable; code that looks for Keeper falls back to per-call state (for
// dispatch.Request, a subscription per call). A Bus that wraps another, to
// trace or count its calls, should therefore implement Keeper too, by
// forwarding to the wrapped bus when it is a Keeper, or with Values of its
// own.
type Keeper interface {
	// Keep returns the value kept under key, first storing create() there
	// when there is none. Concurrent calls with one key call create at most
	// once and all return the same value. Keys are compared as map keys:
	// use a key of an unexported type, as with context.WithValue. create
	// must not call Keep on the same bus. Nothing kept is ever removed or
	// closed by the bus.
	Keep(key any, create func() any) any
}

// Values is a ready implementation of Keeper's Keep for a Bus to
// delegate to. The zero value is empty and ready; it is safe for
// concurrent use and must not be copied after first use.
type Values struct {
	mu sync.Mutex
	m  map[any]any
}

// Keep implements Keeper.
func (v *Values) Keep(key any, create func() any) any {
	v.mu.Lock()
	defer v.mu.Unlock()
	if val, ok := v.m[key]; ok {
		return val
	}
	if v.m == nil {
		v.m = map[any]any{}
	}
	val := create()
	v.m[key] = val
	return val
}
