// Package faultbus wraps a bus.Bus to inject the faults a real NATS
// deployment has, for resilience tests: messages dropped, duplicated,
// delayed or reordered on chosen subjects, and a connection that stalls
// (Pause) or is lost for good (Cut).
//
//	fb, err := faultbus.Wrap(b.Connect(), faultbus.Config{Seed: 7, Rules: []faultbus.Rule{
//		{Subject: "heddle.tasks.>", Drop: 0.1, Duplicate: 0.05},
//	}})
//
// Faults apply to what is published through the wrapper, so give every
// actor whose messages should suffer a connection wrapped with the same
// Config, or wrap the one connection under test. The documented case is
// membus; any Bus works.
//
// # Determinism
//
// Whether the n-th message published through a wrapper on a subject is
// dropped, duplicated, delayed or reordered depends only on the seed, the
// subject and n: the same seed and the same publishes give the same faults,
// run after run (Faults lists them). A delay either holds a message until
// Release (Rule.DelayFor zero, no clock at all) or waits DelayFor on a
// timer, which runs on fake time inside a testing/synctest bubble (membus
// works there).
//
// The wrapper keeps a counter per faulted subject and a record of every
// fault: it is meant for tests, not for long runs.
package faultbus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/heddle-go/heddle/bus"
)

// ErrCut is wrapped, with bus.ErrClosed, by every call on a Bus after Cut,
// and by its Err.
var ErrCut = errors.New("faultbus: connection cut")

// Config says which faults a Bus injects.
type Config struct {
	// Seed makes the faults: the same seed gives the same faults for the
	// same publishes.
	Seed uint64
	// Rules are tried in order; a message gets the faults of the first
	// rule whose Subject matches its subject, and none when no rule does.
	Rules []Rule
}

// Rule gives the faults of the messages published on the subjects that
// match Subject. Each rate is the probability, from 0 to 1, that one
// message suffers the fault; they are drawn independently, in the order
// drop, duplicate, delay, reorder. A dropped message suffers nothing
// else; a delayed one is not also reordered.
type Rule struct {
	// Subject is a subscription pattern: "*" matches one token, a final
	// ">" the rest, as in bus.Match.
	Subject string
	// Drop is the rate of messages lost: never published, as core NATS
	// may lose one at most once.
	Drop float64
	// Duplicate is the rate of messages published twice in a row.
	Duplicate float64
	// Delay is the rate of messages held back: published DelayFor after
	// their publish, or on Release when DelayFor is zero. The messages
	// published meanwhile go ahead of them.
	Delay float64
	// DelayFor is how long a delayed message waits; zero holds it until
	// Release.
	DelayFor time.Duration
	// Reorder is the rate of messages held until the next message on
	// their subject has been published, then published after it: two
	// neighbours swapped. One that no message follows waits for Release.
	Reorder float64
}

// Kind names a fault.
type Kind string

// The faults a Bus injects.
const (
	Dropped    Kind = "dropped"
	Duplicated Kind = "duplicated"
	Delayed    Kind = "delayed"
	Reordered  Kind = "reordered"
)

// Fault is one fault injected: the N-th message (from 1) published through
// the wrapper on Subject suffered Kind.
type Fault struct {
	Subject string
	N       uint64
	Kind    Kind
}

// Stats counts what a Bus did with the messages published through it.
type Stats struct {
	// Published counts the messages handed to the wrapped bus, copies of
	// duplicates and late ones included.
	Published uint64
	// Dropped, Duplicated, Delayed and Reordered count the faults.
	Dropped, Duplicated, Delayed, Reordered uint64
	// Held is how many messages wait now: delayed, reordered, or
	// published while paused.
	Held int
}

// Bus is a bus.Bus that injects faults into what is published through it.
// It implements bus.Closer and bus.Keeper. Make it with Wrap.
type Bus struct {
	inner bus.Bus
	cfg   Config
	kept  bus.Values

	mu       sync.Mutex
	counts   map[string]uint64
	faults   []Fault
	stats    Stats
	held     []*bus.Msg            // delayed until Release
	next     map[string][]*bus.Msg // reordered: published after the next message on their subject
	paused   bool
	queued   []*bus.Msg    // published while paused
	resumed  chan struct{} // closed on Resume; replaced on Pause
	subs     map[*subscription]struct{}
	timers   map[*time.Timer]struct{}
	cut      bool
	done     chan struct{}
	doneOnce sync.Once
	why      error
}

var (
	_ bus.Bus    = (*Bus)(nil)
	_ bus.Closer = (*Bus)(nil)
	_ bus.Keeper = (*Bus)(nil)
)

// Wrap returns a Bus that publishes through b with the faults cfg gives.
// The Bus stands for b: closing it closes b. A rate outside [0, 1], a
// negative DelayFor or an invalid Subject is an error naming the rule.
func Wrap(b bus.Bus, cfg Config) (*Bus, error) {
	if b == nil {
		return nil, errors.New("faultbus: nil bus")
	}
	for i, r := range cfg.Rules {
		if err := bus.ValidateSubscribeSubject(r.Subject); err != nil {
			return nil, fmt.Errorf("faultbus: Rules[%d].Subject: %w", i, err)
		}
		for _, f := range []struct {
			name string
			v    float64
		}{{"Drop", r.Drop}, {"Duplicate", r.Duplicate}, {"Delay", r.Delay}, {"Reorder", r.Reorder}} {
			if !(f.v >= 0 && f.v <= 1) {
				return nil, fmt.Errorf("faultbus: Rules[%d].%s is %v; a rate is from 0 to 1", i, f.name, f.v)
			}
		}
		if r.DelayFor < 0 {
			return nil, fmt.Errorf("faultbus: Rules[%d].DelayFor is negative", i)
		}
	}
	resumed := make(chan struct{})
	close(resumed)
	return &Bus{
		inner:   b,
		cfg:     cfg,
		counts:  map[string]uint64{},
		next:    map[string][]*bus.Msg{},
		resumed: resumed,
		subs:    map[*subscription]struct{}{},
		timers:  map[*time.Timer]struct{}{},
		done:    make(chan struct{}),
	}, nil
}

// decision is what happens to one message.
type decision struct {
	drop, duplicate, delay, reorder bool
	delayFor                        time.Duration
}

// decide returns the faults of the n-th message on subject: a function of
// the seed, the subject and n only.
func (b *Bus) decide(subject string, n uint64) (decision, bool) {
	for _, r := range b.cfg.Rules {
		if !bus.Match(r.Subject, subject) {
			continue
		}
		h := fnv.New64a()
		h.Write([]byte(subject))
		rng := rand.New(rand.NewPCG(b.cfg.Seed, h.Sum64()^(n*0x9e3779b97f4a7c15)))
		d := decision{delayFor: r.DelayFor}
		d.drop = rng.Float64() < r.Drop
		d.duplicate = rng.Float64() < r.Duplicate
		d.delay = rng.Float64() < r.Delay
		d.reorder = rng.Float64() < r.Reorder
		if d.drop {
			d.duplicate, d.delay, d.reorder = false, false, false
		}
		if d.delay {
			d.reorder = false
		}
		return d, true
	}
	return decision{}, false
}

// Publish implements bus.Bus: it injects the faults of msg's subject, then
// publishes what remains through the wrapped bus. A dropped, delayed or
// reordered message is not an error: Publish returns nil, as a publish
// whose message is lost later does.
func (b *Bus) Publish(ctx context.Context, msg *bus.Msg) error {
	if msg == nil {
		return errors.New("faultbus: publish: nil message")
	}
	if err := bus.ValidatePublishSubject(msg.Subject); err != nil {
		return err
	}
	b.mu.Lock()
	if b.cut {
		b.mu.Unlock()
		return fmt.Errorf("faultbus: publish to %q: %w", msg.Subject, b.why)
	}
	d, faulted := decision{}, false
	var n uint64
	if len(b.cfg.Rules) > 0 {
		if _, matched := b.ruleFor(msg.Subject); matched {
			b.counts[msg.Subject]++
			n = b.counts[msg.Subject]
			d, faulted = b.decide(msg.Subject, n)
		}
	}
	var out []*bus.Msg
	switch {
	case faulted && d.drop:
		b.record(msg.Subject, n, Dropped)
	case faulted && d.delay:
		b.record(msg.Subject, n, Delayed)
		c := clone(msg)
		if d.delayFor == 0 {
			b.held = append(b.held, c)
		} else {
			b.after(d.delayFor, c)
		}
	case faulted && d.reorder:
		b.record(msg.Subject, n, Reordered)
		out = append(out, b.next[msg.Subject]...)
		b.next[msg.Subject] = []*bus.Msg{clone(msg)}
	default:
		out = append(out, msg)
		out = append(out, b.next[msg.Subject]...)
		delete(b.next, msg.Subject)
	}
	if faulted && d.duplicate {
		b.record(msg.Subject, n, Duplicated)
		out = append(out, clone(msg))
	}
	if b.paused {
		for _, m := range out {
			b.queued = append(b.queued, clone(m))
		}
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	return b.send(ctx, out)
}

// ruleFor returns the first rule matching subject. Called with mu held.
func (b *Bus) ruleFor(subject string) (Rule, bool) {
	for _, r := range b.cfg.Rules {
		if bus.Match(r.Subject, subject) {
			return r, true
		}
	}
	return Rule{}, false
}

// record notes a fault. Called with mu held.
func (b *Bus) record(subject string, n uint64, k Kind) {
	b.faults = append(b.faults, Fault{Subject: subject, N: n, Kind: k})
	switch k {
	case Dropped:
		b.stats.Dropped++
	case Duplicated:
		b.stats.Duplicated++
	case Delayed:
		b.stats.Delayed++
	case Reordered:
		b.stats.Reordered++
	}
}

// after publishes m once d has passed, unless the connection is cut or
// closed first. Called with mu held.
func (b *Bus) after(d time.Duration, m *bus.Msg) {
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		b.mu.Lock()
		if _, ok := b.timers[t]; !ok {
			b.mu.Unlock()
			return
		}
		delete(b.timers, t)
		if b.paused {
			b.queued = append(b.queued, m)
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		_ = b.send(context.Background(), []*bus.Msg{m})
	})
	b.timers[t] = struct{}{}
}

// send publishes msgs in order through the wrapped bus.
func (b *Bus) send(ctx context.Context, msgs []*bus.Msg) error {
	var errs []error
	for _, m := range msgs {
		if err := b.inner.Publish(ctx, m); err != nil {
			errs = append(errs, err)
			continue
		}
		b.mu.Lock()
		b.stats.Published++
		b.mu.Unlock()
	}
	return errors.Join(errs...)
}

func clone(m *bus.Msg) *bus.Msg {
	return &bus.Msg{Subject: m.Subject, Reply: m.Reply, Header: m.Header.Clone(), Data: append([]byte(nil), m.Data...)}
}

// Release publishes at once every message held: those delayed until
// Release, those whose DelayFor has not passed yet, and those waiting to
// be reordered, in the order they were held. While paused they join the
// messages Resume publishes.
func (b *Bus) Release(ctx context.Context) error {
	b.mu.Lock()
	if b.cut {
		b.mu.Unlock()
		return fmt.Errorf("faultbus: release: %w", b.why)
	}
	out := b.takeHeldLocked()
	if b.paused {
		b.queued = append(b.queued, out...)
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	return b.send(ctx, out)
}

// takeHeldLocked removes and returns every held message.
func (b *Bus) takeHeldLocked() []*bus.Msg {
	out := b.held
	b.held = nil
	for t := range b.timers {
		t.Stop()
	}
	clear(b.timers)
	for subject, ms := range b.next {
		out = append(out, ms...)
		delete(b.next, subject)
	}
	return out
}

// Pause stalls the connection, as a network partition or a stuck process
// does: what is published through it waits (as nats.go buffers publishes
// while it reconnects), and its subscriptions' handlers wait before each
// delivery, so the wrapped bus holds their messages within its pending
// limits and drops the rest as a slow consumer. Resume ends the stall.
// Drain, Close and Cut end it too.
func (b *Bus) Pause() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.paused || b.cut {
		return
	}
	b.paused = true
	b.resumed = make(chan struct{})
}

// Resume ends a Pause: the messages published meanwhile go out, in order,
// then the handlers go on with what the wrapped bus held for them.
func (b *Bus) Resume(ctx context.Context) error {
	b.mu.Lock()
	if !b.paused {
		b.mu.Unlock()
		return nil
	}
	b.paused = false
	out := b.queued
	b.queued = nil
	close(b.resumed)
	b.mu.Unlock()
	return b.send(ctx, out)
}

// Cut loses the connection for good, as when a server goes away and the
// client gives up reconnecting: the subscriptions made through the Bus
// are removed (what they held is lost), what is held is dropped, Done is
// closed and every call afterwards fails with an error wrapping ErrCut and
// bus.ErrClosed. The actors on it return from Run with that error. The
// wrapped bus stays open for its other users; Close still closes it. Cut
// must not be called from a handler of the Bus's own subscriptions.
func (b *Bus) Cut() {
	b.mu.Lock()
	if b.cut {
		b.mu.Unlock()
		return
	}
	b.cut = true
	b.why = fmt.Errorf("%w: %w", ErrCut, bus.ErrClosed)
	b.takeHeldLocked()
	b.queued = nil
	if b.paused {
		b.paused = false
		close(b.resumed)
	}
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	clear(b.subs)
	b.mu.Unlock()
	b.doneOnce.Do(func() { close(b.done) })
	for _, s := range subs {
		_ = s.inner.Unsubscribe()
	}
	// A server forgets a lost connection's interest at once: make the
	// removals reach it before Cut returns.
	ctx, cancel := context.WithTimeout(context.Background(), cutFlushTimeout)
	defer cancel()
	_ = b.inner.Flush(ctx)
}

// cutFlushTimeout bounds the flush that makes Cut's unsubscribes reach the
// server.
const cutFlushTimeout = 5 * time.Second

// Subscribe implements bus.Bus. While the Bus is paused the handler waits
// before each delivery.
func (b *Bus) Subscribe(ctx context.Context, subject string, h bus.Handler, opts ...bus.SubscribeOption) (bus.Subscription, error) {
	if h == nil {
		return nil, errors.New("faultbus: subscribe: nil handler")
	}
	b.mu.Lock()
	if b.cut {
		b.mu.Unlock()
		return nil, fmt.Errorf("faultbus: subscribe to %q: %w", subject, b.why)
	}
	b.mu.Unlock()
	s := &subscription{b: b}
	inner, err := b.inner.Subscribe(ctx, subject, func(ctx context.Context, m *bus.Msg) error {
		if !b.wait(ctx) {
			return nil
		}
		return h(ctx, m)
	}, opts...)
	if err != nil {
		return nil, err
	}
	s.inner = inner
	b.mu.Lock()
	if b.cut {
		b.mu.Unlock()
		_ = inner.Unsubscribe()
		return nil, fmt.Errorf("faultbus: subscribe to %q: %w", subject, b.why)
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s, nil
}

// wait blocks a delivery while the Bus is paused; it reports false when
// the delivery should be skipped (its context ended, or the connection
// was cut).
func (b *Bus) wait(ctx context.Context) bool {
	b.mu.Lock()
	resumed, cut := b.resumed, b.cut
	b.mu.Unlock()
	if cut {
		return false
	}
	select {
	case <-resumed:
	case <-ctx.Done():
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.cut
}

// Flush implements bus.Bus.
func (b *Bus) Flush(ctx context.Context) error {
	if err := b.Err(); err != nil {
		return fmt.Errorf("faultbus: flush: %w", err)
	}
	return b.inner.Flush(ctx)
}

// Drain implements bus.Bus: it ends a Pause (publishing what waited),
// drops the messages still held, and drains the wrapped bus.
func (b *Bus) Drain(ctx context.Context) error {
	b.stop()
	if err := b.Resume(ctx); err != nil {
		return err
	}
	return b.inner.Drain(ctx)
}

// Close implements bus.Bus: it drops what is held and closes the wrapped
// bus.
func (b *Bus) Close() error {
	b.stop()
	_ = b.Resume(context.Background())
	return b.inner.Close()
}

// stop drops the held messages and stops the delay timers.
func (b *Bus) stop() {
	b.mu.Lock()
	b.takeHeldLocked()
	b.mu.Unlock()
}

// Done implements bus.Closer: closed on Cut, or when the wrapped bus
// closes.
func (b *Bus) Done() <-chan struct{} {
	b.mu.Lock()
	cut := b.cut
	b.mu.Unlock()
	inner := bus.Done(b.inner)
	if cut || inner == nil {
		return b.done
	}
	select {
	case <-inner:
		return inner
	default:
	}
	return b.merged(inner)
}

// merged returns a channel closed when b.done or inner is: one goroutine
// per call would leak, so the channel is made once.
func (b *Bus) merged(inner <-chan struct{}) <-chan struct{} {
	return b.Keep(mergedKey{}, func() any {
		ch := make(chan struct{})
		go func() {
			select {
			case <-b.done:
			case <-inner:
			}
			close(ch)
		}()
		return (<-chan struct{})(ch)
	}).(<-chan struct{})
}

type mergedKey struct{}

// Err implements bus.Closer: after Cut an error wrapping ErrCut and
// bus.ErrClosed, otherwise what the wrapped bus says.
func (b *Bus) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut {
		return b.why
	}
	return bus.Err(b.inner)
}

// Keep implements bus.Keeper with values of the wrapper's own: what a
// library keeps for this connection (a result subscription) is made
// through it and suffers its faults.
func (b *Bus) Keep(key any, create func() any) any { return b.kept.Keep(key, create) }

// Stats returns the counts so far.
func (b *Bus) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	s.Held = len(b.held) + len(b.timers) + len(b.queued)
	for _, ms := range b.next {
		s.Held += len(ms)
	}
	return s
}

// Faults returns every fault injected so far, in the order of the
// publishes.
func (b *Bus) Faults() []Fault {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Fault(nil), b.faults...)
}

// subscription is a subscription made through a Bus.
type subscription struct {
	b     *Bus
	inner bus.Subscription
}

func (s *subscription) Subject() string { return s.inner.Subject() }
func (s *subscription) Queue() string   { return s.inner.Queue() }
func (s *subscription) Dropped() int    { return s.inner.Dropped() }

func (s *subscription) forget() {
	s.b.mu.Lock()
	delete(s.b.subs, s)
	s.b.mu.Unlock()
}

func (s *subscription) Unsubscribe() error {
	s.forget()
	return s.inner.Unsubscribe()
}

func (s *subscription) Drain(ctx context.Context) error {
	s.forget()
	return s.inner.Drain(ctx)
}
