package dispatch

import (
	"fmt"
	"maps"
	"math/bits"
	"strings"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracts"
)

// Option configures one of dispatch's entry points: Request,
// Caller.Request, Call, CallWith, CallAll, SubmitGoal, NewStream and
// NewCaller. Each entry point takes the options that mean something to it
// (each option's documentation lists them). An option given to an entry
// point it does not apply to, or with a value that cannot work (a
// negative duration or count, an unknown tier), makes the entry point
// return an error matching heddle.ErrConfig that names the option, before
// anything is subscribed or published.
type Option func(*options)

// optionKind is one kind of Option, one bit: a set of kinds is their OR.
type optionKind uint16

const (
	optTimeout optionKind = 1 << iota
	optDirect
	optContract
	optWith
	optMaxInFlight
	optQuorum
	optProgress
	optTier
	optPriority
	optMetadata
	optTo
)

// optionNames are the options' names by the bit of their kind.
var optionNames = [...]string{"Timeout", "Direct", "Contract", "With", "MaxInFlight", "Quorum", "Progress",
	"Tier", "Priority", "Metadata", "To"}

// entry is an entry point of the package and the options it takes.
type entry struct {
	name  string
	takes optionKind
}

const (
	callOptions   = optTimeout | optDirect | optWith | optTier | optPriority | optMetadata
	taskOptions   = callOptions | optContract
	goalOptions   = optTimeout | optWith | optTo | optPriority
	streamOptions = optTimeout | optDirect | optContract | optWith | optMaxInFlight | optQuorum | optProgress
)

// The entry points. A typed call takes no Contract: it checks the contract
// generated from its types.
var (
	forRequest       = entry{"Request", taskOptions}
	forCallerRequest = entry{"Caller.Request", taskOptions}
	forCall          = entry{"Call", callOptions}
	forCallWith      = entry{"CallWith", callOptions}
	forCallAll       = entry{"CallAll", callOptions | optMaxInFlight}
	forSubmitGoal    = entry{"SubmitGoal", goalOptions}
	forNewStream     = entry{"NewStream", streamOptions}
	forNewCaller     = entry{"NewCaller", optWith}
	entries          = []entry{forRequest, forCallerRequest, forCall, forCallWith, forCallAll, forSubmitGoal, forNewStream, forNewCaller}
)

// options are the values Options set. Those of the options most calls
// take are kept in place, the others in more, made when one is given, so
// that a call's options stay small.
type options struct {
	given       optionKind
	direct      bool
	err         error // the first option that cannot work
	timeout     time.Duration
	contract    *contracts.Contract
	actor       []heddle.Option // set by With
	maxInFlight int
	accept      acceptFunc // set by the typed calls
	more        *moreOptions
}

// moreOptions are the values of the options fewer calls take.
type moreOptions struct {
	quorum      int
	progress    func(res heddle.TaskResult, collected, expected int) bool
	tier        heddle.ModelTier
	priority    heddle.Priority
	metadata    map[string]any // merged; owned by the options
	goalServer  string         // To's name
	goalSubject string         // and its subject
}

// extra returns o.more, made if need be.
func (o *options) extra() *moreOptions {
	if o.more == nil {
		o.more = new(moreOptions)
	}
	return o.more
}

// moreOrNone returns what o.more holds, or the zero moreOptions.
func (o *options) moreOrNone() moreOptions {
	if o.more == nil {
		return moreOptions{}
	}
	return *o.more
}

// newOptions applies opts for e and refuses those it does not take.
func newOptions(opts []Option, e entry) (options, error) {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.err != nil {
		return o, o.err
	}
	if extra := o.given &^ e.takes; extra != 0 {
		return o, refusal(extra, e)
	}
	return o, nil
}

// refusal is the error for the options in extra, which e does not take.
func refusal(extra optionKind, e entry) error {
	i := bits.TrailingZeros16(uint16(extra))
	k := optionKind(1) << i
	var takers []string
	for _, other := range entries {
		if other.takes&k != 0 {
			takers = append(takers, other.name)
		}
	}
	return fmt.Errorf("%w: dispatch.%s does not apply to %s (it applies to %s)",
		heddle.ErrConfig, optionNames[i], e.name, strings.Join(takers, ", "))
}

func (o *options) fail(err error) {
	if o.err == nil {
		o.err = err
	}
}

// timeoutOrDefault is the Timeout given, or DefaultTimeout.
func (o *options) timeoutOrDefault() time.Duration {
	if o.timeout == 0 {
		return DefaultTimeout
	}
	return o.timeout
}

// Timeout bounds the wait for results; zero means DefaultTimeout, and a
// negative duration is refused. For a Stream it counts from the first
// Dispatch, or the first Results or Collect call when that comes first.
// A context whose deadline comes earlier ends the wait then, with a
// *TimeoutError too. Request, Caller.Request, Call, CallWith, CallAll,
// SubmitGoal and NewStream take it.
func Timeout(d time.Duration) Option {
	return func(o *options) {
		o.given |= optTimeout
		if d < 0 {
			o.fail(fmt.Errorf("%w: dispatch.Timeout(%v): a timeout must not be negative (zero means DefaultTimeout)", heddle.ErrConfig, d))
			return
		}
		o.timeout = d
	}
}

// Direct publishes each task straight to its worker's subject,
// TaskMessage.WorkerSubject() (heddle.tasks.{worker_type}.{tier}),
// instead of through the Router on heddle.SubjectTasksIncoming. Request,
// Caller.Request, Call, CallWith, CallAll and NewStream take it.
func Direct() Option { return direct }

func direct(o *options) { o.given |= optDirect; o.direct = true }

// Contract gives the worker's contract: the payload is checked against
// its input schema before anything is published, and a completed result
// whose output violates its output schema is rejected as
// result_stream.parse_error while the wait goes on. Request,
// Caller.Request and NewStream take it (for a Stream, only the output is
// checked); the typed calls check the contract of their types instead.
func Contract(c *contracts.Contract) Option {
	return func(o *options) { o.given |= optContract; o.contract = c }
}

// With gives the settings every actor takes: where the result_stream.*
// events go (heddle.WithLogger, heddle.WithObserver). Every entry point
// takes it.
func With(opts ...heddle.Option) Option {
	return func(o *options) { o.given |= optWith; o.actor = append(o.actor, opts...) }
}

// MaxInFlight bounds how many tasks wait for their result at once: the
// calls of a CallAll, the tasks a Stream has published; the others wait
// their turn, in order, as results come in. Zero means no bound; a
// negative count is refused. CallAll and NewStream take it.
func MaxInFlight(n int) Option {
	return func(o *options) {
		o.given |= optMaxInFlight
		if n < 0 {
			o.fail(fmt.Errorf("%w: dispatch.MaxInFlight(%d): the bound must not be negative (zero means none)", heddle.ErrConfig, n))
			return
		}
		o.maxInFlight = n
	}
}

// Quorum ends a Stream's collection, without error, once n results are
// collected. Zero means every expected result; a negative count is
// refused. NewStream takes it.
func Quorum(n int) Option {
	return func(o *options) {
		o.given |= optQuorum
		if n < 0 {
			o.fail(fmt.Errorf("%w: dispatch.Quorum(%d): the quorum must not be negative (zero means every result)", heddle.ErrConfig, n))
			return
		}
		o.extra().quorum = n
	}
}

// Progress is called by a Stream's Results on the caller's goroutine for
// each result before it is yielded, with the number of results yielded so
// far (this one included) and the number expected. Returning false ends
// the collection after this result, without error. NewStream takes it.
func Progress(f func(res heddle.TaskResult, collected, expected int) bool) Option {
	return func(o *options) { o.given |= optProgress; o.extra().progress = f }
}

// Tier sets the task's model_tier, which picks the worker subject
// (heddle.tasks.{worker_type}.{tier}) and the router's rate limit. An
// unknown tier is refused. Request, Caller.Request, Call, CallWith and
// CallAll take it (for Request it replaces the task's own).
func Tier(t heddle.ModelTier) Option {
	return func(o *options) {
		o.given |= optTier
		if _, err := heddle.ParseModelTier(string(t)); err != nil {
			o.fail(fmt.Errorf("%w: dispatch.Tier: %w", heddle.ErrConfig, err))
			return
		}
		o.extra().tier = t
	}
}

// Priority sets the priority of the task, or of the goal for SubmitGoal.
// An unknown priority is refused. Request, Caller.Request, Call, CallWith,
// CallAll and SubmitGoal take it (for Request and SubmitGoal it replaces
// the message's own).
func Priority(p heddle.Priority) Option {
	return func(o *options) {
		o.given |= optPriority
		if _, err := heddle.ParsePriority(string(p)); err != nil {
			o.fail(fmt.Errorf("%w: dispatch.Priority: %w", heddle.ErrConfig, err))
			return
		}
		o.extra().priority = p
	}
}

// Metadata adds m's keys to the task's metadata (routing hints, context
// for the worker), replacing keys of the same name; m itself is not kept
// or changed, nor is the metadata map of a task given to Request. It may
// be given more than once. Request, Caller.Request, Call, CallWith and
// CallAll take it.
func Metadata(m map[string]any) Option {
	return func(o *options) {
		o.given |= optMetadata
		if len(m) == 0 {
			return
		}
		more := o.extra()
		if more.metadata == nil {
			more.metadata = make(map[string]any, len(m))
		}
		maps.Copy(more.metadata, m)
	}
}

// To addresses a goal to the pipeline or orchestrator called name: it is
// published on heddle.GoalSubject(name), which only the goal servers
// given that name serve, instead of the shared
// heddle.SubjectGoalsIncoming. A name that cannot be used in a subject is
// refused. SubmitGoal takes it.
func To(name string) Option {
	return func(o *options) {
		o.given |= optTo
		subject, err := heddle.GoalSubject(name)
		if err != nil {
			o.fail(fmt.Errorf("dispatch.To(%q): %w", name, err))
			return
		}
		o.extra().goalServer, o.extra().goalSubject = name, subject
	}
}

// applyTask sets the tier, priority and metadata options on task. The
// task's metadata map is the caller's: it is copied before it changes.
func (o *options) applyTask(task *heddle.TaskMessage) {
	m := o.more
	if m == nil {
		return
	}
	if m.tier != "" {
		task.ModelTier = m.tier
	}
	if m.priority != "" {
		task.Priority = m.priority
	}
	if len(m.metadata) > 0 {
		md := make(map[string]any, len(task.Metadata)+len(m.metadata))
		maps.Copy(md, task.Metadata)
		maps.Copy(md, m.metadata)
		task.Metadata = md
	}
}
