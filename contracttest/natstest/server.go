package natstest

import (
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EnvNATSURL names the environment variable that points NATS-backed tests
// at an external server: when it is set, RunServer returns its value and
// starts nothing, and the natsbus connector of Transports and EachBus puts
// each test in a subject namespace of its own (natsbus.WithSubjectPrefix),
// so test packages running at the same time against that one server do
// not receive each other's messages.
const EnvNATSURL = "HEDDLE_TEST_NATS_URL"

// ServerReadyTimeout bounds how long StartServer, StartCluster and
// Cluster.Restart wait for an embedded server to accept connections, and
// how long StartCluster, Cluster.Restart and Cluster.WaitForInterest wait
// for the cluster's routes and interest to form.
const ServerReadyTimeout = 10 * time.Second

// RunServer returns the client URL of a NATS server for the test to use.
//
// When the environment variable named by EnvNATSURL is set, RunServer
// returns its value and starts nothing; the tests then share that server,
// so a test that connects to it itself should use subjects of its own or
// a natsbus.WithSubjectPrefix namespace, as EachBus does for its
// connections. Otherwise it starts an embedded server as StartServer does,
// with JetStream enabled, and shuts it down when the test ends.
//
// It must be called from the test's goroutine: it fails the test with
// t.Fatalf when the server cannot start.
func RunServer(t testing.TB) string {
	t.Helper()
	if url := os.Getenv(EnvNATSURL); url != "" {
		return url
	}
	return StartServer(t, &server.Options{JetStream: true}).ClientURL()
}

// StartServer starts an embedded nats-server, waits until it accepts
// connections, and registers its shutdown (Shutdown, then
// WaitForShutdown, so none of its goroutines outlive the test) with
// t.Cleanup. Unlike RunServer it always starts a server, for tests that
// control it, for example shutting it down and starting another on the
// same port to exercise reconnects. Calling Shutdown on it earlier is
// allowed.
//
// opts may be nil. Zero fields get test-friendly defaults: Host 127.0.0.1,
// Port a random free port (note that for nats-server itself 0 means 4222;
// here it does not), logging and signal handling off, and, when JetStream
// is on, a StoreDir under t.TempDir(). opts is not modified.
//
// It must be called from the test's goroutine: it fails the test with
// t.Fatalf when the server cannot start.
func StartServer(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	o := serverOptions(t, opts)
	return startServer(t, &o)
}

// startServer creates a server from o, which it owns from then on (the
// server completes it with nats-server's defaults), registers its shutdown
// with t.Cleanup, starts it and waits until it accepts connections.
func startServer(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	return launch(t, o, true)
}

// launch starts a server with o and returns once it accepts connections.
// With cleanup, the server is shut down when the test ends; without, the
// caller has registered a cleanup that shuts down whatever server runs in
// its place then. A server started again mid-test must not register a
// cleanup of its own: cleanups run last-registered first, so it would be
// shut down before the clients connected since the test began, and their
// own cleanups (an actor's drain, a final flush) would wait for a server
// that is gone.
func launch(t testing.TB, o *server.Options, cleanup bool) *server.Server {
	t.Helper()
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("natstest: cannot create embedded NATS server: %v", err)
	}
	if cleanup {
		// Registered after t.TempDir, so it runs first: the store
		// directory is removed only once the server has stopped writing
		// to it.
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
	}
	s.Start()
	if !s.ReadyForConnections(ServerReadyTimeout) {
		s.Shutdown()
		t.Fatalf("natstest: embedded NATS server on %s:%d not ready for connections after %v", o.Host, o.Port, ServerReadyTimeout)
	}
	return s
}

// RestartableServer is an embedded nats-server that a test stops and
// starts again on the same loopback port, to put the clients connected to
// it through an outage: they lose their connection at Stop and, if they
// are still reconnecting, find the server again at Start, at the URL they
// were given.
//
// ClientURL and Running may be called from any goroutine. Stop and Start
// must be called from the test's goroutine, one at a time: Start fails the
// test with t.Fatalf.
type RestartableServer struct {
	t    testing.TB
	opts server.Options
	url  string

	mu sync.Mutex
	s  *server.Server // nil while stopped
}

// serverOptions returns a copy of opts (nil means none) with the test
// defaults StartServer documents.
func serverOptions(t testing.TB, opts *server.Options) server.Options {
	var o server.Options
	if opts != nil {
		o = *opts
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = server.RANDOM_PORT
	}
	o.NoLog = true
	o.NoSigs = true
	if o.JetStream && o.StoreDir == "" {
		o.StoreDir = t.TempDir()
	}
	return o
}

// StartRestartableServer starts an embedded nats-server as StartServer
// does (opts may be nil; zero fields get the same defaults) and returns it
// running. The port it gets, random unless opts names one, is kept for
// every later Start, and so is a JetStream store directory. The server is
// shut down, and waited for, when the test ends.
func StartRestartableServer(t testing.TB, opts *server.Options) *RestartableServer {
	t.Helper()
	o := serverOptions(t, opts)
	first := o
	s := launch(t, &first, false)
	addr, ok := s.Addr().(*net.TCPAddr)
	if !ok {
		s.Shutdown()
		t.Fatalf("natstest: embedded NATS server has no TCP listener")
	}
	o.Port = addr.Port
	r := &RestartableServer{t: t, opts: o, url: s.ClientURL(), s: s}
	// One cleanup, registered before any client connects, for whichever
	// server runs when the test ends (see launch).
	t.Cleanup(r.Stop)
	return r
}

// ClientURL returns the server's client URL, such as
// nats://127.0.0.1:40321. It does not change across Stop and Start.
func (r *RestartableServer) ClientURL() string { return r.url }

// Port returns the loopback port the server listens on, for a test that
// starts a server of its own in its place (with other options) while it is
// stopped.
func (r *RestartableServer) Port() int { return r.opts.Port }

// Running reports whether the server is running: it was not stopped, or
// was started again since.
func (r *RestartableServer) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.s != nil
}

// Stop shuts the server down and returns once it has stopped; its clients
// see the connection closed, as when the process is killed. Stopping a
// stopped server does nothing.
func (r *RestartableServer) Stop() {
	r.mu.Lock()
	s := r.s
	r.s = nil
	r.mu.Unlock()
	if s == nil {
		return
	}
	s.Shutdown()
	s.WaitForShutdown()
}

// Start starts a new server with the same options on the same port and
// returns once it accepts connections. Starting a running server does
// nothing. The port was free when the server first started; if another
// process took it while the server was stopped, Start fails the test.
func (r *RestartableServer) Start() {
	r.t.Helper()
	r.mu.Lock()
	running := r.s != nil
	r.mu.Unlock()
	if running {
		return
	}
	o := r.opts
	s := launch(r.t, &o, false)
	r.mu.Lock()
	r.s = s
	r.mu.Unlock()
}
