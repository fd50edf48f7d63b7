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
