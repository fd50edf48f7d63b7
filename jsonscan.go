package heddle

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"sync/atomic"
	"unicode/utf8"
)

// A small JSON scanner for the hot paths of the wire format: a validity
// check cheaper than json.Valid, and a decoder of objects into the same
// values json.Unmarshal produces. Each defers to encoding/json whenever it
// cannot be sure, so both always agree with it (checked by the tests and
// FuzzTaskPathDecodes).

// decoderValue decodes the JSON value at b[i:] as json.Unmarshal decodes
// into an any (objects as map[string]any, arrays as []any, numbers as
// float64), returning it and the index just past it. b must be valid JSON
// (the callers have checked it), so only a number beyond float64 can
// fail; then ok is false and the caller decodes with encoding/json for its
// exact error.
func decoderValue(b []byte, i int) (v any, next int, ok bool) {
	switch b[i] {
	case '{':
		m := map[string]any{}
		i = skipSpace(b, i+1)
		if b[i] == '}' {
			return m, i + 1, true
		}
		for {
			end := skipString(b, i)
			key := decoderKey(b[i:end])
			i = skipSpace(b, end)
			i = skipSpace(b, i+1) // past ':'
			if v, i, ok = decoderValue(b, i); !ok {
				return nil, 0, false
			}
			m[key] = v
			i = skipSpace(b, i)
			if b[i] == '}' {
				return m, i + 1, true
			}
			i = skipSpace(b, i+1) // past ','
		}
	case '[':
		a := []any{}
		i = skipSpace(b, i+1)
		if b[i] == ']' {
			return a, i + 1, true
		}
		for {
			if v, i, ok = decoderValue(b, i); !ok {
				return nil, 0, false
			}
			a = append(a, v)
			i = skipSpace(b, i)
			if b[i] == ']' {
				return a, i + 1, true
			}
			i = skipSpace(b, i+1) // past ','
		}
	case '"':
		end := skipString(b, i)
		return decoderString(b[i:end]), end, true
	case 't':
		return true, i + 4, true
	case 'f':
		return false, i + 5, true
	case 'n':
		return nil, i + 4, true
	}
	end := skipValue(b, i)
	f, err := strconv.ParseFloat(string(b[i:end]), 64)
	if err != nil {
		return nil, 0, false
	}
	if f >= 0 && f < float64(len(decoderSmallInts)) && f == math.Trunc(f) && !(f == 0 && math.Signbit(f)) {
		return decoderSmallInts[int(f)], end, true
	}
	return f, end, true
}

// decoderSmallInts holds the float64 values 0 to 255 as interface values,
// which decoderValue returns rather than boxing such common numbers again.
var decoderSmallInts = func() (a [256]any) {
	for i := range a {
		a[i] = float64(i)
	}
	return a
}()

// decoderKey decodes tok, an object key with its quotes, as
// decoderString does, sharing the strings of keys seen before (see
// jsonIntern).
func decoderKey(tok []byte) string {
	if inner := tok[1 : len(tok)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return jsonIntern(inner)
	}
	return decoderString(tok)
}

// jsonInternMax is the length of the longest string jsonIntern shares.
const jsonInternMax = 32

// jsonInterned holds recently seen short strings, each in the slot of a
// hash of its bytes: object keys and worker types, which repeat from one
// message to the next. A slot is replaced by the next string that hashes
// to it; a string read from one is immutable like any other.
var jsonInterned [1024]atomic.Pointer[string]

// jsonIntern returns string(b), sharing a string made before for the same
// bytes when it can, so that decoding the same keys again allocates
// nothing.
func jsonIntern(b []byte) string {
	if len(b) == 0 || len(b) > jsonInternMax {
		return string(b)
	}
	h := uint32(2166136261) // FNV-1a
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	slot := &jsonInterned[h%uint32(len(jsonInterned))]
	if p := slot.Load(); p != nil && *p == string(b) {
		return *p
	}
	s := string(b)
	slot.Store(&s)
	return s
}

// decoderString decodes tok, a valid JSON string with its quotes, as
// json.Unmarshal does (invalid UTF-8 becomes U+FFFD).
func decoderString(tok []byte) string {
	if inner := tok[1 : len(tok)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	_ = json.Unmarshal(tok, &s) // valid: the document is
	return s
}

// decoderObject decodes raw, a valid JSON object, into a map exactly as
// json.Unmarshal does, with its error when it fails.
func decoderObject(raw []byte) (map[string]any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		if v, end, ok := decoderValue(raw, 0); ok && end == len(raw) {
			return v.(map[string]any), nil
		}
	}
	var m map[string]any
	err := json.Unmarshal(raw, &m)
	return m, err
}

// decoderMaxFastDepth bounds the nesting decoderValid checks itself;
// deeper documents are left to json.Valid.
const decoderMaxFastDepth = 500

// decoderValid reports whether data is surely valid JSON by the rules of
// json.Valid; false means only "not sure", and json.Valid decides.
func decoderValid(data []byte) bool {
	var big bool
	i, ok := decoderValidValue(data, skipSpace(data, 0), 0, &big)
	return ok && skipSpace(data, i) == len(data)
}

// decoderSplitValid checks data as decoderValid does and, when it is an
// object, splits it into its members (as splitObject would) in the same
// pass, appending them to dst. ok false means only "not sure, or not an
// object": the caller then checks with decoderValid or json.Valid and
// splits with splitObject. *big is set when some number in data has an
// exponent or 300 characters or more (see decoderNumbersFit).
func decoderSplitValid(data []byte, dst []member, big *bool) (_ []member, ok bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return dst, false
	}
	if i = skipSpace(data, i+1); i < len(data) && data[i] == '}' {
		return dst, skipSpace(data, i+1) == len(data)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return dst, false
		}
		start := i
		if i, ok = decoderValidString(data, i); !ok {
			return dst, false
		}
		key := data[start+1 : i-1]
		if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
			key = []byte(decoderString(data[start:i]))
		}
		if i = skipSpace(data, i); i >= len(data) || data[i] != ':' {
			return dst, false
		}
		vstart := skipSpace(data, i+1)
		if i, ok = decoderValidValue(data, vstart, 1, big); !ok {
			return dst, false
		}
		dst = append(dst, member{key: key, val: data[vstart:i]})
		if i = skipSpace(data, i); i >= len(data) {
			return dst, false
		}
		switch data[i] {
		case '}':
			return dst, skipSpace(data, i+1) == len(data)
		case ',':
			i = skipSpace(data, i+1)
		default:
			return dst, false
		}
	}
}

// decoderValidValue checks the value starting at b[i] and returns the
// index just past it; *big is set as decoderSplitValid says.
func decoderValidValue(b []byte, i, depth int, big *bool) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	ok := true
	switch c := b[i]; {
	case c == '{':
		if depth >= decoderMaxFastDepth {
			return i, false
		}
		if i = skipSpace(b, i+1); i < len(b) && b[i] == '}' {
			return i + 1, true
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return i, false
			}
			if i, ok = decoderValidString(b, i); !ok {
				return i, false
			}
			if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
				return i, false
			}
			if i, ok = decoderValidValue(b, skipSpace(b, i+1), depth+1, big); !ok {
				return i, false
			}
			if i = skipSpace(b, i); i >= len(b) {
				return i, false
			}
			switch b[i] {
			case '}':
				return i + 1, true
			case ',':
				i = skipSpace(b, i+1)
			default:
				return i, false
			}
		}
	case c == '[':
		if depth >= decoderMaxFastDepth {
			return i, false
		}
		if i = skipSpace(b, i+1); i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			if i, ok = decoderValidValue(b, i, depth+1, big); !ok {
				return i, false
			}
			if i = skipSpace(b, i); i >= len(b) {
				return i, false
			}
			switch b[i] {
			case ']':
				return i + 1, true
			case ',':
				i = skipSpace(b, i+1)
			default:
				return i, false
			}
		}
	case c == '"':
		return decoderValidString(b, i)
	case c == 't':
		return i + 4, bytes.HasPrefix(b[i:], []byte("true"))
	case c == 'f':
		return i + 5, bytes.HasPrefix(b[i:], []byte("false"))
	case c == 'n':
		return i + 4, bytes.HasPrefix(b[i:], []byte("null"))
	case c == '-' || c >= '0' && c <= '9':
		end, ok := decoderValidNumber(b, i)
		if ok && (end-i >= 300 || bytes.IndexAny(b[i:end], "eE") >= 0) {
			*big = true
		}
		return end, ok
	}
	return i, false
}

// decoderValidString checks the string starting at b[i] (a '"').
func decoderValidString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			if i++; i >= len(b) {
				return i, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return i, false
				}
				for _, h := range b[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return i, false
					}
				}
				i += 4
			default:
				return i, false
			}
		}
	}
	return i, false
}

// decoderValidNumber checks the number starting at b[i].
func decoderValidNumber(b []byte, i int) (int, bool) {
	digits := func(i int) int {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(i + 1)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}
