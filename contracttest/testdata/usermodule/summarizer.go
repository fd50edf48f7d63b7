// Package summarizer is a user's worker, in a module of its own that
// depends on Heddle, tested with Heddle's test kit as any user would.
package summarizer

import (
	"context"
	"strings"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/worker"
)

// In is the summarizer's input contract.
type In struct {
	Text     string `json:"text" jsonschema:"minLength=1"`
	MaxWords int    `json:"max_words,omitempty" jsonschema:"minimum=0"`
}

// Out is its output contract.
type Out struct {
	Summary string `json:"summary"`
	Words   int    `json:"words"`
}

// Summarize keeps the first MaxWords words of the text (all without it).
func Summarize(_ context.Context, in In) (Out, error) {
	words := strings.Fields(in.Text)
	if in.MaxWords > 0 && len(words) > in.MaxWords {
		words = words[:in.MaxWords]
	}
	return Out{Summary: strings.Join(words, " "), Words: len(words)}, nil
}

// New makes the summarize worker on b; main and the tests share it.
func New(b bus.Bus, opts ...heddle.Option) (*worker.Worker, error) {
	return worker.New(b, "summarize", Summarize, worker.Config{}, opts...)
}
