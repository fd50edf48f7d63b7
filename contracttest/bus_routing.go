package contracttest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/heddle-go/heddle/bus"
)

func busTestNoSubscriber(h *busHarness) {
	c := h.connect()
	if err := c.Publish(h.ctx, &bus.Msg{Subject: h.subject("nobody", "listens"), Data: []byte("lost")}); err != nil {
		h.t.Fatalf("Publish with no subscriber: got %v, want nil", err)
	}
	h.flush(c)
}

func busTestIndependentConnections(h *busHarness) {
	a, b, c := h.connect(), h.connect(), h.connect()
	subject := h.subject("shared")
	var mu sync.Mutex
	aCount := 0 // calls of the handler on a, which must stay zero
	h.subscribe(a, subject, func(ctx context.Context, m *bus.Msg) error {
		mu.Lock()
		aCount++
		mu.Unlock()
		return nil
	})
	in := newBusInbox(4)
	h.subscribe(c, subject, in.handler)
	if err := a.Close(); err != nil {
		h.t.Fatalf("Close: %v", err)
	}
	h.publish(b, subject, []byte("after close"))
	got := in.recv(h.t, "the message on the connection left open")
	if string(got.Data) != "after close" {
		h.t.Fatalf("got %q, want %q", got.Data, "after close")
	}
	mu.Lock()
	defer mu.Unlock()
	if aCount != 0 {
		h.t.Fatalf("the closed connection's handler ran %d times, want 0", aCount)
	}
}

func busTestBadPublishSubjects(h *busHarness) {
	c := h.connect()
	for _, subject := range []string{"", "a..b", "a b", "a\tb", "a.*", "a.>", "*", ">", ".a", "a.", "."} {
		err := c.Publish(h.ctx, &bus.Msg{Subject: subject, Data: []byte("x")})
		if !errors.Is(err, bus.ErrBadSubject) {
			h.t.Errorf("Publish(%q): got %v, want an error wrapping bus.ErrBadSubject", subject, err)
		}
	}
}

func busTestBadSubscribeSubjects(h *busHarness) {
	c := h.connect()
	nop := func(context.Context, *bus.Msg) error { return nil }
	for _, subject := range []string{"", "a..b", "a.>.b", ">.a", "a b", ".a", "a.", "."} {
		sub, err := c.Subscribe(h.ctx, subject, nop)
		if !errors.Is(err, bus.ErrBadSubject) {
			h.t.Errorf("Subscribe(%q): got %v, want an error wrapping bus.ErrBadSubject", subject, err)
		}
		if sub != nil && err == nil {
			_ = sub.Unsubscribe()
		}
	}
}

func busTestBadQueue(h *busHarness) {
	c := h.connect()
	nop := func(context.Context, *bus.Msg) error { return nil }
	subject := h.subject("queue")
	for _, queue := range []string{"a b", "a\tb"} {
		sub, err := c.Subscribe(h.ctx, subject, nop, bus.Queue(queue))
		if !errors.Is(err, bus.ErrBadQueue) {
			h.t.Errorf("Subscribe with queue %q: got %v, want an error wrapping bus.ErrBadQueue", queue, err)
		}
		if sub != nil && err == nil {
			_ = sub.Unsubscribe()
		}
	}
}

// busMatrix is the wildcard delivery matrix: whether a message published to
// subject reaches a subscription on pattern. Subjects never use the token
// "s", which sentinel subjects use.
var busMatrix = []struct {
	pattern, subject string
	match            bool
}{
	{"a.b", "a.b", true},
	{"a.b", "a.c", false},
	{"a.b", "a", false},
	{"a.b", "a.b.c", false},
	{"a.*", "a.b", true},
	{"a.*", "a", false},
	{"a.*", "a.b.c", false},
	{"*.b", "a.b", true},
	{"*.b", "a.c", false},
	{"*.b", "b", false},
	{"a.*.c", "a.b.c", true},
	{"a.*.c", "a.b.d", false},
	{"a.*.c", "a.c", false},
	{"a.>", "a.b", true},
	{"a.>", "a.b.c.d", true},
	{"a.>", "a", false},
	{"a.>", "b.a", false},
	{"*", "a", true},
	{"*", "a.b", false},
	{">", "a", true},
	{">", "a.b.c", true},
	{"*.>", "a.b", true},
	{"*.>", "a", false},
	{"a.*.>", "a.b.c", true},
	{"a.*.>", "a.b", false},
	{"*.*", "a.b", true},
	{"*.*", "a.b.c", false},
}

// busSentinelSubject turns a pattern into a subject it matches.
func busSentinelSubject(pattern string) string {
	tokens := strings.Split(pattern, ".")
	for i, tok := range tokens {
		if tok == "*" || tok == ">" {
			tokens[i] = "s"
		}
	}
	return strings.Join(tokens, ".")
}

func busTestWildcardMatrix(h *busHarness) {
	sub, pub := h.connect(), h.connect()
	const probe, sentinel = "probe", "sentinel"
	type result struct {
		probes int
		done   chan struct{}
	}
	results := make([]*result, len(busMatrix))
	var mu sync.Mutex
	for i, tc := range busMatrix {
		r := &result{done: make(chan struct{})}
		results[i] = r
		pattern := h.subject("case"+strconv.Itoa(i), tc.pattern)
		h.subscribe(sub, pattern, func(_ context.Context, m *bus.Msg) error {
			mu.Lock()
			defer mu.Unlock()
			switch string(m.Data) {
			case probe:
				r.probes++
			case sentinel:
				close(r.done)
			}
			return nil
		})
	}
	// Each case has its own prefix, so a probe can only reach its own case.
	// The sentinel follows the probe from the same publisher, so once a
	// subscription has its sentinel it has every probe it will ever get.
	for i, tc := range busMatrix {
		h.publish(pub, h.subject("case"+strconv.Itoa(i), tc.subject), []byte(probe))
	}
	for i, tc := range busMatrix {
		h.publish(pub, h.subject("case"+strconv.Itoa(i), busSentinelSubject(tc.pattern)), []byte(sentinel))
	}
	h.flush(pub)
	for i, tc := range busMatrix {
		busRecv(h.t, (<-chan struct{})(results[i].done), fmt.Sprintf("the sentinel of pattern %q", tc.pattern))
	}
	mu.Lock()
	defer mu.Unlock()
	for i, tc := range busMatrix {
		verb := "does not match"
		want := 0
		if tc.match {
			verb, want = "matches", 1
		}
		h.t.Run(fmt.Sprintf("%s %s %s", tc.pattern, verb, tc.subject), func(t *testing.T) {
			if got := results[i].probes; got != want {
				t.Errorf("subscription %q got %d messages published to %q, want %d", tc.pattern, got, tc.subject, want)
			}
		})
	}
}

// busTally counts deliveries per payload for one receiving party (a queue
// group or a plain subscription).
type busTally struct {
	name  string
	inbox busInbox
}

func newBusTally(name string, n int) *busTally {
	return &busTally{name: name, inbox: newBusInbox(2 * n)}
}

// waitTally waits for n deliveries to tally and returns them counted by
// payload.
func (h *busHarness) waitTally(tally *busTally, n int) map[string]int {
	h.t.Helper()
	seen := map[string]int{}
	for range n {
		m := tally.inbox.recv(h.t, fmt.Sprintf("%d deliveries to %s (got %d)", n, tally.name, len(seen)))
		seen[string(m.Data)]++
	}
	return seen
}

// checkTally adds what else reached tally (call it once the receiving
// connections are drained) and verifies that each of the payloads
// "0".."n-1" arrived exactly once and nothing else did.
func (h *busHarness) checkTally(tally *busTally, seen map[string]int, n int) {
	h.t.Helper()
	for len(tally.inbox) > 0 {
		m := <-tally.inbox
		seen[string(m.Data)]++
	}
	for i := range n {
		id := strconv.Itoa(i)
		if seen[id] != 1 {
			h.t.Errorf("%s got message %s %d times, want exactly once", tally.name, id, seen[id])
		}
		delete(seen, id)
	}
	for id, k := range seen {
		h.t.Errorf("%s got unexpected message %q %d times", tally.name, id, k)
	}
}

// publishIDs publishes the payloads "0".."n-1" to subject, then flushes.
func (h *busHarness) publishIDs(c *busConn, subject string, n int) {
	h.t.Helper()
	for i := range n {
		h.publish(c, subject, []byte(strconv.Itoa(i)))
	}
	h.flush(c)
}

func busTestOverlappingSubscriptions(h *busHarness) {
	sub, pub := h.connect(), h.connect()
	exact, star, tail := newBusInbox(8), newBusInbox(8), newBusInbox(8)
	h.subscribe(sub, h.subject("o", "a", "b"), exact.handler)
	h.subscribe(sub, h.subject("o", "a", "*"), star.handler)
	h.subscribe(sub, h.subject("o", ">"), tail.handler)
	// The final message reaches all three, so it is each one's sentinel.
	sends := []struct{ subject, data string }{{"a.b", "1"}, {"a.c", "2"}, {"a.b", "end"}}
	for _, m := range sends {
		h.publish(pub, h.subject("o", m.subject), []byte(m.data))
	}
	h.flush(pub)
	for _, tc := range []struct {
		name  string
		inbox busInbox
		want  []string
	}{
		{"the literal subscription", exact, []string{"1", "end"}},
		{"the '*' subscription", star, []string{"1", "2", "end"}},
		{"the '>' subscription", tail, []string{"1", "2", "end"}},
	} {
		var got []string
		for len(got) == 0 || got[len(got)-1] != "end" {
			got = append(got, string(tc.inbox.recv(h.t, "the sentinel on "+tc.name).Data))
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			h.t.Errorf("%s got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func busTestQueueGroupOnce(h *busHarness) {
	const n = 300
	a, b, pub := h.connect(), h.connect(), h.connect()
	subject := h.subject("work")
	group := newBusTally("queue group workers", n)
	for i, c := range []*busConn{a, a, b} {
		sub := h.subscribe(c, subject, group.inbox.handler, bus.Queue("workers"))
		if sub.Subject() != subject || sub.Queue() != "workers" {
			h.t.Fatalf("member %d: Subject() = %q, Queue() = %q; want %q, %q", i, sub.Subject(), sub.Queue(), subject, "workers")
		}
	}
	h.publishIDs(pub, subject, n)
	seen := h.waitTally(group, n)
	h.drain(a)
	h.drain(b)
	h.checkTally(group, seen, n)
}

func busTestQueueGroupsAndPlain(h *busHarness) {
	const n = 200
	a, b, pub := h.connect(), h.connect(), h.connect()
	subject := h.subject("fanout")
	g1 := newBusTally("queue group g1", n)
	g2 := newBusTally("queue group g2", n)
	plain := newBusTally("the plain subscription", n)
	h.subscribe(a, subject, g1.inbox.handler, bus.Queue("g1"))
	h.subscribe(b, subject, g1.inbox.handler, bus.Queue("g1"))
	h.subscribe(a, subject, g2.inbox.handler, bus.Queue("g2"))
	h.subscribe(a, subject, g2.inbox.handler, bus.Queue("g2"))
	if sub := h.subscribe(b, subject, plain.inbox.handler); sub.Queue() != "" {
		h.t.Fatalf("plain subscription: Queue() = %q, want empty", sub.Queue())
	}
	h.publishIDs(pub, subject, n)
	seen := []map[string]int{h.waitTally(g1, n), h.waitTally(g2, n), h.waitTally(plain, n)}
	h.drain(a)
	h.drain(b)
	for i, tally := range []*busTally{g1, g2, plain} {
		h.checkTally(tally, seen[i], n)
	}
}

func busTestQueueGroupAcrossSubjects(h *busHarness) {
	const n = 100
	a, pub := h.connect(), h.connect()
	group := newBusTally("queue group q", n)
	h.subscribe(a, h.subject("jobs", "x"), group.inbox.handler, bus.Queue("q"))
	h.subscribe(a, h.subject("jobs", "*"), group.inbox.handler, bus.Queue("q"))
	h.subscribe(a, h.subject("jobs", ">"), group.inbox.handler, bus.Queue("q"))
	h.publishIDs(pub, h.subject("jobs", "x"), n)
	seen := h.waitTally(group, n)
	h.drain(a)
	h.checkTally(group, seen, n)
}

func busTestSubscribeBeforePublish(h *busHarness) {
	a, b := h.connect(), h.connect()
	for i := range 20 {
		subject := h.subject("early", strconv.Itoa(i))
		in := newBusInbox(1)
		sub := h.subscribe(a, subject, in.handler)
		h.publish(b, subject, []byte("first"))
		in.recv(h.t, fmt.Sprintf("the message published on %q right after Subscribe returned", subject))
		if err := sub.Unsubscribe(); err != nil {
			h.t.Fatalf("Unsubscribe: %v", err)
		}
	}
}
