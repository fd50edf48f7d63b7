package main

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/mcp"
)

func (a *app) mcpCommand() *cobra.Command {
	var sf serveFlags
	var config, httpAddr string
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Run the MCP gateway: worker types and pipelines as tools for MCP clients",
		Long: `mcp runs the mesh's MCP gateway: a Model Context Protocol server whose
tools are worker types (one task each, through the router or straight to
the worker) and pipelines (one goal each, addressed to the pipeline), so
that a desktop assistant, an IDE or an agent can call them.

It serves over stdio by default, one client on the process's standard
input and output, until the client closes its end (exit 0) or SIGINT or
SIGTERM. Standard output then carries the protocol alone: every log line,
the preflight's included, goes to standard error. With --http ADDR (or
transport: streamable-http in the config) it serves MCP's streamable HTTP
transport at http://ADDR/mcp instead, any number of clients, until a
signal. Either way it drains on the signal: calls in progress may finish
within --drain-timeout (or the config's drain_timeout_seconds).

The config file is the Python Heddle's gateway config, with the keys a Go
gateway adds:

  name: docman
  nats_url: nats://localhost:4222     # used when neither --nats-url nor NATS_URL is set
  transport: stdio                    # or streamable-http (addr: 127.0.0.1:8000)
  tools:
    workers:
      - config: configs/workers/summarizer.yaml   # a Python worker config
      - worker_type: classifier
        name: classify_document
        tier: local
        input_schema: {type: object, required: [text], properties: {text: {type: string}}}
    pipelines:
      - config: configs/orchestrators/rag_pipeline.yaml
        name: ingest_document

Problems in it are all reported before anything starts (exit 1); heddle
validate checks it without NATS. The Python gateway's query, workshop,
session and council tools and its resources are refused with their line:
a Go gateway offers worker and pipeline tools only.

Exit codes: 0 the client left, or stopped by a signal and drained, 1
invalid config or the gateway failed (its NATS connection closed for good,
the --http address cannot be bound), 2 a bad flag, 3 cannot connect.`,
		Example: `  heddle mcp --config configs/mcp/docman.yaml
  heddle mcp --config configs/mcp/docman.yaml --http 127.0.0.1:8000 --metrics-addr :9093

  # as a desktop assistant's local MCP server (stdio):
  #   {"command": "heddle", "args": ["mcp", "--config", "/abs/path/docman.yaml"]}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if config == "" {
				return errString("--config is required: the MCP gateway config file")
			}
			if httpAddr != "" {
				if _, _, err := net.SplitHostPort(httpAddr); err != nil {
					return fmt.Errorf("--http %q: want host:port (port 0 picks a free one): %v", httpAddr, err)
				}
			}
			// The config is read before the preflight so that its nats_url
			// is the URL checked; a file that does not parse fails the
			// preflight's own check first.
			cfg, loadErr := mcp.LoadConfig(config)
			if a.natsURL == "" && a.getenv("NATS_URL") == "" && cfg.NATSURL != "" {
				a.natsURL = cfg.NATSURL
			}
			if err := a.beforeActorVerb(&sf, []string{config}, nil); err != nil {
				return err
			}
			if loadErr != nil {
				return fail(exitFailed, mcpConfigError(config, loadErr))
			}
			if httpAddr != "" {
				cfg.Transport, cfg.Addr = mcp.TransportStreamableHTTP, httpAddr
			}
			if cmd.Flags().Changed("drain-timeout") || cfg.DrainTimeout == 0 {
				cfg.DrainTimeout = sf.drainTimeout
			}
			log := a.mustLogger()
			b, err := a.dial("mcp "+cfg.Name, log, 0, sf.busOptions()...)
			if err != nil {
				return err
			}
			g, err := mcp.New(b, cfg, sf.actorOptions(log)...)
			if err != nil {
				b.Close()
				return fail(exitFailed, err)
			}
			transport := cfg.Transport
			if transport == "" {
				transport = mcp.TransportStdio
			}
			log.Info("mcp.starting", "name", cfg.Name, "transport", transport,
				"tools", len(cfg.Workers)+len(cfg.Pipelines), "drain_timeout", cfg.DrainTimeout)
			// Over stdio the gateway reads and writes the process's own
			// standard input and output (mcp.Gateway.Run), which main
			// gives this command as a.stdin and a.stdout.
			return a.serveActors(cmd.Context(), &sf, log, b, "mcp/"+cfg.Name, g)
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&config, "config", "", "MCP gateway config file (required)")
	cmd.Flags().StringVar(&httpAddr, "http", "", "serve MCP's streamable HTTP transport on this host:port, at /mcp, instead of stdio")
	return cmd
}

// mcpConfigError restates the error of a gateway config that does not
// load as heddle validate does: each problem on a line of its own, with
// the file and its line.
func mcpConfigError(path string, err error) error {
	_, findings := validateFile(path, kindMCP)
	if len(findings) == 0 {
		return err
	}
	slices.SortStableFunc(findings, func(x, y finding) int { return x.line - y.line })
	var b strings.Builder
	for _, f := range findings {
		b.WriteString("\n    " + f.format(path))
	}
	return fmt.Errorf("%s: %w (MCP gateway):%s", path, heddle.ErrConfig, b.String())
}
