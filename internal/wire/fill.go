package wire

import (
	"bytes"
	"encoding"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"sync"

	"github.com/heddle-go/heddle/internal/keycase"
)

// Fill sets dst, a settable value of a type a typed worker decodes its
// input into, from v, the same JSON document as Value decoded it (raw is
// its text), exactly as json.Unmarshal(raw, dst.Addr().Interface()) sets
// a zero dst, and reports true; or reports false, leaving dst in any
// state, when it cannot be sure of that. The caller then decodes raw with
// encoding/json, which gives the value or its exact error.
//
// A worker checks its input contract on v, so building the input from v
// decodes each task's bytes once (the task's own decode) rather than
// twice (that, then encoding/json from the payload's bytes), and the
// handler gets exactly the values the contract saw. Fill re-implements
// part of encoding/json's decoding and stays only while it pays for
// itself on the task path: BenchmarkFill (this package) and
// BenchmarkTaskPathCPU (package heddle) measure it against json.Unmarshal;
// FuzzFillAgreesWithEncodingJSON checks that every value it fills is the
// one encoding/json gives.
//
// It is sure, and fills, when every type within dst's is a bool, string,
// float64, signed or unsigned integer, empty interface, struct (by the
// fields encoding/json uses, none with ",string" nor promoted through an
// embedded pointer), pointer, slice (not []byte) or map with string keys
// of those, none with its own UnmarshalJSON or UnmarshalText; when each
// JSON value has the kind its Go type takes; when an integer lies within
// ±2^53 and its type's range and no number in raw with a fraction or an
// exponent has an integral value (see scanMembers); and
// when no object in raw repeats a key (encoding/json merges repeated
// objects into one struct or map, and reports errors in values that v no
// longer holds). A key naming a struct field only by case is left to
// encoding/json too. Values filled into an empty interface are copies, so
// that a handler changing them changes neither v nor a later attempt's
// input.
func Fill(dst reflect.Value, v any, raw []byte) bool {
	p := planOf(dst.Type())
	if !p.fillable {
		return false
	}
	members, integers := scanMembers(raw)
	if members != countMembers(v) {
		return false // a repeated key
	}
	f := filler{integers: integers}
	return f.fill(dst, v)
}

// filler fills one value.
type filler struct {
	integers bool // every number in raw was written as an integer
}

func (f *filler) fill(dst reflect.Value, v any) bool {
	t := dst.Type()
	if v == nil {
		switch t.Kind() {
		case reflect.Interface, reflect.Pointer, reflect.Map, reflect.Slice:
			dst.SetZero()
		}
		return true // encoding/json leaves other kinds as they are
	}
	switch t.Kind() {
	case reflect.Bool:
		b, ok := v.(bool)
		if ok {
			dst.SetBool(b)
		}
		return ok
	case reflect.String:
		s, ok := v.(string)
		if ok {
			dst.SetString(s)
		}
		return ok
	case reflect.Float64:
		n, ok := v.(float64)
		if ok {
			dst.SetFloat(n)
		}
		return ok
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := f.integer(v)
		if !ok || dst.OverflowInt(n) {
			return false
		}
		dst.SetInt(n)
		return true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := f.integer(v)
		if !ok || n < 0 || dst.OverflowUint(uint64(n)) {
			return false
		}
		if n == 0 && math.Signbit(v.(float64)) {
			return false // "-0": encoding/json's ParseUint refuses it
		}
		dst.SetUint(uint64(n))
		return true
	case reflect.Interface:
		dst.Set(reflect.ValueOf(copyValue(v)))
		return true
	case reflect.Pointer:
		if dst.IsNil() {
			dst.Set(reflect.New(t.Elem()))
		}
		return f.fill(dst.Elem(), v)
	case reflect.Slice:
		a, ok := v.([]any)
		if !ok {
			return false
		}
		s := reflect.MakeSlice(t, len(a), len(a))
		for i, e := range a {
			if !f.fill(s.Index(i), e) {
				return false
			}
		}
		dst.Set(s)
		return true
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if dst.IsNil() {
			dst.Set(reflect.MakeMapWithSize(t, len(obj)))
		}
		elem := reflect.New(t.Elem()).Elem()
		key := reflect.New(t.Key()).Elem()
		for k, e := range obj {
			elem.SetZero()
			if !f.fill(elem, e) {
				return false
			}
			key.SetString(k)
			dst.SetMapIndex(key, elem)
		}
		return true
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return false
		}
		fields := keycase.Fields(t)
		for k, e := range obj {
			fd, ok := fields[k]
			if !ok {
				if _, folds := keycase.Fold(t, k); folds {
					return false
				}
				continue // encoding/json ignores unknown keys
			}
			if !f.fill(dst.FieldByIndex(fd.Index), e) {
				return false
			}
		}
		return true
	}
	return false
}

// integer returns v as an integer when encoding/json would read its text
// as the same one.
func (f *filler) integer(v any) (int64, bool) {
	n, ok := v.(float64)
	if !ok || !f.integers || n != math.Trunc(n) || math.Abs(n) >= 1<<53 {
		return 0, false
	}
	return int64(n), true
}

// copyValue returns a copy of v, a value as Value decodes it, sharing
// nothing mutable with it.
func copyValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = copyValue(e)
		}
		return m
	case []any:
		a := make([]any, len(v))
		for i, e := range v {
			a[i] = copyValue(e)
		}
		return a
	}
	return v
}

// scanMembers counts the object members in raw, a valid JSON text (one
// ':' outside strings each), and reports whether every number in it whose
// value is an integer is written as one: no fraction, no exponent (so
// that an integral float64 decoded from raw stands for an integer's text,
// which encoding/json reads into an integer type, and never for 1.0 or
// 1e2, which it refuses).
func scanMembers(raw []byte) (members int, integers bool) {
	integers = true
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '"':
			i = skipString(raw, i) - 1
		case c == ':':
			members++
		case c == '-' || c >= '0' && c <= '9':
			end, _ := validNumber(raw, i)
			if integers && bytes.ContainsAny(raw[i:end], ".eE") {
				f, err := strconv.ParseFloat(string(raw[i:end]), 64)
				integers = err == nil && f != math.Trunc(f)
			}
			i = end - 1
		}
	}
	return members, integers
}

// countMembers counts the members of every object in v.
func countMembers(v any) int {
	switch v := v.(type) {
	case map[string]any:
		n := len(v)
		for _, e := range v {
			n += countMembers(e)
		}
		return n
	case []any:
		n := 0
		for _, e := range v {
			n += countMembers(e)
		}
		return n
	}
	return 0
}

// plan is what Fill knows of a type.
type plan struct {
	fillable bool
}

var plans sync.Map // reflect.Type -> *plan; types are few and never change

func planOf(t reflect.Type) *plan {
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	p := &plan{fillable: fillable(t, map[reflect.Type]bool{})}
	plans.Store(t, p)
	return p
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	numberType      = reflect.TypeFor[json.Number]()
)

// fillable reports whether Fill can fill values of t (see Fill).
func fillable(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return true // a recursive type: judged where it began
	}
	seen[t] = true
	if t == numberType || t.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler) ||
		reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return false
	}
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	case reflect.Interface:
		return t.NumMethod() == 0
	case reflect.Pointer:
		return fillable(t.Elem(), seen)
	case reflect.Slice:
		return t.Elem().Kind() != reflect.Uint8 && fillable(t.Elem(), seen)
	case reflect.Map:
		return t.Key().Kind() == reflect.String && !reflect.PointerTo(t.Key()).Implements(textUnmarshaler) &&
			!t.Key().Implements(textUnmarshaler) && fillable(t.Elem(), seen)
	case reflect.Struct:
		for _, fd := range keycase.Fields(t) {
			if fd.Quoted || fd.ThroughPointer || !fillable(fd.Type, seen) {
				return false
			}
		}
		return true
	}
	return false
}
