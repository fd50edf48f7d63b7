package wire

import (
	"encoding"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/heddle-go/heddle/internal/keycase"
)

// maxTreeDepth bounds the nesting Tree follows; deeper values (and
// cycles) are left to encoding/json.
const maxTreeDepth = 64

// Tree returns the value DecodeExact(json.Marshal(v)) gives, built from v
// without writing or reading JSON, and true; or false when it cannot be
// sure of that value, and the caller then marshals and decodes.
//
// A worker checks its output contract on this value and then encodes it
// once, into the result: a handler's output is encoded once rather than
// three times over (json.Marshal, DecodeExact, and the result's encoding).
// Tree re-implements part of encoding/json's encoding and stays only while
// it pays for itself on the task path: BenchmarkTree (this package) and
// BenchmarkTaskPathCPU (package heddle) measure it against json.Marshal
// and DecodeExact; FuzzTreeAgreesWithEncodingJSON checks it against them.
//
// It is sure for bools, valid UTF-8 strings, finite float64s, signed and
// unsigned integers (float64 within ±2^53, beyond as a json.Number of
// their digits, as DecodeExact keeps them), nil or not, pointers,
// interfaces, slices (not []byte), maps with string keys and structs (by
// the fields encoding/json uses, with omitempty and omitzero, none with
// ",string" nor promoted through an embedded pointer) of those, none with
// its own MarshalJSON, MarshalText or IsZero, nested less than
// maxTreeDepth deep.
func Tree(v reflect.Value) (any, bool) { return tree(v, 0) }

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// marshalsItself reports whether encoding/json leaves values of t to a
// method of their own.
func marshalsItself(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return t.Implements(jsonMarshaler) || t.Implements(textMarshaler) || pt.Implements(jsonMarshaler) || pt.Implements(textMarshaler)
}

func tree(v reflect.Value, depth int) (any, bool) {
	if depth > maxTreeDepth || !v.IsValid() {
		return nil, false
	}
	t := v.Type()
	if t.Kind() != reflect.Interface && marshalsItself(t) || t == numberType {
		return nil, false
	}
	switch t.Kind() {
	case reflect.Bool:
		return v.Bool(), true
	case reflect.String:
		s := v.String()
		return s, utf8.ValidString(s)
	case reflect.Float64:
		f := v.Float()
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, false
		}
		if a := math.Abs(f); a > 1<<53 && a < 1e21 && f == math.Trunc(f) {
			// json.Marshal writes it as an integer's digits, which
			// DecodeExact keeps as text.
			return json.Number(strconv.FormatFloat(f, 'f', -1, 64)), true
		}
		return boxFloat(f), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n := v.Int()
		if n > 1<<53 || n < -(1<<53) {
			return json.Number(strconv.FormatInt(n, 10)), true
		}
		return boxFloat(float64(n)), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n := v.Uint()
		if n > 1<<53 {
			return json.Number(strconv.FormatUint(n, 10)), true
		}
		return boxFloat(float64(n)), true
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return nil, true
		}
		return tree(v.Elem(), depth+1)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil, false // base64 text
		}
		if v.IsNil() {
			return nil, true
		}
		a := make([]any, v.Len())
		for i := range a {
			e, ok := tree(v.Index(i), depth+1)
			if !ok {
				return nil, false
			}
			a[i] = e
		}
		return a, true
	case reflect.Map:
		if t.Key().Kind() != reflect.String || marshalsItself(t.Key()) {
			return nil, false
		}
		if v.IsNil() {
			return nil, true
		}
		m := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			k := it.Key().String()
			if !utf8.ValidString(k) {
				return nil, false
			}
			e, ok := tree(it.Value(), depth+1)
			if !ok {
				return nil, false
			}
			m[k] = e
		}
		return m, true
	case reflect.Struct:
		p := treePlanOf(t)
		if !p.ok {
			return nil, false
		}
		m := make(map[string]any, len(p.fields))
		for i := range p.fields {
			name, fd := p.fields[i].name, &p.fields[i].Field
			fv := v.Field(fd.Index[0])
			if len(fd.Index) > 1 {
				fv = v.FieldByIndex(fd.Index)
			}
			if fd.OmitEmpty && emptyValue(fv) {
				continue
			}
			if fd.OmitZero && fv.IsZero() {
				continue
			}
			e, ok := tree(fv, depth+1)
			if !ok {
				return nil, false
			}
			m[name] = e
		}
		return m, true
	}
	return nil, false
}

// boxFloat returns f as an interface value, without an allocation for
// the integers 0 to 255 (as Value returns them).
func boxFloat(f float64) any {
	if f >= 0 && f < float64(len(smallInts)) && f == math.Trunc(f) && !math.Signbit(f) {
		return smallInts[int(f)]
	}
	return f
}

// treePlan is what Tree knows of a struct type: its fields, and whether
// it can build every one.
type treePlan struct {
	ok     bool
	fields []treeField
}

type treeField struct {
	name string
	keycase.Field
}

var treePlans sync.Map // reflect.Type -> *treePlan; types are few and never change

func treePlanOf(t reflect.Type) *treePlan {
	if p, ok := treePlans.Load(t); ok {
		return p.(*treePlan)
	}
	p := &treePlan{ok: true}
	for name, fd := range keycase.Fields(t) {
		_, isZeroer := reflect.PointerTo(fd.Type).MethodByName("IsZero")
		if fd.Quoted || fd.ThroughPointer || !utf8.ValidString(name) || fd.OmitZero && isZeroer {
			p.ok = false
		}
		p.fields = append(p.fields, treeField{name: name, Field: fd})
	}
	treePlans.Store(t, p)
	return p
}

// emptyValue is encoding/json's isEmptyValue, what omitempty leaves out.
func emptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Interface, reflect.Pointer:
		return v.IsNil()
	}
	return false
}
