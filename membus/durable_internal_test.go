package membus

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/heddle-go/heddle/bus"
)

// A delivery taken as its consumption stops never reaches a handler: it
// must go back first in line without counting, or a message handed back
// by one replica as another stops could use up its deliveries unseen.
func TestADeliveryTakenAsTheConsumptionStopsIsNotCounted(t *testing.T) {
	ctx := context.Background()
	b := New(WithLogger(slog.New(slog.DiscardHandler)))
	t.Cleanup(func() { _ = b.Close() })
	if err := b.EnsureStream(ctx, bus.StreamConfig{Name: "S", Subjects: []string{"s.>"}, WorkQueue: true}); err != nil {
		t.Fatal(err)
	}
	publish := func(id string) {
		t.Helper()
		if _, err := b.PublishDurable(ctx, &bus.Msg{Subject: "s.a", Data: []byte(id)}, id); err != nil {
			t.Fatal(err)
		}
	}
	publish("1")
	got := make(chan bus.DurableMsg, 4)
	cn, err := b.Consume(ctx, bus.ConsumerConfig{Stream: "S", Name: "C", AckWait: time.Minute, MaxDeliver: 2},
		func(_ context.Context, m bus.DurableMsg) error { got <- m; return nil })
	if err != nil {
		t.Fatal(err)
	}
	first := <-got // "1", delivery 1, left unsettled
	if err := cn.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	publish("2")
	store := streamsOf(b.broker)
	store.mu.Lock()
	c := store.streams["S"].consumer["C"]
	d := c.take(store) // "2", as the stopped run loop would take it
	store.mu.Unlock()
	if d == nil || string(d.msg.Data) != "2" || d.n != 1 {
		t.Fatalf("took %+v, want message 2's first delivery", d)
	}
	d.untake()
	if err := first.Nak(0); err != nil {
		t.Fatal(err)
	}

	cn2, err := b.Consume(ctx, bus.ConsumerConfig{Stream: "S", Name: "C", AckWait: time.Minute, MaxDeliver: 2},
		func(_ context.Context, m bus.DurableMsg) error { got <- m; return m.Ack() })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cn2.Stop(ctx) }()
	seen := map[string]int{}
	for range 2 {
		select {
		case m := <-got:
			seen[string(m.Msg().Data)] = m.Delivered()
		case <-time.After(10 * time.Second):
			t.Fatalf("only %v delivered again, want both messages", seen)
		}
	}
	if seen["1"] != 2 || seen["2"] != 1 {
		t.Errorf("deliveries %v, want message 1 on its second delivery and message 2 on its first", seen)
	}
}
