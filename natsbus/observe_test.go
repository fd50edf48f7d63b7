package natsbus_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/natsbus"
)

// events keeps what an observer saw.
type events struct {
	mu  sync.Mutex
	all []event.Event
}

func (e *events) Observe(_ context.Context, ev event.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev.Clone())
}

func (e *events) names() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		out = append(out, ev.Name)
	}
	return out
}

func TestTheBusReportsItsConnectionFirstWithTheURLRedacted(t *testing.T) {
	url := natstest.RunServer(t)
	withCreds := strings.Replace(url, "nats://", "nats://ops:s3cret@", 1)
	var seen events
	b, err := natsbus.Connect(withCreds, natsbus.WithLogger(slog.New(slog.DiscardHandler)), natsbus.WithObserver(&seen))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(context.Background(), "observe.me", func(context.Context, *bus.Msg) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	_ = sub.Unsubscribe()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	names := seen.names()
	if len(names) < 2 || names[0] != event.ActorConnected || names[len(names)-1] != event.BusClosed {
		t.Fatalf("events %v, want actor.connected first and bus.closed last", names)
	}
	first := seen.all[0]
	if first.Actor != "natsbus" || first.Detail == "" || strings.Contains(first.Detail, "s3cret") {
		t.Errorf("actor.connected = %+v, want the actor and the URL with its password redacted", first)
	}
	for _, a := range first.Attrs {
		if strings.Contains(a.Value.String(), "s3cret") {
			t.Errorf("attribute %s holds the password", a)
		}
	}
}
