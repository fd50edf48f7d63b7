package worker

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// keyCheck makes encoding/json read a payload by exactly the keys the
// contract was checked on. encoding/json matches a key to a struct field
// case-insensitively, so {"NAME": "long"} would fill the field "name" with
// a value the contract never saw (the contract checks "name" only). A
// typed worker refuses such a payload: every object key that names a
// field of In only by case is an input contract violation.
type keyCheck struct {
	mu    sync.Mutex
	types map[reflect.Type]map[string]reflect.Type // JSON field names and types by struct type
}

// check walks v, the decoded payload, beside t, the type it decodes into,
// and reports the first key that matches a field only by case, with its
// path.
func (k *keyCheck) check(t reflect.Type, v any, path string) error {
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
				if err := k.check(ft, val, path+"/"+key); err != nil {
					return err
				}
				continue
			}
			for name := range fields {
				if strings.EqualFold(name, key) {
					return fmt.Errorf("%s/%s: the key names the field %q only by case; keys are case-sensitive", path, key, name)
				}
			}
		}
	case reflect.Slice, reflect.Array:
		if arr, ok := v.([]any); ok {
			for i, e := range arr {
				if err := k.check(t.Elem(), e, fmt.Sprintf("%s/%d", path, i)); err != nil {
					return err
				}
			}
		}
	case reflect.Map:
		if obj, ok := v.(map[string]any); ok {
			for key, e := range obj {
				if err := k.check(t.Elem(), e, path+"/"+key); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// fields returns the JSON names of t's fields, as encoding/json sees
// them (embedded structs' fields included), with their types; computed
// once per type.
func (k *keyCheck) fields(t reflect.Type) map[string]reflect.Type {
	k.mu.Lock()
	defer k.mu.Unlock()
	if f, ok := k.types[t]; ok {
		return f
	}
	f := map[string]reflect.Type{}
	for _, sf := range reflect.VisibleFields(t) {
		if name, ok := jsonName(sf); ok {
			f[name] = sf.Type
		}
	}
	if k.types == nil {
		k.types = map[reflect.Type]map[string]reflect.Type{}
	}
	k.types[t] = f
	return f
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
