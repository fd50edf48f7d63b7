// Package workertest tests a user's worker.Worker: payload fixtures run
// through the real worker, and a conformance suite of what every Heddle
// worker must do. Both run on membus and on natsbus (an embedded
// nats-server, see natstest), with the worker's actual contracts.
//
// The kit makes the worker itself, on each bus, from a Constructor: the
// same function a main can use, which passes the options it is given on
// to worker.New, so that the kit sees the worker's events:
//
//	func newSummarizer(b bus.Bus, opts ...heddle.Option) (*worker.Worker, error) {
//		return worker.New(b, "summarize", summarize, worker.Config{}, opts...)
//	}
//
//	func TestSummarizeFixtures(t *testing.T) {
//		workertest.Fixtures(t, "testdata/heddle/summarize", newSummarizer)
//	}
//
//	func TestSummarizeConforms(t *testing.T) {
//		workertest.Conformance(t, newSummarizer, workertest.Load(t, "testdata/heddle/summarize"))
//	}
//
// # Fixtures
//
// A directory per worker type holds one JSON file per case. Each gives the
// task's payload and what must come out: an output, compared exactly or,
// with "match": "subset", on the fields it lists; or a failure, naming
// on which side the task failed (the reason kind of the worker.failed
// event: input_contract, output_contract, handler_error,
// permanent_error, ...) and the fields at fault:
//
//	{"input": {"text": "Heddle routes tasks."},
//	 "output": {"summary": "Heddle routes tasks.", "words": 3}}
//
//	{"input": {"text": ""},
//	 "failure": {"side": "input_contract", "fields": ["/text"]}}
//
// For a contract side, fields are the JSON Pointers of the violations, all
// of them; for a handler's error, words its error text must contain.
// "error" is text the result's error must contain. A case marked
// "golden": true is rewritten from what the worker did when the
// environment variable HEDDLE_UPDATE_FIXTURES (EnvUpdate) is 1, as golden
// files are: the way to record a payload that broke production, then
// tighten the worker until the case says what it must.
//
// Fixtures runs every case as a subtest named after its file, on each
// bus, and reports a mismatch as a diff by JSON Pointer.
//
// # The conformance suite
//
// Conformance checks, each as a subtest named after its rule, on each bus
// and each with a fresh worker:
//
//   - subjects: the worker serves heddle.tasks.{type}.{tier} in the queue
//     group of its type (processors-{type}, or workers-{type} beside
//     Python LLM workers), and a task on each subject gets its result;
//   - malformed: a message that is not a task is skipped, counted
//     (Stats.Malformed) and reported, and the next task is served;
//   - input_contract: a payload violating the input contract gets a failed
//     result naming the field;
//   - output_contract: every output validates against the output contract;
//   - trace_context: a task's _trace_context comes back on its result;
//   - result_subject: the result goes to heddle.results.{parent_task_id},
//     or heddle.results.default without a parent;
//   - stateless: the cases sent twice more, all at once and shuffled, give
//     the results they gave one by one;
//   - drain: cancelling Run while tasks run returns nil, every task
//     received gets its result, and no goroutine is left (goleak).
//
// A failure names the rule and what was seen. The drain rule looks for
// leaked goroutines in the whole process, as goleak does: run the suite
// in a test that runs alone (not beside t.Parallel tests of its package).
//
// Every function takes a testing.TB; given a *testing.T they make
// subtests, given another TB they run the parts in turn and prefix what
// they report with the part's name.
package workertest
