package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/heddle-go/heddle/contracttest/natstest"
)

// childArgsEnv, set to a JSON array of arguments, makes the test binary
// run them as the heddle command, on its own standard input and output,
// and exit with its exit code: the tests of what a command does with the
// process's own streams (mcp over stdio) or signals start it so.
const childArgsEnv = "HEDDLE_CLI_TEST_CHILD_ARGS"

// TestMain checks that no test leaks a goroutine. The commands run in
// process, through app.run, each with its own streams and environment,
// or in a child process (see childArgsEnv).
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(childArgsEnv); ok {
		var argv []string
		if err := json.Unmarshal([]byte(args), &argv); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", childArgsEnv, err)
			os.Exit(exitUsage)
		}
		os.Exit(run(context.Background(), argv, os.Stdout, os.Stderr))
	}
	slog.SetDefault(slog.New(slog.DiscardHandler))
	goleak.VerifyTestMain(m)
}

// waitLimit bounds every wait of these tests; only a broken command
// reaches it.
const waitLimit = 20 * time.Second

// output is a concurrency-safe buffer a test can wait on for a line.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced at each write
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, err := o.buf.Write(p)
	close(o.changed)
	o.changed = make(chan struct{})
	return n, err
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor waits until the output holds s and returns the line holding it.
func (o *output) waitFor(t testing.TB, s string) string {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		text, ch := o.buf.String(), o.changed
		o.mu.Unlock()
		if i := strings.Index(text, s); i >= 0 {
			start := strings.LastIndexByte(text[:i], '\n') + 1
			end := strings.IndexByte(text[i:], '\n')
			if end < 0 {
				return text[start:]
			}
			return text[start : i+end]
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("output never held %q; it is:\n%s", s, text)
		}
	}
}

// waitCount waits until s occurs at least n times in the output.
func (o *output) waitCount(t testing.TB, s string, n int) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		text, ch := o.buf.String(), o.changed
		o.mu.Unlock()
		if strings.Count(text, s) >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("output never held %q %d times; it is:\n%s", s, n, text)
		}
	}
}

// lines returns how many lines of the output hold every one of subs.
func (o *output) lines(subs ...string) int {
	n := 0
	for l := range strings.SplitSeq(o.String(), "\n") {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(l, s)
		}
		if all {
			n++
		}
	}
	return n
}

// count returns how many times s occurs in the output.
func (o *output) count(s string) int { return strings.Count(o.String(), s) }

// invocation is one command run in process.
type invocation struct {
	stdout, stderr *output
	done           chan struct{} // closed when the command returned
	code           int           // its exit code, once done is closed
	cancel         context.CancelFunc
	args           []string
}

// env is the environment the commands see.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// start runs args in the background with environment e and stdin.
func start(t testing.TB, e env, stdin string, args ...string) *invocation {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	inv := &invocation{stdout: newOutput(), stderr: newOutput(), done: make(chan struct{}), cancel: cancel, args: args}
	a := &app{stdin: strings.NewReader(stdin), stdout: inv.stdout, stderr: inv.stderr, getenv: e.get}
	go func() {
		inv.code = a.run(ctx, args)
		close(inv.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-inv.done:
		case <-time.After(waitLimit):
			t.Errorf("heddle %s did not return after its context ended", strings.Join(args, " "))
		}
	})
	return inv
}

// wait returns the exit code, failing the test when the command does not
// return within waitLimit.
func (inv *invocation) wait(t testing.TB) int {
	t.Helper()
	select {
	case <-inv.done:
		return inv.code
	case <-time.After(waitLimit):
		t.Fatalf("heddle %s did not return; stderr:\n%s", strings.Join(inv.args, " "), inv.stderr.String())
		return -1
	}
}

// stop cancels a long-running command and returns its exit code.
func (inv *invocation) stop(t testing.TB) int {
	t.Helper()
	inv.cancel()
	return inv.wait(t)
}

// execute runs args to completion and returns the exit code and outputs.
func execute(t testing.TB, e env, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	inv := start(t, e, "", args...)
	code = inv.wait(t)
	return code, inv.stdout.String(), inv.stderr.String()
}

// natsURL starts an embedded NATS server for the test and returns its URL.
// The commands dial it themselves, so the test always controls its server
// (an external HEDDLE_TEST_NATS_URL server is not used).
func natsURL(t testing.TB) string {
	t.Helper()
	return natstest.StartServer(t, nil).ClientURL()
}

// serve starts a long-running verb and waits until its actor is
// subscribed, failing the test if the command returns first.
func serve(t testing.TB, e env, args ...string) *invocation {
	t.Helper()
	return serveUntil(t, "actor.subscribed", e, args...)
}

// serveUntil starts a long-running verb and waits until its stderr holds
// marker, failing the test if the command returns first.
func serveUntil(t testing.TB, marker string, e env, args ...string) *invocation {
	t.Helper()
	inv := start(t, e, "", args...)
	o := inv.stderr
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		text, ch := o.buf.String(), o.changed
		o.mu.Unlock()
		if strings.Contains(text, marker) {
			return inv
		}
		select {
		case <-ch:
		case <-inv.done:
			t.Fatalf("heddle %s exited %d before logging %s; stderr:\n%s", strings.Join(args, " "), inv.code, marker, o.String())
		case <-deadline.C:
			t.Fatalf("heddle %s never logged %s; stderr:\n%s", strings.Join(args, " "), marker, o.String())
		}
	}
}

// natstestServer starts an embedded NATS server the test controls.
func natstestServer(t *testing.T) *server.Server {
	t.Helper()
	return natstest.StartServer(t, nil)
}

// deadListener returns a loopback host:port nothing listens on.
func deadListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
