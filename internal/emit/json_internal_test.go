package emit

import (
	"encoding/json"
	"testing"
)

// FuzzAppendJSONString checks the fast path of appendJSONString against
// encoding/json: the same string must come back.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=1,other=2",
		`quote"`, `back\slash`, "tab\t", "<script>", "é", "\x7f", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("appendJSONString(%q) = %s, not a JSON string: %v", s, got, err)
		}
		var want string
		ref, _ := json.Marshal(s)
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if back != want {
			t.Errorf("appendJSONString(%q) reads back as %q, encoding/json's as %q", s, back, want)
		}
	})
}
