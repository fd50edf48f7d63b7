package worker

import (
	"context"
	"maps"
	"sync"

	"github.com/heddle-go/heddle"
)

// Usage is what a handler reports about the work it did, for its
// TaskResult: the model that did it (model_used), the tokens it took by
// kind (token_usage: prompt_tokens, completion_tokens, ...) and metadata
// for the result's metadata object.
type Usage struct {
	Model    string
	Tokens   map[string]int
	Metadata map[string]any
}

// Report records u for the result of the task whose handler ctx belongs
// to: Model replaces what an earlier call gave, Tokens are added to and
// Metadata merged into what earlier calls gave. It is safe for concurrent
// use and reports false when ctx is not a handler's context. Without a
// report, a result says, as the Python Heddle's processor workers do,
// model_used null and token_usage {"prompt_tokens": 0,
// "completion_tokens": 0}. Only the reports of the attempt whose result is
// published count.
func Report(ctx context.Context, u Usage) bool {
	a, ok := ctx.Value(taskKey{}).(*attemptValue)
	if !ok {
		return false
	}
	a.report.add(u)
	return true
}

// attemptValue is what a handler's context carries: the task as it was
// when the attempt began, and the attempt's report.
type attemptValue struct {
	task   heddle.TaskMessage
	report report
}

// report gathers an attempt's Usage.
type report struct {
	mu    sync.Mutex
	given bool
	usage Usage
}

func (r *report) add(u Usage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.given = true
	if u.Model != "" {
		r.usage.Model = u.Model
	}
	for k, n := range u.Tokens {
		if r.usage.Tokens == nil {
			r.usage.Tokens = map[string]int{}
		}
		r.usage.Tokens[k] += n
	}
	if len(u.Metadata) > 0 {
		if r.usage.Metadata == nil {
			r.usage.Metadata = map[string]any{}
		}
		maps.Copy(r.usage.Metadata, u.Metadata)
	}
}

// apply sets what the report says on r, or the Python defaults.
func (rep *report) apply(r *heddle.TaskResult) {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	if !rep.given {
		r.TokenUsage = pythonTokenUsage
		return
	}
	r.ModelUsed = rep.usage.Model
	if len(rep.usage.Tokens) > 0 {
		r.TokenUsage = maps.Clone(rep.usage.Tokens)
	} else {
		r.TokenUsage = pythonTokenUsage
	}
	if len(rep.usage.Metadata) > 0 {
		r.Metadata = maps.Clone(rep.usage.Metadata)
	}
}

// pythonTokenUsage is the token_usage of a result whose handler reported
// none, as the Python processor workers write it. It is shared by the
// results the worker encodes and never written to.
var pythonTokenUsage = map[string]int{"prompt_tokens": 0, "completion_tokens": 0}
