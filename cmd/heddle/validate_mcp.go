package main

import (
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/heddle-go/heddle/mcp"
)

// mcpProblemsStart ends the prefix of an MCP gateway config's error
// before its list of problems: `mcp gateway "NAME": `.
var mcpProblemsStart = regexp.MustCompile(`mcp gateway "(?:[^"\\]|\\.)*": `)

// mcpField finds where each problem of the list starts: its field, a
// path from one of the config's top-level keys, after "; " or at the
// start. The problems are joined with "; ", which a message may hold too,
// so a problem starts only where a field of the config does.
var mcpField = regexp.MustCompile(`(?:^|; )((?:name|version|description|nats_url|transport|addr|drain_timeout_seconds|resources|tools)(?:\.[a-z_]+|\[\d+\])*): `)

// yamlUnknownField is yaml.v3's message for a key no field takes.
var yamlUnknownField = regexp.MustCompile(`^field (\S+) not found in type \S+$`)

// validateMCP checks an MCP gateway config as heddle mcp reads it
// (mcp.LoadConfig), and places each problem on the line of its field.
func validateMCP(path string, root *yaml.Node) []finding {
	_, err := mcp.LoadConfig(path)
	if err == nil {
		return nil
	}
	msg := err.Error()
	// A key no field takes, or a value of the wrong shape: yaml.v3 names
	// each line.
	if m := yamlUnmarshalLine.FindAllStringSubmatch(msg, -1); m != nil {
		out := make([]finding, 0, len(m))
		for _, l := range m {
			line, _ := strconv.Atoi(l[1])
			problem := l[2]
			if u := yamlUnknownField.FindStringSubmatch(problem); u != nil {
				problem = "unknown key " + strconv.Quote(u[1]) + " (see heddle mcp --help for the keys a gateway config takes)"
			}
			out = append(out, finding{line: line, problem: problem})
		}
		return out
	}
	loc := mcpProblemsStart.FindStringIndex(msg)
	if loc == nil {
		return []finding{{problem: strings.TrimPrefix(msg, path+": ")}}
	}
	list := msg[loc[1]:]
	starts := mcpField.FindAllStringSubmatchIndex(list, -1)
	if starts == nil {
		return []finding{{problem: list}}
	}
	out := make([]finding, 0, len(starts))
	for i, s := range starts {
		end := len(list)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		field := list[s[2]:s[3]]
		out = append(out, finding{line: fieldLine(root, field), field: field, problem: list[s[1]:end]})
	}
	return out
}

// fieldLine returns the line of a field path such as
// tools.workers[1].tier in a YAML document: of the deepest part of it
// the document has (the entry when its key is missing), 0 when none.
func fieldLine(root *yaml.Node, field string) int {
	line := 0
	n := root
	for part := range strings.SplitSeq(field, ".") {
		key, rest, _ := strings.Cut(part, "[")
		k, v := keyValue(n, key)
		if k == nil {
			return line
		}
		line, n = k.Line, v
		for rest != "" {
			idx, after, ok := strings.Cut(rest, "]")
			i, err := strconv.Atoi(idx)
			if !ok || err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return line
}
