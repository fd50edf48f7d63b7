package workertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/heddle-go/heddle/event"
)

// EnvUpdate names the environment variable that, set to 1, makes
// Fixtures rewrite the expectation of every case marked golden from what
// the worker did, as golden files are updated.
const EnvUpdate = "HEDDLE_UPDATE_FIXTURES"

// The sides a task fails on that fixtures name most: the reason kinds of
// the worker.failed event. Any other reason kind of package event
// (timeout, panic, input_decode, output_encode, ...) is a side too.
const (
	InputContract  = event.ReasonInputContract
	OutputContract = event.ReasonOutputContract
	HandlerError   = event.ReasonHandler
	PermanentError = event.ReasonPermanent
)

// sides are the reasons a worker fails a task with, which a case may name.
var sides = []string{
	event.ReasonInputContract, event.ReasonInputDecode, event.ReasonOutputContract, event.ReasonOutputEncode,
	event.ReasonHandler, event.ReasonPermanent, event.ReasonPanic, event.ReasonTimeout, event.ReasonGoexit,
	event.ReasonOutputTooLarge,
}

// Case is one payload fixture: a task's payload and what must come of it,
// an Output or a Failure. Load reads them from files; a test may also
// write them in Go.
type Case struct {
	// Name names the case's subtest; Load gives the file name without
	// ".json".
	Name string
	// File is the file the case was read from, rewritten when the case is
	// Golden and updates are on; empty for a case written in Go.
	File string
	// Input is the task's payload.
	Input map[string]any
	// Output is the output the task must complete with, compared exactly,
	// or only on the fields it holds when Subset is set. Its values are
	// compared as JSON: numbers by value, whatever their Go type.
	Output any
	Subset bool
	// Failure, when set, is how the task must fail instead.
	Failure *Failure
	// Golden marks a case whose expectation an update rewrites (EnvUpdate).
	Golden bool

	// rawInput is the input as the file wrote it, kept when the file is
	// rewritten.
	rawInput json.RawMessage
}

// Failure is how a case's task must fail.
type Failure struct {
	// Side is the reason kind of the worker.failed event: InputContract,
	// OutputContract, HandlerError, PermanentError, or another reason kind
	// of package event.
	Side string `json:"side"`
	// Fields name the fields at fault. For a contract side they are the
	// JSON Pointers of the violations ("/text"), every one of them; for
	// another side, words the result's error must contain.
	Fields []string `json:"fields,omitempty"`
	// Error is text the result's error must contain.
	Error string `json:"error,omitempty"`
}

// caseFile is a case's file.
type caseFile struct {
	Input   json.RawMessage `json:"input"`
	Output  json.RawMessage `json:"output,omitempty"`
	Match   string          `json:"match,omitempty"`
	Failure *Failure        `json:"failure,omitempty"`
	Golden  bool            `json:"golden,omitempty"`
}

// Load reads every case of dir: each *.json file is one case, named after
// it. A file that is not a valid case fails the test, naming the file
// and what is wrong; so does a directory without cases.
func Load(t testing.TB, dir string) []Case {
	t.Helper()
	cases, err := LoadDir(dir)
	if err != nil {
		t.Fatalf("workertest: %v", err)
	}
	return cases
}

// LoadDir is Load returning its error.
func LoadDir(dir string) ([]Case, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no case in %s: put one *.json file per case there", dir)
	}
	slices.Sort(files)
	cases := make([]Case, 0, len(files))
	for _, f := range files {
		c, err := loadCase(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		cases = append(cases, c)
	}
	return cases, nil
}

func loadCase(file string) (Case, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Case{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f caseFile
	if err := dec.Decode(&f); err != nil {
		return Case{}, fmt.Errorf("not a case (input, output, match, failure, golden): %w", err)
	}
	c := Case{Name: strings.TrimSuffix(filepath.Base(file), ".json"), File: file, Golden: f.Golden, rawInput: f.Input}
	if len(f.Input) == 0 {
		return c, errors.New(`"input" is missing: give the task's payload object`)
	}
	in, err := decodeJSON(f.Input)
	if m, ok := in.(map[string]any); err == nil && ok {
		c.Input = m
	} else {
		return c, fmt.Errorf(`"input" is not a JSON object: %s`, compact(f.Input))
	}
	if len(f.Output) > 0 {
		if c.Output, err = decodeJSON(f.Output); err != nil {
			return c, fmt.Errorf(`"output": %w`, err)
		}
		if _, ok := c.Output.(map[string]any); !ok {
			return c, fmt.Errorf(`"output" is not a JSON object: %s`, compact(f.Output))
		}
	}
	switch f.Match {
	case "", "exact":
	case "subset":
		c.Subset = true
	default:
		return c, fmt.Errorf(`"match" is %q; want "exact" (the default) or "subset"`, f.Match)
	}
	c.Failure = f.Failure
	return c, c.check()
}

// check reports what makes a case unusable.
func (c *Case) check() error {
	switch {
	case c.Output != nil && c.Failure != nil:
		return errors.New(`the case gives both an output and a failure; a task either completes or fails`)
	case c.Output == nil && c.Failure == nil && !c.Golden:
		return fmt.Errorf(`the case says nothing of what must come out: give "output" or "failure", or mark it "golden": true and run with %s=1 to record what the worker does`, EnvUpdate)
	case c.Subset && c.Output == nil:
		return errors.New(`"match": "subset" without an "output"`)
	case c.Failure != nil && !slices.Contains(sides, c.Failure.Side):
		return fmt.Errorf(`failure side %q is not a reason a worker fails a task with; want one of %s`, c.Failure.Side, strings.Join(sides, ", "))
	}
	return nil
}

// updating reports whether golden cases are rewritten.
func updating() bool { return os.Getenv(EnvUpdate) == "1" }

// record makes o the case's expectation and, for a case read from a file,
// rewrites the file.
func (c *Case) record(o outcome) error {
	c.Output, c.Failure, c.Subset = nil, nil, false
	if o.result.Status == "completed" {
		v, err := decodeJSON(o.output)
		if err != nil {
			return err
		}
		c.Output = v
	} else {
		c.Failure = &Failure{Side: o.side, Fields: o.violations}
	}
	if c.File == "" {
		return nil
	}
	f := caseFile{Input: c.rawInput, Failure: c.Failure, Golden: true}
	if c.Output != nil {
		f.Output = o.output
	}
	if len(f.Input) == 0 {
		data, err := json.Marshal(c.Input)
		if err != nil {
			return err
		}
		f.Input = data
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(c.File, append(data, '\n'), 0o644)
}
