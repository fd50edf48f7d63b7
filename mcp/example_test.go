package mcp_test

import (
	"context"
	"fmt"

	mcpsdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/mcp"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/worker"
)

// A worker type offered as an MCP tool, and an MCP client calling it, in
// one process. A real gateway serves its clients with ServeStdio, Handler
// or Run.
func Example() {
	ctx := context.Background()
	b := membus.New()
	defer b.Close()
	w, _ := worker.New(b, "greeter", greet, worker.Config{})
	group, _ := heddle.Start(ctx, w)
	defer group.Stop()

	contract, _ := contracts.For[GreetIn, GreetOut]()
	g, err := mcp.New(b, mcp.Config{
		Name:    "greetings",
		Workers: []mcp.WorkerTool{{Name: "greet", WorkerType: "greeter", Direct: true, Contract: contract}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	serverEnd, clientEnd := mcpsdk.NewInMemoryTransports()
	ss, _ := g.Server().Connect(ctx, serverEnd, nil)
	defer ss.Wait()
	client := mcpsdk.NewClient(&mcpsdk.Implementation{Name: "client", Version: "1.0.0"}, nil)
	cs, _ := client.Connect(ctx, clientEnd, nil)
	defer cs.Close()

	res, _ := cs.CallTool(ctx, &mcpsdk.CallToolParams{Name: "greet", Arguments: map[string]any{"name": "Ada"}})
	fmt.Println(res.StructuredContent)
	res, _ = cs.CallTool(ctx, &mcpsdk.CallToolParams{Name: "greet", Arguments: map[string]any{}})
	fmt.Println(res.IsError, res.Content[0].(*mcpsdk.TextContent).Text)
	// Output:
	// map[greeting:Hello, Ada!]
	// true input_contract: the input of worker type "greeter" breaks its contract: /name: required; nothing was sent
}
