package contracts_test

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle/contracts"
)

func mustDecode(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("test JSON %q: %v", s, err)
	}
	return v
}

func violations(t testing.TB, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *contracts.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *contracts.ValidationError", err, err)
	}
	if !errors.Is(err, contracts.ErrViolation) {
		t.Fatalf("error %v does not match ErrViolation", err)
	}
	out := make([]string, len(ve.Violations))
	for i, v := range ve.Violations {
		out[i] = v.String()
	}
	return out
}

func TestValidateReportsEveryViolationWithItsPath(t *testing.T) {
	c, err := contracts.FromJSON([]byte(orderSchema), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		payload string
		want    []string
	}{
		{
			name:    "a valid order passes",
			payload: orderPayload,
		},
		{
			name:    "a wrong type deep in an array is reported at its index",
			payload: `{"order_id":"ord-1","customer":{"id":"c","email":"a@b.example"},"items":[{"sku":"A-1","qty":1,"price":1},{"sku":"A-2","qty":1,"price":1},{"sku":"A-3","qty":"two","price":1}],"currency":"EUR","total":3}`,
			want:    []string{"/items/2/qty: expected integer, but got string"},
		},
		{
			name:    "a missing required property is reported at its own path",
			payload: `{"order_id":"ord-1","customer":{"id":"c"},"items":[{"sku":"A-1","price":1}],"currency":"EUR","total":3}`,
			want:    []string{"/customer/email: required", "/items/0/qty: required"},
		},
		{
			name:    "missing top-level properties are each reported",
			payload: `{"order_id":"ord-1"}`,
			want:    []string{"/currency: required", "/customer: required", "/items: required", "/total: required"},
		},
		{
			name:    "enum, pattern, bounds and formats are all checked",
			payload: `{"order_id":"x-1","customer":{"id":"c","email":"not an email"},"items":[{"sku":"a","qty":0,"price":0}],"currency":"JPY","total":-1,"priority":10,"created":"yesterday","tags":["` + strings.Repeat("t", 33) + `"]}`,
			want: []string{
				"/created: 'yesterday' is not valid 'date-time'",
				`/currency: value must be one of "EUR", "USD", "GBP"`,
				"/customer/email: 'not an email' is not valid 'email'",
				"/items/0/price: must be > 0 but found 0",
				"/items/0/qty: must be >= 1 but found 0",
				"/items/0/sku: does not match pattern '^[A-Z]+-[0-9]+$'",
				"/order_id: does not match pattern '^ord-[0-9]+$'",
				"/priority: must be <= 9 but found 10",
				"/tags/0: length must be <= 32, but got 33",
				"/total: must be >= 0 but found -1",
			},
		},
		{
			name:    "a fractional number is not an integer",
			payload: `{"order_id":"ord-1","customer":{"id":"c","email":"a@b.example"},"items":[{"sku":"A-1","qty":1.5,"price":1}],"currency":"EUR","total":3}`,
			want:    []string{"/items/0/qty: expected integer, but got number"},
		},
		{
			name:    "an empty array violates minItems",
			payload: `{"order_id":"ord-1","customer":{"id":"c","email":"a@b.example"},"items":[],"currency":"EUR","total":3}`,
			want:    []string{"/items: minimum 1 items required, but found 0 items"},
		},
		{
			name:    "a value of the wrong type at the root is reported at the root",
			payload: `[1, 2]`,
			want:    []string{"(root): expected object, but got array"},
		},
		{
			name:    "violations are ordered by index numerically",
			payload: `{"order_id":"ord-1","customer":{"id":"c","email":"a@b.example"},"items":[{"sku":"A-1","qty":1,"price":1},{"sku":"A-1","qty":1,"price":1},{"sku":"x","qty":1,"price":1},{"sku":"A-1","qty":1,"price":1},{"sku":"A-1","qty":1,"price":1},{"sku":"A-1","qty":1,"price":1},{"sku":"A-1","qty":1,"price":1},{"sku":"A-1","qty":1,"price":1},{"sku":"A-1","qty":1,"price":1},{"sku":"A-1","qty":1,"price":1},{"sku":"x","qty":1,"price":1}],"currency":"EUR","total":3}`,
			want: []string{
				"/items/2/sku: does not match pattern '^[A-Z]+-[0-9]+$'",
				"/items/10/sku: does not match pattern '^[A-Z]+-[0-9]+$'",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := violations(t, c.ValidateInput(mustDecode(t, tt.payload)))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("violations:\n got %q\nwant %q", got, tt.want)
			}
			// The raw JSON text gives the same answer as the decoded map.
			raw := violations(t, c.ValidateInput(json.RawMessage(tt.payload)))
			if !reflect.DeepEqual(raw, tt.want) {
				t.Errorf("violations of the raw JSON:\n got %q\nwant %q", raw, tt.want)
			}
		})
	}
}

func TestAValidationErrorNamesEveryFieldAtFault(t *testing.T) {
	c, err := contracts.FromJSON(nil, []byte(`{"type":"object","required":["a","b"]}`))
	if err != nil {
		t.Fatal(err)
	}
	err = c.ValidateOutput(map[string]any{})
	want := "contracts: output violates schema: /a: required; /b: required"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
	var ve *contracts.ValidationError
	errors.As(err, &ve)
	if ve.Side != "output" {
		t.Errorf("Side = %q, want output", ve.Side)
	}
	prefixed := ve.Prefixed("/output")
	if got := prefixed.Violations[0].Path; got != "/output/a" {
		t.Errorf("prefixed path = %q, want /output/a", got)
	}
	if ve.Violations[0].Path != "/a" {
		t.Errorf("Prefixed modified the original error")
	}
}

func TestValidationErrorTextIsBounded(t *testing.T) {
	s, err := contracts.NewSchema([]byte(`{"type":"array","items":{"type":"string"}}`))
	if err != nil {
		t.Fatal(err)
	}
	items := make([]any, 25)
	for i := range items {
		items[i] = float64(i)
	}
	err = s.Validate(items)
	var ve *contracts.ValidationError
	if !errors.As(err, &ve) || len(ve.Violations) != 25 {
		t.Fatalf("want 25 violations, got %v", err)
	}
	if !strings.HasSuffix(err.Error(), "; and 15 more") {
		t.Errorf("error text does not summarise the rest: %s", err)
	}
	if !strings.HasPrefix(err.Error(), "contracts: value violates schema: /0: expected string") {
		t.Errorf("error text of a bare schema: %s", err)
	}
}

func TestViolationPathsAreJSONPointers(t *testing.T) {
	s, err := contracts.NewSchema([]byte(`{
		"type": "object",
		"required": ["a/b", "t~n", "naïve", "it's \"quoted\""],
		"properties": {"ключ": {"type": "integer"}},
		"additionalProperties": {"type": ["integer", "string"]}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	got := violations(t, s.Validate(map[string]any{"ключ": "x", "a~b/c": true}))
	want := []string{
		`/a~0b~1c: expected integer or string, but got boolean`,
		`/a~1b: required`,
		`/it's "quoted": required`,
		`/naïve: required`,
		`/t~0n: required`,
		`/ключ: expected integer, but got string`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("violations:\n got %q\nwant %q", got, want)
	}
}

func TestAdditionalPropertiesFalseNamesEachProperty(t *testing.T) {
	s, err := contracts.NewSchema([]byte(`{"type":"object","properties":{"a":{}},"additionalProperties":false}`))
	if err != nil {
		t.Fatal(err)
	}
	got := violations(t, s.Validate(map[string]any{"a": 1.0, "b": 2.0, "c, d": 3.0}))
	want := []string{"/b: not allowed (additionalProperties)", "/c, d: not allowed (additionalProperties)"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("violations:\n got %q\nwant %q", got, want)
	}
}

func TestMalformedSchemaFailsAtConstruction(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		want   string // in the error text
	}{
		{"text that is not JSON", `{"type":`, "not JSON"},
		{"an unknown type name", `{"properties":{"a":{"type":"strin"}}}`, "/properties/a/type"},
		{"a type that is not a string", `{"type":5}`, "/type"},
		{"a pattern that is not a regular expression", `{"pattern":"(?=x)"}`, "/pattern"},
		{"a bound that is not a number", `{"minimum":"x"}`, "/minimum: expected number"},
		{"required that is not a list", `{"required":"a"}`, "/required"},
		{"a reference to a missing definition", `{"$ref":"#/$defs/nope"}`, "$defs/nope not found"},
		{"a reference to another document", `{"$ref":"https://example.com/s.json"}`, "not loaded"},
		{"a reference to a local file", `{"$ref":"file:///etc/hostname"}`, "not loaded"},
		{"an unknown meta-schema", `{"$schema":"https://example.com/meta"}`, "not loaded"},
		{"a reference loop", `{"anyOf":[{"type":"string"},{"$ref":"#"}]}`, "infinite loop"},
		{"an array", `[]`, "expected object or boolean"},
		// The schema compiler never returns from these (a stack overflow).
		{"an $id with an empty query", `{"$id":"?"}`, `"$id" "?" at /$id ends in an empty query`},
		{"its own location with an empty query", `{"$id":"heddle:schema.json?"}`, "at /$id ends in an empty query"},
		{"an $id with an empty query, then more text", `{"$id":"?"},{}`, "at /$id ends in an empty query"},
		{"a nested $id with an empty query", `{"$defs":{"a/b":{"$id":"x?#y"}}}`, "at /$defs/a~1b/$id ends in an empty query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := contracts.NewSchema([]byte(tt.schema))
			if !errors.Is(err, contracts.ErrSchema) {
				t.Fatalf("error = %v, want one matching ErrSchema", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			_, err = contracts.FromJSON([]byte(`{}`), []byte(tt.schema))
			if !errors.Is(err, contracts.ErrSchema) || !strings.HasPrefix(err.Error(), "output: ") {
				t.Errorf("FromJSON error = %v, want an output error matching ErrSchema", err)
			}
		})
	}
}

func TestSchemasOfEveryDraftFeatureCompileAndCheckTheirInstances(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		valid  string
		bad    string
	}{
		{"a boolean schema", `true`, `{"anything":1}`, ""},
		{"the false schema", `false`, "", `1`},
		{"an unknown format is an annotation", `{"format":"path"}`, `"x"`, ""},
		{"an older draft named in $schema", `{"$schema":"http://json-schema.org/draft-07/schema#","items":[{"type":"string"}],"additionalItems":false}`, `["a"]`, `["a",1]`},
		{"prefixItems of draft 2020-12", `{"prefixItems":[{"type":"string"}],"items":false}`, `["a"]`, `["a",1]`},
		{"const and enum of objects", `{"enum":[{"a":[1,2]},null]}`, `{"a":[1.0,2]}`, `{"a":[2,1]}`},
		{"if, then and else", `{"if":{"properties":{"k":{"const":"n"}}},"then":{"required":["n"]},"else":{"required":["s"]}}`, `{"k":"n","n":1}`, `{"k":"x","n":1}`},
		{"oneOf needs exactly one match", `{"oneOf":[{"type":"integer"},{"minimum":2}]}`, `1`, `3`},
		{"uniqueItems compares numbers by value", `{"uniqueItems":true}`, `[1,"1",[1]]`, `[1,1.0]`},
		{"unevaluatedProperties", `{"properties":{"a":{}},"unevaluatedProperties":false}`, `{"a":1}`, `{"b":1}`},
		{"multipleOf with decimals", `{"multipleOf":0.01}`, `19.99`, `19.999`},
		{"dependentRequired", `{"dependentRequired":{"card":["cvv"]}}`, `{"card":1,"cvv":2}`, `{"card":1}`},
		{"contains with bounds", `{"contains":{"type":"string"},"minContains":2}`, `["a","b",1]`, `["a",1]`},
		{"a uuid format", `{"format":"uuid"}`, `"6fa459ea-ee8a-3ca4-894e-db77e160355e"`, `"6fa459ea"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := contracts.NewSchema([]byte(tt.schema))
			if err != nil {
				t.Fatal(err)
			}
			if tt.valid != "" {
				if err := s.Validate(json.RawMessage(tt.valid)); err != nil {
					t.Errorf("%s: %v", tt.valid, err)
				}
			}
			if tt.bad != "" {
				if err := s.Validate(json.RawMessage(tt.bad)); !errors.Is(err, contracts.ErrViolation) {
					t.Errorf("%s: error = %v, want a violation", tt.bad, err)
				}
			}
		})
	}
}

type lineItem struct {
	SKU   string  `json:"sku" jsonschema:"pattern=^[A-Z]+-[0-9]+$"`
	Qty   int     `json:"qty" jsonschema:"minimum=1"`
	Price float64 `json:"price"`
}

type order struct {
	ID       string     `json:"id"`
	Items    []lineItem `json:"items" jsonschema:"minItems=1"`
	Currency string     `json:"currency" jsonschema:"enum=EUR,enum=USD"`
	Note     *string    `json:"note,omitempty"`
	Placed   time.Time  `json:"placed"`
	Tags     []string   `json:"tags,omitempty"`
}

type receipt struct {
	OK    bool   `json:"ok"`
	Total string `json:"total"`
}

func TestForGeneratesSchemasFromGoTypes(t *testing.T) {
	c, err := contracts.For[order, receipt]()
	if err != nil {
		t.Fatal(err)
	}
	good := order{ID: "o1", Items: []lineItem{{SKU: "A-1", Qty: 2, Price: 3}}, Currency: "EUR", Placed: time.Now()}
	if err := c.ValidateInput(good); err != nil {
		t.Errorf("a valid Go value: %v", err)
	}

	tests := []struct {
		name  string
		input any
		want  []string
	}{
		{
			name:  "fields without omitempty are required",
			input: map[string]any{"id": "o1", "items": []any{map[string]any{"sku": "A-1", "price": 1.0}}},
			want:  []string{"/currency: required", "/items/0/qty: required", "/placed: required"},
		},
		{
			name:  "struct tags add constraints",
			input: order{ID: "o1", Items: []lineItem{{SKU: "a", Qty: 0}}, Currency: "GBP", Placed: time.Now()},
			want: []string{
				`/currency: value must be one of "EUR", "USD"`,
				"/items/0/qty: must be >= 1 but found 0",
				"/items/0/sku: does not match pattern '^[A-Z]+-[0-9]+$'",
			},
		},
		{
			name:  "a time must be an RFC 3339 date-time",
			input: map[string]any{"id": "o1", "items": []any{map[string]any{"sku": "A-1", "qty": 1, "price": 1}}, "currency": "EUR", "placed": "noon"},
			want:  []string{"/placed: 'noon' is not valid 'date-time'"},
		},
		{
			name:  "unknown properties are allowed",
			input: map[string]any{"id": "o1", "items": []any{map[string]any{"sku": "A-1", "qty": 1, "price": 1, "colour": "red"}}, "currency": "EUR", "placed": "2026-01-02T03:04:05Z", "source": "web"},
		},
		{
			name:  "a nil slice without omitempty is null, which is a violation",
			input: order{ID: "o1", Currency: "EUR", Placed: time.Now()},
			want:  []string{"/items: expected array, but got null"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := violations(t, c.ValidateInput(tt.input))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("violations:\n got %q\nwant %q", got, tt.want)
			}
		})
	}

	if err := c.ValidateOutput(receipt{OK: true, Total: "3.00"}); err != nil {
		t.Errorf("a valid output: %v", err)
	}
	if got := violations(t, c.ValidateOutput(map[string]any{"ok": "yes"})); !reflect.DeepEqual(got, []string{"/ok: expected boolean, but got string", "/total: required"}) {
		t.Errorf("output violations: %q", got)
	}
	var doc map[string]any
	if err := json.Unmarshal(c.Input().Document(), &doc); err != nil {
		t.Fatalf("the generated document is not JSON: %v", err)
	}
	if doc["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("generated $schema = %v", doc["$schema"])
	}
}

func TestSchemaForRecursiveAndScalarTypes(t *testing.T) {
	type tree struct {
		Name     string  `json:"name"`
		Children []*tree `json:"children,omitempty"`
	}
	s, err := contracts.SchemaFor[tree]()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(json.RawMessage(`{"name":"a","children":[{"name":"b","children":[{"name":"c"}]}]}`)); err != nil {
		t.Errorf("a valid tree: %v", err)
	}
	if got := violations(t, s.Validate(json.RawMessage(`{"name":"a","children":[{"children":[{"name":1}]}]}`))); !reflect.DeepEqual(got, []string{"/children/0/children/0/name: expected string, but got number", "/children/0/name: required"}) {
		t.Errorf("violations in a tree: %q", got)
	}
	str, err := contracts.SchemaFor[string]()
	if err != nil {
		t.Fatal(err)
	}
	if err := str.Validate(1.0); !errors.Is(err, contracts.ErrViolation) {
		t.Errorf("a number against a string schema: %v", err)
	}
	anything, err := contracts.SchemaFor[any]()
	if err != nil {
		t.Fatal(err)
	}
	if err := anything.Validate(json.RawMessage(`[1,{"a":null}]`)); err != nil {
		t.Errorf("anything against the schema of any: %v", err)
	}
}

func TestFromFilesLoadsSchemasAndTheirFileReferences(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("defs.json", `{"$defs":{"item":{"type":"object","required":["qty"],"properties":{"qty":{"type":"integer"}}}}}`)
	in := write("in.json", `{"type":"object","properties":{"items":{"type":"array","items":{"$ref":"defs.json#/$defs/item"}}}}`)
	out := write("out.json", `{"type":"object","required":["ok"]}`)
	bad := write("bad.json", `{"type":"nope"}`)

	c, err := contracts.FromFiles(in, out)
	if err != nil {
		t.Fatal(err)
	}
	if got := violations(t, c.ValidateInput(mustDecode(t, `{"items":[{"qty":1},{"qty":2},{"qty":"3"}]}`))); !reflect.DeepEqual(got, []string{"/items/2/qty: expected integer, but got string"}) {
		t.Errorf("violations through a file reference: %q", got)
	}
	if got := violations(t, c.ValidateOutput(map[string]any{})); !reflect.DeepEqual(got, []string{"/ok: required"}) {
		t.Errorf("output violations: %q", got)
	}

	onlyOut, err := contracts.FromFiles("", out)
	if err != nil {
		t.Fatal(err)
	}
	if onlyOut.Input() != nil || onlyOut.ValidateInput("anything") != nil {
		t.Errorf("an empty input path must leave inputs unchecked")
	}
	if _, err := contracts.FromFiles(bad, ""); !errors.Is(err, contracts.ErrSchema) || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("a malformed file: error = %v, want ErrSchema naming the file", err)
	}
	if _, err := contracts.FromFiles(filepath.Join(dir, "missing.json"), ""); !errors.Is(err, contracts.ErrSchema) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: error = %v, want ErrSchema and os.ErrNotExist", err)
	}
	if _, err := contracts.NewSchema([]byte(`{"$ref":"file://` + filepath.ToSlash(filepath.Join(dir, "defs.json")) + `"}`)); !errors.Is(err, contracts.ErrSchema) {
		t.Errorf("a schema given as bytes must not load files: %v", err)
	}
}

func TestValidateAcceptsEveryFormOfValue(t *testing.T) {
	s, err := contracts.NewSchema([]byte(`{"type":"object","properties":{"tags":{"type":"array","items":{"type":"string","minLength":2}},"n":{"type":"integer"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	type doc struct {
		Tags []string `json:"tags"`
		N    any      `json:"n"`
	}
	tests := []struct {
		name  string
		value any
		want  []string
	}{
		{"a decoded map", mustDecode(t, `{"tags":["ab"],"n":1}`), nil},
		{"JSON text as json.RawMessage", json.RawMessage(`{"tags":["a"]}`), []string{"/tags/0: length must be >= 2, but got 1"}},
		{"JSON text as bytes", []byte(`{"n":1.5}`), []string{"/n: expected integer, but got number"}},
		{"text that is not JSON", []byte(`{"n":`), []string{"(root): invalid JSON: unexpected end of JSON input"}},
		{"a struct", doc{Tags: []string{"a"}, N: 1}, []string{"/tags/0: length must be >= 2, but got 1"}},
		{"a map holding Go slices", map[string]any{"tags": []string{"ab", "c"}, "n": int64(2)}, []string{"/tags/1: length must be >= 2, but got 1"}},
		{"a map holding Go ints", map[string]any{"n": 7}, nil},
		{"a json.Number", map[string]any{"n": json.Number("7")}, nil},
		{"a fractional json.Number", map[string]any{"n": json.Number("7.5")}, []string{"/n: expected integer, but got number"}},
		{"an int64 beyond 2^53", map[string]any{"n": int64(1) << 60}, nil},
		{"a float32", map[string]any{"n": float32(2)}, nil},
		{"a fractional float32", map[string]any{"n": float32(2.5)}, []string{"/n: expected integer, but got number"}},
		{"a typed map", map[string]int{"n": 7}, nil},
		{"a NaN, which JSON cannot hold", map[string]any{"n": math.NaN()}, []string{"(root): value cannot be encoded as JSON: json: unsupported value: NaN"}},
		{"nil, which is JSON null", nil, []string{"(root): expected object, but got null"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := violations(t, s.Validate(tt.value))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("violations:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestNilSidesAcceptEverything(t *testing.T) {
	var zero contracts.Contract
	var nilContract *contracts.Contract
	empty, err := contracts.FromJSON(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*contracts.Contract{"zero": &zero, "nil": nilContract, "empty": empty, "New(nil, nil)": contracts.New(nil, nil)} {
		if c.ValidateInput(math.NaN()) != nil || c.ValidateOutput([]byte("not json")) != nil {
			t.Errorf("%s contract rejected a value", name)
		}
		if c.Input() != nil || c.Output() != nil {
			t.Errorf("%s contract has a schema", name)
		}
	}
	var s *contracts.Schema
	if s.Validate(1) != nil || string(s.Document()) != "true" {
		t.Errorf("a nil schema must accept everything and read as true")
	}
}

func TestSchemaDocumentRoundTrips(t *testing.T) {
	doc := []byte(`{"type":"object","required":["a"]}`)
	s, err := contracts.NewSchema(doc)
	if err != nil {
		t.Fatal(err)
	}
	doc[0] = 'X' // the schema keeps its own copy
	b, err := json.Marshal(map[string]any{"input": s})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"input":{"type":"object","required":["a"]}}` {
		t.Errorf("marshalled schema = %s", b)
	}
}
