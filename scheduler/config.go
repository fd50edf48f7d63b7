package scheduler

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/heddle-go/heddle"
)

// Defaults of Config, applied when a field is left zero.
const (
	// DefaultLateTolerance is Config.LateTolerance's default: a fire up
	// to a second after its scheduled time is on time. The Python
	// scheduler looks at its schedules once a second, so its fires are
	// routinely that late.
	DefaultLateTolerance = time.Second
	// DefaultTaskTier is the model_tier of a scheduled task whose task
	// config names none: local, as in the Python scheduler (a task made
	// elsewhere defaults to heddle.DefaultModelTier, standard).
	DefaultTaskTier = heddle.TierLocal
	// MinInterval is the shortest interval_seconds accepted (a
	// millisecond), so that every interval is a usable timer period.
	MinInterval = time.Millisecond
	// MetadataScheduledBy is the TaskMessage.Metadata key under which a
	// scheduled task names the schedule that sent it, as the Python
	// scheduler writes it.
	MetadataScheduledBy = "scheduled_by"
)

// DispatchType says what a schedule sends when it fires.
type DispatchType string

// The dispatch types.
const (
	// DispatchGoal sends an OrchestratorGoal to heddle.SubjectGoalsIncoming,
	// or to heddle.GoalSubject(GoalSpec.To) when the goal names its server.
	DispatchGoal DispatchType = "goal"
	// DispatchTask sends a TaskMessage to heddle.SubjectTasksIncoming,
	// where the router routes it.
	DispatchTask DispatchType = "task"
)

// Config is a scheduler, in the shape of the Python Heddle's scheduler
// config (configs/schedulers/*.yaml):
//
//	name: nightly
//	timezone: Europe/Paris        # Go only; default UTC
//	schedules:
//	  - name: hourly_summarize
//	    cron: "0 * * * *"         # or interval_seconds: 300, never both
//	    dispatch_type: goal       # goal | task
//	    goal:
//	      instruction: Summarize the new documents
//	      context: {source: incoming_docs}
//	      priority: normal        # low | normal | high | critical
//	      to: docs                # Go only: heddle.GoalSubject("docs")
//	  - name: every_5m_healthcheck
//	    interval_seconds: 300
//	    dispatch_type: task
//	    task:
//	      worker_type: health_checker
//	      payload: {check: system_status}
//	      model_tier: local       # local | standard | frontier; default local
//	      priority: low
//
// ParseConfig and LoadConfig read that document; a Config built in Go
// works the same. New validates it (see Validate).
type Config struct {
	// Name identifies the scheduler in its events. Required.
	Name string `yaml:"name"`
	// Timezone is the IANA name of the time zone the schedules' cron
	// expressions are read in, unless a schedule names its own. Empty
	// means UTC, the Python scheduler's only zone. "Local" is refused: a
	// schedule should not change with the host it runs on. Zones are
	// read from the system's tzdata or from the program's (import
	// time/tzdata to embed it).
	Timezone string `yaml:"timezone,omitempty"`
	// Schedules are the timers. An empty list is valid, as in the Python
	// scheduler: Run then only waits.
	Schedules []Schedule `yaml:"schedules"`

	// LateTolerance is how late a fire may come before it is reported as
	// scheduler.late. Zero means DefaultLateTolerance.
	LateTolerance time.Duration `yaml:"-"`
	// DrainTimeout bounds Run's shutdown: a publish still under way when
	// Run's context ends gets that long to finish. Zero means
	// heddle.DefaultDrainTimeout.
	DrainTimeout time.Duration `yaml:"-"`

	// lines maps the dotted path of each key ParseConfig read to its
	// line, for error messages and to tell a key given empty from one
	// not given.
	lines map[string]int
}

// Schedule is one timer and what it sends.
type Schedule struct {
	// Name identifies the schedule in events, Stats and the scheduled
	// tasks' metadata (MetadataScheduledBy). Required and unique within
	// the Config.
	Name string `yaml:"name"`
	// Cron is a standard five-field cron expression (minute hour
	// day-of-month month day-of-week, with names such as MON and JAN, ?,
	// ranges, lists and steps), or one of @yearly, @annually, @monthly,
	// @weekly, @daily, @midnight and @hourly, read in Timezone. Exactly
	// one of Cron and IntervalSeconds is given. Not accepted: a seconds
	// field, @every (use IntervalSeconds), a TZ= or CRON_TZ= prefix (use
	// Timezone), and croniter's L, W and # extensions.
	Cron string `yaml:"cron,omitempty"`
	// IntervalSeconds fires the schedule every that many seconds
	// (fractions allowed, at least MinInterval), counted from the start
	// of Run: the first fire comes one interval after Run starts, as in
	// the Python scheduler's code (its example config says "immediately",
	// which it does not do).
	IntervalSeconds float64 `yaml:"interval_seconds,omitempty"`
	// Timezone overrides Config.Timezone for this schedule's Cron. It
	// cannot be given with IntervalSeconds, on which it has no effect.
	Timezone string `yaml:"timezone,omitempty"`
	// DispatchType is what the schedule sends. Required.
	DispatchType DispatchType `yaml:"dispatch_type"`
	// Goal is the goal sent when DispatchType is DispatchGoal; it must be
	// nil otherwise.
	Goal *GoalSpec `yaml:"goal,omitempty"`
	// Task is the task sent when DispatchType is DispatchTask; it must be
	// nil otherwise.
	Task *TaskSpec `yaml:"task,omitempty"`
}

// GoalSpec is the goal a schedule sends: each fire sends a new
// OrchestratorGoal (fresh goal_id and created_at) with these fields.
type GoalSpec struct {
	// Instruction is the goal's instruction. Required (in a YAML config
	// the key is required and may be empty, as in the Python scheduler).
	Instruction string `yaml:"instruction"`
	// Context is the goal's context; nil sends an empty object. Every
	// value must be encodable as JSON.
	Context map[string]any `yaml:"context,omitempty"`
	// Priority is the goal's priority; empty means
	// heddle.DefaultPriority.
	Priority heddle.Priority `yaml:"priority,omitempty"`
	// To, a Go extension, addresses the goal to the pipeline or
	// orchestrator of that name: it is published on
	// heddle.GoalSubject(To) instead of heddle.SubjectGoalsIncoming. The
	// Python scheduler ignores the key and publishes such a goal on the
	// shared subject.
	To string `yaml:"to,omitempty"`
}

// TaskSpec is the task a schedule sends: each fire sends a new
// TaskMessage (fresh task_id and created_at) to heddle.SubjectTasksIncoming
// with these fields, heddle.DefaultMaxRetries, and Metadata
// {MetadataScheduledBy: the schedule's name}.
type TaskSpec struct {
	// WorkerType is the task's worker_type. Required; it must be usable
	// in a subject.
	WorkerType string `yaml:"worker_type"`
	// Payload is the task's payload; nil sends an empty object, as the
	// Python scheduler does when the key is absent. Every value must be
	// encodable as JSON.
	Payload map[string]any `yaml:"payload,omitempty"`
	// ModelTier is the task's model_tier; empty means DefaultTaskTier.
	ModelTier heddle.ModelTier `yaml:"model_tier,omitempty"`
	// Priority is the task's priority; empty means
	// heddle.DefaultPriority.
	Priority heddle.Priority `yaml:"priority,omitempty"`
}

// ConfigError lists every problem found in one scheduler config. Its
// text is, for example:
//
//	heddle: invalid scheduler config in nightly.yaml: schedules[2].cron: invalid cron expression '61 * * * *': end of range (61) above maximum (59): 61 (line 14)
//
// It matches heddle.ErrConfig (errors.Is).
type ConfigError struct {
	// Source is the file the config came from; empty for a config parsed
	// from bytes or built in Go.
	Source string
	// Problems names each one by its path in the document (name,
	// schedules[2].cron, schedules[0].task.model_tier), or by the
	// schedule (schedules[1]) for a problem with several of its keys;
	// Field is empty for a problem with the whole document. Each Problem
	// ends with the YAML line, "(line 14)", when the config was parsed.
	Problems []heddle.FieldError
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("heddle: invalid scheduler config")
	if e.Source != "" {
		b.WriteString(" in ")
		b.WriteString(e.Source)
	}
	for i, f := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.String())
	}
	return b.String()
}

// Is reports whether target is heddle.ErrConfig.
func (e *ConfigError) Is(target error) bool { return target == heddle.ErrConfig }

// problems gathers the problems of one config, one per path: the first
// found for a path (a value of the wrong type, say) makes later checks of
// the same path redundant.
type problems struct {
	lines  map[string]int
	fields []heddle.FieldError
	seen   map[string]bool
	// broken holds the paths of values of the wrong shape (a schedule
	// that is not a mapping): nothing more is said of what is under them.
	broken []string
}

// breaks records a problem with the value at path and silences those
// under it.
func (p *problems) breaks(path, format string, args ...any) {
	p.add(path, format, args...)
	p.broken = append(p.broken, path)
}

// add records a problem at path, with the line of path (or of the
// nearest enclosing path) when the config was parsed.
func (p *problems) add(path, format string, args ...any) {
	p.addAt(path, p.line(path), format, args...)
}

func (p *problems) addAt(path string, line int, format string, args ...any) {
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if p.seen[path] {
		return
	}
	for _, b := range p.broken {
		if strings.HasPrefix(path, b) && (len(path) == len(b) || path[len(b)] == '.' || path[len(b)] == '[') {
			return
		}
	}
	p.seen[path] = true
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		msg += " (line " + strconv.Itoa(line) + ")"
	}
	p.fields = append(p.fields, heddle.FieldError{Field: path, Problem: msg})
}

// line returns the line of path, or of the nearest path enclosing it
// that has one; 0 when the config was not parsed.
func (p *problems) line(path string) int {
	for path != "" {
		if n, ok := p.lines[path]; ok {
			return n
		}
		cut := max(strings.LastIndexByte(path, '.'), strings.LastIndexByte(path, '['))
		if cut < 0 {
			return 0
		}
		path = path[:cut]
	}
	return 0
}

func (p *problems) err(source string) error {
	if len(p.fields) == 0 {
		return nil
	}
	// In document order: the checks of types and of values run in turn.
	slices.SortStableFunc(p.fields, func(a, b heddle.FieldError) int { return cmp.Compare(p.line(a.Field), p.line(b.Field)) })
	return &ConfigError{Source: source, Problems: p.fields}
}

// Validate reports every problem of c in one *ConfigError, with the
// Python scheduler's checks and wording where it has them:
//
//   - name is required, and so is schedules in a parsed config;
//   - each schedule needs name (unique) and dispatch_type, and exactly
//     one of cron and interval_seconds ("cannot specify both 'cron' and
//     'interval_seconds'", "must specify either 'cron' or
//     'interval_seconds'");
//   - cron must parse ("invalid cron expression '...': why") and fire at
//     least once in five years; interval_seconds must be a positive number
//     (at least MinInterval);
//   - dispatch_type must be goal or task; a goal needs a goal with
//     instruction, a task a task with worker_type;
//
// and these checks the Python scheduler leaves to the first fire or does
// not make: model_tier and priority must be known values, worker_type and
// to usable in subjects, payload and context encodable as JSON, time
// zones known IANA names, and a schedule carries only the goal or task
// its dispatch_type sends.
func (c Config) Validate() error {
	p := problems{lines: c.lines}
	c.validate(&p)
	return p.err("")
}

// has reports whether path was given: a key present in the parsed
// document, or a field set in Go.
func (c Config) has(path string, set bool) bool {
	if set {
		return true
	}
	_, ok := c.lines[path]
	return ok
}

func (c Config) validate(p *problems) {
	if !c.has("name", c.Name != "") {
		p.add("name", "missing required key 'name'")
	}
	if c.lines != nil && !c.has("schedules", c.Schedules != nil) {
		p.add("schedules", "missing required key 'schedules'")
	}
	checkZone(p, "timezone", c.Timezone)
	first := map[string]int{}
	for i, s := range c.Schedules {
		at := fmt.Sprintf("schedules[%d]", i)
		c.validateSchedule(p, at, s)
		if s.Name == "" {
			continue
		}
		if j, dup := first[s.Name]; dup {
			p.add(at+".name", "duplicate schedule name '%s' (first at schedules[%d])", s.Name, j)
			continue
		}
		first[s.Name] = i
	}
}

func (c Config) validateSchedule(p *problems, at string, s Schedule) {
	if !c.has(at+".name", s.Name != "") {
		p.add(at+".name", "missing required key 'name'")
	} else if s.Name == "" {
		p.add(at+".name", "must not be empty")
	}
	if !c.has(at+".dispatch_type", s.DispatchType != "") {
		p.add(at+".dispatch_type", "missing required key 'dispatch_type'")
	}
	hasCron := c.has(at+".cron", s.Cron != "")
	hasInterval := c.has(at+".interval_seconds", s.IntervalSeconds != 0)
	switch {
	case hasCron && hasInterval:
		p.add(at, "cannot specify both 'cron' and 'interval_seconds'")
	case !hasCron && !hasInterval:
		p.add(at, "must specify either 'cron' or 'interval_seconds'")
	}
	if hasCron {
		if _, err := parseCron(s.Cron); err != nil {
			p.add(at+".cron", "invalid cron expression '%s': %v", s.Cron, err)
		}
	}
	if hasInterval {
		if _, err := interval(s.IntervalSeconds); err != nil {
			p.add(at+".interval_seconds", "'interval_seconds' must be a positive number, %v", err)
		}
	}
	if s.Timezone != "" || c.has(at+".timezone", false) {
		if hasInterval && !hasCron {
			p.add(at+".timezone", "has no effect on an interval schedule; give it only with cron")
		} else {
			checkZone(p, at+".timezone", s.Timezone)
		}
	}
	switch s.DispatchType {
	case "":
	case DispatchGoal:
		if s.Goal == nil {
			p.add(at+".goal", "dispatch_type 'goal' requires a 'goal' dict")
		} else {
			c.validateGoal(p, at+".goal", *s.Goal)
		}
		if s.Task != nil {
			p.add(at+".task", "given, but dispatch_type is 'goal', which sends the goal only: remove it")
		}
	case DispatchTask:
		if s.Task == nil {
			p.add(at+".task", "dispatch_type 'task' requires a 'task' dict")
		} else {
			c.validateTask(p, at+".task", *s.Task)
		}
		if s.Goal != nil {
			p.add(at+".goal", "given, but dispatch_type is 'task', which sends the task only: remove it")
		}
	default:
		p.add(at+".dispatch_type", "'dispatch_type' must be 'goal' or 'task', got '%s'", s.DispatchType)
	}
}

func (c Config) validateGoal(p *problems, at string, g GoalSpec) {
	if !c.has(at+".instruction", g.Instruction != "") {
		p.add(at+".instruction", "goal config missing 'instruction'")
	}
	checkJSON(p, at+".context", g.Context)
	checkPriority(p, at+".priority", g.Priority)
	if c.has(at+".to", g.To != "") {
		if _, err := heddle.GoalSubject(g.To); err != nil {
			p.add(at+".to", "'%s' cannot name a goal server in a subject (no white space, wildcards or empty tokens)", g.To)
		}
	}
}

func (c Config) validateTask(p *problems, at string, t TaskSpec) {
	if !c.has(at+".worker_type", t.WorkerType != "") {
		p.add(at+".worker_type", "task config missing 'worker_type'")
	} else if heddle.ValidateWorkerType(t.WorkerType) != nil {
		p.add(at+".worker_type", "'%s' cannot be used as a worker type in subjects (no white space, wildcards or empty tokens)", t.WorkerType)
	}
	checkJSON(p, at+".payload", t.Payload)
	if t.ModelTier != "" && !t.ModelTier.Valid() {
		p.add(at+".model_tier", "'model_tier' must be one of %s, got '%s'", names(heddle.ModelTiers()), t.ModelTier)
	}
	checkPriority(p, at+".priority", t.Priority)
}

var priorities = []heddle.Priority{heddle.PriorityLow, heddle.PriorityNormal, heddle.PriorityHigh, heddle.PriorityCritical}

func checkPriority(p *problems, at string, pr heddle.Priority) {
	if pr != "" && !pr.Valid() {
		p.add(at, "'priority' must be one of %s, got '%s'", names(priorities), pr)
	}
}

func names[T ~string](vs []T) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return strings.Join(out, ", ")
}

// checkJSON requires m to encode as JSON, as the message carrying it must.
func checkJSON(p *problems, at string, m map[string]any) {
	if m == nil {
		return
	}
	if _, err := json.Marshal(m); err != nil {
		p.add(at, "cannot be sent as JSON: %v", err)
	}
}

func checkZone(p *problems, at, name string) {
	if _, err := zone(name); err != nil {
		p.add(at, "%v", err)
	}
}

// zone returns the location named name: UTC for "", never Local.
func zone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, fmt.Errorf("time zone 'Local' depends on the host; name an IANA zone such as Europe/Paris, or UTC")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone '%s': want an IANA name such as Europe/Paris, from the system's tzdata "+
			"or the program's (import time/tzdata)", name)
	}
	return loc, nil
}

// interval converts interval_seconds to a period of at least MinInterval.
func interval(seconds float64) (time.Duration, error) {
	if math.IsNaN(seconds) || seconds <= 0 {
		return 0, fmt.Errorf("got %v", seconds)
	}
	if seconds > float64(math.MaxInt64)/float64(time.Second) {
		return 0, fmt.Errorf("got %v, more than a time.Duration holds", seconds)
	}
	d := time.Duration(seconds * float64(time.Second))
	if d < MinInterval {
		return 0, fmt.Errorf("got %v, less than the minimum %v", seconds, MinInterval.Seconds())
	}
	return d, nil
}
