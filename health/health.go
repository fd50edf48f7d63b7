// Package health serves the liveness and readiness of a process's buses
// and actors as http.Handlers, for /healthz and /readyz:
//
//	hc := health.New()
//	hc.AddBus("nats", b)
//	run, err := hc.AddActor("worker/summarize", w) // run this in w's place
//	http.Handle("/healthz", hc.Healthz())
//	http.Handle("/readyz", hc.Readyz())
//	heddle.Serve(ctx, run)
//
// /healthz answers 200 when every bus added is connected: open (not
// closed for good, see bus.Closer) and answering a Flush, a round trip to
// the NATS server for natsbus, within the probe timeout. /readyz answers
// 200 when, besides, every actor added is ready: its Ready channel is
// closed (its subscriptions are live) and, for an actor run through what
// AddActor returned, its Run has not returned. Otherwise each answers 503. The body
// is a JSON Report naming every check and, for each that failed, why.
//
// A natsbus reconnects for ever unless told otherwise: during an outage
// both probes fail (the flush does not come back), and they pass again
// once it has reconnected. A liveness probe on /healthz thus restarts the
// process during an outage longer than the probe's failure threshold;
// where that is not wanted, give the liveness probe a higher threshold
// than the readiness probe.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
)

// DefaultTimeout bounds one probe's flush of each bus unless WithTimeout
// says otherwise. Kubernetes waits one second for a probe by default;
// the flush is given most of it.
const DefaultTimeout = 800 * time.Millisecond

// Status values of a Report and a Check.
const (
	StatusOK          = "ok"
	StatusUnavailable = "unavailable"
)

// Kinds of a Check.
const (
	KindBus   = "bus"
	KindActor = "actor"
)

// Option configures New.
type Option func(*Checker)

// WithTimeout sets how long a probe waits for each bus's flush (see
// DefaultTimeout); d must be positive.
func WithTimeout(d time.Duration) Option {
	return func(c *Checker) { c.timeout = d }
}

// Checker holds the buses and actors whose state the handlers report.
// Make one with New; it is safe for concurrent use, and buses and actors
// may be added while it serves.
type Checker struct {
	timeout time.Duration
	err     error // from the options

	mu     sync.Mutex
	buses  []namedBus
	actors []*trackedActor
	names  map[string]bool
}

type namedBus struct {
	name string
	b    bus.Bus
}

// New returns a Checker with no bus and no actor: both handlers answer
// 200 until some are added.
func New(opts ...Option) *Checker {
	c := &Checker{timeout: DefaultTimeout, names: map[string]bool{}}
	for _, opt := range opts {
		if opt != nil {
			opt(c)
		}
	}
	if c.timeout <= 0 {
		c.err = fmt.Errorf("%w: health: WithTimeout must be positive, got %v", heddle.ErrConfig, c.timeout)
	}
	return c
}

// claim reserves name for one check.
func (c *Checker) claim(kind, name string) error {
	if c.err != nil {
		return c.err
	}
	if name == "" {
		return fmt.Errorf("%w: health: the %s's name is empty", heddle.ErrConfig, kind)
	}
	if c.names[name] {
		return fmt.Errorf("%w: health: a check named %q was added before; give each bus and actor a name of its own", heddle.ErrConfig, name)
	}
	c.names[name] = true
	return nil
}

// AddBus adds b, under name, to both probes. It fails (an error matching
// heddle.ErrConfig) when b is nil, name is empty or taken, or the Checker
// was made with a bad option.
func (c *Checker) AddBus(name string, b bus.Bus) error {
	if b == nil {
		return fmt.Errorf("%w: health: bus %q is nil", heddle.ErrConfig, name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.claim(KindBus, name); err != nil {
		return err
	}
	c.buses = append(c.buses, namedBus{name, b})
	return nil
}

// AddActor adds a, under name, to the readiness probe and returns the
// actor to run in its place (with heddle.Start, heddle.Serve or its
// Run): it runs a and records when a's Run returns, after which a is no
// longer ready. An actor run itself, not through what AddActor returned,
// is ready once its Ready channel is closed, and stays so. It fails (an
// error matching heddle.ErrConfig) when a is nil, name is empty or taken,
// or the Checker was made with a bad option.
func (c *Checker) AddActor(name string, a heddle.Actor) (heddle.Actor, error) {
	if a == nil {
		return nil, fmt.Errorf("%w: health: actor %q is nil", heddle.ErrConfig, name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.claim(KindActor, name); err != nil {
		return nil, err
	}
	t := &trackedActor{name: name, Actor: a}
	c.actors = append(c.actors, t)
	return t, nil
}

// trackedActor runs an actor and records when its Run returns.
type trackedActor struct {
	heddle.Actor
	name     string
	running  atomic.Bool
	returned atomic.Pointer[runEnd]
}

type runEnd struct{ err error }

// Run runs the actor's Run and records its return.
func (t *trackedActor) Run(ctx context.Context) error {
	t.running.Store(true)
	err := t.Actor.Run(ctx)
	t.returned.Store(&runEnd{err})
	return err
}

// Report is the body of both handlers' answers.
type Report struct {
	// Status is StatusOK when every check passed, StatusUnavailable
	// otherwise.
	Status string `json:"status"`
	// Checks are the buses' (in the order added), then, for /readyz,
	// the actors'.
	Checks []Check `json:"checks"`
}

// Check is the state of one bus or actor.
type Check struct {
	Name string `json:"name"`
	// Kind is KindBus or KindActor.
	Kind   string `json:"kind"`
	Status string `json:"status"`
	// Error says why the check failed; empty when it passed.
	Error string `json:"error,omitempty"`
}

// Live checks every bus: open, and answering a flush within the timeout.
func (c *Checker) Live(ctx context.Context) Report {
	c.mu.Lock()
	buses := append([]namedBus(nil), c.buses...)
	c.mu.Unlock()
	checks := make([]Check, len(buses))
	var wg sync.WaitGroup
	for i, nb := range buses {
		wg.Go(func() { checks[i] = c.checkBus(ctx, nb) })
	}
	wg.Wait()
	return report(checks)
}

// Ready checks every bus as Live does, then every actor: ready, and not
// returned from Run.
func (c *Checker) Ready(ctx context.Context) Report {
	r := c.Live(ctx)
	c.mu.Lock()
	actors := append([]*trackedActor(nil), c.actors...)
	c.mu.Unlock()
	for _, a := range actors {
		r.Checks = append(r.Checks, checkActor(a))
	}
	return report(r.Checks)
}

func report(checks []Check) Report {
	r := Report{Status: StatusOK, Checks: checks}
	if r.Checks == nil {
		r.Checks = []Check{}
	}
	for _, ch := range checks {
		if ch.Status != StatusOK {
			r.Status = StatusUnavailable
		}
	}
	return r
}

// checkBus reports nb's state: closed for good (and why), or the outcome
// of a flush bounded by the timeout.
func (c *Checker) checkBus(ctx context.Context, nb namedBus) Check {
	ch := Check{Name: nb.name, Kind: KindBus, Status: StatusOK}
	if err := bus.Err(nb.b); err != nil {
		ch.Status, ch.Error = StatusUnavailable, "closed: "+err.Error()
		return ch
	}
	fctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := nb.b.Flush(fctx); err != nil {
		ch.Status = StatusUnavailable
		switch {
		case errors.Is(err, bus.ErrClosed):
			ch.Error = "closed: " + err.Error()
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			ch.Error = fmt.Sprintf("not connected: a flush did not come back within %v", c.timeout)
		default:
			ch.Error = "flush failed: " + err.Error()
		}
	}
	return ch
}

// checkActor reports a's state.
func checkActor(a *trackedActor) Check {
	ch := Check{Name: a.name, Kind: KindActor, Status: StatusUnavailable}
	if end := a.returned.Load(); end != nil {
		if end.err != nil {
			ch.Error = "stopped: Run returned: " + end.err.Error()
		} else {
			ch.Error = "stopped: Run returned"
		}
		return ch
	}
	select {
	case <-a.Ready():
		ch.Status = StatusOK
	default:
		if a.running.Load() {
			ch.Error = "starting: its subscriptions are not live yet"
		} else {
			ch.Error = "not ready: its subscriptions are not live (Run not called through the Checker's actor, or still starting)"
		}
	}
	return ch
}

// Healthz returns the handler for /healthz: Live's Report as JSON, with
// 200 when every bus is connected and 503 otherwise.
func (c *Checker) Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, c.Live(r.Context()))
	})
}

// Readyz returns the handler for /readyz: Ready's Report as JSON, with
// 200 when every bus is connected and every actor ready, 503 otherwise.
func (c *Checker) Readyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, c.Ready(r.Context()))
	})
}

func serve(w http.ResponseWriter, r Report) {
	body, err := json.Marshal(r)
	if err != nil {
		http.Error(w, "health: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	code := http.StatusOK
	if r.Status != StatusOK {
		code = http.StatusServiceUnavailable
	}
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}
