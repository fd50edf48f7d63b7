package contracts

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Shallow returns a schema that checks what the Python Heddle's workers
// check of a payload: that it is an object, that its required top-level
// keys are present, and that each top-level property has its JSON type.
// Nothing deeper is checked: no formats, bounds, patterns or nested
// objects. A nil s gives nil. It is for workers that must accept exactly
// what a Python worker of the same type accepts (worker.Config's
// ShallowValidation).
func Shallow(s *Schema) (*Schema, error) {
	if s == nil {
		return nil, nil
	}
	var doc map[string]any
	if err := json.Unmarshal(s.Document(), &doc); err != nil {
		return nil, fmt.Errorf("%w: shallow: %v", ErrSchema, err)
	}
	root := resolve(doc, doc)
	shallow := map[string]any{"type": "object"}
	if req, ok := root["required"].([]any); ok {
		shallow["required"] = req
	}
	if props, ok := root["properties"].(map[string]any); ok {
		out := map[string]any{}
		for name, p := range props {
			prop, _ := p.(map[string]any)
			if prop == nil {
				continue
			}
			prop = resolve(doc, prop)
			if t, ok := prop["type"]; ok {
				out[name] = map[string]any{"type": t}
			} else if _, ok := prop["properties"]; ok {
				out[name] = map[string]any{"type": "object"}
			}
		}
		shallow["properties"] = out
	}
	b, err := json.Marshal(shallow)
	if err != nil {
		return nil, fmt.Errorf("%w: shallow: %v", ErrSchema, err)
	}
	return NewSchema(b)
}

// resolve follows a local "$ref" ("#/$defs/X" or "#/definitions/X") of
// node within doc, once per level, and returns the node it names.
func resolve(doc, node map[string]any) map[string]any {
	for range 8 {
		ref, ok := node["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#/") {
			return node
		}
		cur := any(doc)
		for _, tok := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			m, ok := cur.(map[string]any)
			if !ok {
				return node
			}
			cur = m[strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")]
		}
		next, ok := cur.(map[string]any)
		if !ok {
			return node
		}
		node = next
	}
	return node
}
