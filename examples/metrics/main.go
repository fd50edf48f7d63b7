// Command metrics is a process that serves a router and a worker over NATS
// and, beside them on HTTP, the three endpoints an operator scrapes and
// probes:
//
//	/metrics  Prometheus metrics of the actors (package metrics)
//	/healthz  200 while the bus is connected, 503 otherwise (package health)
//	/readyz   200 while the bus is connected and every actor serves
//
//	go run ./examples/metrics -nats nats://127.0.0.1:4222 -addr :9090
//
// The alert rules in deploy/prometheus/alerts.yml and the dashboard in
// deploy/grafana/heddle.json read what /metrics serves. The process stops
// on SIGINT or SIGTERM, draining its actors, and exits non-zero when the
// bus closes for good or a drain is cut short, so that a supervisor
// restarts it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/health"
	"github.com/heddle-go/heddle/metrics"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/router"
	"github.com/heddle-go/heddle/worker"
)

// GreetIn is the greeter's input contract.
type GreetIn struct {
	Name string `json:"name" jsonschema:"minLength=1"`
}

// GreetOut is the greeter's output contract.
type GreetOut struct {
	Greeting string `json:"greeting"`
}

func greet(_ context.Context, in GreetIn) (GreetOut, error) {
	return GreetOut{Greeting: "Hello, " + in.Name + "!"}, nil
}

// shutdownTimeout bounds the HTTP server's shutdown once the actors have
// drained.
const shutdownTimeout = 5 * time.Second

func main() {
	natsURL := flag.String("nats", natsbus.DefaultURL, "NATS server URL")
	addr := flag.String("addr", ":9090", "HTTP address of /metrics, /healthz and /readyz")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	b, err := natsbus.Connect(*natsURL)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		b.Close()
		log.Fatal(err)
	}
	err = serve(ctx, b, ln, func(addr net.Addr) { log.Printf("serving /metrics, /healthz and /readyz on http://%s", addr) })
	b.Close()
	if err != nil {
		log.Fatal(err)
	}
}

// serve runs a router and a greeter worker on b, with their metrics,
// health and readiness on HTTP at ln, until ctx ends or an actor fails;
// ready is called once every actor is subscribed. It returns the actors'
// error, or the HTTP server's.
func serve(ctx context.Context, b bus.Bus, ln net.Listener, ready func(net.Addr)) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := metrics.New(reg)
	if err != nil {
		return err
	}
	rt, err := router.New(b, router.Config{}, m.Option())
	if err != nil {
		return err
	}
	w, err := worker.New(b, "greeter", greet, worker.Config{}, m.Option())
	if err != nil {
		return err
	}
	if err := m.WatchWorker(w); err != nil {
		return err
	}

	hc := health.New()
	if err := hc.AddBus("nats", b); err != nil {
		return err
	}
	var actors []heddle.Actor
	for _, a := range []struct {
		name  string
		actor heddle.Actor
	}{{"router", rt}, {"worker/greeter", w}} {
		run, err := hc.AddActor(a.name, a.actor)
		if err != nil {
			return err
		}
		actors = append(actors, run)
	}

	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler(reg))
	mux.Handle("/healthz", hc.Healthz())
	mux.Handle("/readyz", hc.Readyz())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	var serveErr error
	served := make(chan struct{})
	go func() {
		defer close(served)
		serveErr = srv.Serve(ln)
	}()
	// The HTTP server stops last, so that /readyz says the actors are gone
	// while they drain.
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-served
	}()

	g, err := heddle.Start(ctx, actors...)
	if err != nil {
		if errors.Is(err, ctx.Err()) {
			return nil // stopped before every actor was ready; they drained
		}
		return err
	}
	ready(ln.Addr())
	select {
	case <-g.Done():
		return g.Err()
	case <-served:
		_ = g.Stop()
		return fmt.Errorf("metrics example: the HTTP server stopped: %w", serveErr)
	}
}
