// Package cowmap is a map for values computed once per key and then read
// on hot paths: a read is one atomic load and a map lookup, without a
// lock; an addition copies the map under a mutex. It suits small key sets
// that stop growing: event names, worker types and tiers, Go types.
package cowmap

import (
	"maps"
	"sync"
	"sync/atomic"
)

// Map is a copy-on-write map from K to V. The zero Map is empty and ready
// to use; a Map must not be copied after first use.
type Map[K comparable, V any] struct {
	mu sync.Mutex // serialises additions
	m  atomic.Pointer[map[K]V]
}

// Load returns the value kept for k.
func (c *Map[K, V]) Load(k K) (V, bool) {
	if m := c.m.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// LoadOrCompute returns the value kept for k or, when there is none, the
// one compute returns, which is kept when keep is true. compute runs under
// the Map's lock, so at most once per kept key.
func (c *Map[K, V]) LoadOrCompute(k K, compute func() (v V, keep bool)) V {
	if v, ok := c.Load(k); ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	v, keep := compute()
	if !keep {
		return v
	}
	next := make(map[K]V, 1)
	if old != nil {
		next = maps.Clone(*old)
	}
	next[k] = v
	c.m.Store(&next)
	return v
}

// Snapshot returns the map as it is now, to be read and never written:
// for a lookup the generic Load cannot make without a copy of its key
// (m[string(b)] of a []byte b).
func (c *Map[K, V]) Snapshot() map[K]V {
	if m := c.m.Load(); m != nil {
		return *m
	}
	return nil
}

// Len returns how many values the Map keeps.
func (c *Map[K, V]) Len() int {
	if m := c.m.Load(); m != nil {
		return len(*m)
	}
	return 0
}
