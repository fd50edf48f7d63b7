package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/health"
	"github.com/heddle-go/heddle/metrics"
	"github.com/heddle-go/heddle/natsbus"
)

// httpShutdownTimeout bounds the shutdown of the --metrics-addr server
// after the actors drained.
const httpShutdownTimeout = 5 * time.Second

// probeGaugeTimeout bounds the probe behind heddle_up and heddle_ready
// at each scrape.
const probeGaugeTimeout = 2 * time.Second

// busDrainTimeout bounds the drain of the connection once the actors
// have returned.
const busDrainTimeout = 10 * time.Second

// serveFlags are the flags every long-running verb takes, and what
// --metrics-addr serves.
type serveFlags struct {
	skipPreflight bool
	metricsAddr   string
	drainTimeout  time.Duration

	// registry and metrics are set by instrument when --metrics-addr is:
	// the registry /metrics serves, and the observer and interceptor of
	// the verb's bus and actors (package metrics) registered on it. Both
	// are nil otherwise, and nothing is counted for metrics.
	registry *prometheus.Registry
	metrics  *metrics.Metrics
}

func (f *serveFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.skipPreflight, "skip-preflight", false, "skip the preflight checks (see heddle preflight --help)")
	cmd.Flags().StringVar(&f.metricsAddr, "metrics-addr", "", "serve /metrics, /healthz and /readyz on this address (host:port; empty: off)")
	cmd.Flags().DurationVar(&f.drainTimeout, "drain-timeout", heddle.DefaultDrainTimeout, "how long each actor may drain after SIGINT or SIGTERM")
}

func (f *serveFlags) check() error {
	if f.drainTimeout <= 0 {
		return fmt.Errorf("--drain-timeout must be positive, got %v", f.drainTimeout)
	}
	return nil
}

// instrument builds, when --metrics-addr is set, the metrics /metrics
// serves: a registry of this invocation's own (never the global one),
// with the Go runtime's and the process's collectors, and package
// metrics on it.
func (f *serveFlags) instrument() error {
	if f.metricsAddr == "" {
		return nil
	}
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return fail(exitFailed, fmt.Errorf("--metrics-addr: %w", err))
		}
	}
	m, err := metrics.New(reg)
	if err != nil {
		return fail(exitFailed, fmt.Errorf("--metrics-addr: %w", err))
	}
	f.registry, f.metrics = reg, m
	return nil
}

// busOptions are the natsbus options of the verb's connection: its
// events go to the metrics when --metrics-addr is set.
func (f *serveFlags) busOptions() []natsbus.Option {
	if f.metrics == nil {
		return nil
	}
	return []natsbus.Option{natsbus.WithObserver(f.metrics)}
}

// actorOptions are the options of every actor the verb runs: its logger
// and, when --metrics-addr is set, the metrics as observer and
// interceptor (metrics.Metrics.Option).
func (f *serveFlags) actorOptions(log *slog.Logger) []heddle.Option {
	opts := []heddle.Option{heddle.WithLogger(log)}
	if f.metrics != nil {
		opts = append(opts, f.metrics.Option())
	}
	return opts
}

// probes answers /healthz and /readyz, and gives /metrics its gauges.
// *health.Checker is the one used.
type probes interface {
	Healthz() http.Handler
	Readyz() http.Handler
	Live(ctx context.Context) health.Report
	Ready(ctx context.Context) health.Report
}

// probeMux serves /healthz and /readyz from p, and /metrics from reg
// (metrics.Handler), where it registers two gauges of the probes:
// heddle_up, 1 while the process's NATS connection is open and answers,
// and heddle_ready, 1 once every actor is subscribed and running.
func probeMux(p probes, reg *prometheus.Registry) (*http.ServeMux, error) {
	for _, g := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "heddle_up",
			Help: "1 while the process's NATS connection is open and answering (/healthz)."},
			func() float64 { return probeGauge(p.Live) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "heddle_ready",
			Help: "1 once every actor of the process is subscribed and running (/readyz)."},
			func() float64 { return probeGauge(p.Ready) }),
	} {
		if err := reg.Register(g); err != nil {
			return nil, fmt.Errorf("--metrics-addr: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", p.Healthz())
	mux.Handle("GET /readyz", p.Readyz())
	mux.Handle("GET /metrics", metrics.Handler(reg))
	return mux, nil
}

// probeGauge runs a probe within the probe timeout, as a scrape's gauge:
// 1 when it is OK, else 0.
func probeGauge(probe func(context.Context) health.Report) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), probeGaugeTimeout)
	defer cancel()
	if probe(ctx).Status == health.StatusOK {
		return 1
	}
	return 0
}

// serveActors runs actor on b until a signal or ctx ends, with the probe
// server when --metrics-addr is set, then drains and closes b. It returns
// nil after a clean drain, or an exit error: exitFailed when an actor
// failed (its bus closed for good, its drain was cut short).
func (a *app) serveActors(ctx context.Context, f *serveFlags, log *slog.Logger, b *natsbus.Bus, name string, actor heddle.Actor) error {
	defer b.Close()
	hc := health.New()
	run, err := hc.AddActor(name, actor)
	if err == nil {
		err = hc.AddBus("nats", b)
	}
	if err != nil {
		return fail(exitFailed, err)
	}
	var srv *http.Server
	srvDone := make(chan error, 1)
	if f.metricsAddr != "" {
		if f.registry == nil { // a verb that did not call beforeActorVerb
			if err := f.instrument(); err != nil {
				return err
			}
		}
		ln, err := net.Listen("tcp", f.metricsAddr)
		if err != nil {
			return failf(exitFailed, "--metrics-addr %s: %w", f.metricsAddr, err)
		}
		mux, err := probeMux(hc, f.registry)
		if err != nil {
			ln.Close()
			return fail(exitFailed, err)
		}
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		log.Info("http.listening", "addr", ln.Addr().String(), "paths", "/metrics /healthz /readyz")
		go func() { srvDone <- srv.Serve(ln) }()
	}
	err = heddle.Serve(ctx, run)
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
		_ = srv.Shutdown(sctx)
		cancel()
		if serr := <-srvDone; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			log.Error("http.failed", "error", serr)
		}
	}
	dctx, cancel := context.WithTimeout(context.Background(), busDrainTimeout)
	defer cancel()
	_ = b.Drain(dctx)
	if err != nil {
		log.Error("heddle.stopped", "error", err)
		return fail(exitFailed, err)
	}
	log.Info("heddle.stopped")
	return nil
}

// beforeActorVerb checks the serve flags and runs the preflight unless
// it is skipped.
func (a *app) beforeActorVerb(f *serveFlags, configs []string, tiers []heddle.ModelTier) error {
	if err := f.check(); err != nil {
		return err
	}
	if err := f.instrument(); err != nil {
		return err
	}
	if f.skipPreflight {
		return nil
	}
	return a.preflight(configs, tiers)
}
