package yamlnode_test

import (
	"testing"

	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/heddle-go/heddle/internal/yamlnode"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDescribeNamesEachKindOfNode(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("{m: {a: 1}, l: [1], s: four, i: 4, f: 1.5, b: true, n: null, t: !custom x}"), &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	want := map[string]string{"m": "a mapping", "l": "a list", "s": `string "four"`, "i": "integer 4",
		"f": "number 1.5", "b": "boolean true", "n": "null", "t": `!custom "x"`}
	for i := 0; i < len(root.Content); i += 2 {
		k, v := root.Content[i].Value, root.Content[i+1]
		if got := yamlnode.Describe(v); got != want[k] {
			t.Errorf("Describe(%s) = %q, want %q", k, got, want[k])
		}
	}
	if yamlnode.Join("", "a") != "a" || yamlnode.Join("a", "b") != "a.b" || yamlnode.Label("") != "(document)" || yamlnode.Label("x.y") != "x.y" {
		t.Error("Join or Label is wrong")
	}
}
