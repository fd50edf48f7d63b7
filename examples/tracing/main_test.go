package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/examples/internal/exampletest"
)

func TestMain(m *testing.M) {
	exampletest.RunMain(main)
	goleak.VerifyTestMain(m)
}

func TestTheTraceRunsFromThePythonCallerThroughTheRouterAndTheWorkerBackToTheResult(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out strings.Builder
		if err := run(ctx, connect(), &out); err != nil {
			t.Fatalf("run: %v", err)
		}
		got := out.String()
		re := regexp.MustCompile(`(?m)^result: completed Heddle routes tasks\.
the caller's trace: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
the result's trace: 00-4bf92f3577b34da6a3ce929d0e0e4736-([0-9a-f]{16})-01
heddle\.route summarize \[consumer\] span [0-9a-f]{16} routed
  heddle\.handle summarize \[consumer\] span ([0-9a-f]{16}) completed
$`)
		m := re.FindStringSubmatch(got)
		if m == nil {
			t.Fatalf("output:\n%s\nwant the result, the route span and the handle span below it, in the caller's trace", got)
		}
		if m[1] != m[2] {
			t.Errorf("the result's traceparent names span %s, want the worker's span %s", m[1], m[2])
		}
	})
}
