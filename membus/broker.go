package membus

import (
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/heddle-go/heddle/bus"
)

// maxCachedSubjects bounds the per-table cache of routes computed for
// subjects that wildcard subscriptions may match, so that publishing to an
// unbounded set of subjects (one per request, say) cannot grow memory.
const maxCachedSubjects = 4096

// broker is the routing table every connection of one in-process bus
// shares. Publishers read an immutable snapshot through an atomic pointer,
// so publishing takes no broker lock; Subscribe and Unsubscribe build a new
// snapshot under mu (copy-on-write).
type broker struct {
	mu  sync.Mutex
	tab atomic.Pointer[table]
}

func newBroker() *broker {
	br := &broker{}
	br.tab.Store(&table{literal: map[string]*route{}})
	return br
}

// table is one immutable snapshot of the live subscriptions.
type table struct {
	literal map[string]*route // subscriptions without wildcards, by subject
	wild    []*subscription   // subscriptions with wildcards

	// cache holds routes computed by lookup when wild is not empty, keyed by
	// publish subject. It is filled lazily and dies with the snapshot.
	cache  sync.Map
	cached atomic.Int32
}

// route is the set of subscriptions one publish subject reaches: every
// plain subscription, and one member of each queue group. Routes are never
// modified once published in a table.
type route struct {
	plain  []*subscription
	groups []group
}

// group is the members of one queue group reached by a subject. As in the
// NATS server, members with the same queue name form one group even when
// they subscribed with different (overlapping) subjects.
type group struct {
	name    string
	members []*subscription
}

// pick returns the group member that gets the next message; random, like
// the NATS server.
func (g *group) pick() *subscription {
	if len(g.members) == 1 {
		return g.members[0]
	}
	return g.members[rand.IntN(len(g.members))]
}

func (r *route) empty() bool {
	return r == nil || (len(r.plain) == 0 && len(r.groups) == 0)
}

// with returns a copy of r (which may be nil) that also reaches s.
func (r *route) with(s *subscription) *route {
	n := &route{}
	if r != nil {
		n.plain = slices.Clip(r.plain)
		n.groups = slices.Clone(r.groups)
	}
	if s.queue == "" {
		n.plain = append(n.plain, s)
		return n
	}
	for i := range n.groups {
		if n.groups[i].name == s.queue {
			n.groups[i].members = append(slices.Clip(n.groups[i].members), s)
			return n
		}
	}
	n.groups = append(n.groups, group{name: s.queue, members: []*subscription{s}})
	return n
}

// without returns a copy of r that no longer reaches any subscription in
// gone, or nil when nothing is left.
func (r *route) without(gone map[*subscription]bool) *route {
	if r == nil {
		return nil
	}
	n := &route{plain: slices.DeleteFunc(slices.Clone(r.plain), func(s *subscription) bool { return gone[s] })}
	for _, g := range r.groups {
		members := slices.DeleteFunc(slices.Clone(g.members), func(s *subscription) bool { return gone[s] })
		if len(members) > 0 {
			n.groups = append(n.groups, group{name: g.name, members: members})
		}
	}
	if n.empty() {
		return nil
	}
	return n
}

// lookup returns the route for a publish subject, or nil when nothing
// matches. known reports that the subject is a valid publish subject: it is
// the subject of a subscription without wildcards, or a route computed for
// it was cached. Without wildcard subscriptions lookup is one map read.
//
// A subject that is not known must be validated before its route is used;
// lookup only caches routes for subjects that pass validation.
func (t *table) lookup(subject string) (r *route, known bool) {
	r, known = t.literal[subject]
	if len(t.wild) == 0 {
		return r, known
	}
	if v, ok := t.cache.Load(subject); ok {
		return v.(*route), true
	}
	if !known && bus.ValidatePublishSubject(subject) != nil {
		return nil, false
	}
	for _, s := range t.wild {
		if bus.Match(s.subject, subject) {
			r = r.with(s)
		}
	}
	if t.cached.Load() < maxCachedSubjects && t.cached.Add(1) <= maxCachedSubjects {
		t.cache.Store(subject, r)
	}
	return r, true
}

// add makes s reachable by publishes that start after add returns.
func (br *broker) add(s *subscription) {
	br.mu.Lock()
	defer br.mu.Unlock()
	old := br.tab.Load()
	n := &table{literal: old.literal, wild: old.wild}
	if s.wildcard {
		n.wild = append(slices.Clip(old.wild), s)
	} else {
		n.literal = maps.Clone(old.literal)
		n.literal[s.subject] = old.literal[s.subject].with(s)
	}
	br.tab.Store(n)
}

// remove makes subs unreachable by publishes that start after remove
// returns. Subscriptions already removed are ignored.
func (br *broker) remove(subs ...*subscription) {
	if len(subs) == 0 {
		return
	}
	gone := make(map[*subscription]bool, len(subs))
	for _, s := range subs {
		gone[s] = true
	}
	br.mu.Lock()
	defer br.mu.Unlock()
	old := br.tab.Load()
	n := &table{literal: old.literal, wild: old.wild}
	copied := false
	for _, s := range subs {
		if s.wildcard {
			continue
		}
		r, ok := n.literal[s.subject]
		if !ok {
			continue
		}
		if !copied {
			n.literal = maps.Clone(old.literal)
			copied = true
		}
		if r = r.without(gone); r == nil {
			delete(n.literal, s.subject)
		} else {
			n.literal[s.subject] = r
		}
	}
	if slices.ContainsFunc(old.wild, func(s *subscription) bool { return gone[s] }) {
		n.wild = slices.DeleteFunc(slices.Clone(old.wild), func(s *subscription) bool { return gone[s] })
	}
	br.tab.Store(n)
}
