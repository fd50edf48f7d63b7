package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes; documented in the package comment and docs/operating.md, and
// pinned by tests.
const (
	exitOK      = 0 // success
	exitFailed  = 1 // the operation failed
	exitUsage   = 2 // bad command line
	exitConnect = 3 // cannot connect to NATS
	exitTimeout = 4 // timed out waiting for a result
)

// defaultNATSURL is dialled when neither --nats-url nor NATS_URL is set.
const defaultNATSURL = "nats://127.0.0.1:4222"

// exitError carries the exit code of a failed verb. Every error a verb
// returns is one; an error that is not came from the command line parser
// and exits with exitUsage.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// fail returns err with an exit code; nil stays nil.
func fail(code int, err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{code: code, err: err}
}

// failf returns a formatted error with an exit code.
func failf(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

// reported is an error whose message was already written (by preflight or
// validate); run exits with its code without printing it again.
type reported struct{ code int }

func (r reported) Error() string { return fmt.Sprintf("exit status %d", r.code) }

// app holds one invocation's streams, environment and global flags. It is
// built per run so that nothing is shared between invocations.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	natsURL   string
	logFormat string
	logLevel  string
}

// run executes the command line args and returns the process's exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdin: os.Stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	return a.run(ctx, args)
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var r reported
	if errors.As(err, &r) {
		return r.code
	}
	var ee *exitError
	if errors.As(err, &ee) {
		fmt.Fprintln(a.stderr, "Error:", ee.err)
		return ee.code
	}
	fmt.Fprintln(a.stderr, "Error:", err)
	fmt.Fprintln(a.stderr, "Run 'heddle --help' or 'heddle VERB --help' for usage.")
	return exitUsage
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "heddle",
		Short: "Operate a Heddle task mesh over NATS",
		Long: `heddle runs and operates the actors of a Heddle task mesh over NATS:
the router, processor workers, pipelines, the scheduler, the dead-letter
consumer, the worker registry and the MCP gateway, from the same YAML
files the Python Heddle reads. It submits goals and tasks, lists the live
workers, validates config files and checks a node's connectivity.

Every verb takes --nats-url (default $NATS_URL, then ` + defaultNATSURL + `).
Verbs that run actors first run the preflight checks (see heddle preflight
--help) unless given --skip-preflight, log with slog to stderr (text, or
JSON with --log-format json), drain on SIGINT or SIGTERM, and serve
/metrics, /healthz and /readyz on --metrics-addr when it is set.

Exit codes:
  0  success (for a long-running verb: stopped by a signal and drained)
  1  the operation failed: a task or goal failed or was dead-lettered, a
     config is invalid, an actor stopped with an error
  2  usage error: unknown verb or flag, missing or bad argument
  3  cannot connect to NATS
  4  timed out waiting for a result, or for a worker registry's answer`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })
	pf := root.PersistentFlags()
	pf.StringVar(&a.natsURL, "nats-url", "", "NATS server URL, comma-separated for a cluster (default $NATS_URL, then "+defaultNATSURL+")")
	pf.StringVar(&a.logFormat, "log-format", "text", "log format on stderr: text or json")
	pf.StringVar(&a.logLevel, "log-level", "info", "lowest level logged: debug, info, warn or error")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if _, err := a.logger(); err != nil {
			return err // a usage error
		}
		return nil
	}
	root.AddCommand(
		a.preflightCommand(),
		a.routerCommand(),
		a.processorCommand(),
		a.pipelineCommand(),
		a.submitCommand(),
		a.validateCommand(),
		a.deadLetterCommand(),
		a.schedulerCommand(),
		a.registryCommand(),
		a.workersCommand(),
		a.mcpCommand(),
	)
	return root
}

// url returns the NATS URL: --nats-url, then $NATS_URL, then the default.
func (a *app) url() string {
	if a.natsURL != "" {
		return a.natsURL
	}
	if u := a.getenv("NATS_URL"); u != "" {
		return u
	}
	return defaultNATSURL
}

// logger builds the logger of this invocation, writing to stderr.
func (a *app) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(a.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", a.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(a.logFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(a.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(a.stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", a.logFormat)
}

// mustLogger returns the logger; PersistentPreRunE has already checked
// its flags.
func (a *app) mustLogger() *slog.Logger {
	l, err := a.logger()
	if err != nil {
		return slog.New(slog.NewTextHandler(a.stderr, nil))
	}
	return l
}

// isTerminal reports whether w is a terminal, for progress output.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
