package membus_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/membus"
)

// TestPendingLimitsAreExactAcrossEpisodes blocks the handler, floods the
// subscription and checks that exactly the limit is kept, the message being
// handled included, episode after episode, for each kind of limit. The
// queue grows in the first episode and reuses its slices in the next ones.
func TestPendingLimitsAreExactAcrossEpisodes(t *testing.T) {
	const (
		limit    = 100
		payload  = 10 // bytes per message
		flood    = 300
		episodes = 4
	)
	for _, tc := range []struct {
		name   string
		limits bus.SubscribeOption
	}{
		{"messages", bus.PendingLimits(limit, 0)},
		{"bytes", bus.PendingLimits(0, limit*payload)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			b := membus.New()
			t.Cleanup(func() { _ = b.Close() })
			started := make(chan struct{}, 1)
			release := make(chan struct{})
			got := make(chan string, flood)
			s, err := b.Subscribe(ctx, "limits", func(ctx context.Context, m *bus.Msg) error {
				if len(m.Data) != payload {
					return fmt.Errorf("payload %q is not %d bytes", m.Data, payload)
				}
				if string(m.Data[:5]) == "block" {
					started <- struct{}{}
					select {
					case <-release:
					case <-ctx.Done():
					}
					return nil
				}
				got <- string(m.Data)
				return nil
			}, tc.limits)
			if err != nil {
				t.Fatal(err)
			}
			publish := func(data string) {
				t.Helper()
				if err := b.Publish(ctx, &bus.Msg{Subject: "limits", Data: []byte(data)}); err != nil {
					t.Fatal(err)
				}
			}
			for ep := range episodes {
				publish(fmt.Sprintf("block%05d", ep))
				recv(t, started, "the handler to block")
				for i := range flood {
					publish(fmt.Sprintf("%d:%08d", ep, i))
				}
				if want := (ep + 1) * (flood - limit + 1); s.Dropped() != want {
					t.Fatalf("episode %d: Dropped() = %d, want %d", ep, s.Dropped(), want)
				}
				release <- struct{}{}
				for i := range limit - 1 {
					want := fmt.Sprintf("%d:%08d", ep, i)
					if m := recv(t, got, want); m != want {
						t.Fatalf("episode %d: got %q, want %q", ep, m, want)
					}
				}
			}
			close(release)
		})
	}
}

// TestHandlersMayKeepTheirMessages keeps every delivered *bus.Msg and
// checks, once all have arrived, that none changed: the bus reuses neither
// the Msg values nor their contents for later messages.
func TestHandlersMayKeepTheirMessages(t *testing.T) {
	const total = 2000
	for _, tc := range []struct {
		name string
		opts []membus.Option
	}{
		{"default", nil},
		{"zero-copy", []membus.Option{membus.WithZeroCopyPublish()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			b := membus.New(tc.opts...)
			t.Cleanup(func() { _ = b.Close() })
			var (
				mu   sync.Mutex
				kept []*bus.Msg
			)
			done := make(chan struct{})
			_, err := b.Subscribe(ctx, "keep.*", func(_ context.Context, m *bus.Msg) error {
				mu.Lock()
				defer mu.Unlock()
				kept = append(kept, m)
				if len(kept) == total {
					close(done)
				}
				return nil
			}, bus.PendingLimits(total, 0))
			if err != nil {
				t.Fatal(err)
			}
			for i := range total {
				m := &bus.Msg{
					Subject: "keep." + strconv.Itoa(i%3),
					Header:  bus.Header{"N": {strconv.Itoa(i)}},
					Data:    []byte(strconv.Itoa(i)),
				}
				if err := b.Publish(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			recv(t, done, fmt.Sprintf("%d messages", total))
			mu.Lock()
			defer mu.Unlock()
			seen := make(map[*bus.Msg]bool, total)
			for i, m := range kept {
				if seen[m] {
					t.Fatalf("message %d: the same *bus.Msg was delivered twice", i)
				}
				seen[m] = true
				want := strconv.Itoa(i)
				if m.Subject != "keep."+strconv.Itoa(i%3) || string(m.Data) != want || m.Header.Get("N") != want {
					t.Fatalf("message %d changed after delivery: subject %q, data %q, header %v", i, m.Subject, m.Data, m.Header)
				}
			}
		})
	}
}
