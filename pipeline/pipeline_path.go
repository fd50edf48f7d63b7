package pipeline

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/heddle-go/heddle/contracts"
)

// Keys of the pipeline context a goal's stages read from.
const (
	outputKey      = "output"
	instructionKey = "instruction"
	contextKey     = "context"
	// schemaRefDepth bounds how many $ref hops the build-time
	// field check follows before giving up (leaving the path unchecked).
	schemaRefDepth = 32
)

// pipelinePath is a dot path into the pipeline context: goal.context.x,
// extract.output.text.
type pipelinePath struct {
	raw    string
	tokens []string
}

// parsePath checks the syntax of a path: non-empty tokens
// separated by dots, with no whitespace, quotes, '=' or '!'.
func parsePath(raw string) (pipelinePath, error) {
	p := pipelinePath{raw: raw}
	if raw == "" {
		return p, fmt.Errorf("empty path; write goal.context.<key> or <stage>.%s.<field>", outputKey)
	}
	p.tokens = strings.Split(raw, ".")
	for _, tok := range p.tokens {
		if tok == "" {
			return p, fmt.Errorf("path %q has an empty token (two dots, or a dot at an end)", raw)
		}
		if strings.ContainsFunc(tok, func(r rune) bool {
			return unicode.IsSpace(r) || r == '"' || r == '\'' || r == '=' || r == '!'
		}) {
			return p, fmt.Errorf("path %q: token %q holds whitespace, a quote, '=' or '!'", raw, tok)
		}
	}
	return p, nil
}

// stage returns the stage whose output the path reads, or "" for a path
// into the goal.
func (p pipelinePath) stage() string {
	if len(p.tokens) == 0 || p.tokens[0] == GoalRoot {
		return ""
	}
	return p.tokens[0]
}

// checkGoalPath returns what is wrong with a path starting with
// goal, or "".
func checkGoalPath(p pipelinePath) string {
	switch {
	case len(p.tokens) == 1:
		return "read goal.instruction or goal.context[.<key>...]"
	case p.tokens[1] == instructionKey && len(p.tokens) > 2:
		return "goal.instruction is a string; nothing is below it"
	case p.tokens[1] != instructionKey && p.tokens[1] != contextKey:
		return fmt.Sprintf("the goal has no %q; read goal.instruction or goal.context[.<key>...]", p.tokens[1])
	}
	return ""
}

// resolve returns the value at p in the context, or an error naming the
// first token that could not be followed.
func (p pipelinePath) resolve(ctx map[string]any) (any, error) {
	var cur any = ctx
	for i, tok := range p.tokens {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[tok]
			if !ok {
				return nil, fmt.Errorf("path %q: %q not found", p.raw, strings.Join(p.tokens[:i+1], "."))
			}
			cur = next
		case []any:
			idx, err := strconv.Atoi(tok)
			if err != nil || idx < 0 || idx >= len(v) {
				return nil, fmt.Errorf("path %q: %q is an array of %d; %q is not an index in it",
					p.raw, strings.Join(p.tokens[:i], "."), len(v), tok)
			}
			cur = v[idx]
		default:
			return nil, fmt.Errorf("path %q: %q is %s, not an object", p.raw, strings.Join(p.tokens[:i], "."),
				pipelineKind(cur))
		}
	}
	return cur, nil
}

func pipelineKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64, int, int64, json.Number:
		return "a number"
	}
	return fmt.Sprintf("a %T", v)
}

// pipelineCondition is a parsed Stage.Condition: path == literal, or !=.
type pipelineCondition struct {
	raw     string
	path    pipelinePath
	negate  bool
	literal any // nil, bool, float64 or string
}

// parseCondition parses "<path> == <literal>" or "<path> !=
// <literal>" (see Stage.Condition).
func parseCondition(raw string) (*pipelineCondition, error) {
	op := -1
	for _, sym := range []string{"==", "!="} {
		if i := strings.Index(raw, sym); i >= 0 && (op < 0 || i < op) {
			op = i
		}
	}
	if op < 0 {
		return nil, fmt.Errorf("%q: write <path> == <value> or <path> != <value>", raw)
	}
	c := &pipelineCondition{raw: raw, negate: raw[op] == '!'}
	left, right := strings.TrimSpace(raw[:op]), strings.TrimSpace(raw[op+2:])
	p, err := parsePath(left)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", raw, err)
	}
	c.path = p
	lit, err := parseLiteral(right)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", raw, err)
	}
	c.literal = lit
	return c, nil
}

func parseLiteral(s string) (any, error) {
	switch {
	case s == "":
		return nil, fmt.Errorf("no value after the operator; use true, false, null, a number or a string")
	case s[0] == '"':
		var v string
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, fmt.Errorf("value %s is not a valid double-quoted string", s)
		}
		return v, nil
	case s[0] == '\'':
		if len(s) < 2 || s[len(s)-1] != '\'' || strings.Contains(s[1:len(s)-1], "'") {
			return nil, fmt.Errorf("value %s is not a valid single-quoted string", s)
		}
		return s[1 : len(s)-1], nil
	}
	switch strings.ToLower(s) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null", "none":
		return nil, nil
	}
	var f float64
	if (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && json.Unmarshal([]byte(s), &f) == nil {
		return f, nil
	}
	if strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || r == '"' || r == '\'' || r == '=' || r == '!'
	}) {
		return nil, fmt.Errorf("value %s must be quoted (\"...\") when it holds spaces, quotes, '=' or '!'", s)
	}
	return s, nil
}

// eval reports whether the condition holds in ctx; a path that cannot be
// resolved returns false with the resolution error.
func (c *pipelineCondition) eval(ctx map[string]any) (bool, error) {
	v, err := c.path.resolve(ctx)
	if err != nil {
		return false, err
	}
	return equal(v, c.literal) != c.negate, nil
}

// equal compares a context value with a literal, by JSON type.
func equal(v, literal any) bool {
	switch lit := literal.(type) {
	case nil:
		return v == nil
	case bool:
		b, ok := v.(bool)
		return ok && b == lit
	case string:
		s, ok := v.(string)
		return ok && s == lit
	case float64:
		f, ok := pipelineNumber(v)
		return ok && f == lit
	}
	return false
}

func pipelineNumber(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, !math.IsNaN(n)
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// schemaDoc decodes a schema's document for the build-time
// checks; nil when there is no schema or it accepts everything.
func schemaDoc(s *contracts.Schema) any {
	if s == nil {
		return nil
	}
	var doc any
	if json.Unmarshal(s.Document(), &doc) != nil {
		return nil
	}
	if _, ok := doc.(map[string]any); !ok {
		return nil
	}
	return doc
}

// schemaNode follows local $refs ("#/...") from node within root.
// It returns false when the node is not a schema object, or is reached
// through a reference it cannot follow.
func schemaNode(root, node any) (map[string]any, bool) {
	for range schemaRefDepth {
		m, ok := node.(map[string]any)
		if !ok {
			return nil, false
		}
		ref, isRef := m["$ref"].(string)
		if !isRef || m["properties"] != nil {
			return m, true
		}
		if !strings.HasPrefix(ref, "#") {
			return nil, false
		}
		node = pointer(root, strings.TrimPrefix(ref, "#"))
	}
	return nil, false
}

// pointer returns the value at a JSON Pointer in doc, or nil.
func pointer(doc any, ptr string) any {
	if ptr == "" {
		return doc
	}
	if ptr[0] != '/' {
		return nil
	}
	cur := doc
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch v := cur.(type) {
		case map[string]any:
			cur = v[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return nil
			}
			cur = v[i]
		default:
			return nil
		}
	}
	return cur
}

// schemaOpaque reports a schema whose fields cannot be read from
// its own properties (combinators, conditionals, pattern properties).
func schemaOpaque(m map[string]any) bool {
	for _, k := range []string{"allOf", "anyOf", "oneOf", "if", "patternProperties", "dependentSchemas"} {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

// schemaField checks fields (the tokens after <stage>.output)
// against the output schema doc. It returns what is wrong, or "" when the
// fields are declared or the schema does not say (no schema, no declared
// properties, combinators, references it cannot follow).
func schemaField(doc any, fields []string) string {
	if doc == nil {
		return ""
	}
	node := doc
	for i, tok := range fields {
		m, ok := schemaNode(doc, node)
		if !ok || schemaOpaque(m) {
			return ""
		}
		props, hasProps := m["properties"].(map[string]any)
		if !hasProps {
			if items, ok := m["items"]; ok {
				if _, err := strconv.Atoi(tok); err == nil {
					node = items
					continue
				}
			}
			if t, ok := m["type"].(string); ok && t != "object" && t != "array" {
				what := "is"
				if i > 0 {
					what = fmt.Sprintf("field %q is", strings.Join(fields[:i], "."))
				}
				return fmt.Sprintf("%s of type %s; it has no field %q", what, t, tok)
			}
			return ""
		}
		sub, ok := props[tok]
		if !ok {
			names := make([]string, 0, len(props))
			for k := range props {
				names = append(names, k)
			}
			slices.Sort(names)
			return fmt.Sprintf("has no field %q (its output_schema declares: %s)",
				strings.Join(fields[:i+1], "."), strings.Join(names, ", "))
		}
		node = sub
	}
	return ""
}

// schemaRequired returns the top-level properties the schema doc
// requires, when it can tell.
func schemaRequired(doc any) []string {
	m, ok := schemaNode(doc, doc)
	if !ok || schemaOpaque(m) {
		return nil
	}
	list, _ := m["required"].([]any)
	var out []string
	for _, r := range list {
		if s, ok := r.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
