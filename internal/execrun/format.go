package execrun

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Format says how a command's stdout is read.
type Format string

// The output formats. The zero Format means FormatText.
const (
	FormatText  Format = "text"  // stdout kept as is, in Result.Stdout
	FormatJSON  Format = "json"  // one JSON value
	FormatJSONL Format = "jsonl" // one JSON value per non-empty line, as []any
	FormatYAML  Format = "yaml"  // one YAML document, as JSON-compatible values
)

var allowedFormats = []Format{FormatText, FormatJSON, FormatJSONL, FormatYAML}

// ParseFormat reads a format name, ignoring case and surrounding space. The
// empty string means FormatText. Any other name is an error listing the
// allowed values.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	if f == "" {
		return FormatText, nil
	}
	if !f.valid() {
		return "", unknownFormatError(s)
	}
	return f, nil
}

func (f Format) valid() bool {
	for _, a := range allowedFormats {
		if f == a {
			return true
		}
	}
	return false
}

func unknownFormatError(s string) error {
	names := make([]string, len(allowedFormats))
	for i, a := range allowedFormats {
		names[i] = string(a)
	}
	return fmt.Errorf("unknown output format %q: want one of %s", s, strings.Join(names, ", "))
}

// parse decodes a structured output. It is not called for FormatText.
func (f Format) parse(out []byte) (any, error) {
	switch f {
	case FormatJSON:
		if len(bytes.TrimSpace(out)) == 0 {
			return nil, errors.New("json output is empty: the json format expects one JSON value on stdout")
		}
		v, err := decodeJSON(out)
		if err != nil {
			return nil, fmt.Errorf("json output: %w", err)
		}
		return v, nil
	case FormatJSONL:
		return parseJSONL(out)
	case FormatYAML:
		return parseYAML(out)
	}
	return nil, unknownFormatError(string(f))
}

// decodeJSON decodes exactly one JSON value, keeping numbers as json.Number.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("unexpected data after the JSON value at byte %d", dec.InputOffset())
	}
	return v, nil
}

func parseJSONL(out []byte) (any, error) {
	values := []any{}
	for i, line := range bytes.Split(out, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		v, err := decodeJSON(line)
		if err != nil {
			return nil, fmt.Errorf("jsonl output line %d: %w", i+1, err)
		}
		values = append(values, v)
	}
	return values, nil
}

// parseYAML decodes one YAML document into JSON-compatible values. Timestamps
// and !!binary scalars keep their source text as strings, rather than
// becoming time.Time or raw bytes; mapping keys become strings.
func parseYAML(out []byte) (any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(out))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, fmt.Errorf("yaml output: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, errors.New("yaml output holds more than one document: the yaml format expects one (use jsonl for a stream of values)")
	}
	keepScalarText(&doc, map[*yaml.Node]bool{})
	var raw any
	if err := doc.Decode(&raw); err != nil {
		return nil, fmt.Errorf("yaml output: %w", err)
	}
	v, err := jsonCompatible(raw, "$")
	if err != nil {
		return nil, fmt.Errorf("yaml output: %w", err)
	}
	return v, nil
}

// keepScalarText retags timestamp and binary scalars as strings, so they
// decode to their source text.
func keepScalarText(n *yaml.Node, seen map[*yaml.Node]bool) {
	if n == nil || seen[n] {
		return
	}
	seen[n] = true
	if n.Kind == yaml.ScalarNode {
		if tag := n.ShortTag(); tag == "!!timestamp" || tag == "!!binary" {
			n.Tag = "!!str"
		}
		return
	}
	keepScalarText(n.Alias, seen)
	for _, c := range n.Content {
		keepScalarText(c, seen)
	}
}

// jsonCompatible converts what yaml.v3 decodes into `any` to the types
// encoding/json produces with UseNumber. path names the value in errors.
func jsonCompatible(v any, path string) (any, error) {
	switch v := v.(type) {
	case nil, bool, string:
		return v, nil
	case int:
		return json.Number(strconv.Itoa(v)), nil
	case int64:
		return json.Number(strconv.FormatInt(v, 10)), nil
	case uint64:
		return json.Number(strconv.FormatUint(v, 10)), nil
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("value at %s is %v, which JSON cannot hold", path, v)
		}
		return json.Number(strconv.FormatFloat(v, 'g', -1, 64)), nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			c, err := jsonCompatible(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			c, err := jsonCompatible(e, path+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			key, err := mapKey(k, path)
			if err != nil {
				return nil, err
			}
			if _, dup := out[key]; dup {
				return nil, fmt.Errorf("mapping at %s has two keys that both read as %q", path, key)
			}
			c, err := jsonCompatible(e, path+"."+key)
			if err != nil {
				return nil, err
			}
			out[key] = c
		}
		return out, nil
	}
	return nil, fmt.Errorf("value at %s has type %T, which JSON cannot hold", path, v)
}

// mapKey spells a scalar YAML mapping key as a JSON object key.
func mapKey(k any, path string) (string, error) {
	switch k := k.(type) {
	case nil:
		return "null", nil
	case string:
		return k, nil
	case bool:
		return strconv.FormatBool(k), nil
	case int, int64, uint64, float64:
		n, err := jsonCompatible(k, path)
		if err != nil {
			return "", err
		}
		return string(n.(json.Number)), nil
	}
	return "", fmt.Errorf("mapping at %s has a key of type %T, which cannot be a JSON object key", path, k)
}
