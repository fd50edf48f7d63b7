package held

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heddle-go/heddle/bus"
)

// msg is a DurableMsg that counts its in-progress signals and closes
// signalled at the first.
type msg struct {
	id         string
	inProgress atomic.Int64
	signalled  chan struct{}
}

func (m *msg) Msg() *bus.Msg           { return &bus.Msg{Subject: "s", Data: []byte(m.id)} }
func (m *msg) Delivered() int          { return 1 }
func (m *msg) Ack() error              { return nil }
func (m *msg) Nak(time.Duration) error { return nil }
func (m *msg) InProgress() error {
	if m.inProgress.Add(1) == 1 && m.signalled != nil {
		close(m.signalled)
	}
	return nil
}
func (m *msg) Term() error { return nil }

// consumption is a Consumption that stops at once.
type consumption struct{ done chan struct{} }

func (c *consumption) Stop(context.Context) error {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	return nil
}
func (c *consumption) Done() <-chan struct{} { return c.done }

func TestASetGivesBackEachTasksMessagesInDeliveryOrder(t *testing.T) {
	s := NewSet()
	a1, a2, b := &msg{id: "a1"}, &msg{id: "a2"}, &msg{id: "b"}
	s.Add("a", a1)
	s.Add("b", b)
	s.Add("a", a2)
	if got := s.Take("a"); got != a1 {
		t.Fatalf("first Take(a) = %v, want the first delivery", got)
	}
	if got := s.Take("a"); got != a2 {
		t.Fatalf("second Take(a) = %v, want the second delivery", got)
	}
	if got := s.Take("a"); got != nil {
		t.Fatalf("third Take(a) = %v, want nil", got)
	}
	if got := len(s.ids()); got != 1 {
		t.Fatalf("%d messages held, want 1", got)
	}
}

func TestDrainWaitsForTheHeldMessagesAndHandsBackWhatIsLeftWhenItEnds(t *testing.T) {
	s := NewSet()
	settled, left := &msg{id: "settled"}, &msg{id: "left"}
	s.Add("settled", settled)
	s.Add("left", left)
	var handedBack []string
	sub := Start(s, &consumption{done: make(chan struct{})}, Config{Subject: "s", Queue: "q", KeepAlive: time.Millisecond,
		DrainTimeout: time.Second, HandBack: func(m bus.DurableMsg, id string) { handedBack = append(handedBack, id) }})
	if sub.Subject() != "s" || sub.Queue() != "q" || sub.Dropped() != 0 {
		t.Fatalf("Subject, Queue, Dropped = %q, %q, %d", sub.Subject(), sub.Queue(), sub.Dropped())
	}

	// Drain returns once the first is settled and the second... never is:
	// its context ends, and the second is handed back.
	ctx, cancel := context.WithCancel(context.Background())
	drained := make(chan error, 1)
	go func() { drained <- sub.Drain(ctx) }()
	if s.Take("settled") != settled {
		t.Fatal("the settled message was not held")
	}
	cancel()
	if err := <-drained; err != context.Canceled {
		t.Fatalf("Drain = %v, want context.Canceled", err)
	}
	if len(handedBack) != 1 || handedBack[0] != "left" {
		t.Fatalf("handed back %v, want [left]", handedBack)
	}
	if s.Take("left") != nil {
		t.Fatal("a handed-back message is still held")
	}
}

func TestDrainReturnsOnceEveryHeldMessageIsSettled(t *testing.T) {
	s := NewSet()
	m := &msg{id: "m", signalled: make(chan struct{})}
	s.Add("m", m)
	sub := Start(s, &consumption{done: make(chan struct{})}, Config{KeepAlive: time.Millisecond, DrainTimeout: time.Second,
		HandBack: func(bus.DurableMsg, string) { t.Error("a settled message was handed back") }})
	// The keep-alive signals the held message before it is settled.
	<-m.signalled
	drained := make(chan error, 1)
	go func() { drained <- sub.Drain(context.Background()) }()
	s.Take("m")
	if err := <-drained; err != nil {
		t.Fatalf("Drain = %v", err)
	}
}
