package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/meshtest"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/examples/internal/exampletest"
)

func TestMain(m *testing.M) {
	exampletest.RunMain(main)
	goleak.VerifyTestMain(m)
}

func TestQuickstartPrintsEveryResult(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out strings.Builder
		if err := run(ctx, connect(), &out); err != nil {
			t.Fatalf("run: %v", err)
		}
		checkOutput(t, out.String())
	})
}

// The actors on connections of their own, stopped when the test ends; the
// caller on another, and the mesh's dead-letter store keeping the task
// nobody serves.
func TestQuickstartServesItsActorsForACallerOnAnotherConnectionUntilStopped(t *testing.T) {
	meshtest.Each(t, meshtest.Config{Actors: newActors, NoRouter: true}, func(t *testing.T, m *meshtest.Mesh) {
		var out strings.Builder
		if err := call(m.Context(), m.Connect(), &out); err != nil {
			t.Fatalf("call: %v", err)
		}
		checkOutput(t, out.String())
		m.WaitDeadLetter(event.ReasonNoWorker)
	})
}

func checkOutput(t *testing.T, got string) {
	t.Helper()
	for _, want := range []string{
		"adder completed: map[sum:42]",
		"greeter completed: map[greeting:Hello, Ada!]",
		"greeter failed:",
		"typed call: Hello, Grace!",
		"dead-lettered at once: no_worker: no worker serves 'greeterr' at tier 'standard'",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if !strings.Contains(got, "name") {
		t.Errorf("the contract failure does not name the field 'name':\n%s", got)
	}
}

func TestQuickstartExampleRunsOverTheNATSServerItsNatsFlagNames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// An embedded server even when HEDDLE_TEST_NATS_URL names a shared one:
	// the process uses the mesh's own subjects, in no namespace of its own.
	srv := natstest.StartServer(t, nil)
	stdout := exampletest.Run(t, ctx, "-nats", srv.ClientURL())
	checkOutput(t, stdout)
	// The mesh ran on the server, not on an in-process bus.
	if v, err := srv.Varz(nil); err != nil || v.InMsgs == 0 {
		t.Errorf("the server saw no message (%v): the example did not use it", err)
	}
}
