package wire

import (
	"bytes"
	"unicode/utf8"

	"github.com/heddle-go/heddle/internal/cowmap"
)

// MaxSymbols bounds the strings Symbol keeps. Worker types and tiers
// are few in any mesh, but they come from peers: past the bound a new
// one is returned as a string of its own, as Str returns every string.
const MaxSymbols = 4096

// symbols is the table of strings Symbol shares, read without a lock.
var symbols cowmap.Map[string, string]

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
	if s, ok := symbols.Snapshot()[string(inner)]; ok {
		return s
	}
	if !utf8.Valid(inner) {
		return d.str(name, raw, ok, pr, nil)
	}
	return intern(inner)
}

// intern returns the table's string equal to b, adding it while the table
// has room.
func intern(b []byte) string {
	return symbols.LoadOrCompute(string(b), func() (string, bool) {
		return string(b), symbols.Len() < MaxSymbols
	})
}

// Known returns b as a string: the one of known it equals, without a copy,
// or else a copy of b. For the keys a decoder meets in nearly every
// message (the W3C trace context's, token_usage's).
func Known(b []byte, known ...string) string {
	for _, k := range known {
		if string(b) == k {
			return k
		}
	}
	return string(b)
}
