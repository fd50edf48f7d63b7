// Package wire holds the JSON primitives behind package heddle's Decode
// and Encode functions: a validity check and one-pass split of a
// document's top-level members, readers of members by the wire's
// presence rules, a decoder of objects into the values encoding/json
// produces, appenders of escaped strings, objects and timestamps. Each
// message's own decode and encode stay beside the message in package
// heddle; this package never imports it and keeps no package-level
// mutable state.
//
// It re-implements what encoding/json does because the task path calls
// it for every message: BenchmarkWire (package heddle) and
// BenchmarkTaskPath compare it with encoding/json in the same run (see
// BENCHMARKS.md). Every function defers to encoding/json when it cannot
// be sure, so the two always agree; FuzzTaskPathDecodes,
// FuzzDecodeTaskMessage and FuzzTaskPathTime check it against
// encoding/json and time.Parse.
//
// One rule per question: a repeated key counts by its last occurrence,
// as in encoding/json and Python, in the decoder and in every peek at a
// single member.
package wire
