// Package held keeps the durable messages a durable actor (router or
// worker) holds until their outcome is known, by task id, and serves its
// consumption as the actor's bus.Subscription: it signals every held
// message in progress so that none is redelivered while it is held, and
// on Drain waits until every one is settled, handing back the rest.
package held

import (
	"context"
	"sync"
	"time"

	"github.com/heddle-go/heddle/bus"
)

// Set is the messages held, by task id, in delivery order per id.
type Set struct {
	mu      sync.Mutex
	byID    map[string][]bus.DurableMsg
	count   int
	changed chan struct{} // closed and replaced when count changes
}

// NewSet returns an empty Set.
func NewSet() *Set {
	return &Set{byID: make(map[string][]bus.DurableMsg), changed: make(chan struct{})}
}

// Add holds m for task id.
func (s *Set) Add(id string, m bus.DurableMsg) {
	s.mu.Lock()
	s.byID[id] = append(s.byID[id], m)
	s.count++
	s.mu.Unlock()
}

// Take returns the first message held for id and holds it no more, or
// nil when none is held.
func (s *Set) Take(id string) bus.DurableMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.byID[id]
	if len(list) == 0 {
		return nil
	}
	m := list[0]
	if len(list) == 1 {
		delete(s.byID, id)
	} else {
		s.byID[id] = list[1:]
	}
	s.count--
	close(s.changed)
	s.changed = make(chan struct{})
	return m
}

// messages returns every message held.
func (s *Set) messages() []bus.DurableMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]bus.DurableMsg, 0, s.count)
	for _, list := range s.byID {
		out = append(out, list...)
	}
	return out
}

// ids returns the task id of every message held, once per message.
func (s *Set) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, s.count)
	for id, list := range s.byID {
		for range list {
			out = append(out, id)
		}
	}
	return out
}

// wait returns once nothing is held, or with ctx's error.
func (s *Set) wait(ctx context.Context) error {
	for {
		s.mu.Lock()
		n, changed := s.count, s.changed
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Sub is a durable consumption as an actor's bus.Subscription.
type Sub struct {
	set          *Set
	cn           bus.Consumption
	subject      string
	queue        string
	drainTimeout time.Duration
	handBack     func(m bus.DurableMsg, id string)

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// Config describes a Sub.
type Config struct {
	// Subject and Queue are what the Sub reports as its subject and
	// queue group (the consumer's name).
	Subject, Queue string
	// KeepAlive is the period of the in-progress signals; a third of the
	// consumer's ack wait.
	KeepAlive time.Duration
	// DrainTimeout bounds Unsubscribe's stop of the consumption.
	DrainTimeout time.Duration
	// HandBack returns a message taken from the set to the stream when
	// the Sub ends before its outcome.
	HandBack func(m bus.DurableMsg, id string)
}

// Start returns cn as a Sub over set and starts its in-progress signals.
func Start(set *Set, cn bus.Consumption, cfg Config) *Sub {
	d := &Sub{set: set, cn: cn, subject: cfg.Subject, queue: cfg.Queue, drainTimeout: cfg.DrainTimeout,
		handBack: cfg.HandBack, stop: make(chan struct{}), done: make(chan struct{})}
	go d.keepAlive(max(cfg.KeepAlive, time.Millisecond))
	return d
}

var _ bus.Subscription = (*Sub)(nil)

// Subject, Queue and Dropped implement bus.Subscription; a durable
// consumption drops nothing.
func (d *Sub) Subject() string { return d.subject }
func (d *Sub) Queue() string   { return d.queue }
func (d *Sub) Dropped() int    { return 0 }

// keepAlive signals every held message in progress each period, until
// the Sub ends.
func (d *Sub) keepAlive(period time.Duration) {
	defer close(d.done)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		for _, m := range d.set.messages() {
			_ = m.InProgress() // a message settled meanwhile refuses it
		}
	}
}

// Unsubscribe stops the consumption and hands back every message held.
func (d *Sub) Unsubscribe() error {
	ctx, cancel := context.WithTimeout(context.Background(), d.drainTimeout)
	defer cancel()
	_ = d.cn.Stop(ctx)
	d.handBackRest()
	return nil
}

// Drain stops the consumption (what it fetched goes back to the stream)
// and waits until every message held is settled, or ctx ends: then the
// rest are handed back.
func (d *Sub) Drain(ctx context.Context) error {
	err := d.cn.Stop(ctx)
	if err == nil {
		err = d.set.wait(ctx)
	}
	d.handBackRest()
	return err
}

// handBackRest hands back the messages still held and stops the
// in-progress signals.
func (d *Sub) handBackRest() {
	for _, id := range d.set.ids() {
		if m := d.set.Take(id); m != nil {
			d.handBack(m, id)
		}
	}
	d.stopOnce.Do(func() { close(d.stop) })
	<-d.done
}
