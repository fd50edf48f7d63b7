package pipeline

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/wire"
	"github.com/heddle-go/heddle/orchestrator"
)

// Defaults and reserved names of Config.
const (
	// GoalRoot is the first token of mapping paths into the goal
	// (goal.instruction, goal.context.<...>); no stage may be named so.
	GoalRoot = "goal"
)

// Stage is one step of a Pipeline: a task for WorkerType whose payload is
// built from the goal and from earlier stages' outputs.
type Stage struct {
	// Name identifies the stage in mapping paths, logs, errors and the
	// final output. Required, unique in the pipeline, made of letters,
	// digits, '_' and '-', not starting with '_' (the final output's
	// reserved keys start with '_'), and not GoalRoot.
	Name string
	// WorkerType is the worker the stage's task goes to. Required; it
	// must be usable in a subject.
	WorkerType string
	// Tier is the task's model_tier. Empty means DefaultModelTier (the
	// Python Heddle's pipeline defaults to local instead: set tier in
	// configs shared with it).
	Tier heddle.ModelTier
	// InputMapping builds the task payload: each key of the payload gets
	// the value at a dot path into the pipeline context. A path is
	// goal.instruction, goal.context[.<key>...], or
	// <stage>.output[.<key>...] for another stage, which makes this stage
	// depend on it. A numeric token indexes into an array at run time.
	InputMapping map[string]string
	// Condition, when set, runs the stage only if it holds:
	// "<path> == <literal>" or "<path> != <literal>", where the literal
	// is true, false, null (or none), a number, a quoted string ("..." or
	// '...'), or a bare word read as a string (classify.output.kind ==
	// invoice). Comparisons are typed: 3 equals the number 3, never the
	// string "3". A false condition, or a path missing at run time, skips
	// the stage. Paths in a condition add dependencies as mapping paths
	// do.
	Condition string
	// DependsOn lists stages that must finish before this one although no
	// path names them. It adds to the dependencies inferred from the
	// paths (the Python Heddle lets depends_on replace them; the union is
	// never wrong).
	DependsOn []string
	// Timeout bounds the wait for each attempt's result. Zero means
	// Config.Timeout.
	Timeout time.Duration
	// MaxRetries is how many times a stage that timed out or whose worker
	// failed is dispatched again, each time as a new task. Zero means no
	// retry.
	MaxRetries int
	// Contract, when set, holds the stage's input and output schemas: the
	// payload is checked against the input schema before dispatch and the
	// worker's output against the output schema on arrival (a violation
	// is a validation failure of the stage). They are also used when the
	// pipeline is built: every payload key the input schema requires must
	// be mapped, and a path into this stage's output must name fields its
	// output schema declares.
	Contract *contracts.Contract
	// ContinueOnError lets the pipeline go on when this stage fails: the
	// failure is recorded under "_errors" in the final output, and the
	// stages whose mappings read this stage's output are skipped.
	ContinueOnError bool
}

// Config defines a Pipeline. Zero values of the optional fields
// mean the documented defaults. ParseConfig reads one from YAML in
// the Python Heddle's shape.
type Config struct {
	// Name names the pipeline: it is the worker_type of the final results
	// and, by default, part of the queue group. Required; usable in a
	// queue group name.
	Name string
	// Stages are the pipeline's steps, in any order: the order of
	// execution comes from their dependencies. At least one is required.
	Stages []Stage
	// Timeout is a stage's default Timeout (timeout_seconds in the
	// Python Heddle). Zero means dispatch.DefaultTimeout.
	Timeout time.Duration
	// MaxConcurrentGoals bounds the goals Run processes at once. Zero
	// means orchestrator.DefaultMaxConcurrentGoals.
	MaxConcurrentGoals int
	// DrainTimeout bounds shutdown once Run's context ends: goals already
	// delivered still run and goals in progress finish until then; after
	// it their stages are cancelled and each gets a failed final result
	// (ErrShutdown). Zero means heddle.DefaultDrainTimeout.
	DrainTimeout time.Duration
	// QueueGroup is Run's queue group on SubjectGoalsIncoming. Empty
	// means heddle.PipelineQueueGroup, which every pipeline shares, Go
	// or Python, so that each goal runs once in a mixed mesh. Pipelines
	// that must each see every goal give each its own group.
	QueueGroup string
	// Direct publishes stage tasks straight to their worker's subject,
	// WorkerSubject(worker_type, tier), instead of through the Router on
	// SubjectTasksIncoming (as dispatch.Direct; dispatch_direct in YAML).
	Direct bool
	// AddressedOnly stops Run from serving the shared
	// SubjectGoalsIncoming: only goals addressed to the pipeline
	// (heddle.GoalSubject(Name); dispatch.To(Name) on SubmitGoal) reach
	// it, so a goal meant for another pipeline or an orchestrator is never
	// taken. A pipeline always serves its addressed goals.
	AddressedOnly bool
}

// Problem is one problem found in a Config.
type Problem struct {
	// Stage names the stage at fault; empty for the pipeline's own
	// fields.
	Stage string
	// Field is the config field at fault, as in the YAML shape:
	// worker_type, input_mapping.<key>, condition, depends_on,
	// pipeline_stages, ...
	Field string
	// Problem says what is wrong and, where it can, what would be right.
	Problem string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Stage != "" {
		fmt.Fprintf(&b, "stage %q: ", p.Stage)
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Problem)
	return b.String()
}

// ConfigError lists every problem of a Config, in stage
// order. Its text is, for example:
//
//	heddle: invalid pipeline "docs": stage "summarize": input_mapping.text: unknown stage "extrat" (stages: classify, extract, summarize)
type ConfigError struct {
	Pipeline string
	Problems []Problem
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "heddle: invalid pipeline %q", e.Pipeline)
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Is reports whether target is heddle.ErrConfig.
func (e *ConfigError) Is(target error) bool { return target == heddle.ErrConfig }

// Has reports whether some problem concerns stage ("" for the pipeline)
// and field.
func (e *ConfigError) Has(stage, field string) bool {
	return slices.ContainsFunc(e.Problems, func(p Problem) bool { return p.Stage == stage && p.Field == field })
}

// Validate checks cfg as New does, without a bus: it returns a
// *ConfigError listing every problem, or nil.
func (cfg Config) Validate() error {
	_, err := compile(cfg)
	return err
}

// pipelinePlan is a validated Config, ready to execute.
type pipelinePlan struct {
	cfg    Config // defaults applied
	stages map[string]*pipelineStage
	levels [][]string
}

// pipelineStage is a validated Stage with its parsed paths.
type pipelineStage struct {
	Stage
	mapping  []pipelineMapping // sorted by key
	cond     *pipelineCondition
	dataDeps []string // stages whose output the mapping reads, sorted
	deps     []string // every dependency, sorted
}

type pipelineMapping struct {
	key  string
	path pipelinePath
}

// checker accumulates the problems of one config.
type checker struct {
	cfg      Config
	problems []Problem
	byName   map[string]*Stage
	names    []string // sorted
	outputs  map[string]any
}

func (c *checker) add(stage, field, format string, args ...any) {
	c.problems = append(c.problems, Problem{Stage: stage, Field: field, Problem: fmt.Sprintf(format, args...)})
}

// compile validates cfg and builds its plan.
func compile(cfg Config) (*pipelinePlan, error) {
	c := &checker{cfg: cfg, byName: map[string]*Stage{}, outputs: map[string]any{}}
	c.checkPipeline()
	if cfg.Timeout == 0 {
		cfg.Timeout = dispatch.DefaultTimeout
	}
	if cfg.MaxConcurrentGoals == 0 {
		cfg.MaxConcurrentGoals = orchestrator.DefaultMaxConcurrentGoals
	}
	if cfg.QueueGroup == "" {
		cfg.QueueGroup = heddle.PipelineQueueGroup
	}
	for i := range cfg.Stages {
		s := &cfg.Stages[i]
		if s.Name == "" || c.byName[s.Name] != nil {
			continue
		}
		c.byName[s.Name] = s
		c.names = append(c.names, s.Name)
	}
	slices.Sort(c.names)
	plan := &pipelinePlan{cfg: cfg, stages: map[string]*pipelineStage{}}
	seen := map[string]bool{}
	for i := range cfg.Stages {
		s := cfg.Stages[i]
		ps := c.checkStage(&s, i, seen)
		if ps != nil {
			plan.stages[s.Name] = ps
		}
	}
	plan.levels = c.levels(plan.stages)
	if len(c.problems) > 0 {
		return nil, &ConfigError{Pipeline: cfg.Name, Problems: c.problems}
	}
	return plan, nil
}

func (c *checker) checkPipeline() {
	cfg := c.cfg
	if cfg.Name == "" {
		c.add("", "name", "required")
	} else if err := bus.ValidatePublishSubject(cfg.Name); err != nil {
		c.add("", "name", "%q cannot be used as a name: %v", cfg.Name, err)
	} else if _, err := heddle.GoalSubject(cfg.Name); err != nil {
		c.add("", "name", "%q cannot be used as a name: %v", cfg.Name, err)
	}
	if cfg.DrainTimeout < 0 {
		c.add("", "drain_timeout", "must not be negative, got %v", cfg.DrainTimeout)
	}
	if cfg.QueueGroup != "" {
		if err := bus.ValidateQueue(cfg.QueueGroup); err != nil {
			c.add("", "queue_group", "%q is not a valid queue group name", cfg.QueueGroup)
		}
	}
	if cfg.Timeout < 0 {
		c.add("", "timeout_seconds", "must not be negative, got %v", cfg.Timeout)
	}
	if cfg.MaxConcurrentGoals < 0 {
		c.add("", "max_concurrent_goals", "must not be negative, got %d", cfg.MaxConcurrentGoals)
	}
	if len(cfg.Stages) == 0 {
		c.add("", "pipeline_stages", "at least one stage is required")
	}
}

// checkStage validates one stage; it returns nil when the stage cannot
// take part in the plan (no usable name).
func (c *checker) checkStage(s *Stage, index int, seen map[string]bool) *pipelineStage {
	label := s.Name
	switch {
	case s.Name == "":
		label = fmt.Sprintf("#%d", index+1)
		c.add(label, "name", "required")
	case seen[s.Name]:
		c.add(s.Name, "name", "duplicate stage name; stage names must be unique")
	case s.Name == GoalRoot:
		c.add(s.Name, "name", "%q is reserved for paths into the goal; rename the stage", GoalRoot)
	case !validName(s.Name):
		c.add(s.Name, "name", "use letters, digits, '_' and '-' only, not starting with '_'")
	}
	valid := s.Name != "" && !seen[s.Name]
	seen[s.Name] = true

	if s.WorkerType == "" {
		c.add(label, "worker_type", "required")
	} else if err := bus.ValidatePublishSubject(heddle.WorkerSubject(s.WorkerType, heddle.TierStandard)); err != nil {
		c.add(label, "worker_type", "%q cannot be used in a subject (no whitespace, wildcards or empty tokens)", s.WorkerType)
	}
	if s.Tier == "" {
		s.Tier = heddle.DefaultModelTier
	} else if !s.Tier.Valid() {
		c.add(label, "tier", "%s", wire.EnumProblem(string(s.Tier), heddle.ModelTiers()))
	}
	if s.Timeout < 0 {
		c.add(label, "timeout_seconds", "must not be negative, got %v", s.Timeout)
	} else if s.Timeout == 0 {
		s.Timeout = c.cfg.Timeout
		if s.Timeout <= 0 {
			s.Timeout = dispatch.DefaultTimeout
		}
	}
	if s.MaxRetries < 0 {
		c.add(label, "max_retries", "must not be negative, got %d", s.MaxRetries)
	}

	ps := &pipelineStage{Stage: *s}
	deps := map[string]bool{}
	data := map[string]bool{}
	keys := make([]string, 0, len(s.InputMapping))
	for k := range s.InputMapping {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		field := "input_mapping." + k
		if k == "" {
			c.add(label, "input_mapping", "a payload key is empty")
			continue
		}
		p, ok := c.checkPath(label, s.Name, field, s.InputMapping[k])
		if !ok {
			continue
		}
		ps.mapping = append(ps.mapping, pipelineMapping{key: k, path: p})
		if st := p.stage(); st != "" {
			deps[st], data[st] = true, true
		}
	}
	c.checkRequiredInputs(label, s)
	if s.Condition != "" {
		cond, err := parseCondition(s.Condition)
		if err != nil {
			c.add(label, "condition", "%v", err)
		} else if p, ok := c.checkPath(label, s.Name, "condition", cond.path.raw); ok {
			cond.path = p
			ps.cond = cond
			if st := p.stage(); st != "" {
				deps[st] = true
			}
		}
	}
	for _, d := range s.DependsOn {
		switch {
		case d == s.Name:
			c.add(label, "depends_on", "the stage depends on itself")
		case c.byName[d] == nil:
			c.add(label, "depends_on", "unknown stage %q (stages: %s)", d, strings.Join(c.names, ", "))
		default:
			deps[d] = true
		}
	}
	for d := range deps {
		ps.deps = append(ps.deps, d)
	}
	for d := range data {
		ps.dataDeps = append(ps.dataDeps, d)
	}
	slices.Sort(ps.deps)
	slices.Sort(ps.dataDeps)
	if !valid {
		return nil
	}
	return ps
}

// checkPath validates a mapping or condition path of stage self.
func (c *checker) checkPath(label, self, field, raw string) (pipelinePath, bool) {
	p, err := parsePath(raw)
	if err != nil {
		c.add(label, field, "%v", err)
		return p, false
	}
	root := p.tokens[0]
	if root == GoalRoot {
		if msg := checkGoalPath(p); msg != "" {
			c.add(label, field, "path %q: %s", raw, msg)
			return p, false
		}
		return p, true
	}
	switch {
	case root == self:
		c.add(label, field, "path %q refers to the stage's own output; a stage can only read earlier stages", raw)
		return p, false
	case c.byName[root] == nil:
		c.add(label, field, "path %q: unknown stage %q (paths start with %s or a stage name: %s)",
			raw, root, GoalRoot, strings.Join(c.names, ", "))
		return p, false
	case len(p.tokens) < 2 || p.tokens[1] != outputKey:
		c.add(label, field, "path %q: a stage's result is read as %s.%s[.<field>...]", raw, root, outputKey)
		return p, false
	}
	if msg := schemaField(c.outputSchema(root), p.tokens[2:]); msg != "" {
		c.add(label, field, "path %q: stage %q output %s", raw, root, msg)
		return p, false
	}
	return p, true
}

// outputSchema returns the decoded output schema document of stage name,
// nil when it has none.
func (c *checker) outputSchema(name string) any {
	if doc, ok := c.outputs[name]; ok {
		return doc
	}
	doc := schemaDoc(c.byName[name].Contract.Output())
	c.outputs[name] = doc
	return doc
}

// checkRequiredInputs reports the payload keys the stage's input schema
// requires and its mapping does not provide: such a payload could never be
// valid.
func (c *checker) checkRequiredInputs(label string, s *Stage) {
	doc := schemaDoc(s.Contract.Input())
	if doc == nil {
		return
	}
	for _, req := range schemaRequired(doc) {
		if _, ok := s.InputMapping[req]; !ok {
			c.add(label, "input_mapping", "lacks %q, which the stage's input_schema requires", req)
		}
	}
}

func validName(name string) bool {
	if name == "" || name[0] == '_' {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
