package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/natsbus"
)

// preflightConnectTimeout bounds the preflight's connection attempt, as
// the Python Heddle's check_nats_connectivity does.
const preflightConnectTimeout = 5 * time.Second

// connectError is the message of a failed connection, the same for every
// verb: "Cannot connect to NATS at <url>. Is NATS running? Try: ... (error:
// <cause>)", with a hint naming the URL's own port.
func connectError(rawURL string, err error) error {
	cause := err
	if u := errors.Unwrap(err); u != nil {
		cause = u // natsbus wraps the nats.go cause in a message of its own
	}
	port := urlPort(rawURL)
	//lint:ignore ST1005 the connectivity runbook's message, which operators search for, starts so
	return &exitError{code: exitConnect, err: fmt.Errorf(
		"Cannot connect to NATS at %s. Is NATS running? Try: nats-server -p %s, or docker run -p %s:4222 nats:latest (error: %w)",
		redact(rawURL), port, port, cause)}
}

// urlPort returns the port of the first server in a NATS URL list, 4222
// when it names none.
func urlPort(raw string) string {
	first, _, _ := strings.Cut(raw, ",")
	first = strings.TrimSpace(first)
	if !strings.Contains(first, "://") {
		first = "nats://" + first
	}
	u, err := url.Parse(first)
	if err != nil || u.Port() == "" {
		return "4222"
	}
	return u.Port()
}

// redact hides passwords and tokens in a NATS URL list.
func redact(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else {
			u.User = url.User("xxxxx")
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// dial connects to NATS for a verb. Its error is connectError's.
func (a *app) dial(name string, log *slog.Logger, timeout time.Duration, extra ...natsbus.Option) (*natsbus.Bus, error) {
	opts := append([]natsbus.Option{natsbus.WithName("heddle " + name), natsbus.WithLogger(log)}, extra...)
	if timeout > 0 {
		opts = append(opts, natsbus.WithConnectTimeout(timeout))
	}
	b, err := natsbus.Connect(a.url(), opts...)
	if err != nil {
		return nil, connectError(a.url(), err)
	}
	log.Info("actor.connected", "nats_url", redact(a.url()), "name", "heddle "+name)
	return b, nil
}

// preflight runs the connectivity runbook's three checks, writing each
// outcome to stderr as the Python Heddle does ("Pre-flight OK: ...",
// "Pre-flight WARNING: ...", "Pre-flight FAIL: ..."):
//
//   - each config file must exist and parse as YAML (fatal, naming the
//     file and the line; its schema is heddle validate's business);
//   - each tier's environment variables should be set (warnings only);
//   - NATS must accept a connection (fatal; exit code 3).
//
// It returns a reported error when a fatal check fails.
func (a *app) preflight(configs []string, tiers []heddle.ModelTier) error {
	for _, path := range configs {
		if msg, ok := checkConfigReadable(path); !ok {
			fmt.Fprintln(a.stderr, "Pre-flight FAIL: "+msg)
			return reported{code: exitFailed}
		}
	}
	for _, t := range tiers {
		for _, w := range checkEnvVars(t, a.getenv) {
			fmt.Fprintln(a.stderr, "Pre-flight WARNING: "+w)
		}
	}
	b, err := natsbus.Connect(a.url(), natsbus.WithName("heddle preflight"),
		natsbus.WithConnectTimeout(preflightConnectTimeout),
		natsbus.WithMaxReconnects(0),
		natsbus.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Fprintln(a.stderr, "Pre-flight FAIL: "+connectError(a.url(), err).Error())
		return reported{code: exitConnect}
	}
	ctx, cancel := context.WithTimeout(context.Background(), preflightConnectTimeout)
	defer cancel()
	if err := b.Drain(ctx); err != nil {
		b.Close()
	}
	fmt.Fprintln(a.stderr, "Pre-flight OK: Connected to NATS at "+redact(a.url()))
	return nil
}

// checkEnvVars returns the warnings for tier's missing environment
// variables, in the Python Heddle's words.
func checkEnvVars(tier heddle.ModelTier, getenv func(string) string) []string {
	switch tier {
	case heddle.TierLocal:
		if getenv("LM_STUDIO_URL") == "" && getenv("OLLAMA_URL") == "" {
			return []string{"Neither LM_STUDIO_URL nor OLLAMA_URL is set. Local tier workers need one of them. " +
				"Set: export LM_STUDIO_URL=http://localhost:1234/v1  or:  export OLLAMA_URL=http://localhost:11434"}
		}
	case heddle.TierStandard, heddle.TierFrontier:
		if getenv("ANTHROPIC_API_KEY") == "" {
			return []string{fmt.Sprintf("ANTHROPIC_API_KEY not set. Required for %s tier workers. "+
				"Set it with: export ANTHROPIC_API_KEY=your-key", tier)}
		}
	}
	return nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// checkConfigReadable reports whether path exists and parses as YAML, and
// if not, why, naming the file and, for a syntax error, the line.
func checkConfigReadable(path string) (string, bool) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "Config file not found: " + path, false
	case err != nil:
		return fmt.Sprintf("Config file not readable: %s (%v)", path, err), false
	}
	var doc yaml.Node
	err = yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc)
	switch {
	case errors.Is(err, io.EOF):
		return "Config file is empty: " + path, false
	case err != nil:
		line, msg := yamlErrorLine(err)
		if line > 0 {
			return fmt.Sprintf("Config file has invalid YAML: %s:%d: %s", path, line, msg), false
		}
		return fmt.Sprintf("Config file has invalid YAML: %s: %s", path, msg), false
	}
	return "Config file is valid YAML: " + path, true
}

// yamlErrorLine splits a YAML syntax error into its line (0 when it names
// none) and its message.
func yamlErrorLine(err error) (int, string) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return line, msg[len(m[0]):]
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}

func (a *app) preflightCommand() *cobra.Command {
	var configs []string
	var tiers []string
	cmd := &cobra.Command{
		Use:   "preflight",
		Short: "Check NATS connectivity, tier environment variables and config files",
		Long: `preflight runs the three checks every actor verb runs before it starts
(unless given --skip-preflight), as the connectivity runbook describes:

  1. Config files (--config, repeatable): each must exist and parse as YAML.
     A missing or unparsable file is fatal; the message names the file and
     the line. Its schema is not checked: use heddle validate for that.
  2. Environment variables of each model tier (--tier, repeatable):
     local needs LM_STUDIO_URL or OLLAMA_URL, standard and frontier need
     ANTHROPIC_API_KEY. A missing variable is a warning, not a failure.
  3. NATS connectivity: a short connection to --nats-url, then closed.
     Failure is fatal and says
       Cannot connect to NATS at <url>. Is NATS running? ...
     with the cause and a hint naming the URL's port.

On success the last line is "Pre-flight OK: Connected to NATS at <url>".
Exit codes: 0 all fatal checks passed (warnings allowed), 1 a config file
failed, 3 NATS could not be reached.`,
		Example: `  heddle preflight --nats-url nats://127.0.0.1:4222
  heddle preflight --config configs/router_rules.yaml --tier local --tier standard`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := parseTiers(tiers)
			if err != nil {
				return err
			}
			return a.preflight(configs, ts)
		},
	}
	cmd.Flags().StringArrayVar(&configs, "config", nil, "config file that must exist and parse as YAML (repeatable)")
	cmd.Flags().StringArrayVar(&tiers, "tier", nil, "model tier whose environment variables to check: local, standard or frontier (repeatable)")
	return cmd
}

// parseTiers reads --tier values; a bad one is a usage error.
func parseTiers(in []string) ([]heddle.ModelTier, error) {
	out := make([]heddle.ModelTier, 0, len(in))
	for _, s := range in {
		t, err := heddle.ParseModelTier(s)
		if err != nil {
			return nil, fmt.Errorf("--tier %q: want local, standard or frontier", s)
		}
		out = append(out, t)
	}
	return out, nil
}
