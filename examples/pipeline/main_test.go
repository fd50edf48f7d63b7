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

func TestPipelineExamplePrintsEachGoalsStages(t *testing.T) {
	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out strings.Builder
		if err := run(ctx, connect(), &out); err != nil {
			t.Fatalf("run: %v", err)
		}
		want := `plan: [[extract] [classify summarize] [flag_invoice report]]
inv-042.txt: completed
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
		if got := out.String(); got != want {
			t.Errorf("output:\n%s\nwant:\n%s", got, want)
		}
	})
}
