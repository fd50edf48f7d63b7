package scheduler

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/internal/yamlnode"
)

// ParseConfig reads a scheduler config in the Python Heddle's YAML shape
// (see Config) and validates it as New does (see Config.Validate). It is
// strict where the Python scheduler is lenient, so that a mistake shows
// when the file is read, not when a timer fires or never does:
//
//   - the document is one YAML mapping; anchors, aliases and merge keys
//     (<<) work as in the Python loader;
//   - every value has the type its key needs (a string for name, cron,
//     dispatch_type, timezone and the enums, a number for
//     interval_seconds, a mapping for goal, task, context and payload);
//   - an unknown or duplicated key is an error, naming the keys known
//     there, so a misspelt model_tier cannot silently send the default;
//   - expand_from, which names a Python function the Python scheduler
//     calls before each fire, is refused: a Go scheduler cannot call it.
//
// Every problem is reported at once in one *ConfigError, each with its
// path and line.
func ParseConfig(data []byte) (Config, error) {
	return parse("", data)
}

// LoadConfig reads the file at path with ParseConfig. A problem with its
// content is a *ConfigError whose Source is path; a file that cannot be
// read is an error wrapping heddle.ErrConfig and the reason.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: reading the scheduler config: %w", heddle.ErrConfig, err)
	}
	return parse(path, data)
}

func parse(source string, data []byte) (Config, error) {
	r := reader{lines: map[string]int{}}
	r.p.lines = r.lines
	root := r.document(data)
	if root == nil {
		return Config{}, r.p.err(source)
	}
	cfg := r.config(root)
	cfg.lines = r.lines
	cfg.validate(&r.p)
	if err := r.p.err(source); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// reader turns the YAML nodes of one document into a Config, recording
// each key's line and each problem of type or shape.
type reader struct {
	p     problems
	lines map[string]int
}

const (
	configKeys   = "name, timezone, schedules"
	scheduleKeys = "name, cron, interval_seconds, timezone, dispatch_type, goal, task"
	goalKeys     = "instruction, context, priority, to"
	taskKeys     = "worker_type, payload, model_tier, priority"
)

// document returns the top-level mapping of the one document in data, or
// nil after recording why there is none.
func (r *reader) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			r.p.add("", "the document is empty (want a mapping with name and schedules)")
		} else {
			r.p.add("", "not valid YAML: %v", err)
		}
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			r.p.add("", "not valid YAML: %v", err)
		} else {
			r.p.addAt("", next.Line, "more than one YAML document: the config must be one document")
		}
		return nil
	}
	root := resolve(doc.Content[0])
	if isNull(root) {
		r.p.addAt("", root.Line, "the document is empty (want a mapping with name and schedules)")
		return nil
	}
	if root.Kind != yaml.MappingNode {
		r.p.addAt("", root.Line, "expected a mapping with name and schedules, got %s", yamlnode.Describe(root))
		return nil
	}
	return root
}

func (r *reader) config(root *yaml.Node) Config {
	var c Config
	r.mapping("", root, func(key string, v *yaml.Node) {
		switch key {
		case "name":
			c.Name = r.str(key, v)
		case "timezone":
			c.Timezone = r.str(key, v)
		case "schedules":
			if v.Kind != yaml.SequenceNode {
				r.p.add(key, "key 'schedules' expected a list, got %s", yamlnode.Describe(v))
				return
			}
			c.Schedules = make([]Schedule, 0, len(v.Content))
			for i, item := range v.Content {
				at := fmt.Sprintf("schedules[%d]", i)
				item = resolve(item)
				r.lines[at] = item.Line
				c.Schedules = append(c.Schedules, r.schedule(at, item))
			}
		default:
			r.unknown(key, configKeys)
		}
	})
	return c
}

func (r *reader) schedule(at string, n *yaml.Node) Schedule {
	var s Schedule
	if n.Kind != yaml.MappingNode {
		r.p.breaks(at, "expected a mapping, got %s", yamlnode.Describe(n))
		return s
	}
	r.mapping(at, n, func(key string, v *yaml.Node) {
		path := at + "." + key
		switch key {
		case "name":
			s.Name = r.str(path, v)
		case "cron":
			s.Cron = r.str(path, v)
		case "interval_seconds":
			if v.Kind != yaml.ScalarNode || (v.ShortTag() != "!!int" && v.ShortTag() != "!!float") || v.Decode(&s.IntervalSeconds) != nil {
				r.p.add(path, "'interval_seconds' must be a positive number, got %s", yamlnode.Describe(v))
			}
		case "timezone":
			s.Timezone = r.str(path, v)
		case "dispatch_type":
			s.DispatchType = DispatchType(r.str(path, v))
		case "goal":
			if !isNull(v) && r.isMapping(path, v) {
				s.Goal = r.goal(path, v)
			}
		case "task":
			if !isNull(v) && r.isMapping(path, v) {
				s.Task = r.task(path, v)
			}
		case "expand_from":
			r.p.add(path, "names a Python function the Python scheduler calls before each fire, which a Go scheduler cannot call: "+
				"remove it, or run this schedule on the Python scheduler")
		default:
			r.unknown(path, scheduleKeys)
		}
	})
	return s
}

func (r *reader) goal(at string, n *yaml.Node) *GoalSpec {
	g := new(GoalSpec)
	r.mapping(at, n, func(key string, v *yaml.Node) {
		path := at + "." + key
		switch key {
		case "instruction":
			g.Instruction = r.str(path, v)
		case "context":
			g.Context = r.object(path, v)
		case "priority":
			g.Priority = heddle.Priority(r.str(path, v))
		case "to":
			g.To = r.str(path, v)
		default:
			r.unknown(path, goalKeys)
		}
	})
	return g
}

func (r *reader) task(at string, n *yaml.Node) *TaskSpec {
	t := new(TaskSpec)
	r.mapping(at, n, func(key string, v *yaml.Node) {
		path := at + "." + key
		switch key {
		case "worker_type":
			t.WorkerType = r.str(path, v)
		case "payload":
			t.Payload = r.object(path, v)
		case "model_tier":
			t.ModelTier = heddle.ModelTier(r.str(path, v))
		case "priority":
			t.Priority = heddle.Priority(r.str(path, v))
		default:
			r.unknown(path, taskKeys)
		}
	})
	return t
}

func (r *reader) unknown(path, known string) {
	key := path[strings.LastIndexByte(path, '.')+1:]
	r.p.add(path, "unknown key '%s' (known keys here: %s)", key, known)
}

// mapping calls fn for each key of the mapping n, in document order, then
// for each key merged in with << that n does not give itself. It records
// each key's line under its path. Keys that are not plain strings and
// duplicated keys are problems, and skipped.
func (r *reader) mapping(path string, n *yaml.Node, fn func(key string, v *yaml.Node)) {
	type pair struct{ k, v *yaml.Node }
	var own, merged []pair
	given := map[string]bool{}
	var merge func(src *yaml.Node, line int)
	merge = func(src *yaml.Node, line int) {
		src = resolve(src)
		switch src.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(src.Content); i += 2 {
				merged = append(merged, pair{src.Content[i], src.Content[i+1]})
			}
		case yaml.SequenceNode:
			for _, s := range src.Content {
				merge(s, line)
			}
		default:
			r.p.addAt(yamlnode.Label(path), line, "a merge key (<<) must name a mapping or a list of mappings, got %s", yamlnode.Describe(src))
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merge(v, k.Line)
			continue
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			r.p.addAt(yamlnode.Label(path), k.Line, "unsupported key %s (keys must be plain names)", yamlnode.Describe(k))
			continue
		}
		key := yamlnode.Join(path, k.Value)
		if first, dup := r.lines[key]; dup {
			r.p.addAt(key, k.Line, "duplicated key (first at line %d)", first)
			continue
		}
		given[k.Value] = true
		r.lines[key] = k.Line
		own = append(own, pair{k, v})
	}
	// A key merged from an earlier source wins over a later one, and the
	// mapping's own keys over every merged one, as YAML merge keys mean.
	for _, m := range merged {
		if m.k.Kind != yaml.ScalarNode || given[m.k.Value] {
			continue
		}
		given[m.k.Value] = true
		r.lines[yamlnode.Join(path, m.k.Value)] = m.k.Line
		own = append(own, m)
	}
	for _, kv := range own {
		fn(kv.k.Value, resolve(kv.v))
	}
}

func (r *reader) isMapping(path string, n *yaml.Node) bool {
	if n.Kind != yaml.MappingNode {
		r.p.add(path, "expected a mapping, got %s", yamlnode.Describe(n))
		return false
	}
	return true
}

// str returns the string value of n, or records that it is not one.
func (r *reader) str(path string, n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		r.p.add(path, "expected a string, got %s", yamlnode.Describe(n))
		return ""
	}
	return n.Value
}

// object decodes the mapping n (null: nil) into the free-form values a
// payload or context holds.
func (r *reader) object(path string, n *yaml.Node) map[string]any {
	if isNull(n) || !r.isMapping(path, n) {
		return nil
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		r.p.add(path, "cannot be read: %v", err)
		return nil
	}
	if m == nil {
		m = map[string]any{}
	}
	return m
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }
