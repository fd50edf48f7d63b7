package emit

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

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
func carrierOf(raw json.RawMessage) map[string]string {
	var buf [4]wire.Member
	members := traceMembers(raw, buf[:0])
	if len(members) == 0 {
		return nil
	}
	carrier := make(map[string]string, len(members))
	for _, m := range members {
		if len(m.Val) < 2 || m.Val[0] != '"' {
			continue
		}
		carrier[traceKey(m.Key)] = jsonString(m.Val)
	}
	return carrier
}

// traceKey returns key as a string, without a copy for the members the
// W3C trace context has.
func traceKey(key []byte) string {
	switch string(key) {
	case "traceparent":
		return "traceparent"
	case "tracestate":
		return "tracestate"
	}
	return string(key)
}

// jsonString decodes tok, a valid JSON string with its quotes, as
// encoding/json does (invalid UTF-8 becomes U+FFFD).
func jsonString(tok []byte) string {
	if inner := tok[1 : len(tok)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	_ = json.Unmarshal(tok, &s) // valid: the object is
	return s
}
