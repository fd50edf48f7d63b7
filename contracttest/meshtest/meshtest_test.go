package meshtest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/faultbus"
	"github.com/heddle-go/heddle/contracttest/meshtest"
	"github.com/heddle-go/heddle/contracttest/workertest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

type echoIn struct {
	Text string `json:"text" jsonschema:"minLength=1"`
}

type echoOut struct {
	Echo string `json:"echo"`
}

func newEcho(b bus.Bus, opts ...heddle.Option) (*worker.Worker, error) {
	return worker.New(b, "echo", func(_ context.Context, in echoIn) (echoOut, error) {
		return echoOut{Echo: in.Text}, nil
	}, worker.Config{}, opts...)
}

var echoMesh = meshtest.Config{Workers: []workertest.Constructor{newEcho}}

func TestAMeshServesRequestsAndCountsWhatItsActorsReport(t *testing.T) {
	meshtest.Each(t, echoMesh, func(t *testing.T, m *meshtest.Mesh) {
		res, err := m.Request("echo", map[string]any{"text": "hi"})
		if err != nil || res.Status != heddle.StatusCompleted || res.Output["echo"] != "hi" {
			t.Fatalf("Request = %+v, %v; want the echo", res, err)
		}
		res, err = m.Request("echo", map[string]any{})
		if err != nil || res.Status != heddle.StatusFailed || !strings.Contains(res.Error, "/text") {
			t.Fatalf("Request without text = %+v, %v; want a failure naming /text", res, err)
		}
		m.WaitCount(event.WorkerCompleted, "", 1)
		m.WaitCount(event.WorkerFailed, event.ReasonInputContract, 1)
		// The router counts a task routed once it knows it was delivered.
		m.WaitCount(event.RouterRouted, "", 2)
		if got := m.Worker("echo").Stats().Completed; got != 1 {
			t.Errorf("the worker's Stats say %d completed, want 1", got)
		}
		if c := m.Counts()[event.WorkerFailed]; c[""] != 1 || c[event.ReasonInputContract] != 1 {
			t.Errorf("Counts()[worker.failed] = %v", c)
		}
	})
}

func TestAMeshWaitsForADeadLetterByItsReason(t *testing.T) {
	meshtest.Each(t, meshtest.Config{
		Workers: []workertest.Constructor{newEcho},
		Rules:   router.Rules{TierOverrides: map[string]string{"echo": "galactic"}},
	}, func(t *testing.T, m *meshtest.Mesh) {
		_, err := m.Request("echo", map[string]any{"text": "hi"})
		var dead *dispatch.DeadLetterError
		if !errors.As(err, &dead) || dead.Reason != event.ReasonUnknownTier {
			t.Fatalf("Request = %v, want it dead-lettered as unknown_tier", err)
		}
		e := m.WaitDeadLetter(event.ReasonUnknownTier)
		if e.DeadLetter.TaskID != dead.TaskID || e.DeadLetter.WorkerType != "echo" {
			t.Errorf("dead letter %+v, want task %s of echo", e.DeadLetter, dead.TaskID)
		}
		task := heddle.NewTaskMessage("nobody", map[string]any{})
		m.Publish(task)
		if r := m.WaitResult(task.TaskID); r.Status != heddle.StatusFailed {
			t.Errorf("the result of a task nobody serves: %+v, want failed", r)
		}
		if e := m.WaitDeadLetter("no_worker: "); e.DeadLetter.TaskID != task.TaskID {
			t.Errorf("no_worker dead letter %+v, want task %s", e.DeadLetter, task.TaskID)
		}
		// The router reports the dead letter once it is published, so the
		// store may hold it a moment before the event is counted.
		m.WaitCount(event.RouterDeadLettered, event.ReasonNoWorker, 1)
		if n := m.Count(event.RouterDeadLettered, event.ReasonNoWorker); n != 1 {
			t.Errorf("router.dead_lettered (no_worker) counted %d, want 1", n)
		}
	})
}

// A mesh on faulty connections: every task the router forwards is
// duplicated, the worker runs each twice, the caller still gets one result.
func TestAMeshRunsOnConnectionsWithFaults(t *testing.T) {
	b := membus.New()
	t.Cleanup(func() { _ = b.Close() })
	connect := func() bus.Bus {
		fb, err := faultbus.Wrap(b.Connect(), faultbus.Config{Rules: []faultbus.Rule{{Subject: "heddle.tasks.echo.*", Duplicate: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = fb.Close() })
		return fb
	}
	m := meshtest.Start(t, connect, echoMesh)
	for i := range 3 {
		out, err := dispatch.Call[echoIn, echoOut](m.Context(), m.Bus(), "echo", echoIn{Text: fmt.Sprint(i)})
		if err != nil || out.Echo != fmt.Sprint(i) {
			t.Fatalf("Call %d = %+v, %v", i, out, err)
		}
	}
	m.WaitCount(event.WorkerCompleted, "", 6)
	m.WaitCount(event.RouterRouted, "", 3)
}

// fatals records a test's fatal failure.
type fatals struct {
	testing.TB
	mu   sync.Mutex
	msgs []string
}

func (f *fatals) Helper() {}
func (f *fatals) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	runtime.Goexit()
}

func TestAWaitThatEndsEmptySaysWhatWasThere(t *testing.T) {
	b := membus.New()
	t.Cleanup(func() { _ = b.Close() })
	connect := func() bus.Bus {
		c := b.Connect()
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	cfg := echoMesh
	cfg.Wait = 200 * time.Millisecond
	f := &fatals{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		m := meshtest.Start(f, connect, cfg)
		m.Publish(heddle.NewTaskMessage("nobody", map[string]any{}))
		m.WaitDeadLetter(event.ReasonRateLimited)
	}()
	<-done
	if len(f.msgs) != 1 || !strings.Contains(f.msgs[0], `no dead letter with reason "rate_limited" within 200ms; the store holds`) {
		t.Errorf("reported %q", f.msgs)
	}
}
