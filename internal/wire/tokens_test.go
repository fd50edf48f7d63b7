package wire

import (
	"encoding/json"
	"maps"
	"testing"
)

func TestTokenUsageReadsEveryKindAsEncodingJSONDoes(t *testing.T) {
	tests := []struct{ name, usage string }{
		{"the kinds every result carries", `{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42}`},
		{"kinds of its own", `{"cached_tokens":5,"reasoning_tokens":7}`},
		{"an escaped key is the same kind", `{"prompt\u005ftokens":1}`},
		{"more kinds than a usual result", `{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"prompt_tokens":7}`},
		{"none", `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decoder
			d.Init([]byte(`{"token_usage":` + tt.usage + `}`))
			got := d.TokenUsage("token_usage")
			var want map[string]int
			if err := json.Unmarshal([]byte(tt.usage), &want); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, want) || len(d.Problems) > 0 {
				t.Errorf("TokenUsage = %v (problems %v), want %v", got, d.Problems, want)
			}
		})
	}
}

func TestTokenUsageOfTheUsualKindsCopiesNoKey(t *testing.T) {
	doc := []byte(`{"token_usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42}}`)
	allocs := testing.AllocsPerRun(100, func() {
		var d Decoder
		d.Init(doc)
		if u := d.TokenUsage("token_usage"); u["total_tokens"] != 42 {
			t.Fatalf("TokenUsage = %v", u)
		}
	})
	// The map and its one group of slots; no member list, no key.
	if allocs > 2 {
		t.Errorf("TokenUsage of three usual kinds makes %v allocations, want at most 2", allocs)
	}
}
