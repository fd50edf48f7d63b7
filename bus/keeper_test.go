package bus_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/heddle-go/heddle/bus"
)

// Keys of distinct unexported types; keyA{} and keyB{} have equal
// underlying values but must be different keys.
type (
	keyA struct{}
	keyB struct{}
	keyS string
)

// kept is what the tests store; a pointer to it is comparable and
// distinct per allocation (it is not zero-sized).
type kept struct{ n int }

// creator returns a create function that counts its calls and returns a
// new *kept numbered by the call.
func creator(calls *atomic.Int64) func() any {
	return func() any { return &kept{n: int(calls.Add(1))} }
}

// mustNotCreate is a create function that fails the test when called.
func mustNotCreate(t *testing.T, key any) func() any {
	return func() any {
		t.Errorf("create called again for key %#v, which already has a value", key)
		return &kept{n: -1}
	}
}

func TestValuesZeroValueKeeps(t *testing.T) {
	var v bus.Values // zero value, never initialised
	var calls atomic.Int64
	got := v.Keep(keyA{}, creator(&calls))
	p, ok := got.(*kept)
	if !ok || p == nil {
		t.Fatalf("Keep on a zero Values returned %#v, want the *kept create made", got)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("create ran %d times on the first Keep, want 1", n)
	}
}

func TestValuesKeepCreatesOncePerKey(t *testing.T) {
	var v bus.Values
	var calls atomic.Int64
	var made any
	first := v.Keep(keyA{}, func() any {
		made = creator(&calls)()
		return made
	})
	if first != made {
		t.Fatalf("first Keep returned %#v, want the value create made, %#v", first, made)
	}
	for i := range 3 {
		if again := v.Keep(keyA{}, mustNotCreate(t, keyA{})); again != first {
			t.Fatalf("Keep #%d returned %#v, want the kept value %#v", i+2, again, first)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("create ran %d times for one key, want 1", n)
	}
}

func TestValuesKeepOneValuePerDistinctKey(t *testing.T) {
	var v bus.Values
	var calls atomic.Int64
	keys := []any{keyA{}, keyB{}, struct{}{}, keyS("k"), "k"}
	vals := make([]any, len(keys))
	for i, key := range keys {
		vals[i] = v.Keep(key, creator(&calls))
		if n := calls.Load(); n != int64(i+1) {
			t.Fatalf("after Keep(%#v) create ran %d times in all, want %d: the key shared another key's value", key, n, i+1)
		}
	}
	for i := range vals {
		for j := range i {
			if vals[i] == vals[j] {
				t.Errorf("keys %#v and %#v got the same value %#v", keys[j], keys[i], vals[i])
			}
		}
	}
	// Each key still returns its own value, whatever was kept after it.
	for i, key := range keys {
		if got := v.Keep(key, mustNotCreate(t, key)); got != vals[i] {
			t.Errorf("Keep(%#v) returned %#v, want its own value %#v", key, got, vals[i])
		}
	}
}

func TestValuesConcurrentKeepCreatesOnce(t *testing.T) {
	const goroutines = 32
	var v bus.Values
	var calls atomic.Int64
	start := make(chan struct{})
	got := make([]any, goroutines)
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() {
			<-start
			got[i] = v.Keep(keyA{}, creator(&calls))
		})
	}
	close(start) // release all goroutines at once
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("create ran %d times for %d concurrent Keep calls on one key, want 1", n, goroutines)
	}
	if got[0] == nil {
		t.Fatal("goroutine 0 got nil, want the created value")
	}
	for i, val := range got {
		if val != got[0] {
			t.Errorf("goroutine %d got %#v, goroutine 0 got %#v: want one value for all", i, val, got[0])
		}
	}
}
