package mcp_test

import (
	"context"
	"testing"

	mcpsdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/mcp"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/worker"
)

// BenchmarkWorkerToolCall measures one call of a worker tool from an MCP
// client in process, on membus: the MCP round trip, the contract check,
// the task's round trip to the worker and back.
func BenchmarkWorkerToolCall(b *testing.B) {
	ctx := context.Background()
	bb := membus.New()
	defer bb.Close()
	w, err := worker.New(bb, "greeter", greet, worker.Config{})
	if err != nil {
		b.Fatal(err)
	}
	group, err := heddle.Start(ctx, w)
	if err != nil {
		b.Fatal(err)
	}
	defer group.Stop()
	contract, err := contracts.For[GreetIn, GreetOut]()
	if err != nil {
		b.Fatal(err)
	}
	g, err := mcp.New(bb, mcp.Config{Name: "bench", Workers: []mcp.WorkerTool{{Name: "greet", WorkerType: "greeter", Direct: true, Contract: contract}}})
	if err != nil {
		b.Fatal(err)
	}
	st, ct := mcpsdk.NewInMemoryTransports()
	ss, err := g.Server().Connect(ctx, st, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ss.Wait()
	cs, err := mcpsdk.NewClient(&mcpsdk.Implementation{Name: "bench", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close()
	params := &mcpsdk.CallToolParams{Name: "greet", Arguments: map[string]any{"name": "Ada"}}
	b.ReportAllocs()
	for b.Loop() {
		res, err := cs.CallTool(ctx, params)
		if err != nil || res.IsError {
			b.Fatal(err, res)
		}
	}
}
