package heddle

import (
	"embed"
	"path"
)

// The envelope schemas are JSON Schema (Draft 2020-12) documents describing
// the wire form of each message type, for other languages, for operators'
// tools (heddle validate) and for contracts.NewSchema. They accept exactly
// what the Decode functions accept, with two differences of degree: the
// schemas check a timestamp's shape where the decoders also check its
// calendar values, and "type": "integer" admits 2.0 where the decoders
// require an integer literal. The files live in schemas/ in the module.
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
