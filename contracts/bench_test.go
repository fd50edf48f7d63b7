package contracts_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/heddle-go/heddle/contracts"
)

// orderSchema is the contract of a representative worker input: ten
// top-level keys, a nested object, an array of objects, an enum, patterns,
// bounds and two asserted formats. orderPayload satisfies it.
var (
	orderSchema  = readTestdata("schemas/order.json")
	orderPayload = readTestdata("order_payload.json")
)

func readTestdata(name string) string {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		panic(err)
	}
	return string(b)
}

func BenchmarkContractValidateMap(b *testing.B) {
	c, err := contracts.FromJSON([]byte(orderSchema), nil)
	if err != nil {
		b.Fatal(err)
	}
	var payload map[string]any
	if err := json.Unmarshal([]byte(orderPayload), &payload); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.ValidateInput(payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONUnmarshalPayload(b *testing.B) {
	data := []byte(orderPayload)
	b.ReportAllocs()
	for b.Loop() {
		var payload map[string]any
		if err := json.Unmarshal(data, &payload); err != nil {
			b.Fatal(err)
		}
	}
}
