package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	mcpsdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/examples/internal/exampletest"
	"github.com/heddle-go/heddle/mcp"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/worker"
)

func TestMain(m *testing.M) {
	exampletest.RunMain(main)
	goleak.VerifyTestMain(m)
}

// runMainEnv is the variable exampletest.RunMain reads: set, this test
// binary runs the example's main instead of its tests. (exampletest.Start
// sets it too, but gives the process no standard input, which the stdio
// transport needs.)
const runMainEnv = "HEDDLE_EXAMPLE_RUN_MAIN"

// command returns the example's main as a process with args, its log
// written to log.
func command(ctx context.Context, log *exampletest.Buffer, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	cmd.Stderr = log
	return cmd
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect runs the example over stdio and connects an MCP client to it.
func connect(t *testing.T, ctx context.Context, args ...string) (*mcpsdk.ClientSession, *exec.Cmd, *exampletest.Buffer) {
	t.Helper()
	log := new(exampletest.Buffer)
	cmd := command(ctx, log, args...)
	cs, err := mcpsdk.NewClient(&mcpsdk.Implementation{Name: "example-test", Version: "1.0.0"}, nil).
		Connect(ctx, &mcpsdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("the MCP handshake failed: %v\nthe example's log:\n%s", err, log)
	}
	return cs, cmd, log
}

// greetAda calls the greet and greeting tools and checks their answers.
func greetAda(t *testing.T, ctx context.Context, cs *mcpsdk.ClientSession, log *exampletest.Buffer) {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcpsdk.CallToolParams{Name: "greet", Arguments: map[string]any{"name": "Ada"}})
	if err != nil || res.IsError || !reflect.DeepEqual(res.StructuredContent, map[string]any{"greeting": "Hello, Ada!"}) {
		t.Errorf("greet = %+v, %v; want the greeting\nthe example's log:\n%s", res, err, log)
	}
	res, err = cs.CallTool(ctx, &mcpsdk.CallToolParams{Name: "greet", Arguments: map[string]any{"name": ""}})
	if err != nil || !res.IsError || !strings.Contains(textOf(res), "/name") {
		t.Errorf("greet with an empty name = %+v, %v; want a tool error naming /name", res, err)
	}
}

func textOf(res *mcpsdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcpsdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func TestTheExampleServesItsOwnMeshOverStdioAndExitsWhenTheClientLeaves(t *testing.T) {
	ctx := testContext(t)
	cs, cmd, log := connect(t, ctx)
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) != 2 {
		t.Errorf("tools %v, want greet and greeting", tools.Tools)
	}
	greetAda(t, ctx, cs, log)
	res, err := cs.CallTool(ctx, &mcpsdk.CallToolParams{Name: "greeting", Arguments: map[string]any{"context": map[string]any{"name": "Bo"}}})
	if err != nil || res.IsError {
		t.Fatalf("greeting = %+v, %v\nthe example's log:\n%s", res, err, log)
	}
	if got := res.StructuredContent.(map[string]any)["greet"]; !reflect.DeepEqual(got, map[string]any{"greeting": "Hello, Bo!"}) {
		t.Errorf("the pipeline's greet stage answered %v", got)
	}
	if err := cs.Close(); err != nil {
		t.Errorf("closing the session: %v", err)
	}
	if !cmd.ProcessState.Success() {
		t.Errorf("the example ended with %v once its client left, want exit status 0\nits log:\n%s", cmd.ProcessState, log)
	}
}

func TestTheExampleServesAMeshOnNATSOverStdio(t *testing.T) {
	ctx := testContext(t)
	url := natstest.StartServer(t, nil).ClientURL()
	b, err := natsbus.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	w, err := worker.New(b, "greeter", greet, worker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	group, err := heddle.Start(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	defer group.Stop()

	cs, cmd, log := connect(t, ctx, "-nats", url, "-config", "gateway.yaml")
	greetAda(t, ctx, cs, log)
	// Nothing on this NATS runs the pipeline: the call says so at once.
	res, err := cs.CallTool(ctx, &mcpsdk.CallToolParams{Name: "greeting", Arguments: map[string]any{"context": map[string]any{"name": "Bo"}}})
	if err != nil || !res.IsError || !strings.HasPrefix(textOf(res), mcp.ReasonNoGoalServer+": ") {
		t.Errorf("greeting with no pipeline running = %+v, %v; want a %s tool error", res, err, mcp.ReasonNoGoalServer)
	}
	if err := cs.Close(); err != nil {
		t.Errorf("closing the session: %v", err)
	}
	if !cmd.ProcessState.Success() {
		t.Errorf("the example ended with %v, want exit status 0\nits log:\n%s", cmd.ProcessState, log)
	}
}

func TestTheExampleServesStreamableHTTPUntilSIGTERM(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM cannot be sent to a process on Windows")
	}
	ctx := testContext(t)
	log := new(exampletest.Buffer)
	cmd := command(ctx, log, "-http", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// The example prints its endpoint once it listens.
	line, err := bufio.NewReader(stdout).ReadString('\n')
	endpoint, ok := strings.CutPrefix(strings.TrimSpace(line), "serving MCP on ")
	if err != nil || !ok {
		t.Fatalf("the example printed %q (%v), want its endpoint\nits log:\n%s", line, err, log)
	}
	cs, err := mcpsdk.NewClient(&mcpsdk.Implementation{Name: "example-test", Version: "1.0.0"}, nil).
		Connect(ctx, &mcpsdk.StreamableClientTransport{Endpoint: endpoint, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connecting to %s: %v\nthe example's log:\n%s", endpoint, err, log)
	}
	greetAda(t, ctx, cs, log)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("the example ended with %v after SIGTERM, want exit status 0\nits log:\n%s", err, log)
	}
	_ = cs.Close()
}
