// Package yamlnode holds what the YAML config readers (router rules,
// scheduler configs) share to name a node in an error.
package yamlnode

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Describe describes n for an error: "a mapping", "a list", "string
// \"x\"", "integer 4", "null".
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!str":
			return fmt.Sprintf("string %q", n.Value)
		case "!!int":
			return "integer " + n.Value
		case "!!float":
			return "number " + n.Value
		case "!!bool":
			return "boolean " + n.Value
		}
		return fmt.Sprintf("%s %q", n.ShortTag(), n.Value)
	}
	return "an unsupported YAML node"
}

// Join is the dotted path of key under path.
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Label is path as an error names it: "(document)" for the root.
func Label(path string) string {
	if path == "" {
		return "(document)"
	}
	return path
}
