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
	"github.com/heddle-go/heddle/examples/internal/exampletest"
)

func TestMain(m *testing.M) {
	exampletest.RunMain(main)
	goleak.VerifyTestMain(m)
}

const wantOutput = `goal completed
words per sentence: [5 6 11 3]
total words: 25
`

func TestOrchestratorExampleFansOutAndSynthesizes(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out strings.Builder
		if err := run(ctx, connect(), &out); err != nil {
			t.Fatalf("run: %v", err)
		}
		if got := out.String(); got != wantOutput {
			t.Errorf("output:\n%s\nwant:\n%s", got, wantOutput)
		}
	})
}

func TestOrchestratorExampleServesGoalsFromAnotherConnectionUntilStopped(t *testing.T) {
	meshtest.Each(t, meshtest.Config{Actors: newActors, NoRouter: true}, func(t *testing.T, m *meshtest.Mesh) {
		var out strings.Builder
		if err := submit(m.Context(), m.Connect(), &out); err != nil {
			t.Fatalf("submit: %v", err)
		}
		if got := out.String(); got != wantOutput {
			t.Errorf("output:\n%s\nwant:\n%s", got, wantOutput)
		}
	})
}

func TestOrchestratorExampleRunsOverTheNATSServerItsNatsFlagNames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// An embedded server even when HEDDLE_TEST_NATS_URL names a shared one:
	// the process uses the mesh's own subjects, in no namespace of its own.
	srv := natstest.StartServer(t, nil)
	stdout := exampletest.Run(t, ctx, "-nats", srv.ClientURL())
	if got := stdout; got != wantOutput {
		t.Errorf("output:\n%s\nwant:\n%s", got, wantOutput)
	}
	// The mesh ran on the server, not on an in-process bus.
	if v, err := srv.Varz(nil); err != nil || v.InMsgs == 0 {
		t.Errorf("the server saw no message (%v): the example did not use it", err)
	}
}
