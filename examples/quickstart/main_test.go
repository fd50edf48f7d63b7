package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestQuickstartPrintsEveryResult(t *testing.T) {
	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out strings.Builder
		if err := run(ctx, connect(), &out); err != nil {
			t.Fatalf("run: %v", err)
		}
		got := out.String()
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
	})
}
