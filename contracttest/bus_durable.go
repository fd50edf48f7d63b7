package contracttest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle/bus"
)

// testDurable runs the rows of the optional durable capability
// (bus.Durable) as subtests of TestBus, each skipped for a bus that does
// not implement it. Both membus and natsbus do; the rows prove they keep
// the same promises: store before act, duplicates dropped by message id,
// a consumer shared by its consumptions, redelivery after the ack wait,
// Nak, InProgress and Term, MaxDeliver, Stop handing back what was
// fetched, and configuration conflicts named.
//
// Short ack waits (a fraction of a second) make redelivery observable;
// a row that checks that something is not delivered again publishes a
// sentinel and hands it back with a delay longer than every ack wait at
// play: when the sentinel comes back, whatever would have been
// redelivered has been.
func testDurable(t *testing.T, newBus BusFactory, cfg busConfig) {
	rows := []struct {
		name string
		run  func(h *busHarness, d *durableHarness)
	}{
		{"durable: a stored message is delivered once and, acknowledged, never again", durableTestStoreAndAck},
		{"durable: a core publish to a captured subject is stored and a core subscriber receives a durable publish", durableTestCapture},
		{"durable: a message id stored within the window is stored once", durableTestDuplicates},
		{"durable: a message not settled within the ack wait is redelivered with its delivery count", durableTestRedelivery},
		{"durable: Nak hands a message back at once and InProgress keeps it from redelivery", durableTestNakInProgress},
		{"durable: a message is delivered at most MaxDeliver times and Term ends its deliveries", durableTestMaxDeliverTerm},
		{"durable: the consumptions of one consumer share its messages, each to one of them", durableTestShared},
		{"durable: Stop hands back what was fetched, so another consumption gets it at once", durableTestStopHandsBack},
		{"durable: conflicting streams and consumers are refused naming the setting; StreamOf finds the capturing stream; a missing stream is ErrNoStream", durableTestConflicts},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			h := newBusHarness(t, newBus, cfg)
			c := h.connect()
			if _, ok := c.Bus.(bus.Durable); !ok {
				t.Skip("the bus does not implement bus.Durable")
			}
			row.run(h, newDurableHarness(h))
		})
	}
}

// durableHarness names the stream of one row after the row's subject
// prefix, unique in the run.
type durableHarness struct {
	h      *busHarness
	stream string
}

func newDurableHarness(h *busHarness) *durableHarness {
	return &durableHarness{h: h, stream: "CT_" + strings.NewReplacer(".", "_").Replace(strings.TrimPrefix(h.prefix, "contracttest."))}
}

// durable opens a connection with the durable capability.
func (d *durableHarness) durable() (*busConn, bus.Durable) {
	c := d.h.connect()
	return c, c.Bus.(bus.Durable)
}

// ensure creates the row's stream on every subject under its prefix.
func (d *durableHarness) ensure(b bus.Durable, mod func(*bus.StreamConfig)) {
	d.h.t.Helper()
	cfg := bus.StreamConfig{Name: d.stream, Subjects: []string{d.h.subject(">")}, Memory: true, MaxAge: time.Hour}
	if mod != nil {
		mod(&cfg)
	}
	if err := b.EnsureStream(d.h.ctx, cfg); err != nil {
		d.h.t.Fatalf("EnsureStream(%s): %v", d.stream, err)
	}
}

// publish stores one message or fails the row.
func (d *durableHarness) publish(b bus.Durable, subject, data, id string) bus.PubAck {
	d.h.t.Helper()
	ack, err := b.PublishDurable(d.h.ctx, &bus.Msg{Subject: subject, Data: []byte(data)}, id)
	if err != nil {
		d.h.t.Fatalf("PublishDurable(%q, id %q): %v", subject, id, err)
	}
	return ack
}

// consume starts a consumption whose deliveries go to the returned
// channel; it is stopped when the row ends.
func (d *durableHarness) consume(b bus.Durable, cfg bus.ConsumerConfig) (<-chan bus.DurableMsg, bus.Consumption) {
	d.h.t.Helper()
	ch := make(chan bus.DurableMsg, 1024)
	return ch, d.consumeTo(b, cfg, ch)
}

// consumeTo starts a consumption whose deliveries go to ch; it is stopped
// when the row ends.
func (d *durableHarness) consumeTo(b bus.Durable, cfg bus.ConsumerConfig, ch chan<- bus.DurableMsg) bus.Consumption {
	d.h.t.Helper()
	if cfg.Stream == "" {
		cfg.Stream = d.stream
	}
	if cfg.Name == "" {
		cfg.Name = "c"
	}
	cn, err := b.Consume(d.h.ctx, cfg, func(_ context.Context, m bus.DurableMsg) error {
		ch <- m
		return nil
	})
	if err != nil {
		d.h.t.Fatalf("Consume(%s/%s): %v", cfg.Stream, cfg.Name, err)
	}
	d.h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), busWaitTimeout)
		defer cancel()
		_ = cn.Stop(ctx)
	})
	return cn
}

// next waits for a delivery.
func (d *durableHarness) next(ch <-chan bus.DurableMsg, what string) bus.DurableMsg {
	d.h.t.Helper()
	timer := time.NewTimer(busWaitTimeout)
	defer timer.Stop()
	select {
	case m := <-ch:
		return m
	case <-timer.C:
		d.h.t.Fatalf("timed out after %v waiting for %s", busWaitTimeout, what)
		return nil
	}
}

// quiet checks that nothing but the sentinel arrives until the sentinel,
// handed back with a delay of wait, comes back: publish it, take it, Nak
// it with the delay, and expect it again next.
func (d *durableHarness) quiet(b bus.Durable, ch <-chan bus.DurableMsg, wait time.Duration) {
	d.h.t.Helper()
	d.publish(b, d.h.subject("sentinel"), "sentinel", "")
	m := d.next(ch, "the sentinel")
	if string(m.Msg().Data) != "sentinel" {
		d.h.t.Fatalf("got %q before the sentinel, want nothing more", m.Msg().Data)
	}
	if err := m.Nak(wait); err != nil {
		d.h.t.Fatalf("Nak(sentinel): %v", err)
	}
	m = d.next(ch, "the sentinel handed back")
	if string(m.Msg().Data) != "sentinel" || m.Delivered() != 2 {
		d.h.t.Fatalf("got %q (delivery %d) before the sentinel came back, want nothing more", m.Msg().Data, m.Delivered())
	}
	_ = m.Ack()
}

func durableTestStoreAndAck(h *busHarness, d *durableHarness) {
	_, b := d.durable()
	d.ensure(b, func(c *bus.StreamConfig) { c.WorkQueue = true })
	for i := range 3 {
		ack := d.publish(b, h.subject("task"), fmt.Sprint(i), fmt.Sprint("id-", i))
		if ack.Stream != d.stream || ack.Sequence != uint64(i+1) || ack.Duplicate {
			h.t.Fatalf("PubAck %d = %+v, want stream %s, sequence %d, not a duplicate", i, ack, d.stream, i+1)
		}
	}
	ackWait := 300 * time.Millisecond
	ch, _ := d.consume(b, bus.ConsumerConfig{AckWait: ackWait})
	for i := range 3 {
		m := d.next(ch, fmt.Sprintf("message %d", i))
		if got := string(m.Msg().Data); got != fmt.Sprint(i) || m.Delivered() != 1 || m.Msg().Subject != h.subject("task") {
			h.t.Fatalf("delivery %d: %q on %q (delivery %d), want %q on %q, delivery 1", i, got, m.Msg().Subject, m.Delivered(), fmt.Sprint(i), h.subject("task"))
		}
		if id := m.Msg().Header.Get(bus.MsgIDHeader); id != fmt.Sprint("id-", i) {
			h.t.Errorf("delivery %d carries %s %q, want %q", i, bus.MsgIDHeader, id, fmt.Sprint("id-", i))
		}
		if err := m.Ack(); err != nil {
			h.t.Fatalf("Ack: %v", err)
		}
		if err := m.Ack(); !errors.Is(err, bus.ErrSettled) {
			h.t.Errorf("a second Ack returned %v, want an error wrapping bus.ErrSettled", err)
		}
	}
	d.quiet(b, ch, 3*ackWait)
}

func durableTestCapture(h *busHarness, d *durableHarness) {
	c1, b := d.durable()
	d.ensure(b, nil)
	core := make(chan string, 16)
	h.subscribe(c1, h.subject("note"), func(_ context.Context, m *bus.Msg) error {
		core <- string(m.Data)
		return nil
	})
	c2 := h.connect()
	h.publish(c2, h.subject("note"), []byte("core"))
	h.flush(c2)
	d.publish(b, h.subject("note"), "durable", "d-1")
	ch, _ := d.consume(b, bus.ConsumerConfig{})
	got := map[string]bool{}
	for range 2 {
		m := d.next(ch, "the stored messages")
		got[string(m.Msg().Data)] = true
		_ = m.Ack()
	}
	if !got["core"] || !got["durable"] {
		h.t.Fatalf("the stream delivered %v, want the core and the durable publish", got)
	}
	seen := map[string]bool{}
	for range 2 {
		select {
		case s := <-core:
			seen[s] = true
		case <-time.After(busWaitTimeout):
			h.t.Fatalf("the core subscriber received %v, want both publishes", seen)
		}
	}
	if !seen["core"] || !seen["durable"] {
		h.t.Fatalf("the core subscriber received %v, want both publishes", seen)
	}
}

func durableTestDuplicates(h *busHarness, d *durableHarness) {
	_, b := d.durable()
	d.ensure(b, nil)
	first := d.publish(b, h.subject("task"), "one", "task-1")
	again := d.publish(b, h.subject("task"), "one again", "task-1")
	if first.Duplicate || !again.Duplicate {
		h.t.Fatalf("PubAcks %+v then %+v, want the second one a duplicate", first, again)
	}
	ch, _ := d.consume(b, bus.ConsumerConfig{AckWait: 300 * time.Millisecond})
	m := d.next(ch, "the message")
	if string(m.Msg().Data) != "one" {
		h.t.Fatalf("got %q, want the first publish", m.Msg().Data)
	}
	_ = m.Ack()
	d.quiet(b, ch, 900*time.Millisecond)
}

func durableTestRedelivery(h *busHarness, d *durableHarness) {
	_, b := d.durable()
	d.ensure(b, nil)
	d.publish(b, h.subject("task"), "x", "")
	ch, _ := d.consume(b, bus.ConsumerConfig{AckWait: 250 * time.Millisecond})
	start := time.Now()
	m1 := d.next(ch, "the first delivery")
	m2 := d.next(ch, "the redelivery after the ack wait")
	if elapsed := time.Since(start); elapsed < 250*time.Millisecond {
		h.t.Errorf("redelivered after %v, before the ack wait of 250ms", elapsed)
	}
	if m1.Delivered() != 1 || m2.Delivered() != 2 || string(m2.Msg().Data) != "x" {
		h.t.Fatalf("deliveries %d then %d of %q, want 1 then 2 of \"x\"", m1.Delivered(), m2.Delivered(), m2.Msg().Data)
	}
	if err := m2.Ack(); err != nil {
		h.t.Fatalf("Ack: %v", err)
	}
}

func durableTestNakInProgress(h *busHarness, d *durableHarness) {
	_, b := d.durable()
	d.ensure(b, nil)
	d.publish(b, h.subject("task"), "x", "")
	ackWait := 400 * time.Millisecond
	ch, _ := d.consume(b, bus.ConsumerConfig{AckWait: ackWait})
	m := d.next(ch, "the first delivery")
	start := time.Now()
	if err := m.Nak(0); err != nil {
		h.t.Fatalf("Nak: %v", err)
	}
	m = d.next(ch, "the delivery after Nak")
	if m.Delivered() != 2 {
		h.t.Fatalf("delivery %d after Nak, want 2", m.Delivered())
	}
	if elapsed := time.Since(start); elapsed >= ackWait {
		h.t.Errorf("Nak(0) redelivered after %v, no sooner than the ack wait %v", elapsed, ackWait)
	}
	// Held for three ack waits, kept alive by InProgress: no redelivery.
	tick := time.NewTicker(ackWait / 4)
	defer tick.Stop()
	until := time.After(3 * ackWait)
hold:
	for {
		select {
		case <-tick.C:
			if err := m.InProgress(); err != nil {
				h.t.Fatalf("InProgress: %v", err)
			}
		case <-until:
			break hold
		case extra := <-ch:
			h.t.Fatalf("delivery %d arrived while InProgress kept the message", extra.Delivered())
		}
	}
	if err := m.Ack(); err != nil {
		h.t.Fatalf("Ack: %v", err)
	}
	if err := m.InProgress(); !errors.Is(err, bus.ErrSettled) {
		h.t.Errorf("InProgress after Ack returned %v, want an error wrapping bus.ErrSettled", err)
	}
	d.quiet(b, ch, 3*ackWait)
}

func durableTestMaxDeliverTerm(h *busHarness, d *durableHarness) {
	_, b := d.durable()
	d.ensure(b, nil)
	ackWait := 250 * time.Millisecond
	d.publish(b, h.subject("a"), "bounded", "")
	d.publish(b, h.subject("b"), "terminated", "")
	ch, _ := d.consume(b, bus.ConsumerConfig{AckWait: ackWait, MaxDeliver: 2})
	counts := map[string]int{}
	for counts["bounded"] < 2 || counts["terminated"] < 1 {
		m := d.next(ch, fmt.Sprintf("the deliveries (so far %v)", counts))
		s := string(m.Msg().Data)
		counts[s]++
		if m.Delivered() != counts[s] {
			h.t.Fatalf("%s: delivery count %d, want %d", s, m.Delivered(), counts[s])
		}
		if s == "terminated" {
			if err := m.Term(); err != nil {
				h.t.Fatalf("Term: %v", err)
			}
		}
	}
	d.quiet(b, ch, 3*ackWait)
	if counts["terminated"] != 1 || counts["bounded"] != 2 {
		h.t.Fatalf("deliveries %v, want bounded 2 times and terminated once", counts)
	}
}

func durableTestShared(h *busHarness, d *durableHarness) {
	_, b1 := d.durable()
	_, b2 := d.durable()
	d.ensure(b1, func(c *bus.StreamConfig) { c.WorkQueue = true })
	d.ensure(b2, func(c *bus.StreamConfig) { c.WorkQueue = true })
	merged := make(chan bus.DurableMsg, 1024)
	for _, b := range []bus.Durable{b1, b2} {
		d.consumeTo(b, bus.ConsumerConfig{Name: "shared", AckWait: 30 * time.Second, Prefetch: 4}, merged)
	}
	const n = 40
	for i := range n {
		d.publish(b1, h.subject("task"), fmt.Sprint(i), fmt.Sprint("t", i))
	}
	seen := map[string]int{}
	for range n {
		m := d.next(merged, fmt.Sprintf("%d deliveries (got %d)", n, len(seen)))
		seen[string(m.Msg().Data)]++
		if m.Delivered() != 1 {
			h.t.Errorf("message %s delivered %d times", m.Msg().Data, m.Delivered())
		}
		_ = m.Ack()
	}
	if len(seen) != n {
		h.t.Fatalf("%d distinct messages of %d delivered: %v", len(seen), n, seen)
	}
}

func durableTestStopHandsBack(h *busHarness, d *durableHarness) {
	_, b1 := d.durable()
	_, b2 := d.durable()
	d.ensure(b1, nil)
	const n = 10
	for i := range n {
		d.publish(b1, h.subject("task"), fmt.Sprint(i), "")
	}
	// The first consumption takes one message and holds it until it is
	// stopped, then hands it back; what it fetched behind it goes back
	// with Stop.
	cfg := bus.ConsumerConfig{Stream: d.stream, Name: "handback", AckWait: 30 * time.Second, Prefetch: n}
	took := make(chan struct{})
	first, err := b1.Consume(h.ctx, cfg, func(ctx context.Context, m bus.DurableMsg) error {
		close(took)
		<-ctx.Done()
		return m.Nak(0)
	})
	if err != nil {
		h.t.Fatal(err)
	}
	select {
	case <-took:
	case <-time.After(busWaitTimeout):
		h.t.Fatal("the first consumption got nothing")
	}
	if err := first.Stop(h.ctx); err != nil {
		h.t.Fatalf("Stop: %v", err)
	}
	select {
	case <-first.Done():
	case <-time.After(busWaitTimeout):
		h.t.Fatal("Done not closed after Stop")
	}
	ch, _ := d.consume(b2, cfg)
	seen := map[string]bool{}
	for len(seen) < n {
		m := d.next(ch, fmt.Sprintf("every message on the second consumption, within the ack wait (got %d)", len(seen)))
		seen[string(m.Msg().Data)] = true
		_ = m.Ack()
	}
}

func durableTestConflicts(h *busHarness, d *durableHarness) {
	_, b := d.durable()
	d.ensure(b, nil)
	err := b.EnsureStream(h.ctx, bus.StreamConfig{Name: d.stream, Subjects: []string{h.subject(">")}, Memory: true, MaxAge: 2 * time.Hour})
	if !errors.Is(err, bus.ErrStreamConflict) || !strings.Contains(err.Error(), "MaxAge") || !strings.Contains(err.Error(), d.stream) {
		h.t.Errorf("EnsureStream with another MaxAge: %v, want ErrStreamConflict naming the stream and MaxAge", err)
	}
	err = b.EnsureStream(h.ctx, bus.StreamConfig{Name: d.stream, Subjects: []string{h.subject("other")}, Memory: true})
	if !errors.Is(err, bus.ErrStreamConflict) || !strings.Contains(err.Error(), "Subjects") {
		h.t.Errorf("EnsureStream with other subjects: %v, want ErrStreamConflict naming Subjects", err)
	}
	d.consume(b, bus.ConsumerConfig{Name: "conf", AckWait: time.Second})
	_, err = b.Consume(h.ctx, bus.ConsumerConfig{Stream: d.stream, Name: "conf", AckWait: 2 * time.Second}, func(context.Context, bus.DurableMsg) error { return nil })
	if !errors.Is(err, bus.ErrStreamConflict) || !strings.Contains(err.Error(), "AckWait") {
		h.t.Errorf("Consume with another AckWait: %v, want ErrStreamConflict naming AckWait", err)
	}
	_, err = b.Consume(h.ctx, bus.ConsumerConfig{Stream: d.stream + "_missing", Name: "c"}, func(context.Context, bus.DurableMsg) error { return nil })
	if !errors.Is(err, bus.ErrNoStream) {
		h.t.Errorf("Consume of a missing stream: %v, want ErrNoStream", err)
	}
	_, err = b.PublishDurable(h.ctx, &bus.Msg{Subject: "contracttest_nostream." + strings.ReplaceAll(d.stream, "_", "."), Data: []byte("x")}, "")
	if !errors.Is(err, bus.ErrNoStream) {
		h.t.Errorf("PublishDurable to a subject no stream captures: %v, want ErrNoStream", err)
	}
	if name, err := b.StreamOf(h.ctx, h.subject("any")); err != nil || name != d.stream {
		h.t.Errorf("StreamOf(a captured subject) = %q, %v, want %s", name, err, d.stream)
	}
	if _, err := b.StreamOf(h.ctx, "contracttest_nostream."+strings.ReplaceAll(d.stream, "_", ".")); !errors.Is(err, bus.ErrNoStream) {
		h.t.Errorf("StreamOf(a subject no stream captures): %v, want ErrNoStream", err)
	}
	err = b.EnsureStream(h.ctx, bus.StreamConfig{Name: "bad.name", Subjects: []string{h.subject("x")}})
	if err == nil || !strings.Contains(err.Error(), "bad.name") {
		h.t.Errorf("EnsureStream named bad.name: %v, want an error naming it", err)
	}
}
