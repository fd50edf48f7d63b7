package wire

import (
	"bytes"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// MaxSymbols bounds the strings Symbol keeps. Worker types and tiers
// are few in any mesh, but they come from peers: past the bound a new
// one is returned as a string of its own, as Str returns every string.
const MaxSymbols = 4096

// symbols is the table of strings Symbol shares: read without a lock
// (one atomic load and a map lookup that does not copy the key), grown
// under mu by a copy.
var symbols struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]string]
}

// Symbol is Str for a field whose values repeat from message to message
// (worker_type): a value without escapes is read from a shared table, so
// that decoding it allocates nothing once it has been seen.
func (d *Decoder) Symbol(name string, pr Presence) string {
	raw, ok := d.Take(name)
	if !ok || KindOf(raw) != kindString || len(raw) < 3 {
		// Absent, null, not a string or empty: str says what is wrong.
		return d.str(name, raw, ok, pr, nil)
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') >= 0 {
		return d.str(name, raw, ok, pr, nil)
	}
	if m := symbols.m.Load(); m != nil {
		if s, ok := (*m)[string(inner)]; ok {
			return s
		}
	}
	if !utf8.Valid(inner) {
		return d.str(name, raw, ok, pr, nil)
	}
	return intern(inner)
}

// intern returns the table's string equal to b, adding it while the table
// has room.
func intern(b []byte) string {
	symbols.mu.Lock()
	defer symbols.mu.Unlock()
	old := symbols.m.Load()
	if old != nil {
		if s, ok := (*old)[string(b)]; ok {
			return s
		}
		if len(*old) >= MaxSymbols {
			return string(b)
		}
	}
	next := make(map[string]string, 1)
	if old != nil {
		next = make(map[string]string, len(*old)+1)
		for k, v := range *old {
			next[k] = v
		}
	}
	s := string(b)
	next[s] = s
	symbols.m.Store(&next)
	return s
}
