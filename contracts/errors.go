package contracts

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

var (
	// ErrViolation is matched (errors.Is) by every *ValidationError: the
	// value does not satisfy the schema.
	ErrViolation = errors.New("contracts: value violates schema")
	// ErrSchema is wrapped by every construction error: a schema that is not
	// JSON, is not a valid JSON Schema (a bad type name, a pattern that is
	// not a valid regular expression, a $ref loop), or refers ($ref) to a
	// document that is missing or is not loaded.
	ErrSchema = errors.New("contracts: invalid schema")
)

// errorListLimit is how many violations ValidationError.Error lists before
// summarising the rest; Violations always holds them all.
const errorListLimit = 10

// Violation is one way a value fails a schema.
type Violation struct {
	// Path is the JSON Pointer (RFC 6901) of the offending value within the
	// validated value; "" is the value itself. A missing required property
	// is reported at the property's own path: /items/2/qty.
	Path string
	// Message says what is wrong: "expected number, but got string",
	// "required", "must be >= 1 but found 0", ...
	Message string
}

func (v Violation) String() string {
	p := v.Path
	if p == "" {
		p = "(root)"
	}
	return p + ": " + v.Message
}

// ValidationError lists every violation found in one value, ordered by
// path. Its text is, for example:
//
//	contracts: input violates schema: /items/2/qty: expected integer, but got string; /name: required
type ValidationError struct {
	// Side is "input" or "output" when the error comes from a Contract,
	// empty when it comes from a Schema used alone.
	Side       string
	Violations []Violation
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("contracts: ")
	if e.Side != "" {
		b.WriteString(e.Side)
		b.WriteByte(' ')
	} else {
		b.WriteString("value ")
	}
	b.WriteString("violates schema")
	for i, v := range e.Violations {
		if i == errorListLimit {
			fmt.Fprintf(&b, "; and %d more", len(e.Violations)-i)
			break
		}
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(v.String())
	}
	return b.String()
}

// Is reports whether target is ErrViolation.
func (e *ValidationError) Is(target error) bool { return target == ErrViolation }

// Prefixed returns a copy of e whose paths start with prefix, a JSON
// Pointer such as "/payload", for reporting a violation of a value nested
// in a larger document.
func (e *ValidationError) Prefixed(prefix string) *ValidationError {
	out := &ValidationError{Side: e.Side, Violations: make([]Violation, len(e.Violations))}
	for i, v := range e.Violations {
		out.Violations[i] = Violation{Path: prefix + v.Path, Message: v.Message}
	}
	return out
}

// newValidationError flattens the library's error tree into one violation
// per failing leaf, with plain JSON Pointers.
func newValidationError(side string, ve *jsonschema.ValidationError) *ValidationError {
	var out []Violation
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		out = append(out, leafViolations(e)...)
	}
	walk(ve)
	slices.SortStableFunc(out, func(a, b Violation) int {
		if c := comparePointers(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	out = slices.Compact(out)
	return &ValidationError{Side: side, Violations: out}
}

// leafViolations converts one leaf error. A "required" or
// "additionalProperties" failure names several properties in one message;
// it becomes one violation per property, at the property's path.
func leafViolations(e *jsonschema.ValidationError) []Violation {
	path := plainPointer(e.InstanceLocation)
	kw := e.KeywordLocation[strings.LastIndexByte(e.KeywordLocation, '/')+1:]
	switch {
	case kw == "required" && strings.HasPrefix(e.Message, "missing properties: "):
		if names, ok := parseQuotedList(strings.TrimPrefix(e.Message, "missing properties: ")); ok {
			vs := make([]Violation, len(names))
			for i, n := range names {
				vs[i] = Violation{Path: path + "/" + escapeToken(n), Message: "required"}
			}
			return vs
		}
	case (kw == "additionalProperties" || kw == "unevaluatedProperties") && strings.HasSuffix(e.Message, " not allowed"):
		list := strings.TrimSuffix(strings.TrimPrefix(e.Message, kw+" "), " not allowed")
		if names, ok := parseQuotedList(list); ok {
			vs := make([]Violation, len(names))
			for i, n := range names {
				vs[i] = Violation{Path: path + "/" + escapeToken(n), Message: "not allowed (" + kw + ")"}
			}
			return vs
		}
	}
	return []Violation{{Path: path, Message: e.Message}}
}

// plainPointer turns the library's instance location, whose tokens are
// URL-path-escaped, into a plain JSON Pointer.
func plainPointer(loc string) string {
	if loc == "" || !strings.Contains(loc, "%") {
		return loc
	}
	toks := strings.Split(loc, "/")
	for i, t := range toks {
		if u, err := url.PathUnescape(t); err == nil {
			toks[i] = u
		}
	}
	return strings.Join(toks, "/")
}

func escapeToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// parseQuotedList reads the library's list of quoted property names:
// 'a', 'b\'c'. Each name is a Go-quoted string with its double quotes
// replaced by single quotes.
func parseQuotedList(s string) ([]string, bool) {
	var names []string
	for len(s) > 0 {
		if s[0] != '\'' {
			return nil, false
		}
		i := 1
		for ; i < len(s) && s[i] != '\''; i++ {
			if s[i] == '\\' {
				i++
			}
		}
		if i >= len(s) {
			return nil, false
		}
		inner := strings.ReplaceAll(s[1:i], `\'`, `'`)
		inner = strings.ReplaceAll(inner, `"`, `\"`)
		name, err := strconv.Unquote(`"` + inner + `"`)
		if err != nil {
			return nil, false
		}
		names = append(names, name)
		s = s[i+1:]
		if len(s) > 0 {
			if !strings.HasPrefix(s, ", ") {
				return nil, false
			}
			s = s[2:]
		}
	}
	return names, len(names) > 0
}

// comparePointers orders JSON Pointers token by token, array indexes
// numerically, so /items/2 comes before /items/10.
func comparePointers(a, b string) int {
	for a != "" && b != "" {
		var ta, tb string
		ta, a = nextToken(a)
		tb, b = nextToken(b)
		if ta == tb {
			continue
		}
		na, ea := strconv.Atoi(ta)
		nb, eb := strconv.Atoi(tb)
		if ea == nil && eb == nil {
			return na - nb
		}
		return strings.Compare(ta, tb)
	}
	return len(a) - len(b)
}

func nextToken(p string) (tok, rest string) {
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}
