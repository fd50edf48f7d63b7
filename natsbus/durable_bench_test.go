package natsbus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/natsbus"
)

// BenchmarkDurablePath is one task's durable path at the bus: a
// publish acknowledged by the stream, a delivery through a durable pull
// consumer, an acknowledgement; b.N tasks, the publisher waiting for each
// store as the router does. "natsbus" is bus.Durable; "jetstream" the
// same stores and acks written by hand on nats.go's jetstream package, the
// baseline; "core" a core publish and subscription, the at-most-once path
// it replaces.
func BenchmarkDurablePath(b *testing.B) {
	url := natstest.RunServer(b)
	run := 0
	payload := make([]byte, 512)
	b.Run("natsbus", func(b *testing.B) {
		nb, err := natsbus.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer nb.Close()
		ctx := context.Background()
		run++
		name := fmt.Sprintf("BENCH_%d", run)
		subject := "bench.natsbus." + name
		if err := nb.EnsureStream(ctx, bus.StreamConfig{Name: name, Subjects: []string{subject}, WorkQueue: true, Memory: false}); err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		n := 0
		cn, err := nb.Consume(ctx, bus.ConsumerConfig{Stream: name, Name: "c", Prefetch: 64}, func(_ context.Context, m bus.DurableMsg) error {
			_ = m.Ack()
			if n++; n == b.N {
				close(done)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		defer cn.Stop(ctx)
		b.ResetTimer()
		for i := range b.N {
			if _, err := nb.PublishDurable(ctx, &bus.Msg{Subject: subject, Data: payload}, fmt.Sprint(i)); err != nil {
				b.Fatal(err)
			}
		}
		<-done
	})
	b.Run("jetstream", func(b *testing.B) {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		run++
		name := fmt.Sprintf("BENCHJS_%d", run)
		subject := "bench.js." + name
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Retention: jetstream.WorkQueuePolicy}); err != nil {
			b.Fatal(err)
		}
		cons, err := js.CreateConsumer(ctx, name, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		n := 0
		cc, err := cons.Consume(func(m jetstream.Msg) {
			_ = m.Ack()
			if n++; n == b.N {
				close(done)
			}
		}, jetstream.PullMaxMessages(64), jetstream.PullExpiry(2*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Stop()
		b.ResetTimer()
		for i := range b.N {
			if _, err := js.Publish(ctx, subject, payload, jetstream.WithMsgID(fmt.Sprint(i))); err != nil {
				b.Fatal(err)
			}
		}
		<-done
	})
	b.Run("core", func(b *testing.B) {
		nb, err := natsbus.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer nb.Close()
		ctx := context.Background()
		done := make(chan struct{})
		n := 0
		if _, err := nb.Subscribe(ctx, "bench.core", func(context.Context, *bus.Msg) error {
			if n++; n == b.N {
				close(done)
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			if err := nb.Publish(ctx, &bus.Msg{Subject: "bench.core", Data: payload}); err != nil {
				b.Fatal(err)
			}
		}
		<-done
	})
}
