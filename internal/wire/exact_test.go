package wire

import (
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
)

// sameButExact requires exact (from DecodeExact) to equal loose (from
// DecodeAny) except where exact holds a json.Number, which must be the
// float64 loose holds, read at full precision.
func sameButExact(t *testing.T, exact, loose any) {
	t.Helper()
	switch e := exact.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(e), 64)
		if err != nil || loose != any(f) {
			t.Fatalf("json.Number %s, DecodeAny has %#v", e, loose)
		}
		if !bigInteger([]byte(e)) {
			t.Fatalf("json.Number %s for a number a float64 holds exactly", e)
		}
	case map[string]any:
		l, ok := loose.(map[string]any)
		if !ok || len(l) != len(e) {
			t.Fatalf("object %#v, DecodeAny has %#v", e, loose)
		}
		for k, v := range e {
			sameButExact(t, v, l[k])
		}
	case []any:
		l, ok := loose.([]any)
		if !ok || len(l) != len(e) {
			t.Fatalf("array %#v, DecodeAny has %#v", e, loose)
		}
		for i := range e {
			sameButExact(t, e[i], l[i])
		}
	default:
		if !reflect.DeepEqual(exact, loose) {
			t.Fatalf("%#v, DecodeAny has %#v", exact, loose)
		}
	}
}

func checkExact(t *testing.T, data []byte) {
	exact, err := DecodeExact(data)
	if !json.Valid(data) {
		if err == nil {
			t.Fatalf("DecodeExact(%q) = %#v for invalid JSON", data, exact)
		}
		return
	}
	if err != nil {
		t.Fatalf("DecodeExact(%q) = %v for valid JSON", data, err)
	}
	// DecodeAny takes valid JSON only, and fails on a number beyond
	// float64.
	if loose, err := DecodeAny(data); err == nil {
		sameButExact(t, exact, loose)
	}
	// Written back, read again and written again, the text is the same:
	// big integers keep every digit.
	out := appendOrMarshal(t, exact)
	again, err := DecodeExact(out)
	if err != nil {
		t.Fatalf("DecodeExact(%s) = %v", out, err)
	}
	if out2 := appendOrMarshal(t, again); string(out2) != string(out) {
		t.Fatalf("round trip of %q: %s, then %s", data, out, out2)
	}
}

func appendOrMarshal(t *testing.T, v any) []byte {
	t.Helper()
	if out, ok := AppendValue(nil, v, 0); ok {
		return out
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%#v does not encode: %v", v, err)
	}
	return out
}

func TestDecodeExactKeepsBigIntegersAndAgreesWithDecodeAnyElsewhere(t *testing.T) {
	for _, doc := range []string{
		`{"id":9223372036854775801,"n":12,"f":1.5,"small":123456789012345,"neg":-1234567890123456789}`,
		`[18446744073709551616, 1e300, -0, 0.1, "9223372036854775807"]`,
		`{"deep":{"a":[{"b":100000000000000000000000000001}]}}`,
		`1e400`,
	} {
		t.Run(doc, func(t *testing.T) { checkExact(t, []byte(doc)) })
	}
	v, err := DecodeExact([]byte(`{"id":9223372036854775801}`))
	if err != nil || v.(map[string]any)["id"] != json.Number("9223372036854775801") {
		t.Errorf("DecodeExact = %#v, %v", v, err)
	}
}

// FuzzDecodeExact checks DecodeExact against DecodeAny (itself checked
// against encoding/json) and its own round trip.
func FuzzDecodeExact(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[9007199254740993]`, `{"x":-12345678901234567890,"y":[1.0,2e3]}`, `"s"`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkExact(t, data) })
}
