package natsbus_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/natsbus"
)

// benchPayloadSize is the size of each benchmark message.
const benchPayloadSize = 1024

// BenchmarkPublishSubscribe publishes b.N messages of 1 KiB from one
// connection to a subscription on another, through one embedded server,
// and stops the clock when the subscriber has received them all. The
// raw_nats case does the same with nats.go alone, as the baseline natsbus
// is measured against. Pending limits are lifted so nothing is dropped.
func BenchmarkPublishSubscribe(b *testing.B) {
	url := natstest.RunServer(b)
	payload := make([]byte, benchPayloadSize)

	b.Run("natsbus", func(b *testing.B) {
		ctx := context.Background()
		pub, err := natsbus.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer pub.Close()
		sub, err := natsbus.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Close()

		var got atomic.Int64
		done := make(chan struct{})
		n := int64(b.N)
		if _, err := sub.Subscribe(ctx, "bench.natsbus", func(context.Context, *bus.Msg) error {
			if got.Add(1) == n {
				close(done)
			}
			return nil
		}, bus.PendingLimits(1<<40, 1<<40)); err != nil {
			b.Fatal(err)
		}

		msg := &bus.Msg{Subject: "bench.natsbus", Data: payload}
		b.SetBytes(benchPayloadSize)
		b.ResetTimer()
		for range b.N {
			if err := pub.Publish(ctx, msg); err != nil {
				b.Fatal(err)
			}
		}
		<-done
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})

	b.Run("raw_nats", func(b *testing.B) {
		pub, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer pub.Close()
		sub, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Close()

		var got atomic.Int64
		done := make(chan struct{})
		n := int64(b.N)
		s, err := sub.Subscribe("bench.raw", func(*nats.Msg) {
			if got.Add(1) == n {
				close(done)
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.SetPendingLimits(-1, -1); err != nil {
			b.Fatal(err)
		}
		if err := sub.Flush(); err != nil {
			b.Fatal(err)
		}

		b.SetBytes(benchPayloadSize)
		b.ResetTimer()
		for range b.N {
			if err := pub.Publish("bench.raw", payload); err != nil {
				b.Fatal(err)
			}
		}
		<-done
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}
