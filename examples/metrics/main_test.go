package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/examples/internal/exampletest"
	"github.com/heddle-go/heddle/health"
	"github.com/heddle-go/heddle/natsbus"
)

func TestMain(m *testing.M) {
	exampletest.RunMain(main)
	slog.SetDefault(slog.New(slog.DiscardHandler))
	goleak.VerifyTestMain(m)
}

// get returns the status and body of GET url.
func get(t *testing.T, ctx context.Context, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// metricsWith returns once what /metrics serves has line, trying again at
// a ticker's pace until ctx ends.
func metricsWith(t *testing.T, ctx context.Context, base, line string) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		code, body := get(t, ctx, base+"/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d %s", code, body)
		}
		if strings.Contains(body, line) {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("/metrics never had %q:\n%s", line, body)
		}
	}
}

func TestTheEndpointsFollowTheMeshFromServingToAClosedBus(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b := connect()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ready := make(chan string, 1)
		done := make(chan error, 1)
		go func() { done <- serve(ctx, b, ln, func(a net.Addr) { ready <- "http://" + a.String() }) }()
		var base string
		select {
		case base = <-ready:
		case err := <-done:
			t.Fatalf("serve returned %v before it was ready", err)
		case <-ctx.Done():
			t.Fatal("serve never got ready")
		}

		for _, path := range []string{"/healthz", "/readyz"} {
			if code, body := get(t, ctx, base+path); code != http.StatusOK || !strings.Contains(body, `"status":"ok"`) {
				t.Fatalf("%s: %d %s, want 200 ok", path, code, body)
			}
		}
		_, body := get(t, ctx, base+"/readyz")
		for _, name := range []string{`"nats"`, `"router"`, `"worker/greeter"`} {
			if !strings.Contains(body, name) {
				t.Errorf("/readyz does not name %s: %s", name, body)
			}
		}

		// One call through the router and the worker.
		out, err := dispatch.Call[GreetIn, GreetOut](ctx, connect(), "greeter", GreetIn{Name: "Ada"})
		if err != nil || out.Greeting != "Hello, Ada!" {
			t.Fatalf("Call = %+v, %v", out, err)
		}
		// The router counts a task routed once the bus had the chance to
		// say nothing serves its subject, about a round trip after the
		// forward, and the worker counts it completed once its result is
		// published: the result may be back before either.
		for _, line := range []string{
			`heddle_router_routed_total{tier="standard",worker_type="greeter"} 1`,
			`heddle_worker_tasks_received_total{tier="standard",worker_type="greeter"} 1`,
			`heddle_worker_tasks_completed_total{tier="standard",worker_type="greeter"} 1`,
			`heddle_worker_task_duration_seconds_count{status="completed",worker_type="greeter"} 1`,
			`heddle_worker_in_flight_tasks{worker_type="greeter"} 0`,
			`heddle_router_route_duration_seconds_count{status="routed"} 1`,
			`go_goroutines `,
		} {
			metricsWith(t, ctx, base, line)
		}

		// The bus closes under the actors: both probes fail, and serve
		// returns the actors' error.
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		var served error
		select {
		case served = <-done:
		case <-ctx.Done():
			t.Fatal("serve did not return after its bus closed")
		}
		if !errors.Is(served, bus.ErrClosed) {
			t.Fatalf("serve returned %v, want an error wrapping bus.ErrClosed", served)
		}
	})
}

func TestTheProbesAnswer503WhileTheBusIsClosed(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// The Checker as serve builds it, probed after its bus closed
		// and before anything stops serving HTTP.
		b := connect()
		hc := health.New()
		if err := hc.AddBus("nats", b); err != nil {
			t.Fatal(err)
		}
		srvLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle("/healthz", hc.Healthz())
		mux.Handle("/readyz", hc.Readyz())
		srv := &http.Server{Handler: mux}
		go func() { _ = srv.Serve(srvLn) }()
		defer srv.Close()
		base := "http://" + srvLn.Addr().String()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, body := get(t, ctx, base+path); code != http.StatusServiceUnavailable || !strings.Contains(body, "closed") {
				t.Errorf("%s: %d %s, want 503 saying the bus closed", path, code, body)
			}
		}
	})
}

func TestTheProcessServesTheEndpointsUntilSIGTERMThenExitsCleanly(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM cannot be sent to a process on Windows")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := natstest.StartServer(t, nil).ClientURL()
	// A free port for the process: taken here, given back, passed on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	proc := exampletest.Start(t, ctx, "-nats", url, "-addr", addr)

	// Until the process serves, /readyz cannot be reached or says 503;
	// each try is a round trip, paced by a ticker.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("/readyz never answered 200\nthe process's log:\n%s", proc.Stderr)
		}
	}
	b, err := natsbus.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	res, err := dispatch.Request(ctx, b, heddle.NewTaskMessage("greeter", map[string]any{"name": "Ada"}))
	if err != nil || res.Status != heddle.StatusCompleted {
		t.Fatalf("Request = %+v, %v", res, err)
	}
	metricsWith(t, ctx, "http://"+addr, `heddle_worker_tasks_completed_total{tier="standard",worker_type="greeter"} 1`)

	if err := proc.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := proc.Wait(); err != nil {
		t.Fatalf("the process ended with %v after SIGTERM, want exit status 0\nits log:\n%s", err, proc.Stderr)
	}
	if !strings.Contains(proc.Stderr.String(), "serving /metrics, /healthz and /readyz on http://") {
		t.Errorf("the process did not log where it serves:\n%s", proc.Stderr)
	}
}
