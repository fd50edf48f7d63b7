package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/health"
	"github.com/heddle-go/heddle/natsbus"
)

// httpShutdownTimeout bounds the shutdown of the --metrics-addr server
// after the actors drained.
const httpShutdownTimeout = 5 * time.Second

// busDrainTimeout bounds the drain of the connection once the actors
// have returned.
const busDrainTimeout = 10 * time.Second

// serveFlags are the flags every long-running verb takes.
type serveFlags struct {
	skipPreflight bool
	metricsAddr   string
	drainTimeout  time.Duration
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

// probes answers /healthz and /readyz, and gives /metrics its gauges.
// *health.Checker is the one used; a metrics package may supply another.
type probes interface {
	Healthz() http.Handler
	Readyz() http.Handler
	Live(ctx context.Context) health.Report
	Ready(ctx context.Context) health.Report
}

// probeMux serves /healthz and /readyz from p, and /metrics: a minimal
// Prometheus text exposition of the two probes, until a metrics package
// supplies collectors.
func probeMux(p probes) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", p.Healthz())
	mux.Handle("GET /readyz", p.Readyz())
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		fmt.Fprintln(w, "# HELP heddle_up 1 while the process's NATS connection is open and answering.")
		fmt.Fprintln(w, "# TYPE heddle_up gauge")
		fmt.Fprintf(w, "heddle_up %d\n", boolGauge(p.Live(r.Context()).Status == health.StatusOK))
		fmt.Fprintln(w, "# HELP heddle_ready 1 once every actor of the process is subscribed and running.")
		fmt.Fprintln(w, "# TYPE heddle_ready gauge")
		fmt.Fprintf(w, "heddle_ready %d\n", boolGauge(p.Ready(r.Context()).Status == health.StatusOK))
	})
	return mux
}

func boolGauge(b bool) int {
	if b {
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
		ln, err := net.Listen("tcp", f.metricsAddr)
		if err != nil {
			return failf(exitFailed, "--metrics-addr %s: %w", f.metricsAddr, err)
		}
		srv = &http.Server{Handler: probeMux(hc), ReadHeaderTimeout: 10 * time.Second}
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
	if f.skipPreflight {
		return nil
	}
	return a.preflight(configs, tiers)
}
