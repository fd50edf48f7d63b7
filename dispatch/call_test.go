package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/worker"
)

type invoiceIn struct {
	Customer struct {
		ID   int64  `json:"id"`
		Name string `json:"name" jsonschema:"minLength=1"`
	} `json:"customer"`
	Lines []struct {
		SKU      string `json:"sku"`
		Quantity int    `json:"quantity" jsonschema:"minimum=1"`
		Cents    int64  `json:"cents"`
	} `json:"lines"`
}

type invoiceOut struct {
	CustomerID int64  `json:"customer_id"`
	TotalCents int64  `json:"total_cents"`
	Items      int    `json:"items"`
	Note       string `json:"note"`
}

func total(_ context.Context, in invoiceIn) (invoiceOut, error) {
	out := invoiceOut{CustomerID: in.Customer.ID, Note: "for " + in.Customer.Name}
	for _, l := range in.Lines {
		out.TotalCents += int64(l.Quantity) * l.Cents
		out.Items += l.Quantity
	}
	if out.Items > 1000 {
		return out, worker.Permanent(errors.New("too many items"))
	}
	return out, nil
}

func invoice(id int64, qty int, cents int64) invoiceIn {
	var in invoiceIn
	in.Customer.ID, in.Customer.Name = id, "Ada"
	in.Lines = append(in.Lines, struct {
		SKU      string `json:"sku"`
		Quantity int    `json:"quantity" jsonschema:"minimum=1"`
		Cents    int64  `json:"cents"`
	}{"A-1", qty, cents})
	return in
}

func TestTypedCallsRoundTripStructsAndIntegersExactly(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		w, err := worker.New(connect(), "invoice", total, worker.Config{})
		if err != nil {
			t.Fatal(err)
		}
		testkit.StartActor(t, w.Run, w.Ready())
		b := connect()
		ctx := testkit.Context(t)

		// Beyond 2^53, where a float64 would round.
		const id = math.MaxInt64 - 6
		out, err := dispatch.Call[invoiceIn, invoiceOut](ctx, b, "invoice", invoice(id, 3, 1_000_000_000_000_001), dispatch.Direct())
		if err != nil {
			t.Fatal(err)
		}
		want := invoiceOut{CustomerID: id, TotalCents: 3_000_000_000_000_003, Items: 3, Note: "for Ada"}
		if out != want {
			t.Errorf("Call = %+v, want %+v", out, want)
		}

		c, err := dispatch.NewCaller(ctx, b, "heddle.results.default")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		out, err = dispatch.CallWith[invoiceIn, invoiceOut](ctx, c, "invoice", invoice(7, 2, 50), dispatch.Direct())
		if err != nil || out.TotalCents != 100 || out.CustomerID != 7 {
			t.Errorf("CallWith = %+v, %v", out, err)
		}

		ins := []invoiceIn{invoice(1, 1, 10), invoice(2, 2000, 10), invoice(3, 3, 10)}
		outs, err := dispatch.CallAll[invoiceIn, invoiceOut](ctx, b, "invoice", ins, dispatch.Direct(), dispatch.MaxInFlight(2))
		var all *dispatch.CallAllError
		if !errors.As(err, &all) || all.Failed != 1 || all.Errs[0] != nil || all.Errs[2] != nil {
			t.Fatalf("CallAll error %v, want the second call alone failed", err)
		}
		var te *dispatch.TaskError
		if !errors.Is(all.Errs[1], dispatch.ErrTaskFailed) || !errors.As(all.Errs[1], &te) || !strings.Contains(te.Result.Error, "too many items") {
			t.Errorf("the second call's error %v, want a *TaskError saying why", all.Errs[1])
		}
		if outs[0].TotalCents != 10 || outs[2].TotalCents != 30 || outs[0].CustomerID != 1 || outs[2].CustomerID != 3 {
			t.Errorf("CallAll outputs %+v, want the others in order", outs)
		}
	})
}

func TestATypedCallRefusesAnInputViolatingTheContractBeforePublishing(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		b := connect()
		spy, _ := testkit.Subscribe(t, connect(), "heddle.tasks.>")
		bad := invoice(1, 0, 10) // quantity below its minimum
		_, err := dispatch.Call[invoiceIn, invoiceOut](testkit.Context(t), b, "invoice", bad, dispatch.Direct())
		var ve *contracts.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), "quantity") {
			t.Fatalf("Call = %v, want a *contracts.ValidationError naming quantity", err)
		}
		// A sentinel published after the refused call is the first message
		// on the task subjects: nothing was published.
		testkit.Publish(t, b, "heddle.tasks.sentinel", []byte("{}"), nil)
		if m := testkit.Recv(t, spy, "the sentinel"); m.Subject != "heddle.tasks.sentinel" {
			t.Errorf("%s was published before the sentinel", m.Subject)
		}
	})
}

func TestATimeoutSaysWhatToCheck(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		// A worker that takes the task and never answers.
		testkit.Responder(t, connect(), "nobody-serves-this", "", func(heddle.TaskMessage) [][]byte { return nil })
		task := heddle.NewTaskMessage("nobody-serves-this", nil)
		_, err := dispatch.Request(testkit.Context(t), connect(), task, dispatch.Direct(), dispatch.Timeout(testkit.ShortTimeout))
		var te *dispatch.TimeoutError
		if !errors.As(err, &te) {
			t.Fatalf("Request = %v, want a *TimeoutError", err)
		}
		for _, want := range []string{task.TaskID, "check that a router is running (subscribed on heddle.tasks.incoming)",
			"that a worker serves nobody-serves-this", "that the workers finish within the timeout"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if len(te.WorkerTypes) != 1 || te.WorkerTypes[0] != "nobody-serves-this" {
			t.Errorf("WorkerTypes = %v", te.WorkerTypes)
		}
	})
}

func TestACallFailsAtOnceWhenNothingIsSubscribed(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		b := connect()
		ctx := testkit.Context(t)
		// No router: nothing on heddle.tasks.incoming.
		task := heddle.NewTaskMessage("summarize", nil)
		_, err := dispatch.Request(ctx, b, task, dispatch.Timeout(time.Minute))
		if !errors.Is(err, dispatch.ErrNoRouter) || !strings.Contains(err.Error(), task.TaskID) {
			t.Errorf("Request with no router = %v, want dispatch.ErrNoRouter naming the task", err)
		}
		// Direct to a worker type nobody serves.
		task = heddle.NewTaskMessage("nobody", nil)
		_, err = dispatch.Request(ctx, b, task, dispatch.Direct(), dispatch.Timeout(time.Minute))
		if !errors.Is(err, dispatch.ErrNoWorker) || !strings.Contains(err.Error(), "heddle.tasks.nobody.standard") {
			t.Errorf("Request to nobody = %v, want dispatch.ErrNoWorker naming the subject", err)
		}
		// The same through a Caller.
		c, err := dispatch.NewCaller(ctx, b, heddle.SubjectResultsDefault)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Request(ctx, heddle.NewTaskMessage("summarize", nil), dispatch.Timeout(time.Minute)); !errors.Is(err, dispatch.ErrNoRouter) {
			t.Errorf("Caller.Request with no router = %v, want dispatch.ErrNoRouter", err)
		}
	})
}

func TestATypedCallTakesIntegralNumbersWrittenAsFloatsAndRefusesFractions(t *testing.T) {
	type in struct {
		N string `json:"n"`
	}
	type out struct {
		N int64  `json:"n"`
		U uint64 `json:"u"`
	}
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		// The worker answers with the numbers of the task's payload,
		// written as given, as a Python worker computing with floats
		// writes them.
		testkit.Responder(t, connect(), "floats", "", func(task heddle.TaskMessage) [][]byte {
			n, _ := task.Payload["n"].(string)
			output := map[string]any{"n": json.Number(n), "u": json.Number("12345678901234567890.0")}
			return [][]byte{testkit.Encode(t, task.Result(heddle.StatusCompleted, output, nil))}
		})
		b := connect()
		for _, tt := range []struct {
			n    string
			want int64
		}{
			{"1.0", 1},
			{"2.5e1", 25},
			{"-3.00", -3},
			{"9007199254740993.0", 9007199254740993}, // beyond 2^53, where a float64 rounds
		} {
			got, err := dispatch.Call[in, out](testkit.Context(t), b, "floats", in{tt.n}, dispatch.Direct(), dispatch.Timeout(testkit.Wait))
			if err != nil || got.N != tt.want || got.U != 12345678901234567890 {
				t.Errorf("output {n: %s, u: 12345678901234567890.0} = %+v, %v; want n %d and u exactly", tt.n, got, err, tt.want)
			}
		}
		_, err := dispatch.Call[in, out](testkit.Context(t), b, "floats", in{"1.5"}, dispatch.Direct(), dispatch.Timeout(testkit.ShortTimeout))
		var te *dispatch.TimeoutError
		if !errors.As(err, &te) || len(te.Rejected) != 1 || !errors.Is(te.Rejected[0].Err, contracts.ErrViolation) ||
			!strings.Contains(te.Rejected[0].Err.Error(), "/n: expected integer") {
			t.Fatalf("Call answered {n: 1.5} = %v, want a timeout naming the rejected result and the field n", err)
		}
	})
}
