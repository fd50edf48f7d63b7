package membus_test

import (
	"context"
	"testing"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/membus"
)

const (
	benchPayload = 1024
	// benchChanBuffer is the raw channel's capacity, the baseline's
	// counterpart of membus's pending queue.
	benchChanBuffer = 8192
)

// BenchmarkPublishSubscribe measures one publisher feeding one subscriber
// with 1 KiB payloads: b.N publishes, then the wait until the subscriber has
// received them all. raw_channel is the baseline: a buffered chan []byte
// read by one goroutine. raw_channel_copy adds what membus's ownership rule
// (the publisher may reuse its buffer) costs at the least: a fresh copy of
// each payload.
func BenchmarkPublishSubscribe(b *testing.B) {
	payload := make([]byte, benchPayload)
	for i := range payload {
		payload[i] = byte(i)
	}

	b.Run("membus", func(b *testing.B) {
		ctx := context.Background()
		mb := membus.New()
		defer mb.Close()
		done := make(chan struct{})
		received := 0
		// Limits high enough that nothing is dropped: the benchmark measures
		// throughput, not the slow-consumer path.
		_, err := mb.Subscribe(ctx, "bench.subject", func(context.Context, *bus.Msg) error {
			received++
			if received == b.N {
				close(done)
			}
			return nil
		}, bus.PendingLimits(b.N+1, (b.N+1)*2*benchPayload))
		if err != nil {
			b.Fatal(err)
		}
		msg := &bus.Msg{Subject: "bench.subject", Data: payload}
		b.SetBytes(benchPayload)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := mb.Publish(ctx, msg); err != nil {
				b.Fatal(err)
			}
		}
		<-done
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		if d := mb.Stats().SlowConsumerDropped; d != 0 {
			b.Fatalf("%d messages dropped", d)
		}
	})

	for _, tc := range []struct {
		name string
		copy bool
	}{{"raw_channel", false}, {"raw_channel_copy", true}} {
		b.Run(tc.name, func(b *testing.B) {
			ch := make(chan []byte, benchChanBuffer)
			done := make(chan struct{})
			go func() {
				defer close(done)
				received := 0
				for range ch {
					received++
				}
				if received != b.N {
					panic("raw channel lost messages")
				}
			}()
			b.SetBytes(benchPayload)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if tc.copy {
					data := make([]byte, len(payload))
					copy(data, payload)
					ch <- data
				} else {
					ch <- payload
				}
			}
			close(ch)
			<-done
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
