package bus_test

import (
	"fmt"
	"sync/atomic"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/membus"
)

// A library keeps a counter per connection on the bus itself, with no
// package-level state; a bus without Keeper gets no counting.
func ExampleKeeper() {
	type callsKey struct{} // unexported: no other package can use this key
	count := func(b bus.Bus) int64 {
		k, ok := b.(bus.Keeper)
		if !ok {
			return 0
		}
		n := k.Keep(callsKey{}, func() any { return new(atomic.Int64) }).(*atomic.Int64)
		return n.Add(1)
	}

	first := membus.New()
	defer first.Close()
	second := first.Connect()
	defer second.Close()

	count(first)
	count(first)
	fmt.Println(count(first), count(second))
	// Output: 3 1
}
