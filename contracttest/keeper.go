package contracttest

import (
	"sync"
	"sync/atomic"

	"github.com/heddle-go/heddle/bus"
)

// busKeeperGoroutines is how many goroutines call Keep on one key at once.
const busKeeperGoroutines = 16

// Keys of the Keeper subtest: distinct unexported types, as the Keeper
// documentation asks of its users.
type (
	busKeeperKeyA struct{}
	busKeeperKeyB struct{}
)

// busKept is the value the Keeper subtest stores; pointers to it are
// comparable and distinct per allocation.
type busKept struct{ n int64 }

// busKeeperCreate returns a create function that counts its calls in
// calls and returns a new *busKept.
func busKeeperCreate(calls *atomic.Int64) func() any {
	return func() any { return &busKept{n: calls.Add(1)} }
}

// busKeeper returns c's bus.Keeper, skipping the subtest when the bus
// does not implement it.
func (h *busHarness) busKeeper(c *busConn) bus.Keeper {
	h.t.Helper()
	k, ok := c.Bus.(bus.Keeper)
	if !ok {
		h.t.Skip("the bus does not implement bus.Keeper (optional)")
	}
	return k
}

// busTestKeeper: a bus that implements bus.Keeper keeps one value per key
// for the connection. Keep on one key from many goroutines at once calls
// create once and returns one value to all; another key gets a value of
// its own; another connection keeps values of its own, so the same key
// calls create again there, and the first connection's value is unchanged.
func busTestKeeper(h *busHarness) {
	first := h.busKeeper(h.connect())

	var callsA atomic.Int64
	start := make(chan struct{})
	got := make([]any, busKeeperGoroutines)
	var wg sync.WaitGroup
	for i := range busKeeperGoroutines {
		wg.Go(func() {
			<-start
			got[i] = first.Keep(busKeeperKeyA{}, busKeeperCreate(&callsA))
		})
	}
	close(start) // release all goroutines at once
	wg.Wait()
	if n := callsA.Load(); n != 1 {
		h.t.Fatalf("create ran %d times for %d concurrent Keep calls on one key, want 1", n, busKeeperGoroutines)
	}
	valA := got[0]
	if _, ok := valA.(*busKept); !ok {
		h.t.Fatalf("Keep returned %#v, want the *contracttest.busKept create made", valA)
	}
	for i, v := range got {
		if v != valA {
			h.t.Fatalf("goroutine %d got %#v from Keep, goroutine 0 got %#v: want one value for all", i, v, valA)
		}
	}

	var callsB atomic.Int64
	valB := first.Keep(busKeeperKeyB{}, busKeeperCreate(&callsB))
	if n := callsB.Load(); n != 1 {
		h.t.Fatalf("create ran %d times for a second key, want 1", n)
	}
	if valB == valA {
		h.t.Fatalf("a second key got the first key's value %#v, want a value of its own", valA)
	}

	second := h.busKeeper(h.connect())
	var callsOther atomic.Int64
	valOther := second.Keep(busKeeperKeyA{}, busKeeperCreate(&callsOther))
	if n := callsOther.Load(); n != 1 {
		h.t.Fatalf("create ran %d times for a key another connection already keeps, want 1: each connection keeps its own values", n)
	}
	if valOther == valA {
		h.t.Fatalf("a second connection returned the first connection's value %#v, want a value of its own", valA)
	}

	var callsAgain atomic.Int64
	for key, want := range map[any]any{busKeeperKeyA{}: valA, busKeeperKeyB{}: valB} {
		if v := first.Keep(key, busKeeperCreate(&callsAgain)); v != want {
			h.t.Errorf("after the second connection kept its value, the first returned %#v for key %T, want its kept value %#v", v, key, want)
		}
	}
	if n := callsAgain.Load(); n != 0 {
		h.t.Fatalf("create ran %d times on the first connection for keys it already keeps, want 0", n)
	}
}
