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
// received them all. Each membus mode runs beside its baseline:
//
//   - membus (the default: Publish copies the payload, so the publisher may
//     reuse its buffer) beside raw_channel_copy, a buffered chan []byte read
//     by one goroutine, sending a fresh copy of each payload: the least that
//     ownership rule costs;
//   - membus_zero_copy (WithZeroCopyPublish: the publisher hands its buffer
//     over) beside raw_channel, the same channel sending the payload itself.
func BenchmarkPublishSubscribe(b *testing.B) {
	payload := make([]byte, benchPayload)
	for i := range payload {
		payload[i] = byte(i)
	}
	b.Run("membus", func(b *testing.B) { benchMembus(b, payload) })
	b.Run("raw_channel_copy", func(b *testing.B) { benchRawChannel(b, payload, true) })
	b.Run("membus_zero_copy", func(b *testing.B) { benchMembus(b, payload, membus.WithZeroCopyPublish()) })
	b.Run("raw_channel", func(b *testing.B) { benchRawChannel(b, payload, false) })
}

func benchMembus(b *testing.B, payload []byte, opts ...membus.Option) {
	ctx := context.Background()
	mb := membus.New(opts...)
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
}

func benchRawChannel(b *testing.B, payload []byte, copyPayload bool) {
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
		if copyPayload {
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
}
