package workertest

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/event"
)

// The rules of the conformance suite, each the name of its subtest and the
// first word of its failures.
const (
	RuleSubjects       = "subjects"
	RuleMalformed      = "malformed"
	RuleInputContract  = "input_contract"
	RuleOutputContract = "output_contract"
	RuleTraceContext   = "trace_context"
	RuleResultSubject  = "result_subject"
	RuleStateless      = "stateless"
	RuleDrain          = "drain"
)

// statelessTasks is how many tasks at least each round of the stateless
// rule sends at once: the cases, repeated.
const statelessTasks = 8

// suite is one run of the conformance suite on one bus.
type suite struct {
	connect   func() bus.Bus
	newWorker Constructor
	cases     []Case
	wait      time.Duration
}

// Conformance checks that the worker newWorker makes does what every
// Heddle worker must (see the package documentation for the rules), on
// membus and on natsbus, each rule a subtest with a worker of its own.
// cases feed the rules: at least one must complete (its task gets an
// output); those expecting an input_contract failure give the payloads
// that violate the contract, or the suite derives one from a completing
// case. A failure names the rule and what was seen.
func Conformance(t testing.TB, newWorker Constructor, cases []Case, opts ...Option) {
	t.Helper()
	o := newOptions(opts)
	if !slices.ContainsFunc(cases, func(c Case) bool { return c.Failure == nil && c.Output != nil }) {
		t.Fatalf("workertest: Conformance needs a case whose task completes (one with an output): the rules send its payload")
	}
	rules := []struct {
		name  string
		check func(s *suite, t testing.TB)
	}{
		{RuleSubjects, (*suite).subjects},
		{RuleMalformed, (*suite).malformed},
		{RuleInputContract, (*suite).inputContract},
		{RuleOutputContract, (*suite).outputContract},
		{RuleTraceContext, (*suite).traceContext},
		{RuleResultSubject, (*suite).resultSubject},
		{RuleStateless, (*suite).stateless},
		{RuleDrain, (*suite).drain},
	}
	for _, tr := range natstest.Transports() {
		run(t, tr.Name, func(t testing.TB) {
			s := &suite{connect: tr.Connector(t), newWorker: newWorker, cases: cases, wait: o.wait}
			for _, r := range rules {
				run(t, r.name, func(t testing.TB) { r.check(s, t) })
			}
		})
	}
}

// start runs a fresh worker for one rule.
func (s *suite) start(t testing.TB) *harness {
	t.Helper()
	return newHarness(t, s.connect, s.newWorker, s.wait)
}

// completing returns the first case whose task completes.
func (s *suite) completing() *Case {
	for i := range s.cases {
		if c := &s.cases[i]; c.Failure == nil && c.Output != nil {
			return c
		}
	}
	return nil
}

// mustComplete sends task and fails the rule unless it completes.
func (h *harness) mustComplete(t testing.TB, rule string, task heddle.TaskMessage, what string) (outcome, bool) {
	t.Helper()
	o, ok := h.do(task)
	switch {
	case !ok:
		t.Errorf("rule %s: %s: no result within %s", rule, what, h.wait)
	case o.result.Status != heddle.StatusCompleted:
		t.Errorf("rule %s: %s: want it completed, got %s", rule, what, o.summary())
		ok = false
	}
	return o, ok
}

func (s *suite) subjects(t testing.TB) {
	h := s.start(t)
	typ := h.w.WorkerType()
	queues := []string{heddle.WorkerQueueGroup(typ), heddle.LLMWorkerQueueGroup(typ)}
	var tiers []heddle.ModelTier
	for _, sub := range h.tap.subscriptions() {
		if !strings.HasPrefix(sub.subject, "heddle.tasks.") {
			continue
		}
		tier := heddle.ModelTier(strings.TrimPrefix(sub.subject, "heddle.tasks."+typ+"."))
		if !tier.Valid() || sub.subject != heddle.WorkerSubject(typ, tier) {
			t.Errorf("rule subjects: the worker subscribed to %s; a worker of type %q serves heddle.tasks.%s.{tier}, tier one of %v",
				sub.subject, typ, typ, heddle.ModelTiers())
			continue
		}
		if !slices.Contains(queues, sub.queue) {
			t.Errorf("rule subjects: the worker subscribed to %s in queue group %q; the workers of type %q share their tasks in queue group %q (%q beside Python LLM workers), or each replica runs every task",
				sub.subject, sub.queue, typ, queues[0], queues[1])
		}
		tiers = append(tiers, tier)
	}
	if len(tiers) == 0 {
		t.Errorf("rule subjects: the worker subscribed to no heddle.tasks.%s.{tier} subject through the bus its Constructor was given (it subscribed to %v)",
			typ, h.tap.subscriptions())
		return
	}
	c := s.completing()
	for _, tier := range tiers {
		task := h.task(c.Input)
		task.ModelTier = tier
		h.mustComplete(t, RuleSubjects, task, fmt.Sprintf("the task of %s published on %s", caseName(c), task.WorkerSubject()))
	}
}

func (s *suite) malformed(t testing.TB) {
	h := s.start(t)
	subject := heddle.WorkerSubject(h.w.WorkerType(), h.tier)
	before := h.w.Stats().Malformed
	h.publish(subject, []byte("this is not a task {"))
	c := s.completing()
	if _, ok := h.mustComplete(t, RuleMalformed, h.task(c.Input), fmt.Sprintf("the task sent after a malformed message on %s", subject)); !ok {
		return
	}
	if after := h.w.Stats().Malformed; after != before+1 {
		t.Errorf("rule malformed: Stats().Malformed went from %d to %d after one malformed message on %s; want it counted once", before, after, subject)
	}
	if n := h.obs.count(event.WorkerFailed, event.ReasonDecode); n != 1 {
		t.Errorf("rule malformed: %d worker.failed events with reason %s after one malformed message, want 1", n, event.ReasonDecode)
	}
}

func (s *suite) inputContract(t testing.TB) {
	h := s.start(t)
	contract := h.w.Contract()
	if contract == nil || contract.Input() == nil {
		t.Errorf("rule input_contract: the worker checks no input contract (Contract().Input() is nil), so it takes any payload; give it one (worker.New makes it from In; Config.Contract for the others)")
		return
	}
	payload, field, from := s.violating(contract)
	if payload == nil {
		t.Errorf("rule input_contract: no payload the suite derived from the cases violates the worker's input contract at a field; add a case whose failure side is %s", InputContract)
		return
	}
	task := h.task(payload)
	o, ok := h.do(task)
	switch {
	case !ok:
		t.Errorf("rule input_contract: the payload %s (%s) violates the input contract at %s: no result within %s", compact(payload), from, field, h.wait)
	case o.result.Status == heddle.StatusCompleted:
		t.Errorf("rule input_contract: the payload %s (%s) violates the input contract at %s, yet the worker completed it with output %s",
			compact(payload), from, field, compact(o.output))
	case !strings.Contains(o.result.Error, field):
		t.Errorf("rule input_contract: the payload %s (%s) violates the input contract at %s; the failed result does not name the field: %q",
			compact(payload), from, field, o.result.Error)
	}
}

// violating returns a payload that violates the contract's input at a
// field, the field's JSON Pointer and where the payload comes from: a case
// expecting an input_contract failure, or a completing case's payload
// with one field removed or of another type.
func (s *suite) violating(c *contracts.Contract) (map[string]any, string, string) {
	for i := range s.cases {
		cs := &s.cases[i]
		if cs.Failure == nil || cs.Failure.Side != InputContract {
			continue
		}
		if field := violation(c, cs.Input); field != "" {
			return cs.Input, field, caseName(cs)
		}
	}
	others := []any{nil, true, json.Number("-1"), "", []any{}, map[string]any{}}
	for i := range s.cases {
		cs := &s.cases[i]
		if cs.Failure != nil || c.ValidateInput(cs.Input) != nil {
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(cs.Input)) {
			p := clonePayload(cs.Input)
			delete(p, k)
			if field := violation(c, p); field != "" {
				return p, field, fmt.Sprintf("%s without %q", caseName(cs), k)
			}
			for _, v := range others {
				p := clonePayload(cs.Input)
				p[k] = v
				if field := violation(c, p); field != "" {
					return p, field, fmt.Sprintf("%s with %q set to %s", caseName(cs), k, compact(v))
				}
			}
		}
		p := map[string]any{}
		if field := violation(c, p); field != "" {
			return p, field, "an empty payload"
		}
	}
	return nil, "", ""
}

// violation returns the first JSON Pointer at which payload violates the
// contract's input, or "" when it does not (or only as a whole).
func violation(c *contracts.Contract, payload map[string]any) string {
	var ve *contracts.ValidationError
	if err := c.ValidateInput(payload); errors.As(err, &ve) {
		for _, v := range ve.Violations {
			if v.Path != "" {
				return v.Path
			}
		}
	}
	return ""
}

func (s *suite) outputContract(t testing.TB) {
	h := s.start(t)
	contract := h.w.Contract()
	if contract == nil || contract.Output() == nil {
		t.Errorf("rule output_contract: the worker checks no output contract (Contract().Output() is nil), so nothing says what its callers get; give it one (worker.New makes it from Out; Config.Contract for the others)")
		return
	}
	completed := 0
	for i := range s.cases {
		c := &s.cases[i]
		o, ok := h.do(h.task(c.Input))
		if !ok {
			t.Errorf("rule output_contract: %s: no result within %s", caseName(c), h.wait)
			continue
		}
		if o.result.Status != heddle.StatusCompleted {
			continue
		}
		completed++
		out, err := decodeJSON(o.output)
		if err == nil {
			err = contract.ValidateOutput(out)
		}
		if err != nil {
			t.Errorf("rule output_contract: %s: the worker completed the task with output %s, which violates its output contract: %v",
				caseName(c), compact(o.output), err)
		}
	}
	if completed == 0 {
		t.Errorf("rule output_contract: no case's task completed, so no output could be checked")
	}
}

func (s *suite) traceContext(t testing.TB) {
	h := s.start(t)
	trace := json.RawMessage(`{"traceparent":"` + traceparent + `"}`)
	check := func(task heddle.TaskMessage, what string) {
		task.Extra = map[string]json.RawMessage{"_trace_context": trace}
		o, ok := h.do(task)
		if !ok {
			t.Errorf("rule trace_context: %s: no result within %s", what, h.wait)
			return
		}
		got, ok := o.result.Extra["_trace_context"]
		var tc struct {
			Traceparent string `json:"traceparent"`
		}
		if ok {
			_ = json.Unmarshal(got, &tc)
		}
		// The trace id must survive; a propagator gives the result a span
		// of its own.
		if !ok || len(tc.Traceparent) < 35 || tc.Traceparent[3:35] != traceparent[3:35] {
			t.Errorf("rule trace_context: %s carried _trace_context %s; its %s result carried %s, want the same trace (trace id %s)",
				what, trace, o.result.Status, cmpOr(string(got), "none"), traceparent[3:35])
		}
	}
	c := s.completing()
	check(h.task(c.Input), "the task of "+caseName(c))
	if contract := h.w.Contract(); contract != nil && contract.Input() != nil {
		if payload, field, from := s.violating(contract); payload != nil {
			check(h.task(payload), fmt.Sprintf("the task %s, violating the input contract at %s,", from, field))
		}
	}
}

func (s *suite) resultSubject(t testing.TB) {
	h := s.start(t)
	c := s.completing()
	withParent := h.task(c.Input)
	withParent.ParentTaskID = uuid.NewString()
	orphan := h.task(c.Input)
	orphan.ParentTaskID = ""
	for _, task := range []heddle.TaskMessage{withParent, orphan} {
		o, ok := h.do(task)
		want := heddle.ResultSubject(task.ParentTaskID)
		switch {
		case !ok:
			t.Errorf("rule result_subject: the task %s (parent_task_id %q) got no result on any subject within %s; want one on %s",
				task.TaskID, task.ParentTaskID, h.wait, want)
		case o.subject != want:
			t.Errorf("rule result_subject: the result of task %s (parent_task_id %q) came on %s; its caller waits on %s",
				task.TaskID, task.ParentTaskID, o.subject, want)
		}
	}
}

func (s *suite) stateless(t testing.TB) {
	h := s.start(t)
	alone := make([]string, len(s.cases))
	for i := range s.cases {
		o, ok := h.do(h.task(s.cases[i].Input))
		if !ok {
			t.Errorf("rule stateless: %s: no result within %s", caseName(&s.cases[i]), h.wait)
			return
		}
		alone[i] = o.key()
	}
	n := max(len(s.cases), statelessTasks)
	for round := 1; round <= 2; round++ {
		rng := rand.New(rand.NewPCG(uint64(round), 0))
		order := make([]int, n)
		for i := range order {
			order[i] = i % len(s.cases)
		}
		rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		tasks := make([]heddle.TaskMessage, n)
		for i, ci := range order {
			tasks[i] = h.task(s.cases[ci].Input)
			h.send(tasks[i])
		}
		for i, ci := range order {
			c := &s.cases[ci]
			o, ok := h.outcome(tasks[i].TaskID)
			switch {
			case !ok:
				t.Errorf("rule stateless: round %d: %s: no result within %s", round, caseName(c), h.wait)
			case o.key() != alone[ci]:
				t.Errorf("rule stateless: %s gave %s sent alone, but %s in round %d (%d tasks sent at once, cases in the order %v); a worker must keep no state from one task to the next",
					caseName(c), alone[ci], o.key(), round, n, names(s.cases, order))
			}
		}
	}
}

func names(cases []Case, order []int) []string {
	out := make([]string, len(order))
	for i, ci := range order {
		out[i] = cases[ci].Name
	}
	return out
}

func (s *suite) drain(t testing.TB) {
	h := prepare(t, s.connect, s.wait)
	// Every goroutine running now is the test's or the buses'; those the
	// worker starts must be gone once its Run has returned.
	running := goleak.IgnoreCurrent()
	h.construct(s.newWorker)
	h.start()
	n := max(len(s.cases), statelessTasks)
	// The drain begins once a task whose case completes was received: its
	// handler runs (a task failing its input contract runs none), and the
	// drain must wait for it. Tasks still on their way when the drain
	// begins may never arrive (at-most-once).
	completing := map[string]bool{}
	for i := range n {
		c := s.cases[i%len(s.cases)]
		task := h.task(c.Input)
		if c.Failure == nil {
			completing[task.TaskID] = true
		}
		h.send(task)
	}
	if _, ok := h.obs.waitFor(func() (event.Event, bool) {
		for id, evs := range h.obs.byTask {
			for _, e := range evs {
				if e.Name == event.WorkerReceived && (completing[id] || len(completing) == 0) {
					return e, true
				}
			}
		}
		return event.Event{}, false
	}, h.wait); !ok {
		t.Errorf("rule drain: none of the %d tasks whose case completes was received within %s", len(completing), h.wait)
		return
	}
	start := time.Now()
	if err := h.stop(stopWait); err != nil {
		t.Errorf("rule drain: Run returned %v %s after its context was cancelled with tasks in flight; want nil after a complete drain",
			err, time.Since(start).Round(time.Millisecond))
	}
	for _, id := range h.obs.tasks(event.WorkerReceived) {
		if rs, ok := h.results.wait(id, h.wait); !ok {
			t.Errorf("rule drain: task %s was received before the drain but got no result", id)
		} else if all := h.results.all(id); len(all) != 1 {
			t.Errorf("rule drain: task %s got %d results, want 1: %s", id, len(all), rs.data)
		}
	}
	if err := goleak.Find(running); err != nil {
		t.Errorf("rule drain: goroutines started by the worker still run after its Run returned (a handler must end what it starts, by its context at the latest):\n%v", err)
	}
}
