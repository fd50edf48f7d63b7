package scheduler_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones the tests name, whatever the host has

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/scheduler"
)

// pythonExample is a config in the shape of the Python Heddle's
// configs/schedulers/example.yaml.
const pythonExample = `
name: "default_scheduler"
schedules:
  - name: "hourly_summarize"
    cron: "0 * * * *"
    dispatch_type: "goal"
    goal:
      instruction: "Summarize all new documents from the last hour"
      context:
        source: "incoming_docs"
      priority: "normal"
  - name: "every_5m_healthcheck"
    interval_seconds: 300
    dispatch_type: "task"
    task:
      worker_type: "health_checker"
      payload:
        check: "system_status"
      model_tier: "local"
      priority: "low"
`

func TestParseConfigReadsThePythonSchedulersConfig(t *testing.T) {
	cfg, err := scheduler.ParseConfig([]byte(pythonExample))
	if err != nil {
		t.Fatal(err)
	}
	want := []scheduler.Schedule{
		{
			Name: "hourly_summarize", Cron: "0 * * * *", DispatchType: scheduler.DispatchGoal,
			Goal: &scheduler.GoalSpec{
				Instruction: "Summarize all new documents from the last hour",
				Context:     map[string]any{"source": "incoming_docs"},
				Priority:    heddle.PriorityNormal,
			},
		},
		{
			Name: "every_5m_healthcheck", IntervalSeconds: 300, DispatchType: scheduler.DispatchTask,
			Task: &scheduler.TaskSpec{
				WorkerType: "health_checker",
				Payload:    map[string]any{"check": "system_status"},
				ModelTier:  heddle.TierLocal,
				Priority:   heddle.PriorityLow,
			},
		},
	}
	if cfg.Name != "default_scheduler" || cfg.Timezone != "" || !reflect.DeepEqual(cfg.Schedules, want) {
		t.Errorf("ParseConfig = %+v\nwant name default_scheduler and schedules %+v", cfg, want)
	}
	if _, err := scheduler.New(membus.New(), cfg); err != nil {
		t.Errorf("New refuses the parsed config: %v", err)
	}
}

func TestParseConfigFollowsAnchorsAliasesAndMergeKeys(t *testing.T) {
	cfg, err := scheduler.ParseConfig([]byte(`
name: merged
defaults: &task
  dispatch_type: task
  task: {worker_type: reporter, model_tier: standard}
schedules:
  - <<: *task
    name: morning
    cron: "0 8 * * *"
  - <<: *task
    name: evening
    cron: "0 20 * * *"
    task: {worker_type: archiver}
`))
	if err == nil || err.Error() != "heddle: invalid scheduler config: defaults: unknown key 'defaults' (known keys here: name, timezone, schedules) (line 3)" {
		t.Fatalf("ParseConfig = %v; want only the unknown top-level key refused", err)
	}
	cfg, err = scheduler.ParseConfig([]byte(`
name: merged
schedules:
  - &morning
    name: morning
    cron: "0 8 * * *"
    dispatch_type: task
    task: {worker_type: reporter, model_tier: standard}
  - <<: *morning
    name: evening
    cron: "0 20 * * *"
    task: {worker_type: archiver}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Schedules) != 2 {
		t.Fatalf("got %d schedules, want 2", len(cfg.Schedules))
	}
	evening := cfg.Schedules[1]
	if evening.Name != "evening" || evening.Cron != "0 20 * * *" || evening.DispatchType != scheduler.DispatchTask ||
		!reflect.DeepEqual(evening.Task, &scheduler.TaskSpec{WorkerType: "archiver"}) {
		t.Errorf("the merged schedule is %+v (task %+v); want its own name, cron and task over the merged ones", evening, evening.Task)
	}
}

// schedule is a valid schedule entry of a config document, indented as
// an item of schedules, with lines replaced or added by extra.
func doc(entries ...string) string {
	return "name: test\nschedules:\n" + strings.Join(entries, "")
}

func TestParseConfigNamesEveryProblemByPathAndLine(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want []string
	}{
		{"an empty document is refused, not taken for no schedules", "",
			[]string{"the document is empty (want a mapping with name and schedules)"}},
		{"a document that is not a mapping", "- a\n",
			[]string{"expected a mapping with name and schedules, got a list (line 1)"}},
		{"two documents", "name: a\nschedules: []\n---\nname: b\n",
			[]string{"more than one YAML document: the config must be one document (line 3)"}},
		{"both top-level keys missing", "timezone: UTC\n",
			[]string{"name: missing required key 'name'", "schedules: missing required key 'schedules'"}},
		{"top-level keys of the wrong type", "name: 5\nschedules: every hour\n",
			[]string{"name: expected a string, got integer 5 (line 1)", `schedules: key 'schedules' expected a list, got string "every hour" (line 2)`}},
		{"a schedule that is not a mapping", doc("  - hourly\n"),
			[]string{`schedules[0]: expected a mapping, got string "hourly" (line 3)`}},
		{"a schedule without name and dispatch_type", doc("  - cron: '* * * * *'\n"),
			[]string{"schedules[0].name: missing required key 'name' (line 3)", "schedules[0].dispatch_type: missing required key 'dispatch_type' (line 3)"}},
		{"both cron and interval_seconds", doc("  - {name: a, cron: '* * * * *', interval_seconds: 60, dispatch_type: goal, goal: {instruction: x}}\n"),
			[]string{"schedules[0]: cannot specify both 'cron' and 'interval_seconds' (line 3)"}},
		{"neither cron nor interval_seconds", doc("  - {name: a, dispatch_type: goal, goal: {instruction: x}}\n"),
			[]string{"schedules[0]: must specify either 'cron' or 'interval_seconds' (line 3)"}},
		{"an empty cron counts as given", doc("  - {name: a, cron: '', dispatch_type: goal, goal: {instruction: x}}\n"),
			[]string{"schedules[0].cron: invalid cron expression '': empty expression (line 3)"}},
		{"a cron field out of range", doc("  - name: a\n    cron: '61 * * * *'\n    dispatch_type: goal\n    goal: {instruction: x}\n"),
			[]string{"schedules[0].cron: invalid cron expression '61 * * * *': end of range (61) above maximum (59): 61 (line 4)"}},
		{"a cron with a seconds field", doc("  - name: a\n    cron: '0 0 * * * *'\n    dispatch_type: goal\n    goal: {instruction: x}\n"),
			[]string{"schedules[0].cron: invalid cron expression '0 0 * * * *': expected exactly 5 fields, found 6: [0 0 * * * *] (line 4)"}},
		{"a cron that never fires", doc("  - name: a\n    cron: '0 0 30 2 *'\n    dispatch_type: goal\n    goal: {instruction: x}\n"),
			[]string{"schedules[0].cron: invalid cron expression '0 0 30 2 *': it matches no time within five years (line 4)"}},
		{"a cron with its own time zone prefix", doc("  - name: a\n    cron: 'CRON_TZ=Europe/Paris 0 8 * * *'\n    dispatch_type: goal\n    goal: {instruction: x}\n"),
			[]string{"schedules[0].cron: invalid cron expression 'CRON_TZ=Europe/Paris 0 8 * * *': a time zone prefix is not accepted; name the zone in the 'timezone' key (line 4)"}},
		{"a bare TZ= prefix, which would crash the parser", doc("  - name: a\n    cron: 'TZ=UTC'\n    dispatch_type: goal\n    goal: {instruction: x}\n"),
			[]string{"schedules[0].cron: invalid cron expression 'TZ=UTC': a time zone prefix is not accepted; name the zone in the 'timezone' key (line 4)"}},
		{"@every in cron", doc("  - name: a\n    cron: '@every 5m'\n    dispatch_type: goal\n    goal: {instruction: x}\n"),
			[]string{"schedules[0].cron: invalid cron expression '@every 5m': @every is not accepted; use 'interval_seconds' instead of 'cron' (line 4)"}},
		{"a cron that is not a string", doc("  - name: a\n    cron: 5\n    dispatch_type: goal\n    goal: {instruction: x}\n"),
			[]string{"schedules[0].cron: expected a string, got integer 5 (line 4)"}},
		{"a zero interval", doc("  - name: a\n    interval_seconds: 0\n    dispatch_type: goal\n    goal: {instruction: x}\n"),
			[]string{"schedules[0].interval_seconds: 'interval_seconds' must be a positive number, got 0 (line 4)"}},
		{"a negative interval", doc("  - name: a\n    interval_seconds: -5\n    dispatch_type: goal\n    goal: {instruction: x}\n"),
			[]string{"schedules[0].interval_seconds: 'interval_seconds' must be a positive number, got -5 (line 4)"}},
		{"an interval below a millisecond", doc("  - name: a\n    interval_seconds: 0.0000001\n    dispatch_type: goal\n    goal: {instruction: x}\n"),
			[]string{"schedules[0].interval_seconds: 'interval_seconds' must be a positive number, got 1e-07, less than the minimum 0.001 (line 4)"}},
		{"an infinite interval", doc("  - name: a\n    interval_seconds: .inf\n    dispatch_type: goal\n    goal: {instruction: x}\n"),
			[]string{"schedules[0].interval_seconds: 'interval_seconds' must be a positive number, got +Inf, more than a time.Duration holds (line 4)"}},
		{"an interval given as a duration string", doc("  - name: a\n    interval_seconds: 5m\n    dispatch_type: goal\n    goal: {instruction: x}\n"),
			[]string{`schedules[0].interval_seconds: 'interval_seconds' must be a positive number, got string "5m" (line 4)`}},
		{"a boolean interval, which Python would take for 1", doc("  - name: a\n    interval_seconds: true\n    dispatch_type: goal\n    goal: {instruction: x}\n"),
			[]string{"schedules[0].interval_seconds: 'interval_seconds' must be a positive number, got boolean true (line 4)"}},
		{"an unknown dispatch type", doc("  - name: a\n    interval_seconds: 60\n    dispatch_type: job\n"),
			[]string{"schedules[0].dispatch_type: 'dispatch_type' must be 'goal' or 'task', got 'job' (line 5)"}},
		{"a goal schedule without its goal", doc("  - name: a\n    interval_seconds: 60\n    dispatch_type: goal\n"),
			[]string{"schedules[0].goal: dispatch_type 'goal' requires a 'goal' dict (line 3)"}},
		{"a goal schedule with a null goal", doc("  - name: a\n    interval_seconds: 60\n    dispatch_type: goal\n    goal:\n"),
			[]string{"schedules[0].goal: dispatch_type 'goal' requires a 'goal' dict (line 6)"}},
		{"a goal that is not a mapping", doc("  - name: a\n    interval_seconds: 60\n    dispatch_type: goal\n    goal: summarize\n"),
			[]string{`schedules[0].goal: expected a mapping, got string "summarize" (line 6)`}},
		{"a goal without instruction", doc("  - name: a\n    interval_seconds: 60\n    dispatch_type: goal\n    goal: {context: {a: 1}}\n"),
			[]string{"schedules[0].goal.instruction: goal config missing 'instruction' (line 6)"}},
		{"a goal with a bad priority and server", doc("  - name: a\n    interval_seconds: 60\n    dispatch_type: goal\n    goal:\n      instruction: x\n      priority: urgent\n      to: 'two words'\n"),
			[]string{"schedules[0].goal.priority: 'priority' must be one of low, normal, high, critical, got 'urgent' (line 8)",
				"schedules[0].goal.to: 'two words' cannot name a goal server in a subject (no white space, wildcards or empty tokens) (line 9)"}},
		{"a goal context that is not a mapping", doc("  - name: a\n    interval_seconds: 60\n    dispatch_type: goal\n    goal: {instruction: x, context: [1, 2]}\n"),
			[]string{"schedules[0].goal.context: expected a mapping, got a list (line 6)"}},
		{"a task schedule without its task", doc("  - name: a\n    interval_seconds: 60\n    dispatch_type: task\n"),
			[]string{"schedules[0].task: dispatch_type 'task' requires a 'task' dict (line 3)"}},
		{"a task without worker_type", doc("  - name: a\n    interval_seconds: 60\n    dispatch_type: task\n    task: {payload: {a: 1}}\n"),
			[]string{"schedules[0].task.worker_type: task config missing 'worker_type' (line 6)"}},
		{"a task with a bad worker type, tier and priority", doc("  - name: a\n    interval_seconds: 60\n    dispatch_type: task\n    task:\n      worker_type: 'sum.*'\n      model_tier: huge\n      priority: urgent\n"),
			[]string{"schedules[0].task.worker_type: 'sum.*' cannot be used as a worker type in subjects (no white space, wildcards or empty tokens) (line 7)",
				"schedules[0].task.model_tier: 'model_tier' must be one of local, standard, frontier, got 'huge' (line 8)",
				"schedules[0].task.priority: 'priority' must be one of low, normal, high, critical, got 'urgent' (line 9)"}},
		{"a tier written in capitals", doc("  - name: a\n    interval_seconds: 60\n    dispatch_type: task\n    task: {worker_type: w, model_tier: LOCAL}\n"),
			[]string{"schedules[0].task.model_tier: 'model_tier' must be one of local, standard, frontier, got 'LOCAL' (line 6)"}},
		{"a payload that JSON cannot carry", doc("  - name: a\n    interval_seconds: 60\n    dispatch_type: task\n    task: {worker_type: w, payload: {ratio: .nan}}\n"),
			[]string{"schedules[0].task.payload: cannot be sent as JSON: json: unsupported value: NaN (line 6)"}},
		{"a misspelt task key", doc("  - name: a\n    interval_seconds: 60\n    dispatch_type: task\n    task: {worker_type: w, modle_tier: local}\n"),
			[]string{"schedules[0].task.modle_tier: unknown key 'modle_tier' (known keys here: worker_type, payload, model_tier, priority) (line 6)"}},
		{"a goal beside a task", doc("  - name: a\n    interval_seconds: 60\n    dispatch_type: task\n    task: {worker_type: w}\n    goal: {instruction: x}\n"),
			[]string{"schedules[0].goal: given, but dispatch_type is 'task', which sends the task only: remove it (line 7)"}},
		{"expand_from, which names a Python function", doc("  - name: a\n    interval_seconds: 60\n    dispatch_type: task\n    task: {worker_type: w}\n    expand_from: app.sessions.active\n"),
			[]string{"schedules[0].expand_from: names a Python function the Python scheduler calls before each fire, which a Go scheduler cannot call: remove it, or run this schedule on the Python scheduler (line 7)"}},
		{"a duplicated key", doc("  - name: a\n    name: b\n    interval_seconds: 60\n    dispatch_type: task\n    task: {worker_type: w}\n"),
			[]string{"schedules[0].name: duplicated key (first at line 3) (line 4)"}},
		{"two schedules of one name", doc("  - {name: a, interval_seconds: 60, dispatch_type: task, task: {worker_type: w}}\n",
			"  - {name: a, interval_seconds: 30, dispatch_type: task, task: {worker_type: w}}\n"),
			[]string{"schedules[1].name: duplicate schedule name 'a' (first at schedules[0]) (line 4)"}},
		{"unknown time zones, and Local", "name: test\ntimezone: Local\nschedules:\n  - {name: a, cron: '0 8 * * *', timezone: Mars/Olympus, dispatch_type: task, task: {worker_type: w}}\n",
			[]string{"timezone: time zone 'Local' depends on the host; name an IANA zone such as Europe/Paris, or UTC (line 2)",
				"schedules[0].timezone: unknown time zone 'Mars/Olympus': want an IANA name such as Europe/Paris, from the system's tzdata or the program's (import time/tzdata) (line 4)"}},
		{"a time zone on an interval schedule", doc("  - {name: a, interval_seconds: 60, timezone: UTC, dispatch_type: task, task: {worker_type: w}}\n"),
			[]string{"schedules[0].timezone: has no effect on an interval schedule; give it only with cron (line 3)"}},
		{"problems of several schedules, in document order", doc(
			"  - {name: a, interval_seconds: 60, dispatch_type: task, task: {worker_type: w, priority: top}}\n",
			"  - {name: b, cron: 'soon', dispatch_type: goal}\n"),
			[]string{"schedules[0].task.priority: 'priority' must be one of low, normal, high, critical, got 'top' (line 3)",
				"schedules[1].cron: invalid cron expression 'soon': expected exactly 5 fields, found 1: [soon] (line 4)",
				"schedules[1].goal: dispatch_type 'goal' requires a 'goal' dict (line 4)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := scheduler.ParseConfig([]byte(c.doc))
			var ce *scheduler.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("ParseConfig = %v; want a *ConfigError", err)
			}
			if !errors.Is(err, heddle.ErrConfig) {
				t.Errorf("the error does not match heddle.ErrConfig")
			}
			var got []string
			for _, p := range ce.Problems {
				got = append(got, p.String())
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
			}
		})
	}
}

func TestParseConfigAcceptsWhatThePythonSchedulerAccepts(t *testing.T) {
	for name, d := range map[string]string{
		"no schedules":               "name: idle\nschedules: []\n",
		"an empty instruction":       doc("  - {name: a, interval_seconds: 60, dispatch_type: goal, goal: {instruction: ''}}\n"),
		"a task without payload":     doc("  - {name: a, interval_seconds: 0.5, dispatch_type: task, task: {worker_type: w}}\n"),
		"a cron descriptor":          doc("  - {name: a, cron: '@hourly', dispatch_type: task, task: {worker_type: w}}\n"),
		"names of months and days":   doc("  - {name: a, cron: '30 8 * JAN-MAR MON-FRI', dispatch_type: task, task: {worker_type: w}}\n"),
		"a null payload and context": doc("  - {name: a, cron: '0 * * * *', dispatch_type: task, task: {worker_type: w, payload: }}\n"),
	} {
		if _, err := scheduler.ParseConfig([]byte(d)); err != nil {
			t.Errorf("%s: ParseConfig = %v, want nil", name, err)
		}
	}
}

func TestLoadConfigNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nightly.yaml")
	if err := os.WriteFile(path, []byte("name: nightly\nschedules:\n  - {name: a, cron: '61 * * * *', dispatch_type: task, task: {worker_type: w}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := scheduler.LoadConfig(path)
	want := "heddle: invalid scheduler config in " + path +
		": schedules[0].cron: invalid cron expression '61 * * * *': end of range (61) above maximum (59): 61 (line 3)"
	if err == nil || err.Error() != want {
		t.Errorf("LoadConfig = %v\nwant %s", err, want)
	}
	_, err = scheduler.LoadConfig(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, heddle.ErrConfig) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadConfig of a missing file = %v; want an error matching heddle.ErrConfig and os.ErrNotExist", err)
	}
}

func TestValidateChecksAConfigBuiltInGo(t *testing.T) {
	cfg := scheduler.Config{
		Schedules: []scheduler.Schedule{
			{Name: "a", DispatchType: scheduler.DispatchTask, Task: &scheduler.TaskSpec{WorkerType: "w"}},
			{Name: "b", Cron: "0 8 * * *", IntervalSeconds: 60, DispatchType: scheduler.DispatchGoal, Goal: &scheduler.GoalSpec{}},
			{Cron: "0 8 * * *", DispatchType: "job"},
			{Name: "d", IntervalSeconds: 1, DispatchType: scheduler.DispatchTask, Task: &scheduler.TaskSpec{WorkerType: "w", Payload: map[string]any{"f": func() {}}}},
		},
	}
	want := "heddle: invalid scheduler config: name: missing required key 'name'; " +
		"schedules[0]: must specify either 'cron' or 'interval_seconds'; " +
		"schedules[1]: cannot specify both 'cron' and 'interval_seconds'; " +
		"schedules[1].goal.instruction: goal config missing 'instruction'; " +
		"schedules[2].name: missing required key 'name'; " +
		"schedules[2].dispatch_type: 'dispatch_type' must be 'goal' or 'task', got 'job'; " +
		"schedules[3].task.payload: cannot be sent as JSON: json: unsupported type: func()"
	err := cfg.Validate()
	if err == nil || err.Error() != want {
		t.Errorf("Validate = %v\nwant %s", err, want)
	}
	if _, err := scheduler.New(membus.New(), cfg); err == nil || err.Error() != want {
		t.Errorf("New = %v\nwant the same error as Validate", err)
	}
}

func TestNewRefusesWhatCannotWork(t *testing.T) {
	valid := scheduler.Config{Name: "s", Schedules: []scheduler.Schedule{
		{Name: "a", IntervalSeconds: 1, DispatchType: scheduler.DispatchTask, Task: &scheduler.TaskSpec{WorkerType: "w"}},
	}}
	if _, err := scheduler.New(nil, valid); !errors.Is(err, heddle.ErrConfig) {
		t.Errorf("New(nil bus) = %v; want heddle.ErrConfig", err)
	}
	for _, mutate := range []func(*scheduler.Config){
		func(c *scheduler.Config) { c.LateTolerance = -time.Second },
		func(c *scheduler.Config) { c.DrainTimeout = -time.Second },
	} {
		cfg := valid
		mutate(&cfg)
		if _, err := scheduler.New(membus.New(), cfg); !errors.Is(err, heddle.ErrConfig) {
			t.Errorf("New(%+v) = %v; want heddle.ErrConfig", cfg, err)
		}
	}
}
