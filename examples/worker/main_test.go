package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/heddle-go/heddle/event"
	"log/slog"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/examples/internal/exampletest"
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

func TestTheGreeterReportsEachTaskToItsLoggerAndObservers(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		b := connect()
		var logs strings.Builder
		logger := slog.New(slog.NewTextHandler(&logs, nil))
		completed := make(chan string, 1)

		w, err := worker.New(b, "greeter", greet, worker.Config{},
			heddle.WithLogger(logger),
			heddle.WithObserver(event.ObserverFunc(func(ctx context.Context, e event.Event) {
				if e.Name == event.WorkerCompleted {
					completed <- e.TaskID
				}
			})))
		if err != nil {
			t.Fatal(err)
		}
		group, err := heddle.Start(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		task := heddle.NewTaskMessage("greeter", map[string]any{"name": "Ada"})
		if _, err := dispatch.Request(ctx, connect(), task, dispatch.Direct()); err != nil {
			t.Fatal(err)
		}
		select {
		case id := <-completed:
			if id != task.TaskID {
				t.Errorf("worker.completed for task %s, want %s", id, task.TaskID)
			}
		case <-ctx.Done():
			t.Fatal("the observer saw no worker.completed")
		}
		if err := group.Stop(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "msg=worker.completed") {
			t.Errorf("the logger got no worker.completed:\n%s", logs.String())
		}
	})
}
