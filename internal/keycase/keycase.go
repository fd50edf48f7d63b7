// Package keycase finds the JSON object keys that encoding/json would
// decode into a struct field whose name they match only by case.
//
// encoding/json matches a key to a field case-insensitively, so
// {"n":1,"N":999} decoded into struct{ N int `json:"n"` } gives N == 999,
// while a JSON Schema check of the same document saw "n" == 1 and took
// "N" for another property. Code that checks a document against a
// contract and then decodes it into a Go type refuses such keys, so that
// the decoder reads exactly the keys the check saw.
//
// The field rules are encoding/json's (typeFields in its source):
// exported fields and the promoted fields of embedded structs, json tag
// names, "-" skipped, the Go rules for hidden and ambiguous embedded
// fields, and the same case folding (bytes.EqualFold). A type with its
// own UnmarshalJSON, or an UnmarshalText that encoding/json would use, is
// not looked into: it reads the keys itself. TestFindAgreesWithEncodingJSON
// and FuzzFindAgreesWithEncodingJSON compare the two.
package keycase

import (
	"cmp"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
)

// Mismatch is a key that encoding/json would decode into a struct field
// whose JSON name it matches only by case.
type Mismatch struct {
	// Path is the JSON Pointer (RFC 6901) of the member with that key,
	// from the value Find was given: /items/0/N.
	Path string
	// Field is the JSON name of the field the key would fill.
	Field string
}

// Message says what is wrong with the key, without its path.
func (m Mismatch) Message() string {
	return fmt.Sprintf("the key names the field %q only by case; keys are case-sensitive", m.Field)
}

func (m Mismatch) String() string { return m.Path + ": " + m.Message() }

// Find walks v, a value decoded from JSON as encoding/json decodes into an
// any (objects as map[string]any, arrays as []any), beside t, the type
// the same JSON is decoded into, and returns every key that would fill a
// field of a struct in t by a case-insensitive match only, sorted by
// path. It returns nil when there is none, at once when t holds no
// struct at all.
func Find(t reflect.Type, v any) []Mismatch {
	if !mayHoldStruct(t) {
		return nil
	}
	var w walker
	w.walk(t, v, nil)
	slices.SortFunc(w.found, func(a, b Mismatch) int { return cmp.Compare(a.Path, b.Path) })
	return w.found
}

// step is one level of the path to the value being walked, kept as a
// chain so that a path is written only for a mismatch.
type step struct {
	parent *step
	key    string
	index  int // for an array element, when key is ""
	elem   bool
}

func (s *step) pointer(last string) string {
	var toks []string
	toks = append(toks, escape(last))
	for p := s; p != nil; p = p.parent {
		if p.elem {
			toks = append(toks, strconv.Itoa(p.index))
		} else {
			toks = append(toks, escape(p.key))
		}
	}
	slices.Reverse(toks)
	return "/" + strings.Join(toks, "/")
}

// escape writes a JSON Pointer reference token (RFC 6901).
func escape(tok string) string {
	if !strings.ContainsAny(tok, "~/") {
		return tok
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(tok)
}

type walker struct{ found []Mismatch }

func (w *walker) walk(t reflect.Type, v any, at *step) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if readsItself(t) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		fs := fieldsOf(t)
		for key, val := range obj {
			if f, ok := fs.exact[key]; ok {
				if mayHoldStruct(f) {
					w.walk(f, val, &step{parent: at, key: key})
				}
				continue
			}
			if name, ok := fs.fold(key); ok {
				w.found = append(w.found, Mismatch{Path: at.pointer(key), Field: name})
			}
		}
	case reflect.Slice, reflect.Array:
		arr, ok := v.([]any)
		if !ok || !mayHoldStruct(t.Elem()) {
			return
		}
		for i, e := range arr {
			w.walk(t.Elem(), e, &step{parent: at, index: i, elem: true})
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok || !mayHoldStruct(t.Elem()) {
			return
		}
		for key, e := range obj {
			w.walk(t.Elem(), e, &step{parent: at, key: key})
		}
	}
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// readsItself reports whether encoding/json hands a JSON object for a
// value of type t (not a pointer) to the type's own method: UnmarshalJSON
// does so; a type with only UnmarshalText refuses an object, so its keys
// fill nothing either.
func readsItself(t reflect.Type) bool {
	if t.Kind() == reflect.Interface {
		return true // decoded as map[string]any: every key is kept as it is
	}
	pt := reflect.PointerTo(t)
	return pt.Implements(unmarshalerType) || pt.Implements(textUnmarshalerType)
}

// structFields are the fields encoding/json decodes a struct's members
// into, by their JSON names.
type structFields struct {
	exact  map[string]reflect.Type
	fields map[string]Field
	names  []string // sorted, as encoding/json sorts them for its folded lookup
}

// Field is a struct field encoding/json decodes an object member into.
type Field struct {
	// Index is the field's index sequence for reflect.Value.FieldByIndex.
	Index []int
	// Type is the field's type.
	Type reflect.Type
	// Quoted, OmitEmpty, OmitZero: the field's tag has the ",string",
	// ",omitempty" or ",omitzero" option.
	Quoted, OmitEmpty, OmitZero bool
	// ThroughPointer: the field is promoted from an embedded struct
	// pointer, which encoding/json allocates (or fails on) when it sets the
	// field.
	ThroughPointer bool
}

// Fields returns the fields encoding/json decodes the members of an
// object into when it decodes into t, a struct type (the fields it
// encodes a value of t from, too), by their JSON names
// (exact matches only: encoding/json also fills a field from a key that
// matches its name only by case, which Find reports). The map is shared
// and must not be modified.
func Fields(t reflect.Type) map[string]Field { return fieldsOf(t).fields }

// Fold returns the JSON name of the field of t, a struct type, that
// encoding/json fills from key when key names no field exactly and
// matches one only by case.
func Fold(t reflect.Type, key string) (string, bool) { return fieldsOf(t).fold(key) }

// fold returns the name of the field that encoding/json would fill with
// key, which names no field exactly; the first in encoding/json's order
// when several match.
func (fs *structFields) fold(key string) (string, bool) {
	for _, name := range fs.names {
		if strings.EqualFold(name, key) {
			return name, true
		}
	}
	return "", false
}

var cache sync.Map // reflect.Type -> *structFields; types are few and never change

// fieldsOf returns the fields of t, a struct type, computed once.
func fieldsOf(t reflect.Type) *structFields {
	if fs, ok := cache.Load(t); ok {
		return fs.(*structFields)
	}
	fs, _ := cache.LoadOrStore(t, typeFields(t))
	return fs.(*structFields)
}

// field is a candidate field as encoding/json's typeFields records it.
type field struct {
	name       string
	tagged     bool
	index      []int
	typ        reflect.Type
	quoted     bool
	omitEmpty  bool
	omitZero   bool
	throughPtr bool
}

// typeFields follows encoding/json's typeFields: a breadth-first walk of
// t and its embedded structs, then the Go rules for hidden fields, except
// that a tagged field is promoted over an untagged one at its depth.
func typeFields(t reflect.Type) *structFields {
	var current []field
	next := []field{{typ: t}}
	var count, nextCount map[reflect.Type]int
	visited := map[reflect.Type]bool{}
	var fields []field
	for len(next) > 0 {
		current, next = next, current[:0]
		count, nextCount = nextCount, map[reflect.Type]int{}
		for _, f := range current {
			if visited[f.typ] {
				continue
			}
			visited[f.typ] = true
			for i := range f.typ.NumField() {
				sf := f.typ.Field(i)
				if sf.Anonymous {
					et := sf.Type
					if et.Kind() == reflect.Pointer {
						et = et.Elem()
					}
					if !sf.IsExported() && et.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !validTag(name) {
					name = ""
				}
				index := append(slices.Clip(f.index), i)
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if name != "" || !sf.Anonymous || ft.Kind() != reflect.Struct {
					tagged := name != ""
					if name == "" {
						name = sf.Name
					}
					o := strings.Split(opts, ",")
					fields = append(fields, field{name: name, tagged: tagged, index: index, typ: sf.Type,
						quoted: slices.Contains(o, "string"), omitEmpty: slices.Contains(o, "omitempty"),
						omitZero: slices.Contains(o, "omitzero"), throughPtr: f.throughPtr})
					if count[f.typ] > 1 {
						// The struct is embedded more than once at this
						// depth: a second copy makes the field ambiguous.
						fields = append(fields, fields[len(fields)-1])
					}
					continue
				}
				nextCount[ft]++
				if nextCount[ft] == 1 {
					next = append(next, field{name: ft.Name(), index: index, typ: ft,
						throughPtr: f.throughPtr || sf.Type.Kind() == reflect.Pointer})
				}
			}
		}
	}
	slices.SortFunc(fields, func(a, b field) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if c := cmp.Compare(len(a.index), len(b.index)); c != 0 {
			return c
		}
		if a.tagged != b.tagged {
			if a.tagged {
				return -1
			}
			return +1
		}
		return slices.Compare(a.index, b.index)
	})
	fs := &structFields{exact: map[string]reflect.Type{}, fields: map[string]Field{}}
	for i := 0; i < len(fields); {
		j := i + 1
		for j < len(fields) && fields[j].name == fields[i].name {
			j++
		}
		// The dominant field: the shallowest, tagged before untagged; two
		// alike annihilate each other.
		if j-i == 1 || len(fields[i].index) < len(fields[i+1].index) || fields[i].tagged != fields[i+1].tagged {
			f := fields[i]
			fs.exact[f.name] = f.typ
			fs.fields[f.name] = Field{Index: f.index, Type: f.typ, Quoted: f.quoted, OmitEmpty: f.omitEmpty,
				OmitZero: f.omitZero, ThroughPointer: f.throughPtr}
			fs.names = append(fs.names, fields[i].name)
		}
		i = j
	}
	return fs
}

// validTag is encoding/json's isValidTag: a tag name it accepts.
func validTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// holders caches mayHoldStruct.
var holders sync.Map // reflect.Type -> bool

// mayHoldStruct reports whether a value of type t can hold a struct whose
// keys need checking, so that values of other types are not walked.
func mayHoldStruct(t reflect.Type) bool {
	if h, ok := holders.Load(t); ok {
		return h.(bool)
	}
	h := holdsStruct(t, map[reflect.Type]bool{})
	holders.Store(t, h)
	return h
}

func holdsStruct(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false // a cycle through pointers and containers only: no struct on it
	}
	seen[t] = true
	if t.Kind() == reflect.Pointer {
		return holdsStruct(t.Elem(), seen)
	}
	if readsItself(t) {
		return false
	}
	switch t.Kind() {
	case reflect.Struct:
		return true
	case reflect.Slice, reflect.Array, reflect.Map:
		return holdsStruct(t.Elem(), seen)
	}
	return false
}
