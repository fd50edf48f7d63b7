package mcp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	mcpsdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/internal/observe"
)

// readHeaderTimeout bounds how long Run's HTTP server waits for a
// request's headers, so that a client that never sends them cannot hold
// a connection for ever.
const readHeaderTimeout = 10 * time.Second

// Gateway is an MCP server whose tools are worker types and pipelines of
// the mesh on its bus. One Gateway serves any number of clients at once,
// over any of its transports; it is safe for concurrent use.
type Gateway struct {
	b       bus.Bus
	cfg     Config
	tools   []*tool
	opts    []heddle.Option
	emit    *observe.Emitter
	server  *mcpsdk.Server
	handler *mcpsdk.StreamableHTTPHandler

	// abort ends every call in progress: Run cancels it when its drain
	// time is up, so that no call outlives Run.
	abort     context.Context
	abortCall context.CancelFunc

	started   atomic.Bool
	ready     chan struct{}
	readyOnce sync.Once
	addr      atomic.Pointer[net.TCPAddr]

	stats struct{ completed, failed, refused atomic.Uint64 }
}

// Stats counts the calls a Gateway answered. Each call is counted once,
// when its answer is final, with one mcp.* event.
type Stats struct {
	// Completed counts calls answered with the worker's or pipeline's
	// output (mcp.call_completed).
	Completed uint64
	// Failed counts calls that were sent to the mesh and answered with a
	// tool error: dead-lettered, failed, timed out, unserved
	// (mcp.call_failed).
	Failed uint64
	// Refused counts calls answered with a tool error before anything was
	// published: arguments that are not an object, break the contract or
	// make a message larger than the bus takes (mcp.call_refused).
	Refused uint64
}

// New validates cfg and returns a Gateway on b, with one tool per worker
// and pipeline of cfg; it starts nothing. It fails with an error matching
// heddle.ErrConfig that lists every problem of cfg (see Config.Validate),
// or when b is nil. opts set where its events go, and are given to every
// call it makes through package dispatch (dispatch.With).
func New(b bus.Bus, cfg Config, opts ...heddle.Option) (*Gateway, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: mcp gateway %q: the bus is nil", heddle.ErrConfig, cfg.Name)
	}
	tools, err := cfg.build()
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		b:     b,
		cfg:   cfg,
		tools: tools,
		opts:  append([]heddle.Option(nil), opts...),
		emit:  observe.Actor("mcp", opts...),
		ready: make(chan struct{}),
	}
	g.abort, g.abortCall = context.WithCancel(context.Background())
	g.server = mcpsdk.NewServer(
		&mcpsdk.Implementation{Name: cfg.Name, Version: cmp.Or(cfg.Version, DefaultVersion)},
		&mcpsdk.ServerOptions{
			Instructions: cfg.Description,
			// Tools only: no logging capability, which the SDK would
			// otherwise advertise by default.
			Capabilities: &mcpsdk.ServerCapabilities{},
		})
	for _, t := range tools {
		if err := g.addTool(t); err != nil {
			return nil, err
		}
	}
	g.handler = mcpsdk.NewStreamableHTTPHandler(func(*http.Request) *mcpsdk.Server { return g.server }, nil)
	return g, nil
}

// addTool adds t to the server. The SDK panics on a schema it cannot
// take; New reports that as a configuration error instead.
func (g *Gateway) addTool(t *tool) (err error) {
	mt := &mcpsdk.Tool{Name: t.name, Description: t.description, InputSchema: t.input}
	if t.output != nil {
		mt.OutputSchema = t.output
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: mcp gateway %q: tool %q: %v", heddle.ErrConfig, g.cfg.Name, t.name, v)
		}
	}()
	g.server.AddTool(mt, g.toolHandler(t))
	return nil
}

// Server returns the MCP server, to serve it over a transport of one's
// own (Server.Run, Server.Connect) or to add more features to it.
func (g *Gateway) Server() *mcpsdk.Server { return g.server }

// Handler returns an http.Handler serving the gateway over MCP's
// streamable HTTP transport, each client in a session of its own; mount
// it on a path of an HTTP server of one's own. Run serves it at HTTPPath.
// It applies the SDK's protection against DNS rebinding: a request that
// arrives on a loopback address with another Host is refused.
func (g *Gateway) Handler() http.Handler { return g.handler }

// ServeStdio serves one client over the process's standard input and
// output until the client closes its end or ctx ends, and returns nil
// then. Nothing else may write to standard output while it runs: log to
// standard error (slog's default does).
func (g *Gateway) ServeStdio(ctx context.Context) error {
	return g.serveSession(ctx, &mcpsdk.StdioTransport{}, nil)
}

// Ready is closed once Run serves: the HTTP listener is bound, or the
// stdio session is connected.
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// Addr returns the address Run listens on for streamable HTTP, once
// Ready is closed (the port picked when Config.Addr's port is 0); nil
// before, and for stdio.
func (g *Gateway) Addr() net.Addr {
	if a := g.addr.Load(); a != nil {
		return a
	}
	return nil
}

// Stats returns the Gateway's counters.
func (g *Gateway) Stats() Stats {
	return Stats{
		Completed: g.stats.completed.Load(),
		Failed:    g.stats.failed.Load(),
		Refused:   g.stats.refused.Load(),
	}
}

// Run serves the gateway on Config.Transport until ctx ends: over stdio
// (until then, or until the client closes its end), or over streamable
// HTTP on Config.Addr at HTTPPath. Ready is closed once it serves. When
// ctx ends it drains: it stops taking calls, lets those in progress
// finish within Config.DrainTimeout, cancels any still running then, and
// returns nil, or an error wrapping context.DeadlineExceeded when the
// drain was cut short. When its bus closes for good it drains the same
// way and returns an error wrapping bus.ErrClosed. It returns an error
// when the listener cannot be bound, and heddle.ErrStarted when Run was
// called before: a Gateway runs once.
func (g *Gateway) Run(ctx context.Context) error {
	if !g.started.CompareAndSwap(false, true) {
		return heddle.ErrStarted
	}
	if g.cfg.Transport == TransportStreamableHTTP {
		return g.runHTTP(ctx)
	}
	return g.serveSession(ctx, &mcpsdk.StdioTransport{}, g.markReady)
}

func (g *Gateway) markReady() { g.readyOnce.Do(func() { close(g.ready) }) }

func (g *Gateway) drainTimeout() time.Duration {
	return cmp.Or(g.cfg.DrainTimeout, heddle.DefaultDrainTimeout)
}

// serveSession serves one session over t until the client goes, ctx
// ends or the bus closes, then closes it within the drain timeout.
func (g *Gateway) serveSession(ctx context.Context, t mcpsdk.Transport, connected func()) error {
	ss, err := g.server.Connect(ctx, t, nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return fmt.Errorf("mcp gateway %q: connecting its session: %w", g.cfg.Name, err)
	}
	if connected != nil {
		connected()
	}
	g.emit.Info(EventServing, "transport", TransportStdio, "tools", len(g.tools))
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		_ = ss.Wait() // the client closed its end, or Close below
	}()
	var closed error
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
	case <-bus.Done(g.b):
		closed = fmt.Errorf("mcp gateway %q stopped: its bus closed: %w", g.cfg.Name, bus.Err(g.b))
	}
	err = g.drain(func() { _ = ss.Close() })
	<-ended
	return cmp.Or(closed, err)
}

// drain runs stop, which ends the sessions and waits for their calls,
// within the drain timeout; when the time is up it cancels the calls
// still running and waits for stop to return.
func (g *Gateway) drain(stop func()) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		stop()
	}()
	timer := time.NewTimer(g.drainTimeout())
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-timer.C:
	}
	g.abortCall()
	<-done
	return fmt.Errorf("mcp gateway %q: calls still running after the drain timeout of %v were cancelled: %w",
		g.cfg.Name, g.drainTimeout(), context.DeadlineExceeded)
}

// runHTTP serves streamable HTTP on Config.Addr until ctx ends or the
// bus closes.
func (g *Gateway) runHTTP(ctx context.Context) error {
	addr := cmp.Or(g.cfg.Addr, DefaultAddr)
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return fmt.Errorf("mcp gateway %q: listening on %s: %w", g.cfg.Name, addr, err)
	}
	if a, ok := l.Addr().(*net.TCPAddr); ok {
		g.addr.Store(a)
	}
	mux := http.NewServeMux()
	mux.Handle(HTTPPath, g.handler)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	g.markReady()
	g.emit.Info(EventServing, "transport", TransportStreamableHTTP, "addr", l.Addr().String(), "path", HTTPPath, "tools", len(g.tools))

	var closed error
	select {
	case <-ctx.Done():
	case <-bus.Done(g.b):
		closed = fmt.Errorf("mcp gateway %q stopped: its bus closed: %w", g.cfg.Name, bus.Err(g.b))
	case err := <-served:
		return fmt.Errorf("mcp gateway %q: serving HTTP on %s: %w", g.cfg.Name, l.Addr(), err)
	}
	// Shutdown stops taking connections and waits for the requests in
	// progress; a session's standing event stream is one of them until
	// the session is closed, so the sessions are closed beside it (each
	// Close waits for that session's calls).
	err = g.drain(func() {
		var wg sync.WaitGroup
		wg.Go(func() { _ = srv.Shutdown(g.abort) })
		for ss := range g.server.Sessions() {
			wg.Go(func() { _ = ss.Close() })
		}
		wg.Wait()
	})
	_ = srv.Close()
	if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("mcp gateway %q: serving HTTP on %s: %w", g.cfg.Name, l.Addr(), serr)
	}
	return cmp.Or(closed, err)
}
