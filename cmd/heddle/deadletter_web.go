package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/heddle-go/heddle/deadletter"
)

// defaultDeadLetterAddr is where dead-letter serve listens and list, show
// and replay look for it: the Python Workshop's port, on loopback.
const defaultDeadLetterAddr = "127.0.0.1:8000"

// clientTimeout bounds one request of list, show and replay.
const clientTimeout = 30 * time.Second

func (a *app) deadLetterServeCommand() *cobra.Command {
	var sf serveFlags
	var maxSize int
	var addr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a dead-letter consumer with its web view and JSON API",
		Long: `serve runs a dead-letter consumer, as monitor does, and serves its web view
and JSON API on --addr under ` + deadletter.DefaultPrefix + ` until SIGINT or SIGTERM:

  http://ADDR` + deadletter.DefaultPrefix + `              the entries, counts by reason, filters, replay
  http://ADDR` + deadletter.DefaultPrefix + `/api/...      the JSON API that list, show and replay use

On a loopback address it needs no token. On any other address it refuses to
start unless $` + deadletter.TokenEnv + ` holds a token of at least ` + strconv.Itoa(deadletter.MinTokenLength) + `
characters; every request must then present it (the CLI sends it as a bearer
token, a browser signs in once).

Dead letters live in this process's memory (the latest --max-size): they
are lost when it stops.

Exit codes: 0 stopped by a signal and drained, 1 the address is refused or
the consumer failed, 3 cannot connect.`,
		Example: `  heddle dead-letter serve --nats-url nats://127.0.0.1:4222
  HEDDLE_WORKSHOP_TOKEN=$(openssl rand -hex 16) heddle dead-letter serve --addr 0.0.0.0:8000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if maxSize <= 0 {
				return errString("--max-size must be positive")
			}
			token := a.getenv(deadletter.TokenEnv)
			if err := deadletter.CheckListenAddr(addr, token); err != nil {
				return fail(exitFailed, fmt.Errorf("--addr: %w", err))
			}
			if err := a.beforeActorVerb(&sf, nil, nil); err != nil {
				return err
			}
			log := a.mustLogger()
			b, err := a.dial("dead-letter serve", log, 0, sf.busOptions()...)
			if err != nil {
				return err
			}
			c, err := deadletter.New(b, deadletter.Config{Capacity: maxSize, DrainTimeout: sf.drainTimeout}, sf.actorOptions(log)...)
			if err != nil {
				b.Close()
				return fail(exitFailed, err)
			}
			h, err := deadletter.NewHandler(c, deadletter.HandlerOptions{Token: token}, sf.actorOptions(log)...)
			if err != nil {
				b.Close()
				return fail(exitFailed, err)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				b.Close()
				return fail(exitFailed, fmt.Errorf("--addr %s: %w", addr, err))
			}
			mux := http.NewServeMux()
			mux.Handle(deadletter.DefaultPrefix, h)
			mux.Handle(deadletter.DefaultPrefix+"/", h)
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ln) }()
			log.Info("dead_letter.serving", "url", "http://"+ln.Addr().String()+deadletter.DefaultPrefix, "max_size", maxSize)
			err = a.serveActors(cmd.Context(), &sf, log, b, "dead-letter", c)
			sctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
			defer cancel()
			_ = srv.Shutdown(sctx)
			if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
				log.Error("http.failed", "error", serr)
			}
			return err
		},
	}
	sf.register(cmd)
	cmd.Flags().IntVar(&maxSize, "max-size", deadletter.DefaultCapacity, "dead letters kept in memory")
	cmd.Flags().StringVar(&addr, "addr", defaultDeadLetterAddr, "address of the web view and JSON API (host:port)")
	return cmd
}

// dlClient talks to the JSON API of a running dead-letter serve.
type dlClient struct {
	base  string // http://host:port/dead-letters
	token string
	http  *http.Client
}

// apiError is an answer of the API other than 2xx.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func (a *app) deadLetterClient(server string) (*dlClient, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q: want http://host:port of a heddle dead-letter serve", server)
	}
	base := strings.TrimSuffix(u.String(), "/")
	if !strings.HasSuffix(base, deadletter.DefaultPrefix) {
		base += deadletter.DefaultPrefix
	}
	return &dlClient{base: base, token: a.getenv(deadletter.TokenEnv), http: &http.Client{Timeout: clientTimeout}}, nil
}

func (c *dlClient) do(ctx context.Context, method, path string, query url.Values, out any) error {
	u := c.base + "/api" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the dead-letter server at %s (is heddle dead-letter serve running?): %w", c.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the answer of %s: %w", u, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			msg += " (set " + deadletter.TokenEnv + " to the server's token)"
		}
		// A replay answers with a report even when it fails.
		if out != nil && json.Unmarshal(body, out) == nil && e.Error == "" {
			return &apiError{status: resp.StatusCode, msg: fmt.Sprintf("%s %s: %s", method, path, resp.Status)}
		}
		return &apiError{status: resp.StatusCode, msg: fmt.Sprintf("%s: %s", resp.Status, msg)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("the answer of %s is not what a dead-letter server sends: %w", u, err)
	}
	return nil
}

type dlQueryFlags struct {
	server     string
	reason     string
	workerType string
}

func (f *dlQueryFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", "http://"+defaultDeadLetterAddr, "URL of a running heddle dead-letter serve (token from $"+deadletter.TokenEnv+")")
	cmd.Flags().StringVar(&f.reason, "reason", "", "only entries of this reason kind: "+strings.Join(deadletter.ReasonKinds(), ", "))
	cmd.Flags().StringVar(&f.workerType, "worker-type", "", "only entries of this worker_type")
}

func (f *dlQueryFlags) filter() (url.Values, error) {
	v := url.Values{}
	if f.reason != "" {
		if err := (deadletter.Filter{ReasonKind: f.reason}).Validate(); err != nil {
			return nil, fmt.Errorf("--reason %q: want one of %s", f.reason, strings.Join(deadletter.ReasonKinds(), ", "))
		}
		v.Set("reason", f.reason)
	}
	if f.workerType != "" {
		v.Set("worker_type", f.workerType)
	}
	return v, nil
}

// clientFailure maps a client error to an exit code.
func clientFailure(err error) error {
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusBadRequest {
		return fail(exitUsage, err)
	}
	return fail(exitFailed, err)
}

func (a *app) deadLetterListCommand() *cobra.Command {
	var qf dlQueryFlags
	var limit, offset int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the dead letters a running dead-letter serve holds",
		Long: `list asks a running heddle dead-letter serve (--server) for its entries,
newest first, and prints one line each: id, received time, reason,
worker_type, task_id and replay count, then the counts by reason kind.
With --json it prints the API's Page as it is.

Exit codes: 0 listed, 1 the server could not be reached or refused,
2 a bad flag.`,
		Example: `  heddle dead-letter list
  heddle dead-letter list --reason rate_limited --worker-type summarizer
  heddle dead-letter list --json | jq -r '.entries[].id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := qf.filter()
			if err != nil {
				return err
			}
			if limit < 1 || limit > deadletter.MaxPageSize || offset < 0 {
				return fmt.Errorf("--limit must be from 1 to %d and --offset not negative", deadletter.MaxPageSize)
			}
			c, err := a.deadLetterClient(qf.server)
			if err != nil {
				return err
			}
			q.Set("limit", strconv.Itoa(limit))
			q.Set("offset", strconv.Itoa(offset))
			var page deadletter.Page
			if err := c.do(cmd.Context(), http.MethodGet, "/entries", q, &page); err != nil {
				return clientFailure(err)
			}
			if asJSON {
				return a.printJSON(page)
			}
			var counts deadletter.Counts
			if err := c.do(cmd.Context(), http.MethodGet, "/counts", nil, &counts); err != nil {
				return clientFailure(err)
			}
			for _, e := range page.Entries {
				fmt.Fprintf(a.stdout, "%s  %s  %-22s  worker_type=%s  task_id=%s  replays=%d\n",
					e.ID, e.DeadLetter.ReceivedAt.UTC().Format(time.RFC3339), e.DeadLetter.Reason,
					orNone(e.DeadLetter.WorkerType), orNone(e.DeadLetter.TaskID), e.ReplayCount)
			}
			fmt.Fprintf(a.stdout, "%d of %d matching; held %d", len(page.Entries), page.Total, counts.Total)
			for _, k := range deadletter.ReasonKinds() {
				if n := counts.ByReasonKind[k]; n > 0 {
					fmt.Fprintf(a.stdout, ", %s %d", k, n)
				}
			}
			fmt.Fprintf(a.stdout, "; replayed %d\n", counts.ReplayCount)
			return nil
		},
	}
	qf.register(cmd)
	cmd.Flags().IntVar(&limit, "limit", deadletter.DefaultPageSize, "entries to list")
	cmd.Flags().IntVar(&offset, "offset", 0, "matching entries to skip, newest first")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "None"
	}
	return s
}

func (a *app) deadLetterShowCommand() *cobra.Command {
	var server string
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Print one dead letter, its original task included, as JSON",
		Long: `show prints the entry ID of a running heddle dead-letter serve as JSON:
the envelope (reason, task_id, worker_type, received_at and the original
task, untouched), the headers it arrived with and its replay count.

Exit codes: 0 printed, 1 no such entry or the server could not be reached.`,
		Example: `  heddle dead-letter show 0b6f7a8e-...`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.deadLetterClient(server)
			if err != nil {
				return err
			}
			var e json.RawMessage
			if err := c.do(cmd.Context(), http.MethodGet, "/entries/"+url.PathEscape(args[0]), nil, &e); err != nil {
				return clientFailure(err)
			}
			return a.printJSON(e)
		},
	}
	cmd.Flags().StringVar(&server, "server", "http://"+defaultDeadLetterAddr, "URL of a running heddle dead-letter serve (token from $"+deadletter.TokenEnv+")")
	return cmd
}

func (a *app) deadLetterReplayCommand() *cobra.Command {
	var qf dlQueryFlags
	var all bool
	cmd := &cobra.Command{
		Use:   "replay ID... | replay --all [--reason KIND] [--worker-type T]",
		Short: "Re-inject dead letters into heddle.tasks.incoming",
		Long: `replay asks a running heddle dead-letter serve to publish the original task
of each entry again on heddle.tasks.incoming, byte for byte, so the router
evaluates it under its current rules and rate limits. A replayed entry
leaves the store; if the router dead-letters it again it comes back with
its replay count.

Give entry ids, or --all to replay every entry matching --reason and
--worker-type, oldest first. On a terminal it shows its progress. It prints
one line per entry replayed or failed, then how many.

Exit codes: 0 every entry replayed, 1 some replay failed (or the server
could not be reached), 2 no ids and no --all, or a bad flag.`,
		Example: `  heddle dead-letter replay 0b6f7a8e-... 5c1d...
  heddle dead-letter replay --all --reason rate_limited`,
		RunE: func(cmd *cobra.Command, ids []string) error {
			q, err := qf.filter()
			if err != nil {
				return err
			}
			switch {
			case all && len(ids) > 0:
				return errString("give entry ids or --all, not both")
			case !all && len(ids) == 0:
				return errString("give the ids of the entries to replay, or --all")
			case !all && (qf.reason != "" || qf.workerType != ""):
				return errString("--reason and --worker-type select entries for --all")
			}
			c, err := a.deadLetterClient(qf.server)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if all {
				if ids, err = c.matching(ctx, q); err != nil {
					return clientFailure(err)
				}
			}
			return a.replayEach(ctx, c, ids)
		},
	}
	qf.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "replay every entry matching --reason and --worker-type")
	return cmd
}

// matching returns the ids of every entry matching q, oldest first.
func (c *dlClient) matching(ctx context.Context, q url.Values) ([]string, error) {
	var ids []string
	for offset := 0; ; {
		q.Set("offset", strconv.Itoa(offset))
		q.Set("limit", strconv.Itoa(deadletter.MaxPageSize))
		var page deadletter.Page
		if err := c.do(ctx, http.MethodGet, "/entries", q, &page); err != nil {
			return nil, err
		}
		for _, e := range page.Entries {
			ids = append(ids, e.ID)
		}
		offset += len(page.Entries)
		if len(page.Entries) == 0 || offset >= page.Total {
			break
		}
	}
	// Newest first from the API; replay in arrival order.
	for i, j := 0, len(ids)-1; i < j; i, j = i+1, j-1 {
		ids[i], ids[j] = ids[j], ids[i]
	}
	return ids, nil
}

// replayEach replays ids one by one, with progress on a terminal.
func (a *app) replayEach(ctx context.Context, c *dlClient, ids []string) error {
	progress := isTerminal(a.stderr)
	var failed int
	for i, id := range ids {
		var report deadletter.ReplayReport
		err := c.do(ctx, http.MethodPost, "/entries/"+url.PathEscape(id)+"/replay", nil, &report)
		if progress {
			fmt.Fprintf(a.stderr, "\rreplaying %d/%d", i+1, len(ids))
		}
		switch {
		case err == nil && len(report.Failed) == 0:
			fmt.Fprintf(a.stdout, "replayed %s%s\n", id, taskNote(report.Replayed))
		case len(report.Failed) > 0:
			failed++
			fmt.Fprintf(a.stdout, "failed   %s: %s\n", id, report.Failed[0].Error)
		default:
			var ae *apiError
			if !errors.As(err, &ae) {
				if progress {
					fmt.Fprintln(a.stderr)
				}
				return fail(exitFailed, err) // the server is gone: stop
			}
			failed++
			fmt.Fprintf(a.stdout, "failed   %s: %s\n", id, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if progress && len(ids) > 0 {
		fmt.Fprintln(a.stderr)
	}
	fmt.Fprintf(a.stdout, "%d replayed, %d failed\n", len(ids)-failed, failed)
	if failed > 0 {
		return reported{code: exitFailed}
	}
	return nil
}

func taskNote(r []deadletter.ReplayOutcome) string {
	if len(r) == 0 || r[0].TaskID == "" {
		return ""
	}
	return " (task_id " + r[0].TaskID + ", worker_type " + orNone(r[0].WorkerType) + ")"
}

// printJSON prints v indented on stdout.
func (a *app) printJSON(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fail(exitFailed, err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, data, "", "  "); err != nil {
		return fail(exitFailed, err)
	}
	out.WriteByte('\n')
	_, _ = a.stdout.Write(out.Bytes())
	return nil
}
