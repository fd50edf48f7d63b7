package worker

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/heddle-go/heddle/internal/cowmap"
)

// keyCheck makes encoding/json read a payload by exactly the keys the
// contract was checked on. encoding/json matches a key to a struct field
// case-insensitively, so {"NAME": "long"} would fill the field "name" with
// a value the contract never saw (the contract checks "name" only). A
// typed worker refuses such a payload: every object key that names a
// field of In only by case is an input contract violation.
//
// It runs for every task, so the valid case costs no allocation: the
// field tables are read without a lock once made, and the path of a bad
// key is written only when one is found.
type keyCheck struct {
	types cowmap.Map[reflect.Type, map[string]reflect.Type]
}

// check walks v, the decoded payload, beside t, the type it decodes into,
// and reports the first key that matches a field only by case, with its
// path (prefixed by path).
func (k *keyCheck) check(t reflect.Type, v any, path string) error {
	if bad := k.find(t, v); bad != nil {
		return fmt.Errorf("%s%s: the key names the field %q only by case; keys are case-sensitive", path, bad.path(), bad.field)
	}
	return nil
}

// badKey is a key found naming a field only by case: the JSON Pointer
// tokens leading to it, innermost first, and the field's name.
type badKey struct {
	tokens []string
	field  string
}

func (b *badKey) path() string {
	var s strings.Builder
	for i := len(b.tokens) - 1; i >= 0; i-- {
		s.WriteByte('/')
		s.WriteString(b.tokens[i])
	}
	return s.String()
}

// find returns the first key under v that names a field of t only by
// case, or nil.
func (k *keyCheck) find(t reflect.Type, v any) *badKey {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		fields := k.fields(t)
		for key, val := range obj {
			if ft, ok := fields[key]; ok {
				if bad := k.find(ft, val); bad != nil {
					bad.tokens = append(bad.tokens, key)
					return bad
				}
				continue
			}
			for name := range fields {
				if strings.EqualFold(name, key) {
					return &badKey{tokens: []string{key}, field: name}
				}
			}
		}
	case reflect.Slice, reflect.Array:
		if arr, ok := v.([]any); ok {
			for i, e := range arr {
				if bad := k.find(t.Elem(), e); bad != nil {
					bad.tokens = append(bad.tokens, strconv.Itoa(i))
					return bad
				}
			}
		}
	case reflect.Map:
		if obj, ok := v.(map[string]any); ok {
			for key, e := range obj {
				if bad := k.find(t.Elem(), e); bad != nil {
					bad.tokens = append(bad.tokens, key)
					return bad
				}
			}
		}
	}
	return nil
}

// fields returns the JSON names of t's fields, as encoding/json sees
// them (embedded structs' fields included), with their types; computed
// once per type, then read without a lock.
func (k *keyCheck) fields(t reflect.Type) map[string]reflect.Type {
	return k.types.LoadOrCompute(t, func() (map[string]reflect.Type, bool) {
		f := map[string]reflect.Type{}
		for _, sf := range reflect.VisibleFields(t) {
			if name, ok := jsonName(sf); ok {
				f[name] = sf.Type
			}
		}
		return f, true
	})
}

// jsonName is the name encoding/json gives sf, and whether it encodes it.
func jsonName(sf reflect.StructField) (string, bool) {
	if !sf.IsExported() || sf.Anonymous && sf.Type.Kind() == reflect.Struct && sf.Tag.Get("json") == "" {
		return "", false
	}
	tag := sf.Tag.Get("json")
	if tag == "-" {
		return "", false
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = sf.Name
	}
	return name, true
}
