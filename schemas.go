package heddle

import (
	"embed"
	"path"
)

// The envelope schemas are JSON Schema (Draft 2020-12) documents describing
// the wire form of each message type, for other languages, for operators'
// tools (heddle validate) and for contracts.NewSchema. Everything the
// Decode functions accept, the schemas accept (FuzzDecodeTaskMessage and
// FuzzDecodeTaskResult check it); the schemas are looser in a few corners
// a pattern cannot reach: the calendar values of a timestamp without
// offset, leap seconds, and counts beyond the range of an int. The files
// live in schemas/ in the module.
//
//go:embed schemas/*.schema.json
var schemaFS embed.FS

func schemaFile(name string) []byte {
	b, err := schemaFS.ReadFile(path.Join("schemas", name))
	if err != nil {
		panic("heddle: embedded schema missing: " + name) // the build embeds every file named here
	}
	return b
}

// TaskMessageSchema returns the JSON Schema of a TaskMessage. The slice is
// a fresh copy.
func TaskMessageSchema() []byte { return schemaFile("task_message.schema.json") }

// TaskResultSchema returns the JSON Schema of a TaskResult. The slice is a
// fresh copy.
func TaskResultSchema() []byte { return schemaFile("task_result.schema.json") }

// OrchestratorGoalSchema returns the JSON Schema of an OrchestratorGoal.
// The slice is a fresh copy.
func OrchestratorGoalSchema() []byte { return schemaFile("orchestrator_goal.schema.json") }

// DeadLetterSchema returns the JSON Schema of a DeadLetter envelope. The
// slice is a fresh copy.
func DeadLetterSchema() []byte { return schemaFile("dead_letter.schema.json") }
