package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/registry"
)

func (a *app) workersCommand() *cobra.Command {
	var workerType string
	var asJSON bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "workers",
		Short: "List the worker instances a running registry knows, and their liveness",
		Long: `workers asks the worker registry (heddle registry, or any registry.Registry
on the same NATS) for its table of worker instances and prints it: worker
type, instance id, status, the age of the last heartbeat, tasks in flight
out of the worker's capacity, and tasks completed and failed since it
started, as of its last heartbeat. Then one line per worker type:

  up       at least one of its workers is active
  down     the registry knows workers of the type and none is active
  unknown  nothing of the type ever heartbeated: Python Heddle workers send
           no heartbeats, so the registry cannot tell whether any serves it

A status is as of the registry's last sweep: a worker that died silently
is still active until its heartbeats are --stale-multiplier intervals late
and a sweep has run (see heddle registry --help).

--type limits the table to one worker type; --json prints the table as the
registry sends it (schemas.HeartbeatRegistry), every page joined into one.

Exit codes: 0 the table was printed, 1 no registry runs (start one with
heddle registry) or it refused the request, 3 cannot connect, 4 no registry
answered within --timeout.`,
		Example: `  heddle workers
  heddle workers --type word_counter
  heddle workers --json | jq -r '.workers[] | select(.status != "active") | .instance_id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return fmt.Errorf("--timeout must be positive, got %v", timeout)
			}
			if workerType != "" {
				if err := heddle.ValidateWorkerType(workerType); err != nil {
					return fmt.Errorf("--type %q: %w", workerType, err)
				}
			}
			log := a.mustLogger()
			b, err := a.dial("workers", log, preflightConnectTimeout)
			if err != nil {
				return err
			}
			defer b.Close()
			t, err := queryAll(cmd.Context(), b, workerType, timeout)
			if err != nil {
				return err
			}
			if asJSON {
				out, err := json.MarshalIndent(t, "", "  ")
				if err != nil {
					return fail(exitFailed, err)
				}
				_, err = a.stdout.Write(append(out, '\n'))
				return fail(exitFailed, err)
			}
			return fail(exitFailed, printWorkers(a.stdout, t, workerType))
		},
	}
	cmd.Flags().StringVar(&workerType, "type", "", "list the workers of this worker type only")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the table as JSON (the registry's answer, every page joined)")
	cmd.Flags().DurationVar(&timeout, "timeout", registry.DefaultQueryTimeout, "how long to wait for a registry's answer, per page")
	return cmd
}

// queryAll reads every page of the registry's table of workerType (every
// type when empty) and returns them as one table, with the type
// summaries of the last page.
func queryAll(ctx context.Context, b bus.Bus, workerType string, timeout time.Duration) (registry.Table, error) {
	var all registry.Table
	for {
		qctx, cancel := context.WithTimeout(ctx, timeout)
		page, err := registry.Query(qctx, b, registry.Request{WorkerType: workerType, Offset: len(all.Workers)})
		cancel()
		switch {
		case errors.Is(err, registry.ErrNoRegistry):
			return all, failf(exitFailed, "no worker registry runs on this NATS: nothing answers on %s; start one with heddle registry",
				heddle.SubjectWorkerRegistry)
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			return all, failf(exitTimeout, "no worker registry answered on %s within --timeout %v", heddle.SubjectWorkerRegistry, timeout)
		case err != nil:
			return all, fail(exitFailed, err)
		}
		workers := append(all.Workers, page.Workers...)
		all = page
		all.Offset, all.Workers = 0, workers
		// The table may change between pages (a worker joins or is
		// forgotten): read on while the registry says there are more,
		// and stop at an empty page.
		if len(page.Workers) == 0 || len(all.Workers) >= page.Total {
			return all, nil
		}
	}
}

// printWorkers writes t as a table, then the state of each worker type
// (of workerType alone when set), then where the table came from.
func printWorkers(w io.Writer, t registry.Table, workerType string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(t.Workers) > 0 {
		fmt.Fprintln(tw, "WORKER TYPE\tINSTANCE\tSTATUS\tLAST HEARTBEAT\tIN FLIGHT\tCOMPLETED\tFAILED")
		for _, e := range t.Workers {
			last, inFlight, completed, failed := "never", "-", "-", "-"
			if !e.LastHeartbeat.IsZero() {
				last = age(t.GeneratedAt.Sub(e.LastHeartbeat)) + " ago"
			}
			if hb := e.Heartbeat; hb != nil {
				inFlight = fmt.Sprintf("%d/%d", hb.InFlight, hb.Capacity)
				completed, failed = strconv.Itoa(hb.Completed), strconv.Itoa(hb.Failed)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.WorkerType, e.InstanceID, e.Status, last, inFlight, completed, failed)
		}
		fmt.Fprintln(tw)
	}
	if len(t.Types) == 0 && workerType == "" {
		fmt.Fprintln(tw, "No worker has heartbeated to this registry. Python workers send no heartbeats;")
		fmt.Fprintln(tw, "a registry that just started hears from each live Go worker within its heartbeat interval.")
	} else {
		fmt.Fprintln(tw, "WORKER TYPE\tSTATE\tWORKERS")
	}
	for _, s := range t.Types {
		fmt.Fprintf(tw, "%s\t%s\t%d active, %d inactive, %d stopped\n", s.WorkerType, s.State, s.Active, s.Inactive, s.Stopped)
	}
	if workerType != "" && t.TypeState(workerType) == registry.TypeUnknown {
		fmt.Fprintf(tw, "%s\t%s\tnothing of this type ever heartbeated (Python workers send no heartbeats)\n", workerType, registry.TypeUnknown)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	plural := "s"
	if len(t.Workers) == 1 {
		plural = ""
	}
	_, err := fmt.Fprintf(w, "\n%d worker%s; registry %s as of %s (sweeps every %v, stale after %d heartbeat intervals)\n",
		len(t.Workers), plural, t.RegistryID, t.GeneratedAt.Format(time.RFC3339), t.SweepInterval, t.StaleMultiplier)
	return err
}

// age writes a duration to the second ("4s", "2m5s").
func age(d time.Duration) string {
	return max(d, 0).Round(time.Second).String()
}
