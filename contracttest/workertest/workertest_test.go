package workertest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/contracttest/workertest"
	"github.com/heddle-go/heddle/worker"
)

const fixtures = "testdata/summarize"

type sumIn struct {
	Text     string `json:"text" jsonschema:"minLength=1"`
	MaxWords int    `json:"max_words,omitempty"`
}

type sumOut struct {
	Summary string `json:"summary"`
	Words   int    `json:"words"`
}

func summarize(_ context.Context, in sumIn) (sumOut, error) {
	switch in.Text {
	case "fail":
		return sumOut{}, errors.New("model unavailable")
	case "refuse":
		return sumOut{}, worker.Permanent(errors.New("refused: text is on the deny list"))
	}
	words := strings.Fields(in.Text)
	if in.MaxWords > 0 && len(words) > in.MaxWords {
		words = words[:in.MaxWords]
	}
	return sumOut{Summary: strings.Join(words, " "), Words: len(words)}, nil
}

var quick = worker.Config{RetryBackoff: time.Millisecond}

func newSummarizer(b bus.Bus, opts ...heddle.Option) (*worker.Worker, error) {
	return worker.New(b, "summarize", summarize, quick, opts...)
}

func TestFixturesRunEveryCaseOnBothBuses(t *testing.T) {
	workertest.Fixtures(t, fixtures, newSummarizer)
}

func TestAWellBehavedWorkerConforms(t *testing.T) {
	workertest.Conformance(t, newSummarizer, workertest.Load(t, fixtures))
}

// recorder is a testing.TB whose failures are recorded, not reported, so
// that a test can check what the kit says of a broken worker.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	errs     []string
	cleanups []func()
}

func (r *recorder) add(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, msg)
}

func (r *recorder) Helper()                           {}
func (r *recorder) Errorf(format string, args ...any) { r.add(fmt.Sprintf(format, args...)) }
func (r *recorder) Error(args ...any)                 { r.add(fmt.Sprint(args...)) }
func (r *recorder) Fatalf(format string, args ...any) {
	r.add(fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (r *recorder) Fatal(args ...any) { r.add(fmt.Sprint(args...)); runtime.Goexit() }
func (r *recorder) Fail()             { r.add("Fail") }
func (r *recorder) FailNow()          { r.add("FailNow"); runtime.Goexit() }
func (r *recorder) Failed() bool      { r.mu.Lock(); defer r.mu.Unlock(); return len(r.errs) > 0 }
func (r *recorder) Cleanup(f func())  { r.cleanups = append(r.cleanups, f) }

// record runs f against a recorder and returns what it reported.
func record(t *testing.T, f func(t testing.TB)) []string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			for _, c := range slices.Backward(r.cleanups) {
				c()
			}
		}()
		f(r)
	}()
	<-done
	return r.errs
}

func TestAMismatchIsReportedAsADiffNamingTheCase(t *testing.T) {
	cases := []workertest.Case{
		{Name: "wrong_output", Input: map[string]any{"text": "a b c"}, Output: map[string]any{"summary": "a b", "words": 3, "extra": true}},
		{Name: "wrong_side", Input: map[string]any{"text": ""}, Failure: &workertest.Failure{Side: workertest.HandlerError}},
		{Name: "unexpected_success", Input: map[string]any{"text": "fine"}, Failure: &workertest.Failure{Side: workertest.InputContract, Fields: []string{"/text"}}},
		{Name: "wrong_field", Input: map[string]any{}, Failure: &workertest.Failure{Side: workertest.InputContract, Fields: []string{"/name"}}},
		{Name: "subset_ok", Input: map[string]any{"text": "a b c"}, Output: map[string]any{"words": 3.0}, Subset: true},
	}
	errs := record(t, func(tb testing.TB) { workertest.RunCases(tb, newSummarizer, cases) })
	all := strings.Join(errs, "\n")
	for _, want := range []string{
		"membus: wrong_output: case wrong_output:",
		"natsbus: wrong_output: case wrong_output:",
		`/summary: got "a b c", want "a b"`,
		`/extra: missing, want true`,
		"failed on side input_contract, want handler_error",
		"unexpected_success: case unexpected_success:\n\twant a failure (side input_contract, fields [/text])\ngot completed with output",
		"the contract violations are at [/text], want [/name]",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the report lacks %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "subset_ok") {
		t.Errorf("a subset that matches was reported:\n%s", all)
	}
	if len(errs) != 8 {
		t.Errorf("%d failures reported, want 4 cases × 2 buses:\n%s", len(errs), all)
	}
}

func TestGoldenCasesAreRewrittenFromTheWorkerWhenUpdating(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stale := write("stale.json", `{"input": {"text": "x y", "max_words": 1}, "output": {"summary": "old"}, "golden": true}`)
	fresh := write("fresh.json", `{"input": {"text": ""}, "golden": true}`)
	kept := write("kept.json", `{"input": {"text": "a"}, "output": {"summary": "a", "words": 1}}`)
	before, _ := os.ReadFile(kept)

	// Not updating: the stale case fails, the one without expectation says how to record it.
	errs := strings.Join(record(t, func(tb testing.TB) { workertest.Fixtures(tb, dir, newSummarizer) }), "\n")
	if !strings.Contains(errs, `/summary: got "x", want "old"`) || !strings.Contains(errs, "HEDDLE_UPDATE_FIXTURES=1 to record it") {
		t.Fatalf("without updating, the report is:\n%s", errs)
	}

	t.Setenv(workertest.EnvUpdate, "1")
	if errs := record(t, func(tb testing.TB) { workertest.Fixtures(tb, dir, newSummarizer) }); len(errs) > 0 {
		t.Fatalf("updating reported %v", errs)
	}
	var got struct {
		Input   map[string]any
		Output  map[string]any
		Failure *workertest.Failure
		Golden  bool
	}
	data, _ := os.ReadFile(stale)
	if err := json.Unmarshal(data, &got); err != nil || got.Output["summary"] != "x" || got.Output["words"] != 1.0 || !got.Golden || got.Input["max_words"] != 1.0 {
		t.Errorf("stale.json after the update (%v):\n%s", err, data)
	}
	data, _ = os.ReadFile(fresh)
	if err := json.Unmarshal(data, &got); err != nil || got.Failure == nil || got.Failure.Side != workertest.InputContract ||
		!slices.Equal(got.Failure.Fields, []string{"/text"}) {
		t.Errorf("fresh.json after the update (%v):\n%s", err, data)
	}
	if after, _ := os.ReadFile(kept); string(after) != string(before) {
		t.Errorf("a case not marked golden was rewritten:\n%s", after)
	}

	t.Setenv(workertest.EnvUpdate, "")
	if errs := record(t, func(tb testing.TB) { workertest.Fixtures(tb, dir, newSummarizer) }); len(errs) > 0 {
		t.Errorf("the recorded cases fail: %v", errs)
	}
}

func TestABadCaseFileIsRefusedNamingTheFileAndTheProblem(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"input": {"text": "a"}}`, `give "output" or "failure"`},
		{`{"input": {"text": "a"}, "output": {}, "failure": {"side": "input_contract"}}`, "both an output and a failure"},
		{`{"input": [1], "output": {}}`, `"input" is not a JSON object`},
		{`{"output": {}}`, `"input" is missing`},
		{`{"input": {}, "outptu": {}}`, `unknown field "outptu"`},
		{`{"input": {}, "failure": {"side": "input"}}`, `failure side "input" is not a reason`},
		{`{"input": {}, "output": {}, "match": "fuzzy"}`, `"match" is "fuzzy"`},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := workertest.LoadDir(dir)
		if err == nil || !strings.Contains(err.Error(), "bad.json") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadDir of %s = %v, want an error naming bad.json and %q", tc.body, err, tc.want)
		}
	}
	if _, err := workertest.LoadDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no case") {
		t.Errorf("LoadDir of an empty directory = %v, want an error", err)
	}
}

func TestAConstructorThatDropsItsOptionsIsToldSo(t *testing.T) {
	errs := record(t, func(tb testing.TB) {
		workertest.Fixtures(tb, fixtures, func(b bus.Bus, _ ...heddle.Option) (*worker.Worker, error) {
			return worker.New(b, "summarize", summarize, quick)
		})
	})
	// A Fatalf ends the recorder's run at the first bus, as it ends a test.
	if len(errs) != 1 || !strings.HasPrefix(errs[0], "membus: workertest: ") || !strings.Contains(errs[0], "must pass the options it is given on to worker.New") {
		t.Errorf("reported %q, want the Constructor told to pass its options", errs)
	}
}

// resultBus rewrites the results its worker publishes.
type resultBus struct {
	bus.Bus
	rewrite func(subject string, r *heddle.TaskResult) string
}

func (b resultBus) Publish(ctx context.Context, m *bus.Msg) error {
	if strings.HasPrefix(m.Subject, "heddle.results.") {
		r, err := heddle.DecodeTaskResult(m.Data)
		if err != nil {
			return err
		}
		subject := b.rewrite(m.Subject, &r)
		data, err := r.Encode()
		if err != nil {
			return err
		}
		m = &bus.Msg{Subject: subject, Data: data}
	}
	return b.Bus.Publish(ctx, m)
}

func (b resultBus) Done() <-chan struct{} { return bus.Done(b.Bus) }
func (b resultBus) Err() error            { return bus.Err(b.Bus) }

// deliveryBus filters what its worker's subscriptions deliver.
type deliveryBus struct {
	bus.Bus
	deliver func(m *bus.Msg) bool
}

func (b deliveryBus) Subscribe(ctx context.Context, subject string, h bus.Handler, opts ...bus.SubscribeOption) (bus.Subscription, error) {
	return b.Bus.Subscribe(ctx, subject, func(ctx context.Context, m *bus.Msg) error {
		if !b.deliver(m) {
			return nil
		}
		return h(ctx, m)
	}, opts...)
}

func (b deliveryBus) Done() <-chan struct{} { return bus.Done(b.Bus) }
func (b deliveryBus) Err() error            { return bus.Err(b.Bus) }

func onResults(rewrite func(subject string, r *heddle.TaskResult) string) workertest.Constructor {
	return func(b bus.Bus, opts ...heddle.Option) (*worker.Worker, error) {
		return newSummarizer(resultBus{Bus: b, rewrite: rewrite}, opts...)
	}
}

func TestTheSuiteCatchesEachBrokenRuleWithAClearMessage(t *testing.T) {
	release := make(chan struct{})
	var leaked sync.WaitGroup
	t.Cleanup(leaked.Wait)
	t.Cleanup(func() { close(release) })

	for _, tc := range []struct {
		name      string
		rule      string
		newWorker workertest.Constructor
		want      string
	}{
		{"a queue group of its own", workertest.RuleSubjects,
			func(b bus.Bus, opts ...heddle.Option) (*worker.Worker, error) {
				return worker.New(b, "summarize", summarize, worker.Config{QueueGroup: "mine"}, opts...)
			}, `in queue group "mine"; the workers of type "summarize" share their tasks in queue group "processors-summarize"`},
		{"malformed messages swallowed uncounted", workertest.RuleMalformed,
			func(b bus.Bus, opts ...heddle.Option) (*worker.Worker, error) {
				return newSummarizer(deliveryBus{Bus: b, deliver: func(m *bus.Msg) bool { return json.Valid(m.Data) }}, opts...)
			}, "Stats().Malformed went from 0 to 0 after one malformed message"},
		{"serving stops after a malformed message", workertest.RuleMalformed,
			func(b bus.Bus, opts ...heddle.Option) (*worker.Worker, error) {
				var broken atomic.Bool
				return newSummarizer(deliveryBus{Bus: b, deliver: func(m *bus.Msg) bool {
					if !json.Valid(m.Data) {
						broken.Store(true)
					}
					return !broken.Load()
				}}, opts...)
			}, "the task sent after a malformed message on heddle.tasks.summarize.standard: no result within"},
		{"no input contract", workertest.RuleInputContract,
			func(b bus.Bus, opts ...heddle.Option) (*worker.Worker, error) {
				c, err := contracts.For[sumIn, sumOut]()
				if err != nil {
					return nil, err
				}
				return worker.New(b, "summarize", summarize, worker.Config{Contract: contracts.New(nil, c.Output())}, opts...)
			}, "the worker checks no input contract"},
		{"failures that name no field", workertest.RuleInputContract,
			onResults(func(subject string, r *heddle.TaskResult) string {
				if r.Error != "" {
					r.Error = "bad input"
				}
				return subject
			}), `violates the input contract at /text; the failed result does not name the field: "bad input"`},
		{"outputs mangled on the way out", workertest.RuleOutputContract,
			onResults(func(subject string, r *heddle.TaskResult) string {
				if r.Output != nil {
					r.Output["words"] = "many"
				}
				return subject
			}), `the worker completed the task with output {"summary":"Heddle routes tasks.","words":"many"}, which violates its output contract: contracts: output violates schema: /words:`},
		{"trace context dropped", workertest.RuleTraceContext,
			onResults(func(subject string, r *heddle.TaskResult) string {
				delete(r.Extra, "_trace_context")
				return subject
			}), `its completed result carried none, want the same trace (trace id 4bf92f3577b34da6a3ce929d0e0e4736)`},
		{"every result on the default subject", workertest.RuleResultSubject,
			onResults(func(string, *heddle.TaskResult) string { return heddle.SubjectResultsDefault }),
			"came on heddle.results.default; its caller waits on heddle.results."},
		{"a counter kept across tasks", workertest.RuleStateless,
			func(b bus.Bus, opts ...heddle.Option) (*worker.Worker, error) {
				var calls atomic.Int64
				return worker.New(b, "summarize", func(ctx context.Context, in sumIn) (sumOut, error) {
					out, err := summarize(ctx, in)
					out.Words = int(calls.Add(1))
					return out, err
				}, quick, opts...)
			}, "a worker must keep no state from one task to the next"},
		{"a goroutine left behind", workertest.RuleDrain,
			func(b bus.Bus, opts ...heddle.Option) (*worker.Worker, error) {
				return worker.New(b, "summarize", func(ctx context.Context, in sumIn) (sumOut, error) {
					leaked.Go(func() { <-release })
					return summarize(ctx, in)
				}, quick, opts...)
			}, "goroutines started by the worker still run after its Run returned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := record(t, func(tb testing.TB) {
				workertest.Conformance(tb, tc.newWorker, workertest.Load(tb, fixtures), workertest.Wait(2*time.Second))
			})
			all := strings.Join(errs, "\n")
			for _, bus := range []string{"membus", "natsbus"} {
				prefix := bus + ": " + tc.rule + ": rule " + tc.rule + ": "
				if !slices.ContainsFunc(errs, func(e string) bool { return strings.HasPrefix(e, prefix) && strings.Contains(e, tc.want) }) {
					t.Errorf("on %s, no failure %q…%q; the suite reported:\n%s", bus, prefix, tc.want, all)
				}
			}
			for _, e := range errs {
				if !strings.Contains(e, ": rule "+tc.rule+": ") {
					t.Errorf("another rule failed too: %s", e)
				}
			}
		})
	}
}
