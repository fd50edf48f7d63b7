package workertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
)

// decodeJSON decodes data keeping numbers exact (json.Number).
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

// normalize turns any value into the form decodeJSON gives, so that a
// case written in Go (ints, structs) compares with one read from a file.
func normalize(v any) (any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return decodeJSON(data)
}

// clonePayload copies a payload deeply enough that a task the kit sends
// never shares a map with a case.
func clonePayload(p map[string]any) map[string]any {
	out := make(map[string]any, len(p))
	for k, v := range p {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return clonePayload(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cloneValue(e)
		}
		return out
	}
	return v
}

// compact returns raw JSON on one line, or what a value encodes to.
func compact(v any) string {
	var data []byte
	switch v := v.(type) {
	case json.RawMessage:
		data = v
	case []byte:
		data = v
	default:
		var err error
		if data, err = json.Marshal(v); err != nil {
			return fmt.Sprint(v)
		}
	}
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return string(data)
	}
	return b.String()
}

// canonical returns raw JSON in one form whatever its key order and
// number spelling: keys sorted, numbers as exact rationals.
func canonical(raw json.RawMessage) string {
	v, err := decodeJSON(raw)
	if err != nil {
		return string(raw)
	}
	var b strings.Builder
	writeCanonical(&b, v)
	return b.String()
}

func writeCanonical(b *strings.Builder, v any) {
	switch v := v.(type) {
	case map[string]any:
		b.WriteByte('{')
		for i, k := range slices.Sorted(maps.Keys(v)) {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(b, "%q:", k)
			writeCanonical(b, v[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, e)
		}
		b.WriteByte(']')
	case json.Number:
		if r, ok := new(big.Rat).SetString(string(v)); ok {
			b.WriteString(r.RatString())
			return
		}
		b.WriteString(string(v))
	default:
		b.WriteString(compact(v))
	}
}

// diff lists how got differs from want, one line per JSON Pointer. With
// subset, keys of got objects that want does not list are not differences.
func diff(want, got any, subset bool) []string {
	var out []string
	diffAt(&out, "", want, got, subset)
	return out
}

func diffAt(out *[]string, path string, want, got any, subset bool) {
	at := path
	if at == "" {
		at = "(root)"
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			*out = append(*out, fmt.Sprintf("%s: got %s, want an object %s", at, compact(got), compact(want)))
			return
		}
		for _, k := range slices.Sorted(maps.Keys(w)) {
			p := path + "/" + escapePointer(k)
			gv, ok := g[k]
			if !ok {
				*out = append(*out, fmt.Sprintf("%s: missing, want %s", p, compact(w[k])))
				continue
			}
			diffAt(out, p, w[k], gv, subset)
		}
		if subset {
			return
		}
		for _, k := range slices.Sorted(maps.Keys(g)) {
			if _, ok := w[k]; !ok {
				*out = append(*out, fmt.Sprintf("%s/%s: got %s, want no such field", path, escapePointer(k), compact(g[k])))
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			*out = append(*out, fmt.Sprintf("%s: got %s, want an array %s", at, compact(got), compact(want)))
			return
		}
		for i := range max(len(w), len(g)) {
			p := fmt.Sprintf("%s/%d", path, i)
			switch {
			case i >= len(g):
				*out = append(*out, fmt.Sprintf("%s: missing, want %s", p, compact(w[i])))
			case i >= len(w):
				*out = append(*out, fmt.Sprintf("%s: got %s, want no such element", p, compact(g[i])))
			default:
				diffAt(out, p, w[i], g[i], subset)
			}
		}
	default:
		if !sameScalar(want, got) {
			*out = append(*out, fmt.Sprintf("%s: got %s, want %s", at, compact(got), compact(want)))
		}
	}
}

// sameScalar compares two decoded scalars, numbers by value.
func sameScalar(a, b any) bool {
	an, aok := a.(json.Number)
	bn, bok := b.(json.Number)
	if aok && bok {
		x, xok := new(big.Rat).SetString(string(an))
		y, yok := new(big.Rat).SetString(string(bn))
		if xok && yok {
			return x.Cmp(y) == 0
		}
		return an == bn
	}
	return a == b
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
