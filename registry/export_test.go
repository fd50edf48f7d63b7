package registry

import (
	"context"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
)

// NewWithClock is New with the registry's clock replaced by now. The
// natsbus tests use it: natsbus does real I/O, so it cannot run inside a
// testing/synctest bubble, and those tests move this clock and call
// Sweep themselves where the membus tests let the bubble's fake clock
// run the registry's own ticker.
func NewWithClock(b bus.Bus, cfg Config, now func() time.Time, opts ...heddle.Option) (*Registry, error) {
	r, err := New(b, cfg, opts...)
	if err == nil {
		r.now = now
	}
	return r, err
}

// Deliver hands data to the registry as if it came on subject, for the
// tests that measure the table itself rather than a bus.
func Deliver(r *Registry, subject string, data []byte) {
	_ = r.handleHeartbeat(context.Background(), &bus.Msg{Subject: subject, Data: data})
}
