package pipeline

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPipelineConditionsCompareByJSONType(t *testing.T) {
	var ctx map[string]any
	if err := json.Unmarshal([]byte(`{
		"classify": {"output": {"kind": "invoice", "count": 3, "ok": true, "none": null, "label": "a b", "word": "3"}}
	}`), &ctx); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		condition string
		want      bool
		missing   bool
	}{
		{"a bare word is a string, as in the Python Heddle", `classify.output.kind == invoice`, true, false},
		{"a double-quoted string equals the same string", `classify.output.kind == "invoice"`, true, false},
		{"a single-quoted string equals the same string", `classify.output.kind == 'invoice'`, true, false},
		{"a quoted string may hold spaces", `classify.output.label == "a b"`, true, false},
		{"!= negates a match", `classify.output.kind != invoice`, false, false},
		{"!= holds for a different value", `classify.output.kind != receipt`, true, false},
		{"a number equals the same number", `classify.output.count == 3`, true, false},
		{"a number never equals a string of its digits", `classify.output.word == 3`, false, false},
		{"a quoted number is a string", `classify.output.word == "3"`, true, false},
		{"true equals a true boolean", `classify.output.ok == true`, true, false},
		{"True is read case-insensitively", `classify.output.ok == True`, true, false},
		{"the string true never equals a boolean", `classify.output.kind == true`, false, false},
		{"null equals a null value", `classify.output.none == null`, true, false},
		{"none is null, as in the Python Heddle", `classify.output.none == none`, true, false},
		{"!= null holds for a present value", `classify.output.kind != null`, true, false},
		{"spaces around the operator are optional", `classify.output.kind==invoice`, true, false},
		{"a missing field makes == false", `classify.output.other == x`, false, true},
		{"a missing field makes != false too", `classify.output.other != x`, false, true},
		{"a missing stage is a missing path", `report.output.x == x`, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseCondition(tt.condition)
			if err != nil {
				t.Fatalf("parse %q: %v", tt.condition, err)
			}
			got, err := c.eval(ctx)
			if got != tt.want || (err != nil) != tt.missing {
				t.Fatalf("eval %q = %v, %v; want %v, missing path %v", tt.condition, got, err, tt.want, tt.missing)
			}
		})
	}
}

func TestPipelineConditionsThatDoNotParseSayWhy(t *testing.T) {
	tests := []struct{ name, condition, want string }{
		{"no operator", `classify.output.kind`, "write <path> == <value>"},
		{"an unsupported operator", `classify.output.count > 3`, "write <path> == <value>"},
		{"no value", `classify.output.kind == `, "no value after the operator"},
		{"an unquoted value with a space", `classify.output.kind == a b`, "must be quoted"},
		{"an unterminated double quote", `classify.output.kind == "abc`, "not a valid double-quoted string"},
		{"an unterminated single quote", `classify.output.kind == 'abc`, "not a valid single-quoted string"},
		{"an empty path token", `classify..kind == x`, "empty token"},
		{"no path", `== x`, "empty path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseCondition(tt.condition)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parse %q: error %v, want one containing %q", tt.condition, err, tt.want)
			}
		})
	}
}

func TestPipelinePathsResolveThroughObjectsAndArrays(t *testing.T) {
	var ctx map[string]any
	if err := json.Unmarshal([]byte(`{"goal": {"context": {"items": [{"sku": "a"}, {"sku": "b"}], "n": 1}}}`), &ctx); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		want       any
		err        string
	}{
		{"an object key", "goal.context.n", 1.0, ""},
		{"an array index then a key", "goal.context.items.1.sku", "b", ""},
		{"a missing key names the path up to it", "goal.context.nope.x", nil, `"goal.context.nope" not found`},
		{"an index out of range", "goal.context.items.2", nil, "array of 2"},
		{"a key below a number", "goal.context.n.x", nil, `"goal.context.n" is a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parsePath(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.resolve(ctx)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("resolve %q: %v, %v; want an error containing %q", tt.path, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("resolve %q = %v, %v; want %v", tt.path, got, err, tt.want)
			}
		})
	}
}
