package wire

import (
	"encoding/json"
	"reflect"
	"testing"
)

// replaceByEncodingJSON is what ReplaceMember's result must decode to:
// obj's members with key set to val.
func replaceByEncodingJSON(obj []byte, key string, val []byte) map[string]any {
	var m map[string]any
	if json.Unmarshal(obj, &m) != nil {
		return nil
	}
	var v any
	_ = json.Unmarshal(val, &v)
	m[key] = v
	return m
}

func checkReplaceMember(t *testing.T, obj []byte, key string, val []byte) {
	t.Helper()
	out, ok := ReplaceMember(obj, key, val)
	if !ok {
		return
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("ReplaceMember(%s, %q, %s) = %s, not JSON: %v", obj, key, val, out, err)
	}
	if want := replaceByEncodingJSON(obj, key, val); !reflect.DeepEqual(got, want) {
		t.Fatalf("ReplaceMember(%s, %q, %s) = %s, decodes to %v, want %v", obj, key, val, out, got, want)
	}
}

var replaceSeeds = []string{
	`{}`, `{ }`, `{"a":1}`, `{"_trace_context":{"traceparent":"x"},"b":[1,{"c":"}"}]}`,
	`{"b":"_trace_context","_trace_context":null}`, ` {"a":1} `, `{"a":{"_trace_context":1}}`,
	`{"_trace_context":1,"_trace_context":2}`, `{"\u005ftrace_context":"escaped key"}`, `{"a":"\"}"}`,
}

func TestReplaceMemberKeepsEveryOtherMemberAndSetsTheKey(t *testing.T) {
	val := []byte(`{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`)
	for _, s := range replaceSeeds {
		checkReplaceMember(t, []byte(s), "_trace_context", val)
	}
	if out, ok := ReplaceMember([]byte(`{"a":1,"k":[1, 2],"b":2}`), "k", []byte(`"v"`)); !ok || string(out) != `{"a":1,"k":"v","b":2}` {
		t.Fatalf("replace in place: %s %v", out, ok)
	}
	if out, ok := ReplaceMember([]byte(`{"a":1}`), "k", []byte(`"v"`)); !ok || string(out) != `{"a":1,"k":"v"}` {
		t.Fatalf("add at the end: %s %v", out, ok)
	}
	if out, ok := ReplaceMember([]byte(`{}`), "k", []byte(`"v"`)); !ok || string(out) != `{"k":"v"}` {
		t.Fatalf("add to an empty object: %s %v", out, ok)
	}
	if _, ok := ReplaceMember([]byte(`{"k":1,"k":2}`), "k", []byte(`3`)); ok {
		t.Fatal("a repeated key was replaced once")
	}
	if _, ok := ReplaceMember([]byte(`[1]`), "k", []byte(`3`)); ok {
		t.Fatal("an array was taken for an object")
	}
}

// FuzzReplaceMemberAgreesWithEncodingJSON: whatever the object, what
// ReplaceMember returns decodes, with encoding/json, to the object's
// members with the key set.
func FuzzReplaceMemberAgreesWithEncodingJSON(f *testing.F) {
	for _, s := range replaceSeeds {
		f.Add([]byte(s), "_trace_context", []byte(`{"traceparent":"x"}`))
	}
	f.Fuzz(func(t *testing.T, obj []byte, key string, val []byte) {
		var m map[string]any
		if json.Unmarshal(obj, &m) != nil || !json.Valid(val) {
			return
		}
		checkReplaceMember(t, obj, key, val)
	})
}
