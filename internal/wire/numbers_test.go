package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestNumbersInRangeAgreesWithEncodingJSON: NumbersInRange answers false
// exactly when encoding/json cannot decode a valid JSON value into any.
func TestNumbersInRangeAgreesWithEncodingJSON(t *testing.T) {
	for _, raw := range []string{
		`1`, `-0.5`, `1e3`, `1E+308`, `1.7976931348623157e308`, `1e-999`,
		`{"a":"1e999"}`, `[1,2,{"b":3e2}]`, `"\"1e999"`,
		`1e309`, `-1e309`, `17e0632130`, `{"created_at": 17e0632130}`,
		`[0, 1E400]`, strings.Repeat("9", 310), strings.Repeat("9", 299),
		`{"k\"":1e999}`,
	} {
		if !json.Valid([]byte(raw)) {
			t.Fatalf("test case %q is not JSON", raw)
		}
		var v any
		want := json.Unmarshal([]byte(raw), &v) == nil
		if got := NumbersInRange([]byte(raw)); got != want {
			t.Errorf("NumbersInRange(%.40q) = %v, encoding/json decodes it: %v", raw, got, want)
		}
	}
}

// FuzzNumbersInRange is the test above over any valid JSON.
func FuzzNumbersInRange(f *testing.F) {
	for _, s := range []string{`1e999`, `{"a":[1,2e5,"x"]}`, `-0.0e-10`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		var v any
		want := json.Unmarshal(raw, &v) == nil
		if got := NumbersInRange(raw); got != want {
			t.Fatalf("NumbersInRange(%q) = %v, encoding/json decodes it: %v", raw, got, want)
		}
	})
}
