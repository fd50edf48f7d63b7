package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	mcpsdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/heddle-go/heddle/internal/testkit"
)

const mcpGatewayFile = "testdata/mcp_gateway.yaml"

// callEcho calls the gateway's echo tool and checks that the worker's
// output comes back, then that arguments breaking the worker's input
// schema are refused with a tool error naming the field.
func callEcho(t *testing.T, ctx context.Context, cs *mcpsdk.ClientSession) {
	t.Helper()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) != 1 || tools.Tools[0].Name != "echo" || !strings.Contains(tools.Tools[0].Description, "Echo the payload") {
		t.Fatalf("tools %+v, want echo alone, described by its worker config", tools.Tools)
	}
	res, err := cs.CallTool(ctx, &mcpsdk.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "héllo"}})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := res.StructuredContent.(map[string]any)
	if res.IsError || out["text"] != "héllo" {
		t.Errorf("echo: IsError %v, structured content %v; want the echoed text", res.IsError, res.StructuredContent)
	}
	res, err = cs.CallTool(ctx, &mcpsdk.CallToolParams{Name: "echo", Arguments: map[string]any{"txt": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || len(res.Content) == 0 || !strings.Contains(res.Content[0].(*mcpsdk.TextContent).Text, "text") {
		t.Errorf("echo without text: IsError %v, content %v; want a tool error naming text", res.IsError, res.Content)
	}
}

func TestMCPServesWorkerToolsOverStreamableHTTP(t *testing.T) {
	ctx := testkit.Context(t)
	url := natsURL(t)
	e := env{"OLLAMA_URL": "x"}
	serve(t, e, "processor", "--config", echoFile, "--nats-url", url)
	gw := serveUntil(t, "mcp.serving", e, "mcp", "--config", mcpGatewayFile, "--http", "127.0.0.1:0",
		"--metrics-addr", "127.0.0.1:0", "--nats-url", url)
	line := gw.stderr.waitFor(t, "mcp.serving")
	addr := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(line)
	if addr == nil || !strings.Contains(line, "transport=streamable-http") {
		t.Fatalf("mcp.serving = %q, want streamable-http and its address", line)
	}

	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	client := mcpsdk.NewClient(&mcpsdk.Implementation{Name: "cli-test", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, &mcpsdk.StreamableClientTransport{
		Endpoint: "http://" + addr[1] + "/mcp", HTTPClient: &http.Client{Transport: transport},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cs.InitializeResult().ServerInfo.Name; got != "heddle-cli-test" {
		t.Errorf("the server calls itself %q, want the config's name", got)
	}
	callEcho(t, ctx, cs)
	gw.stderr.waitFor(t, "mcp.call_completed")
	gw.stderr.waitFor(t, "mcp.call_refused")

	probe := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(gw.stderr.waitFor(t, "http.listening"))[1]
	resp, err := (&http.Client{Transport: transport}).Get("http://" + probe + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"name":"mcp/heddle-cli-test"`) {
		t.Errorf("/readyz = %d %s", resp.StatusCode, body)
	}
	// The gateway's calls are counted as a caller's: one result collected.
	if m := scrape(t, probe, "/metrics"); !hasSample(m, "heddle_result_stream_events_total", map[string]string{"event": "collected"}, "1") {
		t.Errorf("/metrics lacks heddle_result_stream_events_total{event=collected} 1:\n%s", m)
	}

	if err := cs.Close(); err != nil {
		t.Error(err)
	}
	if code := gw.stop(t); code != exitOK {
		t.Errorf("mcp exit code %d after its context ended; stderr:\n%s", code, gw.stderr.String())
	}
	gw.stderr.waitFor(t, "heddle.stopped")
}

// stdioGateway is heddle mcp over stdio in a process of its own: the
// test binary run as the command (childArgsEnv).
type stdioGateway struct {
	cmd    *exec.Cmd
	stdout *output // every byte the process wrote on its standard output
	stderr *output
	cs     *mcpsdk.ClientSession
}

// startStdioGateway starts heddle with args in a child process and
// connects an MCP client to its standard input and output.
func startStdioGateway(t *testing.T, ctx context.Context, args ...string) *stdioGateway {
	t.Helper()
	argv, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	g := &stdioGateway{cmd: exec.Command(os.Args[0]), stdout: newOutput(), stderr: newOutput()}
	g.cmd.Env = append(os.Environ(), childArgsEnv+"="+string(argv))
	g.cmd.Stderr = g.stderr
	stdin, err := g.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := g.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if g.cmd.ProcessState == nil {
			_ = g.cmd.Process.Kill()
			_ = g.cmd.Wait()
		}
	})
	client := mcpsdk.NewClient(&mcpsdk.Implementation{Name: "cli-stdio-test", Version: "1.0.0"}, nil)
	// The client reads the process's standard output through a copy of
	// every byte, which the test checks is the protocol alone.
	reader := struct {
		io.Reader
		io.Closer
	}{io.TeeReader(stdout, g.stdout), io.NopCloser(nil)}
	g.cs, err = client.Connect(ctx, &mcpsdk.IOTransport{Reader: reader, Writer: stdin}, nil)
	if err != nil {
		t.Fatalf("the MCP handshake with heddle mcp failed: %v\nits stderr:\n%s", err, g.stderr.String())
	}
	return g
}

// wait returns the process's exit code.
func (g *stdioGateway) wait(t *testing.T) int {
	t.Helper()
	err := g.cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatal(err)
	return -1
}

// checkProtocolOnly fails the test unless every line the process wrote
// on its standard output is a JSON-RPC 2.0 message.
func (g *stdioGateway) checkProtocolOnly(t *testing.T) {
	t.Helper()
	text := g.stdout.String()
	if text == "" {
		t.Fatal("the gateway wrote nothing on its standard output")
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var msg struct {
			JSONRPC string `json:"jsonrpc"`
		}
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil || msg.JSONRPC != "2.0" {
			t.Errorf("standard output holds a line that is not a JSON-RPC message: %q", sc.Text())
		}
	}
}

func TestMCPOverStdioKeepsStandardOutputForTheProtocol(t *testing.T) {
	ctx := testkit.Context(t)
	url := natsURL(t)
	serve(t, env{"OLLAMA_URL": "x"}, "processor", "--config", echoFile, "--nats-url", url)

	t.Run("the client leaves: exit 0", func(t *testing.T) {
		// Debug logging, so that every event of the preflight, the
		// connection, the gateway and its calls is written somewhere.
		g := startStdioGateway(t, ctx, "mcp", "--config", mcpGatewayFile, "--nats-url", url, "--log-level", "debug")
		callEcho(t, ctx, g.cs)
		if err := g.cs.Close(); err != nil { // closes the process's standard input
			t.Error(err)
		}
		if code := g.wait(t); code != exitOK {
			t.Errorf("exit code %d once the client left; stderr:\n%s", code, g.stderr.String())
		}
		g.checkProtocolOnly(t)
		for _, want := range []string{"Pre-flight OK: Connected to NATS at " + url, "actor.connected", "msg=mcp.serving transport=stdio",
			"msg=mcp.call_completed", "msg=mcp.call_refused", "heddle.stopped"} {
			if !strings.Contains(g.stderr.String(), want) {
				t.Errorf("standard error lacks %q:\n%s", want, g.stderr.String())
			}
		}
	})

	t.Run("SIGTERM: drains, exit 0", func(t *testing.T) {
		g := startStdioGateway(t, ctx, "mcp", "--config", mcpGatewayFile, "--nats-url", url, "--log-format", "json")
		callEcho(t, ctx, g.cs)
		// The call was served, so the gateway runs under heddle.Serve,
		// which has taken over SIGTERM.
		if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := g.wait(t); code != exitOK {
			t.Errorf("exit code %d after SIGTERM; stderr:\n%s", code, g.stderr.String())
		}
		_ = g.cs.Close()
		g.checkProtocolOnly(t)
		if !strings.Contains(g.stderr.String(), `"msg":"heddle.stopped"`) {
			t.Errorf("no heddle.stopped in standard error:\n%s", g.stderr.String())
		}
	})
}

func TestMCPTakesTheNATSURLFromItsConfigLast(t *testing.T) {
	url := natsURL(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "gateway.yaml")
	echo, err := filepath.Abs(echoFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, config, "name: from-file\nnats_url: "+url+"\ntools:\n  workers:\n    - config: "+echo+"\n")

	gw := serveUntil(t, "mcp.serving", env{}, "mcp", "--config", config, "--http", "127.0.0.1:0")
	gw.stderr.waitFor(t, "Pre-flight OK: Connected to NATS at "+url)
	if code := gw.stop(t); code != exitOK {
		t.Errorf("exit code %d", code)
	}
	// $NATS_URL (as --nats-url) comes before the file's nats_url.
	dead := deadURL(t)
	code, _, stderr := execute(t, env{"NATS_URL": dead}, "mcp", "--config", config, "--http", "127.0.0.1:0")
	if code != exitConnect || !strings.Contains(stderr, "Cannot connect to NATS at "+dead) {
		t.Errorf("with NATS_URL: exit code %d; stderr:\n%s", code, stderr)
	}
}

func TestAnMCPConfigWithProblemsDoesNotStart(t *testing.T) {
	url := natsURL(t)
	code, stdout, stderr := execute(t, env{}, "mcp", "--config", "testdata/invalid/mcp.yaml", "--nats-url", url)
	if code != exitFailed {
		t.Errorf("exit code %d, want %d", code, exitFailed)
	}
	for _, want := range []string{
		"testdata/invalid/mcp.yaml:2: transport: unknown transport",
		"testdata/invalid/mcp.yaml:6: tools.workers[0].tier:",
		"testdata/invalid/mcp.yaml:10: tools.queries: served by the Python gateway only",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "actor.connected") || stdout != "" {
		t.Errorf("the gateway connected despite its config, or wrote on stdout:\nstdout: %q\nstderr:\n%s", stdout, stderr)
	}
	// A missing file fails the preflight's own check.
	code, _, stderr = execute(t, env{}, "mcp", "--config", "testdata/nope.yaml", "--nats-url", url)
	if code != exitFailed || !strings.Contains(stderr, "Pre-flight FAIL: Config file not found: testdata/nope.yaml") {
		t.Errorf("a missing config: exit code %d; stderr:\n%s", code, stderr)
	}
	// An address that cannot be bound fails the gateway, exit 1.
	busy := natstestServer(t).Addr().String()
	code, _, stderr = execute(t, env{}, "mcp", "--config", mcpGatewayFile, "--http", busy, "--nats-url", url)
	if code != exitFailed || !strings.Contains(stderr, "listening on "+busy) {
		t.Errorf("--http %s, which NATS holds: exit code %d; stderr:\n%s", busy, code, stderr)
	}
}
