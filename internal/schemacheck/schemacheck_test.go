package schemacheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// The differential corpus is shared with package contracts, whose
// testdata holds the schemas and instances the contract checks are
// measured and tested on, and with the root package's envelope schemas and
// golden wire fixtures.
const (
	contractsTestdata = "../../contracts/testdata"
	envelopeSchemas   = "../../schemas/*.schema.json"
	wireFixtures      = "../../contracttest/testdata/wire"
)

// compile compiles doc as package contracts does: Draft 2020-12 unless
// "$schema" names another draft, "format" asserted, nothing loaded from
// outside the document. A panic in the library is a compile error.
func compile(doc []byte) (s *jsonschema.Schema, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("compiler panic: %v", r)
		}
	}()
	// Package contracts refuses these before the library sees them: the
	// library's compile never returns (EmptyQueryID).
	var decoded any
	if json.NewDecoder(bytes.NewReader(doc)).Decode(&decoded) == nil {
		if at, id, bad := EmptyQueryID(decoded); bad {
			return nil, fmt.Errorf("$id %q at %s has an empty query", id, at)
		}
	}
	const url = "heddle:schema.json"
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	c.LoadURL = func(ref string) (io.ReadCloser, error) {
		return nil, fmt.Errorf("%s is not loaded", ref)
	}
	if err := c.AddResource(url, bytes.NewReader(doc)); err != nil {
		return nil, err
	}
	return c.Compile(url)
}

// libraryValidate runs the library, turning a panic into an error as
// package contracts does.
func libraryValidate(s *jsonschema.Schema, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("library panic: %v", r)
		}
	}()
	return s.Validate(v)
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// corpusSchemas reads the schema documents of the differential corpus,
// keyed by file name.
func corpusSchemas(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, pattern := range []string{contractsTestdata + "/schemas/*.json", envelopeSchemas} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			out[filepath.Base(f)] = mustRead(t, f)
		}
	}
	for _, name := range []string{"order.json", "kitchen_sink.json", "draft7.json"} {
		if out[name] == nil {
			t.Fatalf("the schema corpus lacks %s; is the working directory the package?", name)
		}
	}
	return out
}

// corpusInstances reads the JSON values of the differential corpus: the
// entries of contracts' instances.json, its valid payloads, and every
// golden wire fixture with the objects inside it.
func corpusInstances(t testing.TB) [][]byte {
	t.Helper()
	var list []json.RawMessage
	if err := json.Unmarshal(mustRead(t, contractsTestdata+"/instances.json"), &list); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, v := range list {
		out = append(out, v)
	}
	out = append(out,
		mustRead(t, contractsTestdata+"/order_payload.json"),
		mustRead(t, contractsTestdata+"/kitchen_sink_payload.json"))
	err := filepath.WalkDir(wireFixtures, func(path string, d os.DirEntry, err error) error {
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

// agree checks the checker against the library on v and reports whether
// the checker decided.
func agree(t *testing.T, name string, s *jsonschema.Schema, c *Checker, v any, shown []byte) (decided bool) {
	t.Helper()
	valid, decided := c.Valid(v)
	libErr := libraryValidate(s, v)
	if decided && valid != (libErr == nil) {
		t.Fatalf("%s: on %s the checker says valid=%v, the library says %v", name, shown, valid, libErr)
	}
	return decided
}

// agreeJSON decodes instance as encoding/json does and checks agreement
// on it; text that is not JSON is skipped.
func agreeJSON(t *testing.T, name string, s *jsonschema.Schema, c *Checker, instance []byte) (decided bool) {
	t.Helper()
	var v any
	if json.Unmarshal(instance, &v) != nil {
		return false
	}
	return agree(t, name, s, c, v, instance)
}

func TestCheckerAgreesWithTheLibraryOnTheCorpus(t *testing.T) {
	schemas := corpusSchemas(t)
	instances := corpusInstances(t)
	names := slices.Sorted(func(yield func(string) bool) {
		for name := range schemas {
			if !yield(name) {
				return
			}
		}
	})
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			s, err := compile(schemas[name])
			if err != nil {
				t.Fatal(err)
			}
			c := New(s)
			if c == nil {
				if name == "dead_letter.schema.json" {
					t.Skip("contentEncoding is left to the library")
				}
				t.Fatalf("the checker does not cover %s", name)
			}
			decided, valid := 0, 0
			for _, inst := range instances {
				if agreeJSON(t, name, s, c, inst) {
					decided++
					if ok, _ := c.Valid(mustDecode(t, inst)); ok {
						valid++
					}
				}
			}
			if decided < len(instances)/2 {
				t.Errorf("the checker decided only %d of %d instances", decided, len(instances))
			}
			t.Logf("%d instances, %d decided, %d valid", len(instances), decided, valid)
		})
	}
}

func mustDecode(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCheckerDecidesTheValidPayloads(t *testing.T) {
	schemas := corpusSchemas(t)
	for schema, payload := range map[string]string{
		"order.json":        "order_payload.json",
		"kitchen_sink.json": "kitchen_sink_payload.json",
	} {
		s, err := compile(schemas[schema])
		if err != nil {
			t.Fatal(err)
		}
		v := mustDecode(t, mustRead(t, contractsTestdata+"/"+payload))
		if err := libraryValidate(s, v); err != nil {
			t.Fatalf("%s does not satisfy %s: %v", payload, schema, err)
		}
		if valid, decided := New(s).Valid(v); !valid || !decided {
			t.Errorf("%s against %s: valid=%v decided=%v, want a decided valid", payload, schema, valid, decided)
		}
	}
}

func TestCheckerLeavesUnsupportedSchemasToTheLibrary(t *testing.T) {
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
			s, err := compile([]byte(tt.schema))
			if err != nil {
				t.Fatal(err)
			}
			c := New(s)
			if c != nil {
				t.Fatalf("the checker claims a schema using %s", tt.name)
			}
			if _, decided := c.Valid(map[string]any{}); decided {
				t.Errorf("a nil Checker decided")
			}
		})
	}
}

func TestCheckerLeavesUnknownValuesToTheLibrary(t *testing.T) {
	s, err := compile([]byte(`{"type":"object","properties":{"n":{"type":"integer","minimum":1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	c := New(s)
	for _, v := range []any{
		map[string]any{"n": json.Number("2")},
		map[string]any{"n": int64(1) << 60},
		map[string]any{"n": float32(2)},
		map[string]any{"n": []string{"x"}},
	} {
		if _, decided := c.Valid(v); decided {
			t.Errorf("the checker decided on %#v", v)
		}
	}
}

func TestCheckerAgreesOnGoIntegers(t *testing.T) {
	s, err := compile([]byte(`{"type":"array","items":{"type":"integer","minimum":1,"maximum":100,"multipleOf":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	c := New(s)
	for _, v := range []any{
		[]any{int(2), int8(4), int32(6), int64(8), uint8(10), uint32(12)},
		[]any{int(3)},
		[]any{int64(0)},
		[]any{uint8(200)},
		[]any{int64(1) << 53},
	} {
		if !agree(t, "integers", s, c, v, fmt.Appendf(nil, "%#v", v)) {
			t.Errorf("the checker left %#v undecided", v)
		}
	}
}

// fuzzSchemas compiles the corpus schemas the checker covers.
func fuzzSchemas(f *testing.F) (names []string, compiled []*jsonschema.Schema, checkers []*Checker, docs [][]byte) {
	for name, doc := range corpusSchemas(f) {
		s, err := compile(doc)
		if err != nil {
			f.Fatal(err)
		}
		docs = append(docs, doc)
		if c := New(s); c != nil {
			names, compiled, checkers = append(names, name), append(compiled, s), append(checkers, c)
		}
	}
	return names, compiled, checkers, docs
}

// FuzzValid is the differential test of the checker against the
// jsonschema library: a fuzzed JSON value, checked against every corpus
// schema, never panics the checker, and wherever the checker decides, its
// answer is the library's. The seeds are the corpus instances.
func FuzzValid(f *testing.F) {
	names, compiled, checkers, _ := fuzzSchemas(f)
	for _, inst := range corpusInstances(f) {
		f.Add(inst)
	}
	f.Fuzz(func(t *testing.T, instance []byte) {
		for i := range checkers {
			agreeJSON(t, names[i], compiled[i], checkers[i], instance)
		}
	})
}

// FuzzValidSchema compiles a fuzzed schema document and checks a fuzzed
// value against it: building the checker never panics, and wherever it
// decides, it agrees with the library. The seeds pair the corpus schemas
// with the corpus instances.
func FuzzValidSchema(f *testing.F) {
	_, _, _, docs := fuzzSchemas(f)
	for i, inst := range corpusInstances(f) {
		f.Add(docs[i%len(docs)], inst)
	}
	f.Fuzz(func(t *testing.T, schema, instance []byte) {
		s, err := compile(schema)
		if err != nil {
			return
		}
		agreeJSON(t, "fuzzed schema "+string(bytes.TrimSpace(schema)), s, New(s), instance)
	})
}
