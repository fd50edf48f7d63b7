package contracts

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// corpusSchemas are the schema documents the differential test and the
// fuzz target use: this package's testdata and the envelope schemas of the
// root package.
func corpusSchemas(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, pattern := range []string{"testdata/schemas/*.json", "../schemas/*.schema.json"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[f] = b
		}
	}
	if len(out) < 5 {
		t.Fatalf("schema corpus has %d documents; is the working directory the package?", len(out))
	}
	return out
}

// corpusInstances are JSON values to validate: testdata/instances.json, the
// order payload, and every object inside the golden wire fixtures of
// contracttest (whole messages and their payloads, outputs and contexts).
func corpusInstances(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	var list []json.RawMessage
	if err := json.Unmarshal(mustRead(t, "testdata/instances.json"), &list); err != nil {
		t.Fatal(err)
	}
	for _, v := range list {
		out = append(out, v)
	}
	out = append(out, mustRead(t, "testdata/order_payload.json"))
	err := filepath.WalkDir("../contracttest/testdata/wire", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out = append(out, b)
		var fields map[string]json.RawMessage
		if json.Unmarshal(b, &fields) == nil {
			for _, k := range []string{"payload", "output", "context", "metadata", "original_task"} {
				if v, ok := fields[k]; ok {
					out = append(out, v)
				}
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkAgreement validates instance against s through the public API and
// compares the fast checker with the library on it.
func checkAgreement(t *testing.T, name string, s *Schema, instance []byte) (decided bool) {
	t.Helper()
	err := s.Validate(json.RawMessage(instance))
	var ve *ValidationError
	if err != nil && (!errors.As(err, &ve) || !errors.Is(err, ErrViolation) || len(ve.Violations) == 0) {
		t.Fatalf("%s: Validate(%s) returned %v (%T), want nil or a *ValidationError with violations", name, instance, err, err)
	}
	var v any
	if json.Unmarshal(instance, &v) != nil || s.fast == nil {
		return false
	}
	valid, decided := fastValid(s.fast, v)
	libErr := s.validateValue(v)
	if !decided {
		return false
	}
	if valid != (libErr == nil) {
		t.Fatalf("%s: on %s the fast checker says valid=%v, the library says %v", name, instance, valid, libErr)
	}
	if valid != (err == nil) {
		t.Fatalf("%s: on %s the fast checker says valid=%v, Validate says %v", name, instance, valid, err)
	}
	return true
}

func TestFastCheckerAgreesWithTheLibrary(t *testing.T) {
	schemas := corpusSchemas(t)
	instances := corpusInstances(t)
	names := make([]string, 0, len(schemas))
	for name := range schemas {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t.Run(filepath.Base(name), func(t *testing.T) {
			s, err := NewSchema(schemas[name])
			if err != nil {
				t.Fatal(err)
			}
			if s.fast == nil {
				if filepath.Base(name) == "dead_letter.schema.json" {
					t.Skip("contentEncoding is left to the library")
				}
				t.Fatalf("the fast checker does not cover %s", name)
			}
			decided, valid := 0, 0
			for _, inst := range instances {
				if checkAgreement(t, name, s, inst) {
					decided++
					if s.Validate(json.RawMessage(inst)) == nil {
						valid++
					}
				}
			}
			if decided < len(instances)/2 {
				t.Errorf("the fast checker decided only %d of %d instances", decided, len(instances))
			}
			t.Logf("%d instances, %d decided by the fast checker, %d valid", len(instances), decided, valid)
		})
	}
}

func TestFastCheckerLeavesUnsupportedSchemasToTheLibrary(t *testing.T) {
	tests := []struct {
		name   string
		schema string
	}{
		{"unevaluatedProperties", `{"unevaluatedProperties":false}`},
		{"unevaluatedItems", `{"unevaluatedItems":false}`},
		{"contentEncoding", `{"contentEncoding":"base64"}`},
		{"$dynamicRef", `{"$dynamicAnchor":"a","$defs":{"x":{"$dynamicRef":"#a"}},"properties":{"x":{"$ref":"#/$defs/x"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSchema([]byte(tt.schema))
			if err != nil {
				t.Fatal(err)
			}
			if s.fast != nil {
				t.Errorf("the fast checker claims a schema using %s", tt.name)
			}
		})
	}
}

func TestFastCheckerLeavesUnknownValuesToTheLibrary(t *testing.T) {
	s, err := NewSchema([]byte(`{"type":"object","properties":{"n":{"type":"integer","minimum":1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{
		map[string]any{"n": json.Number("2")},
		map[string]any{"n": int64(1) << 60},
		map[string]any{"n": float32(2)},
	} {
		if _, decided := fastValid(s.fast, v); decided {
			t.Errorf("the fast checker decided on %#v", v)
		}
		if err := s.Validate(v); err != nil {
			t.Errorf("Validate(%#v) = %v", v, err)
		}
	}
}

// fuzzCorpus compiles the corpus schemas.
func fuzzCorpus(f *testing.F) (fixed []*Schema, names []string, docs [][]byte) {
	schemas := corpusSchemas(f)
	for name, doc := range schemas {
		s, err := NewSchema(doc)
		if err != nil {
			f.Fatal(err)
		}
		fixed = append(fixed, s)
		names = append(names, name)
		docs = append(docs, doc)
	}
	return fixed, names, docs
}

// FuzzContractValidate validates a fuzzed value against every corpus
// schema. Nothing may panic; Validate returns nil or a *ValidationError;
// and wherever the fast checker decides, it agrees with the library.
func FuzzContractValidate(f *testing.F) {
	fixed, names, _ := fuzzCorpus(f)
	for _, inst := range corpusInstances(f) {
		f.Add(inst)
	}
	f.Fuzz(func(t *testing.T, instance []byte) {
		for i, s := range fixed {
			checkAgreement(t, names[i], s, instance)
		}
	})
}

// FuzzContractSchema compiles a fuzzed schema document and validates a
// fuzzed value against it: construction either succeeds or fails with
// ErrSchema, and validation keeps the promises of FuzzContractValidate.
func FuzzContractSchema(f *testing.F) {
	_, _, docs := fuzzCorpus(f)
	for i, inst := range corpusInstances(f) {
		f.Add(docs[i%len(docs)], inst)
	}
	f.Fuzz(func(t *testing.T, schema, instance []byte) {
		s, err := NewSchema(schema)
		if err != nil {
			if !errors.Is(err, ErrSchema) {
				t.Fatalf("NewSchema(%s) error %v does not match ErrSchema", schema, err)
			}
			return
		}
		checkAgreement(t, "fuzzed schema "+string(bytes.TrimSpace(schema)), s, instance)
	})
}
