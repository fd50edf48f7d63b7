package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/internal/keycase"
	"github.com/heddle-go/heddle/internal/wire"
)

// ErrTaskFailed is matched (errors.Is) by the *TaskError of a typed call
// whose task a worker answered with a failed result.
var ErrTaskFailed = errors.New("heddle: task failed")

// TaskError is the error of a typed call whose task failed at the worker:
// its input violated the worker's contract, the handler returned an error,
// timed out or panicked. Result is the worker's result: its Error says
// why (for a contract violation, which field and how).
type TaskError struct {
	Result *heddle.TaskResult
}

func (e *TaskError) Error() string {
	return fmt.Sprintf("heddle: task %s failed at worker %q: %s", e.Result.TaskID, e.Result.WorkerType, e.Result.Error)
}

// Is reports whether target is ErrTaskFailed.
func (e *TaskError) Is(target error) bool { return target == ErrTaskFailed }

// Call sends in to a worker of workerType and returns the worker's output
// as an Out: the typed side of worker.New. It checks in against the
// contract generated from In and Out before anything is published (the
// same contract worker.New generates, so a payload the worker would
// refuse is refused here), then works as Request does. It takes the
// options Timeout, Direct, With, Tier, Priority and Metadata (the task's
// model_tier, priority and metadata) and refuses the others
// (heddle.ErrConfig).
//
// Out is decoded from exactly the keys the output contract checked: a
// completed result whose output violates the contract, holds a key that
// names a field of Out only by case ({"N":999} for the field "n"), or does
// not decode into Out is rejected as result_stream.parse_error, and the
// call goes on waiting for a valid result; if none comes, the
// *TimeoutError lists each rejected one, when it arrived and why.
//
// Numbers travel as their JSON text, so integers of any size come back
// exactly; an integer field also takes an integral number written with a
// fraction or an exponent (1.0, 2.5e1), as the contract's "integer" does
// and as a Python worker computing with floats writes it, while 1.5 is
// refused naming the field. The error is a *contracts.ValidationError for
// an input violating the contract, a *TaskError (errors.Is ErrTaskFailed)
// for a failed result, a *DeadLetterError for a task the router
// dead-lettered, a *TimeoutError, or the errors of Request.
func Call[In, Out any](ctx context.Context, b bus.Bus, workerType string, in In, opts ...Option) (Out, error) {
	o, err := newOptions(opts, forCall)
	if err != nil {
		var zero Out
		return zero, err
	}
	return call[In, Out](ctx, b, workerType, in, o)
}

// call is Call with its options applied; o is a copy of its own.
func call[In, Out any](ctx context.Context, b bus.Bus, workerType string, in In, o options) (Out, error) {
	var out Out
	task, err := typedTask[In, Out](b, workerType, in, &o, &out)
	if err != nil {
		return out, err
	}
	res, err := request(ctx, b, task, &o)
	return typedOutput(res, out, err)
}

// CallWith is Call on a Caller: many typed calls on one result
// subscription. It takes the options Call takes.
func CallWith[In, Out any](ctx context.Context, c *Caller, workerType string, in In, opts ...Option) (Out, error) {
	var out Out
	o, err := newOptions(opts, forCallWith)
	if err != nil {
		return out, err
	}
	task, err := typedTask[In, Out](c.b, workerType, in, &o, &out)
	if err != nil {
		return out, err
	}
	if c.subject != task.ResultSubject() {
		return out, fmt.Errorf("%w: a typed task's results go to %s, the Caller listens on %s", ErrResultSubjectMismatch, task.ResultSubject(), c.subject)
	}
	res, err := c.request(ctx, task, &o)
	return typedOutput(res, out, err)
}

// CallAll is Call for many inputs at once, to workers of workerType,
// with at most MaxInFlight of them waiting at a time (all of them without
// it). It takes the options Call takes, and MaxInFlight; an option it
// refuses fails it before any call, with a nil slice. The outputs are in
// the order of ins. When some calls fail, the error is a *CallAllError
// holding each one's error by index, and the outputs of the others are
// still returned.
func CallAll[In, Out any](ctx context.Context, b bus.Bus, workerType string, ins []In, opts ...Option) ([]Out, error) {
	o, err := newOptions(opts, forCallAll)
	if err != nil {
		return nil, err
	}
	limit := o.maxInFlight
	if limit == 0 {
		limit = len(ins)
	}
	outs := make([]Out, len(ins))
	errs := make([]error, len(ins))
	slots := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i, in := range ins {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			errs[i] = ctx.Err()
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			outs[i], errs[i] = call[In, Out](ctx, b, workerType, in, o)
		})
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	if failed == 0 {
		return outs, nil
	}
	return outs, &CallAllError{Errs: errs, Failed: failed}
}

// CallAllError lists the failed calls of a CallAll.
type CallAllError struct {
	// Errs holds each call's error by the index of its input; nil for
	// the calls that succeeded.
	Errs []error
	// Failed counts the non-nil errors.
	Failed int
}

func (e *CallAllError) Error() string {
	for _, err := range e.Errs {
		if err != nil {
			return fmt.Sprintf("heddle: %d of %d calls failed; the first: %v", e.Failed, len(e.Errs), err)
		}
	}
	return "heddle: no call failed"
}

// Unwrap returns the calls' errors, so that errors.Is and errors.As
// look at each.
func (e *CallAllError) Unwrap() []error { return e.Errs }

// typedTask encodes in as the payload of a task for workerType, and sets
// o to check it against the typed contract and to decode the output into
// *out.
func typedTask[In, Out any](b bus.Bus, workerType string, in In, o *options, out *Out) (heddle.TaskMessage, error) {
	c, err := contractOf[In, Out](b)
	if err != nil {
		return heddle.TaskMessage{}, err
	}
	o.contract = c
	o.accept = func(res *heddle.TaskResult, raw []byte) (func(), error) {
		v, err := decodeOutput[Out](res, raw)
		if err != nil {
			return nil, err
		}
		return func() { *out = v }, nil
	}
	data, err := json.Marshal(in)
	if err != nil {
		return heddle.TaskMessage{}, fmt.Errorf("heddle: encoding the input for worker %q: %w", workerType, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers keep their text: integers stay exact
	var payload map[string]any
	if err := dec.Decode(&payload); err != nil || payload == nil {
		return heddle.TaskMessage{}, fmt.Errorf("heddle: the input for worker %q must encode as a JSON object, got %s", workerType, data)
	}
	return heddle.NewTaskMessage(workerType, payload), nil
}

// contractKey keys the contract of one pair of types in a bus.Keeper.
type contractKey[In, Out any] struct{}

type contractEntry struct {
	c   *contracts.Contract
	err error
}

// contractOf returns the contract generated from In and Out, compiled
// once per bus where the bus keeps values. A result decoded for the call
// that the contract or Out refuses is a parse_error, as one violating the
// contract: the wait goes on for a valid one, and a timeout names it.
func contractOf[In, Out any](b bus.Bus) (*contracts.Contract, error) {
	compile := func() any {
		c, err := contracts.For[In, Out]()
		return contractEntry{c, err}
	}
	var e contractEntry
	if k, ok := b.(bus.Keeper); ok {
		e = k.Keep(contractKey[In, Out]{}, compile).(contractEntry)
	} else {
		e = compile().(contractEntry)
	}
	if e.err != nil {
		return nil, fmt.Errorf("heddle: the contract of the typed call: %w", e.err)
	}
	return e.c, nil
}

// decodeOutput decodes the output of res, whose message is raw, into an
// Out, reading exactly the keys the contract checked (contracts are checked
// on exactly what the caller gets). encoding/json would read more: a key
// that names a field only by case fills that field ({"n":1,"N":999} gives
// N == 999 where the contract saw n == 1), and a repeated key whose value
// is an object fills the same struct twice, merging what the contract saw
// (the last) with what it did not. So a key naming a field only by case is
// refused, as the worker refuses one in its input, and the output is
// decoded from its members as the decoder read them: the last of a
// repeated key, and every number as its text, so integers of any size
// stay exact. An integral number written with a fraction or an exponent
// (1.0, 2.5e1) is written as the integer it is, as the contract's
// "integer" takes it, so it fills an integer field exactly; 1.5 still
// does not, and the error names the field.
func decodeOutput[Out any](res *heddle.TaskResult, raw []byte) (Out, error) {
	var out Out
	t := reflect.TypeFor[Out]()
	var d wire.Decoder
	d.Init(raw)
	data, ok := d.Take("output")
	if !ok || wire.KindName(data) != "object" {
		return out, &contracts.ValidationError{Side: "output", Violations: []contracts.Violation{
			{Message: fmt.Sprintf("expected an object to decode as %v, got %s", t, outputKind(data, ok))}}}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return out, fmt.Errorf("the output does not decode as %v: %w", t, err)
	}
	if ms := keycase.Find(t, tree); len(ms) > 0 {
		ve := &contracts.ValidationError{Side: "output"}
		for _, m := range ms {
			ve.Violations = append(ve.Violations, contracts.Violation{Path: m.Path, Message: m.Message()})
		}
		return out, ve
	}
	canonical, err := json.Marshal(integersAsIntegers(tree))
	if err != nil {
		return out, fmt.Errorf("the output does not decode as %v: %w", t, err)
	}
	if err := json.Unmarshal(canonical, &out); err != nil {
		return out, fmt.Errorf("the output does not decode as %v: %w", t, err)
	}
	return out, nil
}

// integersAsIntegers rewrites, in v, a tree decoded with UseNumber, each
// integral number written with a fraction or an exponent as its integer
// text. The text of every other number stays as it was, so a float field
// gets the same value either way.
func integersAsIntegers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, ok := integralText(string(v)); ok {
			return json.Number(i)
		}
	case map[string]any:
		for k, e := range v {
			v[k] = integersAsIntegers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = integersAsIntegers(e)
		}
	}
	return v
}

// maxIntegralDigits bounds the integers integralText writes: 20 digits
// hold every int64 and uint64, and a larger integer fits no integer field
// anyway, so its text is left to fail there (and 1e999999999 is never
// written out).
const maxIntegralDigits = 20

// integralText returns the integer text of num, a valid JSON number,
// when num is written with a fraction or an exponent and its value is an
// integer of at most maxIntegralDigits digits: "1.0" gives "1", "2.5e1"
// "25", "-0.0" "-0". Exact: the digits are moved, never rounded.
func integralText(num string) (string, bool) {
	mant, exp := num, 0
	if i := strings.IndexAny(num, "eE"); i >= 0 {
		e, err := strconv.Atoi(num[i+1:])
		if err != nil || e > 1<<20 || e < -1<<20 {
			return "", false
		}
		mant, exp = num[:i], e
	} else if !strings.Contains(num, ".") {
		return "", false // an integer already
	}
	sign := ""
	if strings.HasPrefix(mant, "-") {
		sign, mant = "-", mant[1:]
	}
	whole, frac, _ := strings.Cut(mant, ".")
	if len(frac) > 1<<20 {
		return "", false
	}
	// The value is digits × 10^exp.
	digits := strings.TrimLeft(whole+frac, "0")
	exp -= len(frac)
	switch {
	case digits == "":
		return sign + "0", true
	case exp < 0:
		cut := len(digits) + exp
		if cut <= 0 || strings.Trim(digits[cut:], "0") != "" {
			return "", false
		}
		digits = digits[:cut]
	case len(digits)+exp > maxIntegralDigits:
		return "", false
	default:
		digits += strings.Repeat("0", exp)
	}
	if len(digits) > maxIntegralDigits {
		return "", false
	}
	return sign + digits, true
}

// outputKind names what a result has for its output.
func outputKind(data []byte, present bool) string {
	if !present {
		return "none"
	}
	return wire.KindName(data)
}

// typedOutput turns a call's result into Out or a typed error; out is
// the output decodeInto decoded.
func typedOutput[Out any](res *heddle.TaskResult, out Out, err error) (Out, error) {
	if err != nil {
		var zero Out
		return zero, err
	}
	if res.Status != heddle.StatusCompleted {
		var zero Out
		return zero, &TaskError{Result: res}
	}
	return out, nil
}
