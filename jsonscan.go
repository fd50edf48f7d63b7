package heddle

import (
	"bytes"
	"encoding/json"
	"strconv"
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
			key := decoderString(b[i:end])
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
	return f, end, true
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
	i, ok := decoderValidValue(data, skipSpace(data, 0), 0)
	return ok && skipSpace(data, i) == len(data)
}

// decoderValidValue checks the value starting at b[i] and returns the
// index just past it.
func decoderValidValue(b []byte, i, depth int) (int, bool) {
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
			if i, ok = decoderValidValue(b, skipSpace(b, i+1), depth+1); !ok {
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
			if i, ok = decoderValidValue(b, i, depth+1); !ok {
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
		return decoderValidNumber(b, i)
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
