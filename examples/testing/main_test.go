package main

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"go.uber.org/goleak"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/faultbus"
	"github.com/heddle-go/heddle/contracttest/meshtest"
	"github.com/heddle-go/heddle/contracttest/workertest"
	"github.com/heddle-go/heddle/examples/internal/exampletest"
	"github.com/heddle-go/heddle/membus"
)

func TestMain(m *testing.M) {
	exampletest.RunMain(main)
	slog.SetDefault(slog.New(slog.DiscardHandler))
	goleak.VerifyTestMain(m)
}

// cases holds a file per payload: what the worker must answer, or how it
// must fail.
const cases = "testdata/heddle/summarize"

// Every case, through the real worker, on membus and on NATS.
func TestSummarizeFixtures(t *testing.T) {
	workertest.Fixtures(t, cases, newWorker)
}

// What every Heddle worker must do, checked on the summarize worker.
func TestSummarizeConforms(t *testing.T) {
	workertest.Conformance(t, newWorker, workertest.Load(t, cases))
}

// Half the tasks the caller sends are lost on the way (the same half on
// every run: the faults follow the seed); call sends again and every text
// gets its summary.
func TestCallsSurviveLostTasks(t *testing.T) {
	b := membus.New()
	t.Cleanup(func() { _ = b.Close() })
	connect := func() bus.Bus {
		c := b.Connect()
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	m := meshtest.Start(t, connect, meshtest.Config{
		Workers: []workertest.Constructor{newWorker}, NoRouter: true,
	})
	lossy, err := faultbus.Wrap(m.Connect(), faultbus.Config{Seed: 1, Rules: []faultbus.Rule{
		{Subject: "heddle.tasks.summarize.*", Drop: 0.5},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lossy.Close() })
	for i := range 6 {
		text := fmt.Sprintf("text number %d", i)
		out, err := call(context.Background(), lossy, text)
		if err != nil || out.Summary != text {
			t.Fatalf("call(%q) = %+v, %v; want its summary", text, out, err)
		}
	}
	if lost := lossy.Stats().Dropped; lost == 0 {
		t.Errorf("no task was lost: the fault was not injected")
	}
}
