package keycase

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The types below cover encoding/json's field rules; every leaf is an
// any, so that any JSON value fills it and a probe sees which key fills
// something.

type flat struct {
	N      any `json:"n"`
	Name   any
	Ignore any `json:"-"`
	Opts   any `json:",omitempty"`
	hidden any
	Straße any `json:"straße"`
	K      any `json:"k"` // "K" (U+212A KELVIN SIGN) folds to it
}

type Inner struct {
	X     any `json:"x"`
	Shade any // hidden by outer's Shade
	Deep  any
}

type inner2 struct {
	Y any `json:"y"`
}

type Twin1 struct{ Amb any }
type Twin2 struct{ Amb any }

type Tagged1 struct {
	T any `json:"t"`
}
type Untagged2 struct{ T any }

type outer struct {
	Inner     // promoted
	*inner2   // unexported, by pointer: promoted, cannot be set
	Twin1     // Amb at one depth in two embedded structs: annihilated
	Twin2     //
	Tagged1   // t tagged ...
	Untagged2 // ... beats T untagged at the same depth
	Shade     any
	Named     Inner `json:"named"` // a tagged embedding is a field
	Items     []Inner
	ByKey     map[string]Inner
	Ptr       *Inner
	When      time.Time // reads itself
	Free      any
}

type recursive struct {
	Next *recursive `json:"next"`
	V    any        `json:"v"`
}

// oddTags holds the tags linters rightly flag, built at run time.
var oddTags = reflect.StructOf([]reflect.StructField{
	{Name: "Dash", Type: reflect.TypeFor[any](), Tag: `json:"-,"`},  // the name "-"
	{Name: "Bad", Type: reflect.TypeFor[any](), Tag: `json:"a\"b"`}, // not a valid name: the field's own counts
})

var probeTypes = []reflect.Type{
	reflect.TypeFor[flat](),
	reflect.TypeFor[outer](),
	reflect.TypeFor[recursive](),
	oddTags,
}

// The unexported field is there for encoding/json to skip.
var _ = flat{}.hidden

// fills reports whether encoding/json, decoding {key: 1} into a new value
// of t, fills anything (or fails trying to).
func fills(t reflect.Type, key string) bool {
	doc, err := json.Marshal(map[string]any{key: 1})
	if err != nil {
		panic(err)
	}
	v := reflect.New(t)
	if err := json.Unmarshal(doc, v.Interface()); err != nil {
		return true
	}
	return !v.Elem().IsZero()
}

// checkAgainstEncodingJSON checks, for one key at the top of t, that Find
// reports it exactly when encoding/json fills a field with it and no field
// has that exact name.
func checkAgainstEncodingJSON(t *testing.T, typ reflect.Type, key string) {
	t.Helper()
	if !utf8.ValidString(key) {
		return // a decoded key is always valid UTF-8
	}
	fs := fieldsOf(typ)
	_, exact := fs.exact[key]
	if got, want := exact || len(Find(typ, map[string]any{key: 1.0})) > 0, fills(typ, key); got != want {
		t.Errorf("%v, key %q: keycase sees a field: %v; encoding/json fills one: %v", typ, key, got, want)
	}
	if exact && len(Find(typ, map[string]any{key: 1.0})) > 0 {
		t.Errorf("%v, key %q: names a field exactly and is reported", typ, key)
	}
}

func TestFindAgreesWithEncodingJSON(t *testing.T) {
	keys := []string{"n", "N", "name", "Name", "NAME", "Ignore", "ignore", "-", "Dash", "opts", "Opts", `a"b`, "bad", "Bad",
		"hidden", "Hidden", "straße", "STRASSE", "STRAßE", "k", "K", "\u212a",
		"x", "X", "shade", "Shade", "deep", "DEEP", "y", "Y", "amb", "Amb", "t", "T", "named", "Named", "Inner", "inner",
		"items", "ITEMS", "bykey", "ptr", "when", "free", "next", "NEXT", "v", "V", "", "unknown"}
	for _, typ := range probeTypes {
		for _, key := range keys {
			checkAgainstEncodingJSON(t, typ, key)
		}
	}
}

func FuzzFindAgreesWithEncodingJSON(f *testing.F) {
	for _, k := range []string{"n", "N", "Shade", "AMB", "t", "\u212a", "STRAßE", "nExt"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		for _, typ := range probeTypes {
			checkAgainstEncodingJSON(t, typ, key)
		}
	})
}

func TestFindReportsEveryKeyByPathInOrder(t *testing.T) {
	var doc any
	if err := json.Unmarshal([]byte(`{
		"n": 1, "N": 999,
		"Items": [{"x": 1}, {"X": 2}],
		"ByKey": {"a/b": {"SHADE": 3}},
		"Ptr": {"Deep": 1, "deep": 2},
		"named": {"x": 1, "x~": 1, "X": 4},
		"When": {"X": 1},
		"Free": {"N": 1}
	}`), &doc); err != nil {
		t.Fatal(err)
	}
	type withN struct {
		N any `json:"n"`
		outer
	}
	got := Find(reflect.TypeFor[withN](), doc)
	want := []Mismatch{
		{Path: "/ByKey/a~1b/SHADE", Field: "Shade"},
		{Path: "/Items/1/X", Field: "x"},
		{Path: "/N", Field: "n"},
		{Path: "/Ptr/deep", Field: "Deep"},
		{Path: "/named/X", Field: "x"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Find = %v\nwant %v", got, want)
	}
	if s := got[2].String(); !strings.Contains(s, `/N: the key names the field "n" only by case`) {
		t.Errorf("String() = %q", s)
	}
}

func TestFindSkipsTypesWithoutStructs(t *testing.T) {
	doc := map[string]any{"A": map[string]any{"a": 1}}
	for _, typ := range []reflect.Type{reflect.TypeFor[map[string]any](), reflect.TypeFor[[]int](), reflect.TypeFor[any](),
		reflect.TypeFor[time.Time](), reflect.TypeFor[json.RawMessage]()} {
		if got := Find(typ, doc); got != nil {
			t.Errorf("Find(%v) = %v, want nil", typ, got)
		}
	}
	if mayHoldStruct(reflect.TypeFor[list]()) || mayHoldStruct(reflect.TypeFor[selfish]()) {
		t.Error("a slice of itself or a pointer to itself holds no struct")
	}
}

type (
	list    []list
	selfish *selfish
)
