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

// corpusSchemas are the schema documents the verdict test and the fuzz
// targets use: this package's testdata and the envelope schemas of the
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
// valid payloads, and every object inside the golden wire fixtures of
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
	out = append(out, mustRead(t, "testdata/order_payload.json"), mustRead(t, "testdata/kitchen_sink_payload.json"))
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

// checkVerdict validates instance against s through the public API: the
// result is nil or a *ValidationError with violations, and for JSON text it
// is nil exactly when the jsonschema library, run alone on the decoded
// value, finds it valid. The checker in front of the library must never
// change a verdict.
func checkVerdict(t *testing.T, name string, s *Schema, instance []byte) {
	t.Helper()
	err := s.Validate(json.RawMessage(instance))
	var ve *ValidationError
	if err != nil && (!errors.As(err, &ve) || !errors.Is(err, ErrViolation) || len(ve.Violations) == 0) {
		t.Fatalf("%s: Validate(%s) returned %v (%T), want nil or a *ValidationError with violations", name, instance, err, err)
	}
	var v any
	if json.Unmarshal(instance, &v) != nil {
		if err == nil {
			t.Fatalf("%s: Validate accepted %q, which is not JSON", name, instance)
		}
		return
	}
	if libErr := s.validateValue(v); (err == nil) != (libErr == nil) {
		t.Fatalf("%s: on %s Validate says %v, the library alone says %v", name, instance, err, libErr)
	}
}

func TestValidateGivesTheLibrarysVerdict(t *testing.T) {
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
			for _, inst := range instances {
				checkVerdict(t, name, s, inst)
			}
		})
	}
}

// TestSchemasCarryTheChecker pins the wiring of internal/schemacheck: every
// corpus schema it can mirror gets a checker, so a valid value is answered
// without the library.
func TestSchemasCarryTheChecker(t *testing.T) {
	for name, doc := range corpusSchemas(t) {
		s, err := NewSchema(doc)
		if err != nil {
			t.Fatal(err)
		}
		if s.fast == nil && filepath.Base(name) != "dead_letter.schema.json" {
			t.Errorf("%s has no checker", name)
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
// schema. Nothing may panic, and Validate keeps the promises checkVerdict
// states. The differential target of the checker alone is
// internal/schemacheck's FuzzValid.
func FuzzContractValidate(f *testing.F) {
	fixed, names, _ := fuzzCorpus(f)
	for _, inst := range corpusInstances(f) {
		f.Add(inst)
	}
	f.Fuzz(func(t *testing.T, instance []byte) {
		for i, s := range fixed {
			checkVerdict(t, names[i], s, instance)
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
		checkVerdict(t, "fuzzed schema "+string(bytes.TrimSpace(schema)), s, instance)
	})
}
