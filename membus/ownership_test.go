package membus_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/membus"
)

// TestZeroCopyPublishHandsBuffersOver checks that ownership follows the
// publishing connection's option: a WithZeroCopyPublish connection hands
// its own Data and Header to every subscriber, on any connection, and a
// default connection hands over copies, also to a zero-copy connection's
// subscriptions.
func TestZeroCopyPublishHandsBuffersOver(t *testing.T) {
	for _, tc := range []struct {
		name           string
		pubOpts        []membus.Option
		subOpts        []membus.Option
		wantSameBuffer bool
	}{
		{"zero-copy publisher, default subscriber", []membus.Option{membus.WithZeroCopyPublish()}, nil, true},
		{"zero-copy publisher and subscriber", []membus.Option{membus.WithZeroCopyPublish()}, []membus.Option{membus.WithZeroCopyPublish()}, true},
		{"default publisher, zero-copy subscriber", nil, []membus.Option{membus.WithZeroCopyPublish()}, false},
		{"default publisher and subscriber", nil, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := membus.New(tc.pubOpts...)
			sub := pub.Connect(tc.subOpts...)
			t.Cleanup(func() { _ = pub.Close(); _ = sub.Close() })
			data := []byte("payload")
			hdr := bus.Header{"K": {"v"}}
			m1, m2 := publishToTwoSubscriptions(t, pub, sub, "own", data, hdr)
			for i, m := range []*bus.Msg{m1, m2} {
				if string(m.Data) != "payload" || m.Header.Get("K") != "v" {
					t.Fatalf("delivery %d: got data %q and header %v", i, m.Data, m.Header)
				}
				sameData := &m.Data[0] == &data[0]
				sameHeader := reflect.ValueOf(m.Header).UnsafePointer() == reflect.ValueOf(hdr).UnsafePointer()
				if sameData != tc.wantSameBuffer || sameHeader != tc.wantSameBuffer {
					t.Errorf("delivery %d: shares the publisher's Data: %v, Header: %v; want %v for both",
						i, sameData, sameHeader, tc.wantSameBuffer)
				}
			}
		})
	}
}

// publishToTwoSubscriptions subscribes sub to prefix.x and prefix.*,
// publishes one message with data and hdr to prefix.x on pub, and returns
// the two deliveries.
func publishToTwoSubscriptions(t *testing.T, pub, sub bus.Bus, prefix string, data []byte, hdr bus.Header) (*bus.Msg, *bus.Msg) {
	t.Helper()
	ctx := context.Background()
	got := make(chan *bus.Msg, 2)
	h := func(_ context.Context, m *bus.Msg) error { got <- m; return nil }
	for _, subject := range []string{prefix + ".x", prefix + ".*"} {
		if _, err := sub.Subscribe(ctx, subject, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Publish(ctx, &bus.Msg{Subject: prefix + ".x", Header: hdr, Data: data}); err != nil {
		t.Fatal(err)
	}
	return recv(t, got, "first delivery"), recv(t, got, "second delivery")
}
