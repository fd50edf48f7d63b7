package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/meshtest"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/contracttest/workertest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/examples/internal/exampletest"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/worker"
)

func TestMain(m *testing.M) {
	exampletest.RunMain(main)
	slog.SetDefault(slog.New(slog.DiscardHandler))
	goleak.VerifyTestMain(m)
}

// The greeter and a caller in one process, on the in-memory bus: the same
// worker serves over NATS unchanged.
func Example() {
	ctx := context.Background()
	b := membus.New()
	defer b.Close()
	w, _ := worker.New(b, "greeter", greet, worker.Config{})
	group, _ := heddle.Start(ctx, w) // returns once the worker is subscribed
	defer group.Stop()
	out, err := dispatch.Call[GreetIn, GreetOut](ctx, b, "greeter", GreetIn{Name: "Ada"}, dispatch.Direct())
	fmt.Println(out.Greeting, err)
	// Output: Hello, Ada! <nil>
}

func TestTheWorkerProcessServesCallsUntilSIGTERMThenExitsCleanly(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM cannot be sent to a process on Windows")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// An embedded server even when HEDDLE_TEST_NATS_URL names a shared one:
	// the process serves the mesh's own subjects, in no namespace of its own.
	url := natstest.StartServer(t, nil).ClientURL()
	proc := exampletest.Start(t, ctx, "-nats", url)

	b, err := natsbus.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// Until the process has subscribed, a direct call fails at once with
	// ErrNoWorker; each try is one round trip to the server.
	var out GreetOut
	for {
		out, err = dispatch.Call[GreetIn, GreetOut](ctx, b, "greeter", GreetIn{Name: "Ada"},
			dispatch.Direct(), dispatch.Timeout(10*time.Second))
		if !errors.Is(err, dispatch.ErrNoWorker) || ctx.Err() != nil {
			break
		}
	}
	if err != nil || out.Greeting != "Hello, Ada!" {
		t.Fatalf("Call = %+v, %v; want the greeting\nthe worker's log:\n%s", out, err, proc.Stderr)
	}

	if err := proc.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := proc.Wait(); err != nil {
		t.Fatalf("the worker process ended with %v after SIGTERM, want exit status 0\nits log:\n%s", err, proc.Stderr)
	}
}

// newGreeter makes the greeter as main does, with the options the test
// kit gives it.
func newGreeter(b bus.Bus, opts ...heddle.Option) (*worker.Worker, error) {
	return worker.New(b, "greeter", greet, worker.Config{}, opts...)
}

var greeterCases = []workertest.Case{
	{Name: "ada", Input: map[string]any{"name": "Ada"}, Output: map[string]any{"greeting": "Hello, Ada!"}},
	{Name: "no_name", Input: map[string]any{}, Failure: &workertest.Failure{Side: workertest.InputContract, Fields: []string{"/name"}}},
	{Name: "empty_name", Input: map[string]any{"name": ""}, Failure: &workertest.Failure{Side: workertest.InputContract, Fields: []string{"/name"}}},
}

func TestTheGreeterAnswersItsCasesAndConforms(t *testing.T) {
	workertest.RunCases(t, newGreeter, greeterCases)
	workertest.Conformance(t, newGreeter, greeterCases)
}

func TestTheGreeterReportsEachTaskToItsLoggerAndObservers(t *testing.T) {
	logs := testlog.New()
	withLogger := func(b bus.Bus, opts ...heddle.Option) (*worker.Worker, error) {
		return newGreeter(b, append(opts, heddle.WithLogger(logs.Logger()))...)
	}
	meshtest.Each(t, meshtest.Config{Workers: []workertest.Constructor{withLogger}}, func(t *testing.T, m *meshtest.Mesh) {
		res, err := m.Request("greeter", map[string]any{"name": "Ada"})
		if err != nil {
			t.Fatal(err)
		}
		m.WaitCount(event.WorkerCompleted, "", 1) // the mesh's observer
		logs.WaitFor(t, event.WorkerCompleted, res.TaskID, 1)
	})
}
