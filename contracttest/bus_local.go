package contracttest

import (
	"context"
	"fmt"
	"strconv"

	"github.com/heddle-go/heddle/bus"
)

// busTestLocalInterest: a subscription made with bus.LocalInterest sees
// the reply another connection sends to a request published right after
// Subscribe returns, on the subscribing connection. Repeated, with a
// responder that answers at once, so a bus that let the reply overtake the
// interest would lose one.
func busTestLocalInterest(h *busHarness) {
	caller, responder := h.connect(), h.connect()
	requests := h.subject("request")
	h.subscribe(responder, requests, func(ctx context.Context, m *bus.Msg) error {
		return responder.Publish(ctx, &bus.Msg{Subject: string(m.Data), Data: []byte("reply")})
	})
	for i := range 200 {
		replies := h.subject("reply", strconv.Itoa(i))
		in := newBusInbox(1)
		sub := h.subscribe(caller, replies, in.handler, bus.LocalInterest())
		h.publish(caller, requests, []byte(replies))
		in.recv(h.t, fmt.Sprintf("the reply on %q to a request published right after Subscribe", replies))
		if err := sub.Unsubscribe(); err != nil {
			h.t.Fatalf("Unsubscribe: %v", err)
		}
	}
}

// busTestNoResponders: a publish with Reply set to a subject no
// subscription matches makes the bus send one no-responders status
// message on Reply; with a subscriber, the subscriber gets the message
// with its Reply and no status comes back.
func busTestNoResponders(h *busHarness) {
	caller, worker := h.connect(), h.connect()
	replies := h.subject("status")
	in := newBusInbox(4)
	h.subscribe(caller, replies+".>", in.handler, bus.LocalInterest())

	nobody := h.subject("nobody")
	if err := caller.Publish(context.Background(), &bus.Msg{Subject: nobody, Reply: replies + ".1", Data: []byte("task")}); err != nil {
		h.t.Fatalf("Publish: %v", err)
	}
	status := in.recv(h.t, "the no-responders status for a subject nobody subscribes")
	if status.Subject != replies+".1" || !bus.NoResponders(status) {
		h.t.Fatalf("got %+v on %s, want the no-responders status on %s", status.Header, status.Subject, replies+".1")
	}

	served := h.subject("served")
	tasks := newBusInbox(1)
	h.subscribe(worker, served, tasks.handler)
	if err := caller.Publish(context.Background(), &bus.Msg{Subject: served, Reply: replies + ".2", Data: []byte("task")}); err != nil {
		h.t.Fatalf("Publish: %v", err)
	}
	if m := tasks.recv(h.t, "the message with a reply subject"); m.Reply != replies+".2" || string(m.Data) != "task" {
		h.t.Fatalf("subscriber got %+v, want the message with Reply %s", m, replies+".2")
	}
	// A sentinel behind it on the status subject arrives first: no status
	// was sent for the served subject.
	h.publish(caller, replies+".sentinel", []byte("sentinel"))
	if m := in.recv(h.t, "the sentinel"); m.Subject != replies+".sentinel" {
		h.t.Fatalf("got %s (%+v) before the sentinel, want no status for a served subject", m.Subject, m.Header)
	}
}
