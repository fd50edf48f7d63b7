package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/dispatch"
)

type submitFlags struct {
	worker     string
	payload    string
	contexts   []string
	to         string
	tier       string
	priority   string
	metadata   string
	direct     bool
	noWait     bool
	timeout    time.Duration
	maxRetries int
}

func (a *app) submitCommand() *cobra.Command {
	var f submitFlags
	cmd := &cobra.Command{
		Use:   `submit ["instruction"] | submit --worker TYPE --payload JSON`,
		Short: "Submit a goal, or a single task, and print its result",
		Long: `submit sends work into the mesh and prints the result as JSON on stdout.

A goal: heddle submit "instruction" [--context JSON | --context key=value ...]
publishes an OrchestratorGoal on heddle.goals.incoming (or, with --to NAME,
to the pipeline or orchestrator called NAME only) and waits for its final
result. With --no-wait it only publishes and prints "Submitted goal: <id>",
as the Python heddle submit does.

A task: heddle submit --worker TYPE --payload JSON (or --payload @file, or
--payload @- for stdin) publishes a TaskMessage on heddle.tasks.incoming for
the router (or, with --direct, straight to heddle.tasks.{TYPE}.{tier}) and
waits for its result.

A task or goal the mesh cannot serve is reported at once, not after the
timeout: dead-lettered by the router (with its reason), no router running,
no worker or goal server subscribed.

Exit codes: 0 the result's status is completed, 1 it failed or the task was
dead-lettered or nothing serves it, 2 bad arguments (a payload that is not
a JSON object, ...), 3 cannot connect, 4 no result within --timeout.`,
		Example: `  heddle submit "Process document" --context file_ref=test.pdf --context lang=en
  heddle submit "Summarize" --context '{"file_ref": "a.pdf"}' --to docs --timeout 2m
  heddle submit --worker echo --payload '{"text": "hello"}' --tier local
  heddle submit --worker summarizer --payload @task.json --direct --timeout 30s`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.worker == "" {
				if len(args) != 1 {
					return errString(`give a goal ("instruction") or --worker TYPE with --payload JSON`)
				}
				return a.submitGoal(cmd.Context(), args[0], &f)
			}
			if len(args) != 0 {
				return errString("give either a goal instruction or --worker, not both")
			}
			return a.submitTask(cmd.Context(), &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.worker, "worker", "", "submit one task for this worker type instead of a goal")
	fl.StringVar(&f.payload, "payload", "", "the task's payload: a JSON object, @file, or @- for stdin (with --worker)")
	fl.StringArrayVar(&f.contexts, "context", nil, "goal context: a JSON object, or key=value (repeatable)")
	fl.StringVar(&f.to, "to", "", "address the goal to the pipeline or orchestrator of this name only")
	fl.StringVar(&f.tier, "tier", "", "the task's model_tier: local, standard or frontier (default standard)")
	fl.StringVar(&f.priority, "priority", "", "priority: low, normal, high or critical (default normal)")
	fl.StringVar(&f.metadata, "metadata", "", "the task's metadata: a JSON object")
	fl.BoolVar(&f.direct, "direct", false, "publish the task straight to its worker's subject, bypassing the router")
	fl.BoolVar(&f.noWait, "no-wait", false, "publish the goal and exit without waiting for its result")
	fl.DurationVar(&f.timeout, "timeout", dispatch.DefaultTimeout, "how long to wait for the result")
	fl.IntVar(&f.maxRetries, "max-retries", -1, "the task's max_retries (default: the wire default)")
	return cmd
}

func (a *app) submitGoal(ctx context.Context, instruction string, f *submitFlags) error {
	if f.payload != "" || f.tier != "" || f.metadata != "" || f.direct || f.maxRetries >= 0 {
		return errString("--payload, --tier, --metadata, --direct and --max-retries apply to a task (--worker), not to a goal")
	}
	if f.timeout <= 0 {
		return errString("--timeout must be positive")
	}
	goalCtx, err := parseContexts(f.contexts)
	if err != nil {
		return err
	}
	goal := heddle.NewOrchestratorGoal(instruction, goalCtx)
	var opts []dispatch.Option
	if f.priority != "" {
		p, err := heddle.ParsePriority(f.priority)
		if err != nil {
			return fmt.Errorf("--priority %q: want low, normal, high or critical", f.priority)
		}
		goal.Priority = p
		opts = append(opts, dispatch.Priority(p))
	}
	if f.to != "" {
		if _, err := heddle.GoalSubject(f.to); err != nil {
			return fmt.Errorf("--to %q: %v", f.to, err)
		}
		opts = append(opts, dispatch.To(f.to))
	}
	log := a.mustLogger()
	b, err := a.dial("submit", log, preflightConnectTimeout)
	if err != nil {
		return err
	}
	defer b.Close()
	if f.noWait {
		return a.publishGoal(ctx, b, goal, f.to)
	}
	opts = append(opts, dispatch.Timeout(f.timeout), dispatch.With(heddle.WithLogger(log)))
	res, err := dispatch.SubmitGoal(ctx, b, goal, opts...)
	return a.printOutcome("goal "+goal.GoalID, res, err)
}

// publishGoal publishes goal without waiting, as the Python heddle submit
// does, and prints its id.
func (a *app) publishGoal(ctx context.Context, b bus.Bus, goal heddle.OrchestratorGoal, to string) error {
	data, err := goal.Encode()
	if err != nil {
		return fail(exitFailed, err)
	}
	subject := heddle.SubjectGoalsIncoming
	if to != "" {
		if subject, err = heddle.GoalSubject(to); err != nil {
			return err
		}
	}
	if err := b.Publish(ctx, &bus.Msg{Subject: subject, Data: data}); err != nil {
		return fail(exitFailed, err)
	}
	if err := b.Flush(ctx); err != nil {
		return fail(exitFailed, err)
	}
	fmt.Fprintln(a.stdout, "Submitted goal: "+goal.GoalID)
	return nil
}

func (a *app) submitTask(ctx context.Context, f *submitFlags) error {
	if len(f.contexts) > 0 || f.to != "" || f.noWait {
		return errString("--context, --to and --no-wait apply to a goal, not to a task (--worker)")
	}
	if f.timeout <= 0 {
		return errString("--timeout must be positive")
	}
	if err := heddle.ValidateWorkerType(f.worker); err != nil {
		return fmt.Errorf("--worker: %v", err)
	}
	payload, err := a.readObject("--payload", f.payload, true)
	if err != nil {
		return err
	}
	task := heddle.NewTaskMessage(f.worker, payload)
	opts := []dispatch.Option{dispatch.Timeout(f.timeout)}
	if f.tier != "" {
		t, err := heddle.ParseModelTier(f.tier)
		if err != nil {
			return fmt.Errorf("--tier %q: want local, standard or frontier", f.tier)
		}
		opts = append(opts, dispatch.Tier(t))
	}
	if f.priority != "" {
		p, err := heddle.ParsePriority(f.priority)
		if err != nil {
			return fmt.Errorf("--priority %q: want low, normal, high or critical", f.priority)
		}
		opts = append(opts, dispatch.Priority(p))
	}
	if f.metadata != "" {
		md, err := a.readObject("--metadata", f.metadata, false)
		if err != nil {
			return err
		}
		opts = append(opts, dispatch.Metadata(md))
	}
	if f.maxRetries >= 0 {
		task.MaxRetries = f.maxRetries
	}
	if f.direct {
		opts = append(opts, dispatch.Direct())
	}
	log := a.mustLogger()
	b, err := a.dial("submit", log, preflightConnectTimeout)
	if err != nil {
		return err
	}
	defer b.Close()
	opts = append(opts, dispatch.With(heddle.WithLogger(log)))
	res, err := dispatch.Request(ctx, b, task, opts...)
	return a.printOutcome("task "+task.TaskID, res, err)
}

// printOutcome prints a result as indented JSON on stdout and maps the
// outcome to an exit code.
func (a *app) printOutcome(what string, res *heddle.TaskResult, err error) error {
	if res != nil {
		data, encErr := res.Encode()
		if encErr != nil {
			return fail(exitFailed, encErr)
		}
		var out bytes.Buffer
		if json.Indent(&out, data, "", "  ") != nil {
			out.Reset()
			out.Write(data)
		}
		out.WriteByte('\n')
		_, _ = a.stdout.Write(out.Bytes())
	}
	var ve *heddle.ValidationError
	switch {
	case err == nil && res.Status == heddle.StatusCompleted:
		return nil
	case err == nil:
		msg := res.Error
		if msg == "" {
			msg = "no error message"
		}
		return failf(exitFailed, "%s ended with status %s: %s", what, res.Status, msg)
	case errors.Is(err, dispatch.ErrTimeout):
		return fail(exitTimeout, err)
	case errors.Is(err, heddle.ErrConfig), errors.As(err, &ve):
		return err // a usage error: the command line built a bad task
	}
	return fail(exitFailed, err)
}

// readObject reads a JSON object given inline, from @file or from @-.
func (a *app) readObject(flag, v string, required bool) (map[string]any, error) {
	if v == "" {
		if required {
			return nil, fmt.Errorf("%s is required: a JSON object, @file or @-", flag)
		}
		return nil, nil
	}
	data := []byte(v)
	if name, ok := strings.CutPrefix(v, "@"); ok {
		var err error
		if name == "-" {
			data, err = io.ReadAll(a.stdin)
		} else {
			data, err = os.ReadFile(name)
		}
		if err != nil {
			return nil, fmt.Errorf("%s %s: %v", flag, v, err)
		}
	}
	obj, err := decodeObject(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", flag, err)
	}
	return obj, nil
}

// decodeObject decodes one JSON object, keeping numbers exact.
func decodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if obj == nil {
		return nil, errors.New("not a JSON object: null")
	}
	if dec.More() {
		return nil, errors.New("extra data after the JSON object")
	}
	return obj, nil
}

// parseContexts merges --context values: JSON objects and key=value pairs
// (values as strings, as the Python heddle submit takes them).
func parseContexts(in []string) (map[string]any, error) {
	out := map[string]any{}
	for _, c := range in {
		if strings.HasPrefix(strings.TrimSpace(c), "{") {
			obj, err := decodeObject([]byte(c))
			if err != nil {
				return nil, fmt.Errorf("--context %s: %v", c, err)
			}
			for k, v := range obj {
				out[k] = v
			}
			continue
		}
		k, v, ok := strings.Cut(c, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--context must be key=value or a JSON object, got: %s", c)
		}
		out[k] = v
	}
	return out, nil
}
