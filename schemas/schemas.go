// Package schemas holds the envelope schemas: JSON Schema (Draft
// 2020-12) documents describing the wire form of each Heddle message, for
// other languages, for operators' tools (heddle validate) and for
// contracts.NewSchema. Everything the heddle Decode functions accept, the
// schemas accept (FuzzDecodeTaskMessage and FuzzDecodeTaskResult check
// it); the schemas are looser in a few corners a pattern cannot reach: the
// calendar values of a timestamp without offset, leap seconds, and counts
// beyond the range of an int.
//
// upstream-v1/ beside them keeps the upstream schema v1 documents every
// Heddle SDK speaks, as published.
package schemas

import "embed"

//go:embed *.schema.json
var files embed.FS

func file(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic("schemas: embedded schema missing: " + name) // the build embeds every file named here
	}
	return b
}

// TaskMessage returns the JSON Schema of a TaskMessage. The slice is a
// fresh copy.
func TaskMessage() []byte { return file("task_message.schema.json") }

// TaskResult returns the JSON Schema of a TaskResult. The slice is a fresh
// copy.
func TaskResult() []byte { return file("task_result.schema.json") }

// OrchestratorGoal returns the JSON Schema of an OrchestratorGoal. The
// slice is a fresh copy.
func OrchestratorGoal() []byte { return file("orchestrator_goal.schema.json") }

// DeadLetter returns the JSON Schema of a DeadLetter envelope. The slice
// is a fresh copy.
func DeadLetter() []byte { return file("dead_letter.schema.json") }
