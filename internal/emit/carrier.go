package emit

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/heddle-go/heddle/internal/wire"
)

// traceMembers returns the members of a _trace_context value, appended to
// dst, or nil when raw is not a JSON object. The values are raw JSON, as
// they lie in raw.
func traceMembers(raw json.RawMessage, dst []wire.Member) []wire.Member {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '{' || !wire.Valid(raw) {
		return nil
	}
	return wire.SplitObject(raw, dst)
}

// carrierOf reads a _trace_context object's string members, as
// encoding/json would into a map of raw values (the last of a repeated
// key wins); members of other types are left out.
//
// The map comes from carriers; the caller gives it back with putCarrier.
func carrierOf(raw json.RawMessage) map[string]string {
	var buf [4]wire.Member
	members := traceMembers(raw, buf[:0])
	if len(members) == 0 {
		return nil
	}
	carrier := getCarrier()
	for _, m := range members {
		if len(m.Val) < 2 || m.Val[0] != '"' {
			// Not a string: left out, and a string of the same name
			// before it too (the last of a repeated name wins).
			delete(carrier, string(m.Key))
			continue
		}
		carrier[traceKey(m.Key)] = wire.Unquote(m.Val)
	}
	return carrier
}

// carriers keeps the maps handed to a propagator for reuse (the
// event.Propagator contract gives them back when its call returns), so
// that a traced task's trace context costs no map.
var carriers = sync.Pool{New: func() any { return make(map[string]string, 2) }}

func getCarrier() map[string]string { return carriers.Get().(map[string]string) }

// maxPooledCarrier bounds the maps kept: a peer's _trace_context may hold
// many members.
const maxPooledCarrier = 8

// putCarrier empties c and keeps it for reuse.
func putCarrier(c map[string]string) {
	if c == nil || len(c) > maxPooledCarrier {
		return
	}
	clear(c)
	carriers.Put(c)
}

// traceKey returns key as a string, without a copy for the members of the
// W3C trace context.
func traceKey(key []byte) string { return wire.Known(key, "traceparent", "tracestate") }
