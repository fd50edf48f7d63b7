package wire

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// A small JSON scanner for the hot paths of the wire format: a validity
// check cheaper than json.Valid, and a Decoder of objects into the same
// values json.Unmarshal produces. Each defers to encoding/json whenever it
// cannot be sure, so both always agree with it (checked by the tests and
// FuzzTaskPathDecodes).

// Value decodes the JSON value at b[i:] as json.Unmarshal decodes
// into an any (objects as map[string]any, arrays as []any, numbers as
// float64), returning it and the index just past it. b must be valid JSON
// (the callers have checked it), so only a number beyond float64 can
// fail; then ok is false and the caller decodes with encoding/json for its
// exact error.
func Value(b []byte, i int) (v any, next int, ok bool) { return value(b, i, false) }

// value is Value; exact keeps an integer of more than 15 digits, which a
// float64 may round, as a json.Number holding its text.
func value(b []byte, i int, exact bool) (v any, next int, ok bool) {
	switch b[i] {
	case '{':
		m := map[string]any{}
		i = skipSpace(b, i+1)
		if b[i] == '}' {
			return m, i + 1, true
		}
		for {
			end := skipString(b, i)
			key := unquote(b[i:end])
			i = skipSpace(b, end)
			i = skipSpace(b, i+1) // past ':'
			if v, i, ok = value(b, i, exact); !ok {
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
			if v, i, ok = value(b, i, exact); !ok {
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
		return unquote(b[i:end]), end, true
	case 't':
		return true, i + 4, true
	case 'f':
		return false, i + 5, true
	case 'n':
		return nil, i + 4, true
	}
	end := skipValue(b, i)
	if exact && bigInteger(b[i:end]) {
		return json.Number(b[i:end]), end, true
	}
	f, err := strconv.ParseFloat(string(b[i:end]), 64)
	if err != nil {
		return nil, 0, false
	}
	if f >= 0 && f < float64(len(smallInts)) && f == math.Trunc(f) && !(f == 0 && math.Signbit(f)) {
		return smallInts[int(f)], end, true
	}
	return f, end, true
}

// smallInts holds the float64 values 0 to 255 as interface values,
// which Value returns rather than boxing such common numbers again.
var smallInts = func() (a [256]any) {
	for i := range a {
		a[i] = float64(i)
	}
	return a
}()

// Unquote decodes tok, a valid JSON string with its quotes, as
// json.Unmarshal does (invalid UTF-8 becomes U+FFFD).
func Unquote(tok []byte) string { return unquote(tok) }

func unquote(tok []byte) string {
	if inner := tok[1 : len(tok)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	_ = json.Unmarshal(tok, &s) // valid: the document is
	return s
}

// trimSpace drops JSON's white space (and no other) from both ends of b,
// without the cutset bytes.Trim builds per call.
func trimSpace(b []byte) []byte {
	i := skipSpace(b, 0)
	j := len(b)
	for j > i && (b[j-1] == ' ' || b[j-1] == '\t' || b[j-1] == '\n' || b[j-1] == '\r') {
		j--
	}
	return b[i:j]
}

// Object decodes raw, a valid JSON object, into a map exactly as
// json.Unmarshal does, with its error when it fails.
func Object(raw []byte) (map[string]any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		if v, end, ok := Value(raw, 0); ok && end == len(raw) {
			return v.(map[string]any), nil
		}
	}
	var m map[string]any
	err := json.Unmarshal(raw, &m)
	return m, err
}

// maxFastDepth bounds the nesting valid checks itself;
// deeper documents are left to json.Valid.
const maxFastDepth = 500

// Valid reports whether data is surely valid JSON by the rules of
// json.Valid; false means only "not sure", and json.Valid decides.
func Valid(data []byte) bool {
	var big bool
	i, ok := validValue(data, skipSpace(data, 0), 0, &big)
	return ok && skipSpace(data, i) == len(data)
}

// SplitValid checks data as valid does and, when it is an
// object, splits it into its members (as SplitObject would) in the same
// pass, appending them to dst. ok false means only "not sure, or not an
// object": the caller then checks with valid or json.Valid and
// splits with SplitObject. *big is set when some number in data has an
// exponent or 300 characters or more (see NumbersFit).
func SplitValid(data []byte, dst []Member, big *bool) (_ []Member, ok bool) {
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
		// A key of printable ASCII without escapes (every key of Heddle's
		// messages) is checked and taken in one pass; any other goes
		// through validString and unquote.
		j := i + 1
		for j < len(data) && data[j] >= 0x20 && data[j] < 0x80 && data[j] != '"' && data[j] != '\\' {
			j++
		}
		var key []byte
		if j < len(data) && data[j] == '"' {
			key, i = data[start+1:j], j+1
		} else {
			if i, ok = validString(data, i); !ok {
				return dst, false
			}
			key = data[start+1 : i-1]
			if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
				key = []byte(unquote(data[start:i]))
			}
		}
		if i = skipSpace(data, i); i >= len(data) || data[i] != ':' {
			return dst, false
		}
		vstart := skipSpace(data, i+1)
		if i, ok = validValue(data, vstart, 1, big); !ok {
			return dst, false
		}
		dst = append(dst, Member{Key: key, Val: data[vstart:i]})
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

// validValue checks the value starting at b[i] and returns the
// index just past it; *big is set as SplitValid says.
func validValue(b []byte, i, depth int, big *bool) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	ok := true
	switch c := b[i]; {
	case c == '{':
		if depth >= maxFastDepth {
			return i, false
		}
		if i = skipSpace(b, i+1); i < len(b) && b[i] == '}' {
			return i + 1, true
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return i, false
			}
			if i, ok = validString(b, i); !ok {
				return i, false
			}
			if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
				return i, false
			}
			if i, ok = validValue(b, skipSpace(b, i+1), depth+1, big); !ok {
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
		if depth >= maxFastDepth {
			return i, false
		}
		if i = skipSpace(b, i+1); i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			if i, ok = validValue(b, i, depth+1, big); !ok {
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
		return validString(b, i)
	case c == 't':
		return i + 4, bytes.HasPrefix(b[i:], []byte("true"))
	case c == 'f':
		return i + 5, bytes.HasPrefix(b[i:], []byte("false"))
	case c == 'n':
		return i + 4, bytes.HasPrefix(b[i:], []byte("null"))
	case c == '-' || c >= '0' && c <= '9':
		end, ok := validNumber(b, i)
		if ok && (end-i >= 300 || bytes.ContainsAny(b[i:end], "eE")) {
			*big = true
		}
		return end, ok
	}
	return i, false
}

// validString checks the string starting at b[i] (a '"').
func validString(b []byte, i int) (int, bool) {
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

// validNumber checks the number starting at b[i].
func validNumber(b []byte, i int) (int, bool) {
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

// bigInteger reports whether num, a JSON number, is an integer beyond
// 2^53 in magnitude, which a float64 may not hold exactly.
func bigInteger(num []byte) bool {
	digits := 0
	for _, c := range num {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '-':
		default:
			return false
		}
	}
	if digits <= 15 {
		return false
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	return err != nil || n > 1<<53 || n < -(1<<53)
}

// DecodeExact decodes b, a JSON value, as DecodeAny does, except that an
// integer of more than 15 digits becomes a json.Number holding its text,
// so that it is written back exactly (AppendValue writes json.Number
// verbatim). A worker reads its handler's output so.
func DecodeExact(b []byte) (any, error) {
	b = trimSpace(b) // JSON's white space, no other
	if len(b) > 0 && Valid(b) {
		if v, end, ok := value(b, 0, true); ok && end == len(b) {
			return v, nil
		}
	}
	var v any
	if !json.Valid(b) {
		err := json.Unmarshal(b, &v)
		return nil, err
	}
	// A number beyond float64 somewhere: read every number as text, then
	// keep as text only the big integers and those beyond float64.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return floatsWherePossible(v), nil
}

// floatsWherePossible turns the json.Numbers of v that a float64 holds
// exactly into float64s, as value does.
func floatsWherePossible(v any) any {
	switch v := v.(type) {
	case json.Number:
		if bigInteger([]byte(v)) {
			return v
		}
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			return f
		}
		return v
	case map[string]any:
		for k, e := range v {
			v[k] = floatsWherePossible(e)
		}
	case []any:
		for i, e := range v {
			v[i] = floatsWherePossible(e)
		}
	}
	return v
}

// DecodeAny decodes b, a JSON value, as json.Unmarshal decodes into an any.
func DecodeAny(b []byte) (any, error) {
	if v, end, ok := Value(b, 0); ok && end == len(b) {
		return v, nil
	}
	var v any
	err := json.Unmarshal(b, &v)
	return v, err
}
