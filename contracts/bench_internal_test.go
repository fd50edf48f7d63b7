package contracts

import (
	"encoding/json"
	"testing"
)

// libraryOnly returns a copy of s without its internal/schemacheck
// checker, so every check goes to the santhosh-tekuri/jsonschema validator.
func libraryOnly(s *Schema) *Schema {
	c := *s
	c.fast = nil
	return &c
}

// BenchmarkContractCheck measures what a worker pays per task to check a
// valid payload against its contract, with the internal/schemacheck
// checker in front of the library (checker=fast) and with the library
// alone (checker=library), in the same run. It is the benchmark that
// justifies keeping internal/schemacheck. form=map is the payload as
// encoding/json decodes it (the worker's path); form=json is the payload's
// JSON text, decoded by the check. Compare the two sides with
//
//	go test -run='^$' -bench='^BenchmarkContractCheck$' -count=5 -benchtime=200ms ./contracts | benchstat -col /checker -
func BenchmarkContractCheck(b *testing.B) {
	cases := []struct{ name, schema, payload string }{
		{"order", "testdata/schemas/order.json", "testdata/order_payload.json"},
		{"kitchen_sink", "testdata/schemas/kitchen_sink.json", "testdata/kitchen_sink_payload.json"},
	}
	for _, tc := range cases {
		fast, err := FromJSON(mustRead(b, tc.schema), nil)
		if err != nil {
			b.Fatal(err)
		}
		if fast.Input().fast == nil {
			b.Fatalf("internal/schemacheck does not cover %s", tc.schema)
		}
		library := New(libraryOnly(fast.Input()), nil)
		raw := json.RawMessage(mustRead(b, tc.payload))
		var decoded map[string]any
		if err := json.Unmarshal(raw, &decoded); err != nil {
			b.Fatal(err)
		}
		for _, form := range []struct {
			name  string
			value any
		}{{"map", decoded}, {"json", raw}} {
			for _, side := range []struct {
				name string
				c    *Contract
			}{{"fast", fast}, {"library", library}} {
				b.Run("payload="+tc.name+"/form="+form.name+"/checker="+side.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if err := side.c.ValidateInput(form.value); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkContractCheckInvalid measures a check that fails and builds the
// violation report, which the library alone produces.
func BenchmarkContractCheckInvalid(b *testing.B) {
	c, err := FromJSON(mustRead(b, "testdata/schemas/order.json"), nil)
	if err != nil {
		b.Fatal(err)
	}
	var bad map[string]any
	if err := json.Unmarshal(mustRead(b, "testdata/order_payload.json"), &bad); err != nil {
		b.Fatal(err)
	}
	bad["currency"] = "JPY"
	b.ReportAllocs()
	for b.Loop() {
		if err := c.ValidateInput(bad); err == nil {
			b.Fatal("valid")
		}
	}
}
