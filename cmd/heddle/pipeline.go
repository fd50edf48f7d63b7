package main

import (
	"github.com/spf13/cobra"

	"github.com/heddle-go/heddle/pipeline"
)

func (a *app) pipelineCommand() *cobra.Command {
	var sf serveFlags
	var config string
	var addressedOnly bool
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Run a pipeline described in YAML (the Python Heddle's pipeline config)",
		Long: `pipeline runs a pipeline orchestrator until SIGINT or SIGTERM. It takes
goals from heddle.goals.incoming (queue group "pipelines", shared with
Python pipelines) and from its own address (heddle submit --to NAME), runs
the stages level by level, each as a task to its worker_type, and publishes
the final result on heddle.results.{goal_id}.

The config file is the Python Heddle's pipeline config:

  name: docs
  timeout_seconds: 120
  pipeline_stages:
    - name: extract
      worker_type: extractor
      input_mapping: {file_ref: goal.context.file_ref}
    - name: summarize
      worker_type: summarizer
      input_mapping: {text: extract.output.text}
      condition: "extract.output.text != null"

Problems in it are all reported before anything starts (exit 1); heddle
validate checks it without NATS.

Exit codes: 0 stopped by a signal and drained, 1 invalid config or the
pipeline failed, 3 cannot connect.`,
		Example: `  heddle pipeline --config configs/orchestrators/docs.yaml --nats-url nats://127.0.0.1:4222`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if config == "" {
				return errString("--config is required: the pipeline config file")
			}
			if err := a.beforeActorVerb(&sf, []string{config}, nil); err != nil {
				return err
			}
			cfg, err := pipeline.LoadConfig(config)
			if err != nil {
				return fail(exitFailed, err)
			}
			cfg.DrainTimeout = sf.drainTimeout
			cfg.AddressedOnly = addressedOnly
			log := a.mustLogger()
			b, err := a.dial("pipeline "+cfg.Name, log, 0, sf.busOptions()...)
			if err != nil {
				return err
			}
			p, err := pipeline.New(b, cfg, sf.actorOptions(log)...)
			if err != nil {
				b.Close()
				return fail(exitFailed, err)
			}
			return a.serveActors(cmd.Context(), &sf, log, b, "pipeline/"+cfg.Name, p)
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&config, "config", "", "pipeline config file (required)")
	cmd.Flags().BoolVar(&addressedOnly, "addressed-only", false, "serve only goals addressed to this pipeline (heddle submit --to NAME), not heddle.goals.incoming")
	return cmd
}
