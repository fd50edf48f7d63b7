package bus_test

import (
	"context"
	"testing"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
)

func TestASubscriptionSaysWhatItHoldsWhileItsHandlerIsBusy(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		b := connect()
		ctx := context.Background()
		entered, release := make(chan struct{}, 1), make(chan struct{})
		sub, err := b.Subscribe(ctx, "pending.test", func(context.Context, *bus.Msg) error {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, ok := bus.Pending(sub); !ok {
			t.Fatalf("%T does not implement bus.Pender", sub)
		}
		if err := b.Publish(ctx, &bus.Msg{Subject: "pending.test", Data: []byte("first")}); err != nil {
			t.Fatal(err)
		}
		<-entered // the handler holds the first message
		for range 3 {
			if err := b.Publish(ctx, &bus.Msg{Subject: "pending.test", Data: []byte("0123456789")}); err != nil {
				t.Fatal(err)
			}
		}
		// On one connection, the messages published before a flush are
		// with the subscription when the flush returns.
		if err := b.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		msgs, bytes, _ := bus.Pending(sub)
		// The three waiting, and the one being handled as the bus counts
		// it (membus counts it, nats.go does not).
		if msgs < 3 || msgs > 4 || bytes < 30 || bytes > 35 {
			t.Errorf("Pending() = %d messages, %d bytes; want the 3 waiting (30 bytes), with or without the one being handled", msgs, bytes)
		}
		close(release)
		if err := sub.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		if msgs, bytes, _ := bus.Pending(sub); msgs != 0 || bytes != 0 {
			t.Errorf("Pending() after Drain = %d, %d; want 0, 0", msgs, bytes)
		}
	})
}
