package wire

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

type fillInner struct {
	Name  string  `json:"name"`
	Score float64 `json:"score"`
}

type fillEmbedded struct {
	Region string `json:"region"`
	Level  int8   `json:"level"`
}

// fillTarget holds every kind Fill fills, and some it leaves to
// encoding/json.
type fillTarget struct {
	fillEmbedded
	Text   string                `json:"text"`
	N      float64               `json:"n"`
	Count  int                   `json:"count"`
	Small  uint8                 `json:"small"`
	Big    int64                 `json:"big"`
	Flag   bool                  `json:"flag"`
	Any    any                   `json:"any"`
	Inner  fillInner             `json:"inner"`
	Ptr    *fillInner            `json:"ptr"`
	Items  []fillInner           `json:"items"`
	Tags   []string              `json:"tags"`
	ByName map[string]int        `json:"by_name"`
	Nested map[string][]float64  `json:"nested"`
	Opt    *string               `json:"opt,omitempty"`
	Deep   map[string]*fillInner `json:"deep"`
	Skip   string                `json:"-"`
	NoTag  string
	hidden string
}

// fillLeft has fields Fill leaves to encoding/json.
type fillLeft struct {
	When  time.Time   `json:"when"`
	Quote int         `json:"quote,string"`
	Raw   []byte      `json:"raw"`
	Num   json.Number `json:"num"`
}

type fillNode struct {
	Value int         `json:"value"`
	Kids  []*fillNode `json:"kids"`
}

// fillCheck fills a new T from doc as a worker does (doc decoded by
// Value) and, when Fill is sure, requires encoding/json to give the same
// value without error. It returns whether Fill filled.
func fillCheck[T any](t *testing.T, doc []byte) bool {
	t.Helper()
	if !Valid(doc) {
		return false
	}
	v, end, ok := Value(doc, skipSpace(doc, 0))
	if !ok || skipSpace(doc, end) != len(doc) {
		return false
	}
	var got T
	if !Fill(reflect.ValueOf(&got).Elem(), v, doc) {
		return false
	}
	var want T
	if err := json.Unmarshal(doc, &want); err != nil {
		t.Fatalf("Fill filled %#v from %s, encoding/json fails: %v", got, doc, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Fill and encoding/json differ on %s:\nfill: %#v\njson: %#v", doc, got, want)
	}
	return true
}

func TestFillAgreesWithEncodingJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		fill bool // Fill is sure
	}{
		{"every kind it fills, nested", `{"text":"héllo \u00e9","n":1.5,"count":-3,"small":200,"big":9007199254740991,"flag":true,
			"any":{"a":[1,"x",null,{"b":false}]},"inner":{"name":"i","score":2},"ptr":{"name":"p"},"items":[{"name":"a"},{"score":-1e2}],
			"tags":[],"by_name":{"x":1,"y":2},"nested":{"k":[1.5,2]},"deep":{"d":{"name":"d"},"e":null},"region":"eu","level":-128,
			"NoTag":"t","unknown":{"x":1}}`, false},
		{"integers without fraction or exponent", `{"count":-3,"small":200,"big":9007199254740991,"level":7,"by_name":{"x":1}}`, true},
		{"integers beside fractions", `{"count":-3,"n":0.5,"any":[2.5e-1]}`, true},
		{"integers beside an integral fraction", `{"count":-3,"n":2.0}`, false},
		{"2^53", `{"big":9007199254740992}`, false},
		{"strings, floats, booleans and nulls", `{"text":"a","n":1.5e3,"flag":false,"ptr":null,"items":null,"any":null,"inner":null}`, true},
		{"an empty array is an empty slice", `{"tags":[],"items":[]}`, true},
		{"a repeated key is left to encoding/json", `{"inner":{"name":"a"},"inner":{"score":1}}`, false},
		{"an integer beyond its type", `{"small":256}`, false},
		{"a negative unsigned integer", `{"small":-1}`, false},
		{"a negative zero unsigned integer", `{"small":-0}`, false},
		{"a negative zero integer", `{"count":-0}`, true},
		{"an integer beyond 2^53", `{"big":9007199254740993}`, false},
		{"a fraction into an integer", `{"count":1.5}`, false},
		{"an integral fraction into an integer", `{"count":1.0}`, false},
		{"a string into a number", `{"n":"1"}`, false},
		{"a key naming a field only by case", `{"TEXT":"a"}`, false},
		{"a boolean beside an integer", `{"flag":true,"count":2}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fillCheck[fillTarget](t, []byte(tc.doc)); got != tc.fill {
				t.Errorf("Fill sure = %v, want %v", got, tc.fill)
			}
		})
	}
}

func TestFillLeavesTypesItDoesNotKnowToEncodingJSON(t *testing.T) {
	doc := []byte(`{"when":"2026-01-02T03:04:05Z","quote":"1","raw":"AAE=","num":1}`)
	v, _ := DecodeAny(doc)
	var got fillLeft
	if Fill(reflect.ValueOf(&got).Elem(), v, doc) {
		t.Fatal("Fill filled a type with UnmarshalJSON, a ,string field, []byte and json.Number")
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[time.Time](), reflect.TypeFor[[]byte](), reflect.TypeFor[json.Number](),
		reflect.TypeFor[[2]int](), reflect.TypeFor[float32](), reflect.TypeFor[map[int]string](), reflect.TypeFor[interface{ M() }]()} {
		if planOf(typ).fillable {
			t.Errorf("%v is fillable", typ)
		}
	}
}

func TestFillCopiesWhatAnInterfaceHolds(t *testing.T) {
	doc := []byte(`{"any":{"list":[1,2]}}`)
	v, _ := DecodeAny(doc)
	var got fillTarget
	if !Fill(reflect.ValueOf(&got).Elem(), v, doc) {
		t.Fatal("not filled")
	}
	got.Any.(map[string]any)["list"].([]any)[0] = "changed"
	if first := v.(map[string]any)["any"].(map[string]any)["list"].([]any)[0]; first != float64(1) {
		t.Fatalf("the handler's change reached the decoded payload: %v", first)
	}
}

func TestFillRecursiveTypes(t *testing.T) {
	if !fillCheck[fillNode](t, []byte(`{"value":1,"kids":[{"value":2,"kids":[]},{"value":3,"kids":[{"value":4}]}]}`)) {
		t.Fatal("a recursive type was not filled")
	}
}

// FuzzFillAgreesWithEncodingJSON checks Fill against json.Unmarshal: every
// value Fill fills is the one encoding/json gives, without error.
func FuzzFillAgreesWithEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"text":"a","n":1,"count":2,"small":3,"big":-4,"flag":true,"any":[1,{"a":null}],"inner":{"name":"x"}}`,
		`{"ptr":{"score":1.5},"items":[{"name":"a"},{}],"tags":["x"],"by_name":{"a":1},"nested":{"a":[1]},"deep":{"a":null}}`,
		`{"region":"r","level":1,"NoTag":"n","Skip":"s","hidden":"h","inner":{"name":"a"},"inner":{"score":1}}`,
		`{"value":1,"kids":[{"value":2,"kids":null}]}`,
		`{"count":1e2,"small":-0,"text":"\ud800","Text":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if strings.Count(string(doc), "[") > 50 || strings.Count(string(doc), "{") > 50 {
			return
		}
		fillCheck[fillTarget](t, doc)
		fillCheck[fillNode](t, doc)
		fillCheck[map[string]fillInner](t, doc)
		fillCheck[any](t, doc)
	})
}

// BenchmarkFill fills a typed input from its decoded payload, against
// json.Unmarshal of the payload's bytes, which a worker would otherwise
// do.
func BenchmarkFill(b *testing.B) {
	doc := []byte(`{"text":"Heddle routes tasks.","n":42,"count":7,"tags":["a","b"],"inner":{"name":"x","score":0.5},"items":[{"name":"a"},{"name":"b"}]}`)
	v, _ := DecodeAny(doc)
	b.Run("fill", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var in fillTarget
			if !Fill(reflect.ValueOf(&in).Elem(), v, doc) {
				b.Fatal("not filled")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var in fillTarget
			if err := json.Unmarshal(doc, &in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// treeCheck requires Tree of v, when sure, to be what json.Marshal then
// DecodeExact give, and reports whether it was sure.
func treeCheck(t *testing.T, v any) bool {
	t.Helper()
	got, ok := Tree(reflect.ValueOf(v))
	if !ok {
		return false
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("Tree built %#v from %#v, json.Marshal fails: %v", got, v, err)
	}
	want, err := DecodeExact(b)
	if err != nil {
		t.Fatalf("DecodeExact(%s): %v", b, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Tree and encoding/json differ on %#v (%s):\ntree: %#v\njson: %#v", v, b, got, want)
	}
	return true
}

type treeOmit struct {
	A string     `json:"a,omitempty"`
	B int        `json:"b,omitempty"`
	C float64    `json:"c,omitempty"`
	D *fillInner `json:"d,omitempty"`
	E []int      `json:"e,omitempty"`
	F fillInner  `json:"f,omitzero"`
	G bool       `json:"g,omitempty"`
	H any        `json:"h,omitempty"`
}

func TestTreeAgreesWithEncodingJSON(t *testing.T) {
	s := "s"
	for _, tc := range []struct {
		name string
		v    any
		sure bool
	}{
		{"every kind it builds", fillTarget{Text: "<b>&", N: math.Copysign(0, -1), Count: 1 << 60, Small: 255, Big: -(1 << 53), Flag: true,
			Any: map[string]any{"x": []any{1.5, nil, "y"}, "n": 3}, Ptr: &fillInner{Name: "p"}, Items: []fillInner{{Score: 1e300}},
			Tags: []string{}, ByName: map[string]int{"k": 1}, Opt: &s, Deep: map[string]*fillInner{"n": nil},
			fillEmbedded: fillEmbedded{Region: "r"}, NoTag: "t", Skip: "skipped", hidden: "h"}, true},
		{"the zero value", fillTarget{}, true},
		{"omitempty and omitzero, empty", treeOmit{C: math.Copysign(0, -1)}, true},
		{"omitempty and omitzero, set", treeOmit{A: "a", B: 1, C: 1, D: &fillInner{}, E: []int{0}, F: fillInner{Name: "f"}, G: true, H: 0}, true},
		{"a nil pointer", (*fillInner)(nil), true},
		{"a map of any", map[string]any{"a": 1}, true},
		{"uint64 beyond 2^53", map[string]uint64{"a": 1<<64 - 1}, true},
		{"invalid UTF-8", map[string]string{"a": "\xff"}, false},
		{"a NaN", map[string]float64{"a": math.NaN()}, false},
		{"float32", map[string]float32{"a": 0.1}, false},
		{"a time", map[string]time.Time{"a": {}}, false},
		{"bytes", map[string][]byte{"a": {1}}, false},
		{"a json.Number", map[string]json.Number{"a": "1"}, false},
		{"omitzero with IsZero", struct {
			T time.Time `json:"t,omitzero"`
		}{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := treeCheck(t, tc.v); got != tc.sure {
				t.Errorf("Tree sure = %v, want %v", got, tc.sure)
			}
		})
	}
}

// FuzzTreeAgreesWithEncodingJSON checks Tree against json.Marshal and
// DecodeExact on values encoding/json decoded from the fuzzed text.
func FuzzTreeAgreesWithEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"text":"a<>","n":-0,"count":9007199254740993,"small":3,"big":-4,"flag":true,"any":[1,{"a":null}],"inner":{"name":"x"}}`,
		`{"ptr":{"score":1.5},"items":[{"name":"a"},{}],"tags":[],"by_name":{"a":1},"nested":{"a":[1]},"deep":{"a":null}}`,
		`{"a":"","b":0,"c":-0,"d":null,"e":[],"f":{},"g":false,"h":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		var a fillTarget
		if json.Unmarshal(doc, &a) == nil {
			treeCheck(t, a)
		}
		var o treeOmit
		if json.Unmarshal(doc, &o) == nil {
			treeCheck(t, o)
		}
		var m map[string]any
		if json.Unmarshal(doc, &m) == nil {
			treeCheck(t, m)
		}
	})
}

// BenchmarkTree builds an output object from a typed value, against
// json.Marshal then DecodeExact, which a worker would otherwise do.
func BenchmarkTree(b *testing.B) {
	out := fillTarget{Text: "Heddle routes tasks.", N: 42, Count: 7, Tags: []string{"a", "b"},
		Inner: fillInner{Name: "x", Score: 0.5}, Items: []fillInner{{Name: "a"}, {Name: "b"}}}
	b.Run("tree", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := Tree(reflect.ValueOf(&out).Elem()); !ok {
				b.Fatal("not sure")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			data, err := json.Marshal(&out)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := DecodeExact(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
