package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/meshtest"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/examples/internal/exampletest"
)

func TestMain(m *testing.M) {
	exampletest.RunMain(main)
	goleak.VerifyTestMain(m)
}

// wantResults are the goals' results as submit prints them; run prints
// the plan first.
const (
	wantPlan    = "plan: [[extract] [classify summarize] [flag_invoice report]]\n"
	wantResults = `inv-042.txt: completed
  classify: {"kind":"invoice"}
  extract: {"text":"Invoice 42 from Acme Corp. Total due: 1200 EUR by March 31. Thank you for your business.","words":17}
  flag_invoice: {"flagged":true,"reason":"amount due 1200 EUR"}
  report: {"report":"inv-042.txt (invoice, 17 words): Invoice 42 from Acme Corp."}
  summarize: {"summary":"Invoice 42 from Acme Corp."}
note-7.txt: completed
  classify: {"kind":"letter"}
  extract: {"text":"Dear team, the office is closed on Friday. Enjoy the long weekend.","words":12}
  report: {"report":"note-7.txt (letter, 12 words): Dear team, the office is closed on Friday."}
  summarize: {"summary":"Dear team, the office is closed on Friday."}
  skipped: [flag_invoice]
`
)

func TestPipelineExamplePrintsEachGoalsStages(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out strings.Builder
		if err := run(ctx, connect(), &out); err != nil {
			t.Fatalf("run: %v", err)
		}
		if got, want := out.String(), wantPlan+wantResults; got != want {
			t.Errorf("output:\n%s\nwant:\n%s", got, want)
		}
	})
}

func TestPipelineExampleServesGoalsFromAnotherConnectionUntilStopped(t *testing.T) {
	actors := func(b bus.Bus) ([]heddle.Actor, error) {
		_, actors, err := newActors(b)
		return actors, err
	}
	meshtest.Each(t, meshtest.Config{Actors: actors, NoRouter: true}, func(t *testing.T, m *meshtest.Mesh) {
		var out strings.Builder
		if err := submit(m.Context(), m.Connect(), &out); err != nil {
			t.Fatalf("submit: %v", err)
		}
		if got := out.String(); got != wantResults {
			t.Errorf("output:\n%s\nwant:\n%s", got, wantResults)
		}
	})
}

func TestPipelineExampleRunsOverTheNATSServerItsNatsFlagNames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// An embedded server even when HEDDLE_TEST_NATS_URL names a shared one:
	// the process uses the mesh's own subjects, in no namespace of its own.
	srv := natstest.StartServer(t, nil)
	stdout := exampletest.Run(t, ctx, "-nats", srv.ClientURL())
	if got, want := stdout, wantPlan+wantResults; got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
	// The mesh ran on the server, not on an in-process bus.
	if v, err := srv.Varz(nil); err != nil || v.InMsgs == 0 {
		t.Errorf("the server saw no message (%v): the example did not use it", err)
	}
}
