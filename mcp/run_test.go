package mcp_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	mcpsdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/mcp"
)

// runGateway runs g until stop is called, which returns what Run
// returned (at once when Run already returned: done is closed then). It
// fails the test if Run returns before it is ready.
func runGateway(t *testing.T, g *mcp.Gateway) (stop func() error, done <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	var result error
	go func() {
		defer close(finished)
		result = g.Run(ctx)
	}()
	select {
	case <-g.Ready():
	case <-finished:
		cancel()
		t.Fatalf("Run returned before it was ready: %v", result)
	case <-time.After(testkit.Wait):
		cancel()
		t.Fatal("Run was not ready in time")
	}
	stop = func() error {
		cancel()
		select {
		case <-finished:
			return result
		case <-time.After(testkit.Wait):
			t.Fatal("Run did not return after its context ended")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return stop, finished
}

// httpClient connects an MCP client to g's streamable HTTP endpoint.
func httpClient(t *testing.T, g *mcp.Gateway) *mcpsdk.ClientSession {
	t.Helper()
	endpoint := "http://" + g.Addr().String() + mcp.HTTPPath
	cs, err := mcpsdk.NewClient(&mcpsdk.Implementation{Name: "http-test", Version: "1.0.0"}, nil).
		Connect(testkit.Context(t), &mcpsdk.StreamableClientTransport{Endpoint: endpoint, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connecting to %s: %v", endpoint, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func httpConfig(t *testing.T) mcp.Config {
	cfg := meshConfig(t)
	cfg.Transport = mcp.TransportStreamableHTTP
	cfg.Addr = "127.0.0.1:0"
	return cfg
}

func TestRunServesStreamableHTTPUntilItsContextEndsThenReturnsNil(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		startActors(t, connect)
		g, err := mcp.New(connect(), httpConfig(t))
		if err != nil {
			t.Fatal(err)
		}
		stop, _ := runGateway(t, g)
		cs := httpClient(t, g)
		ctx := testkit.Context(t)
		tools, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(tools.Tools) != len(meshConfig(t).Workers)+len(meshConfig(t).Pipelines) {
			t.Errorf("%d tools over HTTP, want every tool of the config", len(tools.Tools))
		}
		res, err := cs.CallTool(ctx, &mcpsdk.CallToolParams{Name: "greet", Arguments: map[string]any{"name": "Ada"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := structured(t, res); !reflect.DeepEqual(got, map[string]any{"greeting": "Hello, Ada!"}) {
			t.Errorf("greet over HTTP answered %v", got)
		}
		res, err = cs.CallTool(ctx, &mcpsdk.CallToolParams{Name: "greeting", Arguments: map[string]any{"context": map[string]any{}}})
		if err != nil {
			t.Fatal(err)
		}
		wantToolError(t, res, mcp.ReasonContractViolation, "/context/name")

		// The client's session, and its standing event stream, are still
		// open: Run ends them.
		start := time.Now()
		if err := stop(); err != nil {
			t.Errorf("Run returned %v after its context ended, want nil", err)
		}
		if d := time.Since(start); d > heddle.DefaultDrainTimeout/2 {
			t.Errorf("Run took %v to return with an idle session open", d)
		}
		if _, err := http.Get("http://" + g.Addr().String() + mcp.HTTPPath); err == nil {
			t.Error("the HTTP listener still answers after Run returned")
		}
	})
}

func TestRunCancelsCallsStillRunningWhenTheDrainTimeoutEnds(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		startActors(t, connect)
		cfg := httpConfig(t)
		cfg.DrainTimeout = testkit.ShortTimeout
		for i := range cfg.Workers {
			if cfg.Workers[i].WorkerType == "silent" {
				cfg.Workers[i].Timeout = time.Hour
			}
		}
		ev := &events{}
		g, err := mcp.New(connect(), cfg, heddle.WithObserver(ev))
		if err != nil {
			t.Fatal(err)
		}
		stop, _ := runGateway(t, g)
		cs := httpClient(t, g)
		sent := tasksSeen(t, connect(), "silent")
		called := make(chan error, 1)
		go func() {
			_, err := cs.CallTool(testkit.Context(t), &mcpsdk.CallToolParams{Name: "silent", Arguments: map[string]any{}})
			called <- err
		}()
		// Once its task is out, the call waits for a result that never
		// comes.
		select {
		case <-sent:
		case <-time.After(testkit.Wait):
			t.Fatal("the call's task was never published")
		}
		err = stop()
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "drain") {
			t.Errorf("Run returned %v, want the cut-short drain (context.DeadlineExceeded)", err)
		}
		select {
		case <-called:
		case <-time.After(testkit.Wait):
			t.Fatal("the client's call never returned")
		}
		if got := ev.names("silent"); len(got) != 1 || got[0] != "mcp.call_failed "+mcp.ReasonCancelled {
			t.Errorf("the cancelled call's events %v, want one mcp.call_failed %s", got, mcp.ReasonCancelled)
		}
	})
}

// tasksSeen returns a channel that receives each task published for
// workerType, seen on b.
func tasksSeen(t *testing.T, b bus.Bus, workerType string) <-chan struct{} {
	t.Helper()
	seen := make(chan struct{}, 16)
	if _, err := b.Subscribe(testkit.Context(t), heddle.WorkerSubjectAllTiers(workerType), func(context.Context, *bus.Msg) error {
		seen <- struct{}{}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return seen
}

func TestRunReturnsAnErrorWrappingErrClosedWhenItsBusCloses(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		b := connect()
		g, err := mcp.New(b, httpConfig(t))
		if err != nil {
			t.Fatal(err)
		}
		stop, done := runGateway(t, g)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
			if err := stop(); !errors.Is(err, bus.ErrClosed) {
				t.Errorf("Run returned %v, want an error wrapping bus.ErrClosed", err)
			}
		case <-time.After(testkit.Wait):
			t.Fatal("Run did not return when its bus closed")
		}
	})
}

func TestRunRunsOnce(t *testing.T) {
	g, err := mcp.New(membusFor(t), httpConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := runGateway(t, g)
	if err := g.Run(context.Background()); !errors.Is(err, heddle.ErrStarted) {
		t.Errorf("a second Run returned %v, want heddle.ErrStarted", err)
	}
	if err := stop(); err != nil {
		t.Error(err)
	}
}

func TestRunReportsAnAddressItCannotListenOn(t *testing.T) {
	cfg := httpConfig(t)
	cfg.Addr = "127.0.0.1:notaport"
	g, err := mcp.New(membusFor(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = g.Run(testkit.Context(t))
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:notaport") {
		t.Errorf("Run = %v, want an error naming the address", err)
	}
}
