package mcp_test

import (
	"os"
	"os/exec"
	"reflect"
	"testing"

	"github.com/google/uuid"
	mcpsdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/worker"
)

func TestTheGatewayServesAClientOverStdioAsAProcessOfItsOwn(t *testing.T) {
	ctx := testkit.Context(t)
	url := natstest.RunServer(t)
	b, err := natsbus.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// A worker type of this test's own, should the server be shared.
	workerType := "mcp_stdio_greeter_" + uuid.NewString()[:8]
	w, err := worker.New(b, workerType, greet, worker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	group, err := heddle.Start(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := group.Stop(); err != nil {
			t.Error(err)
		}
	}()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), stdioChildEnv+"="+url, stdioChildWorkerEnv+"="+workerType)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	client := mcpsdk.NewClient(&mcpsdk.Implementation{Name: "stdio-test-client", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, &mcpsdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("the MCP handshake with the gateway process failed: %v\nits log:\n%s", err, stderr.String())
	}
	if got := cs.InitializeResult().ServerInfo.Name; got != "stdio-test" {
		t.Errorf("the server calls itself %q, want stdio-test", got)
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) != 1 || tools.Tools[0].Name != "greet" {
		t.Fatalf("tools %+v, want greet alone", tools.Tools)
	}
	if props, _ := tools.Tools[0].InputSchema.(map[string]any)["$defs"].(map[string]any); props["GreetIn"] == nil {
		t.Errorf("greet's input schema %v is not the greeter's contract", tools.Tools[0].InputSchema)
	}
	res, err := cs.CallTool(ctx, &mcpsdk.CallToolParams{Name: "greet", Arguments: map[string]any{"name": "Ada"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := structured(t, res); !reflect.DeepEqual(got, map[string]any{"greeting": "Hello, Ada!"}) {
		t.Errorf("greet answered %v, want the greeting", got)
	}
	res, err = cs.CallTool(ctx, &mcpsdk.CallToolParams{Name: "greet", Arguments: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	wantToolError(t, res, "input_contract", "/name")

	// Closing the client closes the process's standard input: the
	// gateway ends and exits cleanly.
	if err := cs.Close(); err != nil {
		t.Errorf("closing the session: %v", err)
	}
	if cmd.ProcessState == nil || !cmd.ProcessState.Success() {
		t.Errorf("the gateway process ended with %v, want exit status 0\nits log:\n%s", cmd.ProcessState, stderr.String())
	}
}
