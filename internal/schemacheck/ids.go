package schemacheck

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// EmptyQueryID returns the JSON Pointer and the value of the first "$id"
// in doc (a JSON document as encoding/json decodes it) whose URI has an
// empty query ("?", "schema.json?#x"), and ok false when there is none.
//
// github.com/santhosh-tekuri/jsonschema/v5 (v5.3.1) recurses without end
// when it compiles a schema whose "$id" resolves to the document's own
// location followed by "?": a stack overflow, which no recover stops.
// Package contracts refuses such documents before the library sees them;
// an empty query names nothing a schema identifier needs.
func EmptyQueryID(doc any) (ptr, id string, ok bool) {
	return emptyQueryID(doc, "")
}

func emptyQueryID(v any, at string) (string, string, bool) {
	switch x := v.(type) {
	case map[string]any:
		if s, isString := x["$id"].(string); isString {
			if u, err := url.Parse(s); err == nil && u.ForceQuery {
				return at + "/$id", s, true
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if p, s, ok := emptyQueryID(x[k], at+"/"+pointerToken(k)); ok {
				return p, s, true
			}
		}
	case []any:
		for i, e := range x {
			if p, s, ok := emptyQueryID(e, at+"/"+strconv.Itoa(i)); ok {
				return p, s, true
			}
		}
	}
	return "", "", false
}

// pointerToken escapes k as a JSON Pointer reference token.
func pointerToken(k string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
}
