package contracts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	invopop "github.com/invopop/jsonschema"
	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/heddle-go/heddle/internal/schemacheck"
)

// Schema is one compiled JSON Schema. It is immutable and safe for
// concurrent use; a nil *Schema accepts every value.
//
// Schemas compile with Draft 2020-12 semantics unless the document names
// another draft in "$schema", and "format" is an assertion (an invalid
// date-time, email, uuid, ... is a violation). A "$ref" may point inside
// the document; SchemaFromFile and FromFiles also load file references
// relative to the schema's file. Nothing is fetched over the network.
type Schema struct {
	doc      []byte
	compiled *jsonschema.Schema
	fast     *schemacheck.Checker // nil when the checker does not cover the schema
}

// NewSchema compiles a JSON Schema document. A document that is not JSON
// or not a valid schema is an error wrapping ErrSchema. A format the
// validator does not know (pydantic's "path", say) is an annotation, as the
// specification has it, and checks nothing.
func NewSchema(doc []byte) (*Schema, error) {
	return compile(doc, "heddle:schema.json", false)
}

// SchemaFromFile reads and compiles the JSON Schema in the file at path.
func SchemaFromFile(path string) (*Schema, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSchema, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSchema, err)
	}
	return compile(doc, "file://"+filepath.ToSlash(abs), true)
}

// SchemaFor generates the schema of T's JSON form with
// github.com/invopop/jsonschema and compiles it.
//
// The generated schema follows T's json tags: a field without omitempty
// or omitzero is required (so an optional pointer field needs omitempty,
// or null is a violation), named types are described in "$defs", and
// jsonschema struct tags (minimum, maxLength, enum, pattern, format, ...)
// add constraints. Unknown properties are allowed, as pydantic's default
// and encoding/json's decoding allow them; write the schema by hand (with
// "additionalProperties": false) to forbid them.
func SchemaFor[T any]() (*Schema, error) {
	// The root stays a $ref into $defs (no ExpandedStruct): a recursive
	// type refers to its own definition, which expansion would remove.
	r := &invopop.Reflector{
		Anonymous:                 true,
		AllowAdditionalProperties: true,
	}
	doc, err := json.Marshal(r.ReflectFromType(reflect.TypeFor[T]()))
	if err != nil {
		return nil, fmt.Errorf("%w: generating the schema of %v: %w", ErrSchema, reflect.TypeFor[T](), err)
	}
	return NewSchema(doc)
}

// Document returns the schema's JSON source (for SchemaFor, the generated
// document). The caller must not modify it.
func (s *Schema) Document() []byte {
	if s == nil {
		return []byte("true")
	}
	return s.doc
}

// MarshalJSON writes the schema's document; a nil schema is true.
func (s *Schema) MarshalJSON() ([]byte, error) { return s.Document(), nil }

// Validate checks v against the schema and returns a *ValidationError
// listing every violation, or nil.
//
// v may be:
//   - json.RawMessage or []byte: the JSON text is decoded (numbers as
//     float64) and validated; text that is not JSON is a violation at the
//     root;
//   - a value as encoding/json decodes into any (map[string]any, []any,
//     string, float64, bool, nil; int kinds and json.Number too): validated
//     in place, without copying, which is the fast path for payloads read
//     off the wire;
//   - any other Go value (structs, typed maps and slices): encoded with
//     encoding/json and the result validated.
func (s *Schema) Validate(v any) error {
	return s.validate("", v)
}

func (s *Schema) validate(side string, v any) error {
	if s == nil {
		return nil
	}
	inst, err := instance(v)
	if err != nil {
		return &ValidationError{Side: side, Violations: []Violation{{Message: err.Error()}}}
	}
	// A decided "valid" from the checker is the library's answer, found
	// without building errors; anything else goes to the library, which
	// alone writes violation reports.
	if valid, decided := s.fast.Valid(inst); valid && decided {
		return nil
	}
	err = s.validateValue(inst)
	if err != nil && !isViolation(err) {
		// The value holds Go types the validator does not know (a []string
		// inside a map, a NaN): validate its JSON form instead.
		if inst, err = roundTrip(v); err != nil {
			return &ValidationError{Side: side, Violations: []Violation{{Message: err.Error()}}}
		}
		err = s.validateValue(inst)
	}
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		return newValidationError(side, ve)
	}
	if err != nil {
		return &ValidationError{Side: side, Violations: []Violation{{Message: err.Error()}}}
	}
	return nil
}

// validateValue runs the compiled schema, turning a panic on a value the
// validator cannot handle into an error.
func (s *Schema) validateValue(v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("value cannot be validated: %v", r)
		}
	}()
	return s.compiled.Validate(v)
}

func isViolation(err error) bool {
	var ve *jsonschema.ValidationError
	return errors.As(err, &ve)
}

// instance returns the value to hand the validator: decoded JSON text, or
// v itself.
func instance(v any) (any, error) {
	switch x := v.(type) {
	case json.RawMessage:
		return decodeJSON(x)
	case []byte:
		return decodeJSON(x)
	case nil, map[string]any, []any, string, bool, float64, float32, json.Number,
		int, int8, int32, int64, uint, uint8, uint32, uint64:
		return v, nil
	}
	return roundTrip(v)
}

func decodeJSON(b []byte) (any, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	return v, nil
}

func roundTrip(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("value cannot be encoded as JSON: %v", err)
	}
	return decodeJSON(b)
}

// compile builds a Schema from doc, registered under url. When files is
// true, $refs to file URLs are loaded; nothing else outside the document
// ever is.
func compile(doc []byte, url string, files bool) (s *Schema, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("%w: %v", ErrSchema, r)
		}
	}()
	// The first JSON value, as the compiler reads it (it ignores what
	// follows).
	var decoded any
	if json.NewDecoder(bytes.NewReader(doc)).Decode(&decoded) == nil {
		if at, id, bad := schemacheck.EmptyQueryID(decoded); bad {
			return nil, fmt.Errorf("%w: \"$id\" %q at %s ends in an empty query (\"?\"), which the schema compiler cannot resolve; remove the \"?\"", ErrSchema, id, at)
		}
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	c.LoadURL = func(ref string) (io.ReadCloser, error) {
		if files && strings.HasPrefix(ref, "file://") {
			return jsonschema.LoadURL(ref)
		}
		return nil, fmt.Errorf("%s is outside the schema document and is not loaded", ref)
	}
	if err := c.AddResource(url, bytes.NewReader(doc)); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %s", ErrSchema, strings.TrimPrefix(err.Error(), "jsonschema: "))
	}
	compiled, err := c.Compile(url)
	if err != nil {
		return nil, schemaError(err)
	}
	return &Schema{doc: bytes.Clone(doc), compiled: compiled, fast: schemacheck.New(compiled)}, nil
}

// schemaError explains a compile failure. When the document fails the
// draft's meta-schema, the violations are listed with their paths in the
// schema document.
func schemaError(err error) error {
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		return fmt.Errorf("%w: %s", ErrSchema, strings.TrimPrefix(newValidationError("", ve).Error(), "contracts: value violates schema: "))
	}
	msg := err.Error()
	if se := (*jsonschema.SchemaError)(nil); errors.As(err, &se) && se.Err != nil {
		msg = strings.TrimPrefix(se.Err.Error(), "jsonschema: ")
	}
	return fmt.Errorf("%w: %s", ErrSchema, msg)
}
