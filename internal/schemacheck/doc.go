// Package schemacheck answers one question about a value — does it
// satisfy a JSON Schema compiled by github.com/santhosh-tekuri/jsonschema/v5?
// — without building errors and allocating almost nothing. Package
// contracts asks it first on every contract check and asks the library
// whenever the answer is not a decided "valid", so the library alone
// writes violation reports.
//
// It re-implements part of that library, which this module allows only
// where the library costs more than 15% on a user-visible path; here the
// path is a worker checking a valid task payload against its contract. The
// benchmark is BenchmarkContractCheck in package contracts, which checks
// the same payloads with this checker in front of the library and with the
// library alone. One run (go test -run='^$'
// -bench='^BenchmarkContractCheck$' -count=5 -benchtime=200ms ./contracts,
// medians, 2-core Xeon) measured:
//
//	schema and payload   form   this checker   library alone
//	order                map       1.31 µs        16.3 µs   (+1141%)
//	order                JSON      5.78 µs        28.7 µs   (+396%)
//	kitchen sink         map       7.81 µs        61.1 µs   (+682%)
//	kitchen sink         JSON      25.9 µs        79.0 µs   (+205%)
//
// The payloads are contracts' testdata: order_payload.json against
// schemas/order.json, kitchen_sink_payload.json against
// schemas/kitchen_sink.json. "map" is the payload as encoding/json decodes
// it, which is what a worker holds; "JSON" includes decoding the text.
//
// A Checker decides only where it is sure to agree with the library. A
// schema using a keyword it does not implement gets no Checker (New
// returns nil), and a value of a type it does not handle, or a long chain
// of in-place references, leaves a check undecided. FuzzValid and
// FuzzValidSchema compare it with the library on fuzzed values and
// schemas, seeded with the schemas and instances in contracts' testdata.
package schemacheck
