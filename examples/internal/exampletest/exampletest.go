// Package exampletest holds what the examples' tests share: running an
// example's actors with heddle.Serve, and running its main as a process of
// its own.
package exampletest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
)

// runMainEnv makes a test binary run its package's main instead of its
// tests (see RunMain).
const runMainEnv = "HEDDLE_EXAMPLE_RUN_MAIN"

// RunMain runs main and exits when the test binary was started by Command;
// otherwise it returns at once. An example's TestMain calls it first.
func RunMain(main func()) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
}

// Process is an example's main running as a process of its own.
type Process struct {
	Cmd    *exec.Cmd
	Stdout *Buffer
	Stderr *Buffer
	exited chan error
	err    error
	done   bool
}

// Start runs the test binary's main (see RunMain) with args in a process
// of its own, killed when the test ends if it is still running.
func Start(t testing.TB, ctx context.Context, args ...string) *Process {
	t.Helper()
	p := &Process{Stdout: new(Buffer), Stderr: new(Buffer), exited: make(chan error, 1)}
	p.Cmd = exec.CommandContext(ctx, os.Args[0], args...)
	p.Cmd.Env = append(os.Environ(), runMainEnv+"=1")
	p.Cmd.Stdout, p.Cmd.Stderr = p.Stdout, p.Stderr
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.Cmd.Wait() }()
	t.Cleanup(func() {
		if !p.done {
			_ = p.Cmd.Process.Kill()
			p.Wait()
		}
	})
	return p
}

// Run runs the test binary's main with args as Start does, waits for it
// to exit, fails the test with its log unless it exited with status 0,
// and returns what it wrote to standard output.
func Run(t testing.TB, ctx context.Context, args ...string) string {
	t.Helper()
	p := Start(t, ctx, args...)
	if err := p.Wait(); err != nil {
		t.Fatalf("the example ended with %v\nits log:\n%s", err, p.Stderr)
	}
	return p.Stdout.String()
}

// Wait waits for the process to exit and returns what exec.Cmd.Wait
// returned: nil for exit status 0.
func (p *Process) Wait() error {
	if !p.done {
		p.err, p.done = <-p.exited, true
	}
	return p.err
}

// Buffer holds a process's output; it can be read while the process still
// writes.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Serve runs heddle.Serve(ctx, actors...) on a goroutine of its own and
// returns once every actor is ready, failing the test if Serve returns
// first. The returned stop ends Serve's context and returns what Serve
// returned.
func Serve(t testing.TB, ctx context.Context, actors ...heddle.Actor) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- heddle.Serve(ctx, actors...) }()
	stop = func() error {
		cancel()
		select {
		case err := <-served:
			served <- err // a second stop returns the same
			return err
		case <-time.After(time.Minute):
			t.Fatal("Serve did not return a minute after its context ended")
			return nil
		}
	}
	for _, a := range actors {
		select {
		case <-a.Ready():
		case err := <-served:
			cancel()
			t.Fatalf("Serve returned before every actor was ready: %v", err)
		}
	}
	return stop
}
