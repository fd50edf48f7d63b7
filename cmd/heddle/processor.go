package main

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/cmd/heddle/internal/pyproc"
	"github.com/heddle-go/heddle/worker"
)

func newID() string { return uuid.NewString() }

func (a *app) processorCommand() *cobra.Command {
	var sf serveFlags
	var config, tier string
	var concurrency int
	var heartbeat time.Duration
	cmd := &cobra.Command{
		Use:   "processor",
		Short: "Run a processor worker described in YAML (the Python Heddle's subprocess processor)",
		Long: `processor runs a worker that serves one worker type by running a command
for each task, until SIGINT or SIGTERM. The config file is the Python
Heddle's processor worker config, unchanged:

  name: word_counter                 # the worker type
  worker_kind: processor
  processing_backend: heddle.contrib.subprocess.SubprocessBackend
  backend_config:
    command: ["wc", "-w"]            # no shell: shell metacharacters are refused
    io_mode: stdin_stdout            # json_stdio (default), stdin_stdout, args_stdout, file_file
    subprocess_timeout: 15           # seconds (default 30)
    input_mapping: {stdin_field: text}
    output_mapping: {stdout_field: word_count, parse: int}
    env: {LANG_HINT: "${payload.lang}"}   # optional; also working_dir, allowed_commands, model_used
  input_schema:  {type: object, required: [text], properties: {text: {type: string}}}
  output_schema: {type: object, required: [word_count]}
  default_model_tier: local
  timeout_seconds: 30

The io_modes behave as the Python subprocess backend's: json_stdio sends the
payload (or input_mapping.fields of it) as JSON on stdin and returns the JSON
object the command prints (output_mapping.target and extract_key as there);
stdin_stdout pipes one field to stdin; args_stdout passes fields as
arguments (input_mapping.positional and flags); file_file writes a field to
a temporary file and reads the output file back. A non-zero exit, a timeout
or unparsable output fails the task; nothing is retried, as in Python.
Payloads are checked against input_schema as the Python worker checks them
(required keys and top-level types), outputs against output_schema in full.

The worker subscribes to heddle.tasks.{name}.{tier} in queue group
processors-{name}, as the Python processor does, so Go and Python replicas
share one pool. It heartbeats on heddle.workers.heartbeat.{name} every
--heartbeat-interval, and once more when it drains, for heddle registry.
A key this runtime cannot honour (input_schema_ref, system_prompt, another
processing_backend, ...) is refused with its line.

Exit codes: 0 stopped by a signal and drained, 1 invalid config or the
worker failed, 3 cannot connect.`,
		Example: `  heddle processor --config configs/workers/word_counter.yaml --nats-url nats://127.0.0.1:4222
  heddle processor --config configs/workers/echo.yaml --tier standard --metrics-addr :9091`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if config == "" {
				return errString("--config is required: the processor worker config file")
			}
			var flagTier heddle.ModelTier
			if tier != "" {
				ts, err := parseTiers([]string{tier})
				if err != nil {
					return err
				}
				flagTier = ts[0]
			}
			if concurrency < 0 {
				return errString("--concurrency must not be negative")
			}
			if heartbeat < 0 {
				return fmt.Errorf("--heartbeat-interval must not be negative, got %v", heartbeat)
			}
			// The config is read before the preflight so the env check
			// knows the tier; a file that does not parse fails the
			// preflight's own check first.
			cfg, loadErr := pyproc.Load(config)
			t := flagTier
			if t == "" {
				t = cmpTier(cfg.Tier, heddle.TierLocal)
			}
			if err := a.beforeActorVerb(&sf, []string{config}, []heddle.ModelTier{t}); err != nil {
				return err
			}
			if loadErr != nil {
				return fail(exitFailed, loadErr)
			}
			log := a.mustLogger()
			contract, err := cfg.Contract()
			if err != nil {
				return fail(exitFailed, err)
			}
			for _, k := range cfg.Ignored {
				log.Warn("processor.key_ignored", "key", k, "file", config, "why", "a processor worker does not use it (nor does the Python one)")
			}
			b, err := a.dial("processor "+cfg.Name, log, 0, sf.busOptions()...)
			if err != nil {
				return err
			}
			w, err := worker.NewDynamic(b, cfg.Name, cfg.Backend.Handler(), worker.Config{
				Tiers:             []heddle.ModelTier{t},
				ShallowValidation: true,
				NoRetries:         true,
				Concurrency:       concurrency,
				HeartbeatInterval: heartbeat,
				TaskTimeout:       cfg.Timeout,
				DrainTimeout:      sf.drainTimeout,
				Contract:          contract,
			}, sf.actorOptions(log)...)
			if err != nil {
				b.Close()
				return fail(exitFailed, err)
			}
			if sf.metrics != nil {
				if err := sf.metrics.WatchWorker(w); err != nil {
					b.Close()
					return fail(exitFailed, err)
				}
			}
			log.Info("processor.starting", "worker_type", cfg.Name, "tier", t, "io_mode", cfg.Backend.IOMode,
				"command", cfg.Backend.Command, "subject", heddle.WorkerSubject(cfg.Name, t), "queue", heddle.WorkerQueueGroup(cfg.Name))
			return a.serveActors(cmd.Context(), &sf, log, b, "worker/"+cfg.Name, w)
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&config, "config", "", "processor worker config file (required)")
	cmd.Flags().StringVar(&tier, "tier", "", "tier served: local, standard or frontier (default: the config's default_model_tier, else local)")
	cmd.Flags().IntVar(&concurrency, "concurrency", 0, "tasks run at once (default 4)")
	cmd.Flags().DurationVar(&heartbeat, "heartbeat-interval", 0, "how often the worker heartbeats on heddle.workers.heartbeat.{name}, for heddle registry (default 30s)")
	return cmd
}

func cmpTier(t, def heddle.ModelTier) heddle.ModelTier {
	if t == "" {
		return def
	}
	return t
}

// errString is a usage error with a fixed message.
type errString string

func (e errString) Error() string { return string(e) }
