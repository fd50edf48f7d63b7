package workertest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracttest/natstest"
)

// Option tunes Fixtures, RunCases and Conformance.
type Option func(*options)

type options struct {
	wait time.Duration
}

// Wait bounds each wait for a result or an event; zero or less keeps
// DefaultWait.
func Wait(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.wait = d
		}
	}
}

func newOptions(opts []Option) options {
	o := options{wait: DefaultWait}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// Fixtures runs every case of dir (see Load) through the worker newWorker
// makes, on membus and on natsbus: one subtest per bus, one per case
// within it, named after the case's file. With EnvUpdate set to 1, the
// cases marked golden are rewritten from what the worker does instead of
// checked.
func Fixtures(t testing.TB, dir string, newWorker Constructor, opts ...Option) {
	t.Helper()
	RunCases(t, newWorker, Load(t, dir), opts...)
}

// RunCases is Fixtures for cases at hand: read by Load, or written in Go.
// A case written in Go and marked golden is updated in cases only.
func RunCases(t testing.TB, newWorker Constructor, cases []Case, opts ...Option) {
	t.Helper()
	if len(cases) == 0 {
		t.Fatalf("workertest: no case to run")
	}
	for i := range cases {
		if err := cases[i].check(); err != nil {
			t.Fatalf("workertest: case %s: %v", caseName(&cases[i]), err)
		}
	}
	o := newOptions(opts)
	update := updating()
	for _, tr := range natstest.Transports() {
		run(t, tr.Name, func(t testing.TB) {
			h := newHarness(t, tr.Connector(t), newWorker, o.wait)
			for i := range cases {
				c := &cases[i]
				run(t, c.Name, func(t testing.TB) {
					t.Helper()
					got, ok := h.do(h.task(c.Input))
					if !ok {
						t.Fatalf("%s: no result within %s", caseName(c), o.wait)
					}
					if update && c.Golden && tr.Name == natstest.Transports()[0].Name {
						if err := c.record(got); err != nil {
							t.Fatalf("%s: rewriting the case: %v", caseName(c), err)
						}
						t.Logf("%s: recorded: %s", caseName(c), got.summary())
						return
					}
					if problems := c.compare(got); len(problems) > 0 {
						t.Errorf("%s:\n\t%s", caseName(c), strings.Join(problems, "\n\t"))
					}
				})
			}
		})
	}
}

// caseName is how messages name a case: its file, or its name.
func caseName(c *Case) string {
	if c.File != "" {
		return c.File
	}
	return "case " + c.Name
}

// compare lists how the outcome differs from what the case expects.
func (c *Case) compare(o outcome) []string {
	if c.Output == nil && c.Failure == nil {
		return []string{fmt.Sprintf("the case has no expectation yet (golden): run with %s=1 to record it; the worker %s", EnvUpdate, o.summary())}
	}
	if c.Failure == nil {
		if o.result.Status != heddle.StatusCompleted {
			return []string{fmt.Sprintf("want output %s\ngot %s", compact(c.Output), o.summary())}
		}
		want, err := normalize(c.Output)
		if err != nil {
			return []string{fmt.Sprintf("the case's output cannot be encoded as JSON: %v", err)}
		}
		got, err := decodeJSON(o.output)
		if err != nil {
			return []string{fmt.Sprintf("the result's output is not JSON: %v", err)}
		}
		d := diff(want, got, c.Subset)
		if len(d) == 0 {
			return nil
		}
		what := "output"
		if c.Subset {
			what = "output (subset)"
		}
		return append([]string{fmt.Sprintf("%s differs, by field (got %s):", what, compact(o.output))}, d...)
	}
	f := c.Failure
	if o.result.Status == heddle.StatusCompleted {
		return []string{fmt.Sprintf("want a failure (side %s, fields %v)\ngot %s", f.Side, f.Fields, o.summary())}
	}
	var out []string
	if o.side != f.Side {
		out = append(out, fmt.Sprintf("failed on side %s, want %s: %s", cmpOr(o.side, "unknown (no worker.failed event)"), f.Side, o.result.Error))
	}
	if o.violations != nil && (f.Side == InputContract || f.Side == OutputContract) {
		want := slices.Sorted(slices.Values(pointers(f.Fields)))
		got := slices.Sorted(slices.Values(o.violations))
		if !slices.Equal(want, got) {
			out = append(out, fmt.Sprintf("the contract violations are at %v, want %v: %s", got, want, o.result.Error))
		}
	} else {
		for _, field := range f.Fields {
			if !strings.Contains(o.result.Error, strings.TrimPrefix(field, "/")) {
				out = append(out, fmt.Sprintf("the error does not name %s: %s", field, o.result.Error))
			}
		}
	}
	if f.Error != "" && !strings.Contains(o.result.Error, f.Error) {
		out = append(out, fmt.Sprintf("the error does not contain %q: %s", f.Error, o.result.Error))
	}
	return out
}

// pointers writes each field as a JSON Pointer: "text" is "/text".
func pointers(fields []string) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		if f != "" && !strings.HasPrefix(f, "/") {
			f = "/" + f
		}
		out[i] = f
	}
	return out
}
