package workertest

import (
	"fmt"
	"slices"
	"testing"
)

// run runs f as the part of the test called name: a subtest when t is a
// *testing.T, otherwise in turn, with what it reports prefixed by name
// and its cleanups run when it returns.
func run(t testing.TB, name string, f func(t testing.TB)) {
	t.Helper()
	if tt, ok := t.(*testing.T); ok {
		tt.Run(name, func(t *testing.T) { f(t) })
		return
	}
	p := &part{TB: t, name: name}
	defer p.cleanup()
	f(p)
}

// part is a named part of a test that is not a *testing.T.
type part struct {
	testing.TB
	name     string
	cleanups []func()
}

func (p *part) Name() string { return p.TB.Name() + "/" + p.name }

func (p *part) Helper() {}

func (p *part) Errorf(format string, args ...any) {
	p.TB.Errorf("%s: %s", p.name, fmt.Sprintf(format, args...))
}

func (p *part) Error(args ...any) { p.TB.Errorf("%s: %s", p.name, fmt.Sprint(args...)) }

func (p *part) Fatalf(format string, args ...any) {
	p.TB.Fatalf("%s: %s", p.name, fmt.Sprintf(format, args...))
}

func (p *part) Fatal(args ...any) { p.TB.Fatalf("%s: %s", p.name, fmt.Sprint(args...)) }

func (p *part) Logf(format string, args ...any) {
	p.TB.Logf("%s: %s", p.name, fmt.Sprintf(format, args...))
}

func (p *part) Log(args ...any) { p.TB.Logf("%s: %s", p.name, fmt.Sprint(args...)) }

// Cleanup runs f when the part ends, as a subtest's cleanups run.
func (p *part) Cleanup(f func()) { p.cleanups = append(p.cleanups, f) }

func (p *part) cleanup() {
	for _, f := range slices.Backward(p.cleanups) {
		f()
	}
}
