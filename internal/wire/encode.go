package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

func AppendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return AppendString(b, s)
}

// AppendObject writes m as a JSON object; nil is null when nullable, {}
// otherwise.
func AppendObject(b []byte, m map[string]any, nullable bool) ([]byte, error) {
	if m == nil {
		if nullable {
			return append(b, "null"...), nil
		}
		return append(b, "{}"...), nil
	}
	if out, ok := AppendValue(b, m, 0); ok {
		return out, nil
	}
	enc, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return append(b, enc...), nil
}

// maxAppendDepth bounds the nesting AppendValue writes itself;
// deeper values (and cycles) are left to encoding/json.
const maxAppendDepth = 64

// AppendValue appends v as json.Marshal writes it, for the values a
// decoded JSON document holds (map[string]any, []any, string, float64,
// bool, nil). ok is false, with b's contents beyond its length undefined,
// for anything else: other types, infinities and NaN, nesting deeper than
// maxAppendDepth. The caller then uses json.Marshal.
func AppendValue(b []byte, v any, depth int) (_ []byte, ok bool) {
	if depth > maxAppendDepth {
		return b, false
	}
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), true
	case string:
		return appendHTMLString(b, v), true
	case bool:
		return strconv.AppendBool(b, v), true
	case float64:
		return appendFloat(b, v)
	case json.Number:
		// Written as given, once it is sure to be a JSON number.
		if end, ok := validNumber([]byte(v), 0); !ok || end != len(v) {
			return b, false
		}
		return append(b, v...), true
	case map[string]any:
		if v == nil {
			return append(b, "null"...), true
		}
		var keyBuf [16]string
		keys := keyBuf[:0]
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendHTMLString(b, k)
			b = append(b, ':')
			if b, ok = AppendValue(b, v[k], depth+1); !ok {
				return b, false
			}
		}
		return append(b, '}'), true
	case []any:
		if v == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = AppendValue(b, e, depth+1); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	}
	return b, false
}

// appendFloat writes f as encoding/json does.
func appendFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

// appendHTMLString writes s as json.Marshal does: as AppendString,
// and also <, > and & escaped, and \b and \f in their short forms.
func appendHTMLString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<', '>', '&', '\b', '\f':
			return appendHTMLStringSlow(b, s)
		}
	}
	return AppendString(b, s)
}

func appendHTMLStringSlow(b []byte, s string) []byte {
	enc, _ := json.Marshal(s) // a string always encodes
	return append(b, enc...)
}

// AppendExtra writes the unknown fields (sorted, skipping any that shadow a
// known field) and closes the object.
func AppendExtra(b []byte, extra map[string]json.RawMessage, known []string) ([]byte, error) {
	if len(extra) > 0 {
		keys := make([]string, 0, len(extra))
		for k := range extra {
			if !slices.Contains(known, k) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := extra[k]
			if !json.Valid(v) {
				return nil, fmt.Errorf("heddle: extra field %q is not valid JSON", k)
			}
			b = append(b, ',')
			b = AppendString(b, k)
			b = append(b, ':')
			b = append(b, bytes.TrimSpace(v)...)
		}
	}
	return append(b, '}'), nil
}

const hexDigits = "0123456789abcdef"

// AppendString writes s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does; HTML characters are left as they are.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
