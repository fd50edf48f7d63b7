package contracts

import (
	"encoding/json"
	"testing"
)

// BenchmarkValidatePayloadPaths measures the two ways a valid payload can
// be checked: the fast checker (what Validate does first) and the
// santhosh-tekuri/jsonschema validator alone (what Validate falls back to,
// and what reports violations).
func BenchmarkValidatePayloadPaths(b *testing.B) {
	s, err := NewSchema(mustRead(b, "testdata/schemas/order.json"))
	if err != nil {
		b.Fatal(err)
	}
	var payload map[string]any
	if err := json.Unmarshal(mustRead(b, "testdata/order_payload.json"), &payload); err != nil {
		b.Fatal(err)
	}
	b.Run("fast_checker", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ok, decided := fastValid(s.fast, payload); !ok || !decided {
				b.Fatal("not valid")
			}
		}
	})
	b.Run("library_only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.compiled.Validate(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("validate_invalid_payload_with_report", func(b *testing.B) {
		bad := map[string]any{}
		for k, v := range payload {
			bad[k] = v
		}
		bad["currency"] = "JPY"
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Validate(bad); err == nil {
				b.Fatal("valid")
			}
		}
	})
}
