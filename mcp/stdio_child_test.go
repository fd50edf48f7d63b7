package mcp_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/mcp"
	"github.com/heddle-go/heddle/natsbus"
)

// The stdio test starts this test binary again as the gateway's process;
// these variables tell TestMain so, and where the mesh is.
const (
	stdioChildEnv       = "HEDDLE_MCP_TEST_STDIO_NATS"
	stdioChildWorkerEnv = "HEDDLE_MCP_TEST_STDIO_WORKER"
)

// serveStdioChild is the gateway process of the stdio test: a gateway
// offering the greeter of workerType on the NATS server at url, served
// over its standard input and output until the client closes them. It
// returns the process's exit status.
func serveStdioChild(url, workerType string) int {
	// Standard output is the protocol's: log to standard error.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		return 1
	}
	b, err := natsbus.Connect(url)
	if err != nil {
		return fail(err)
	}
	defer b.Close()
	greeter, err := contracts.For[GreetIn, GreetOut]()
	if err != nil {
		return fail(err)
	}
	g, err := mcp.New(b, mcp.Config{
		Name:    "stdio-test",
		Workers: []mcp.WorkerTool{{Name: "greet", WorkerType: workerType, Direct: true, Contract: greeter}},
	})
	if err != nil {
		return fail(err)
	}
	if err := g.ServeStdio(context.Background()); err != nil {
		return fail(err)
	}
	return 0
}
