package membus

import "sync/atomic"

// Stats counts what one connection did since it was created.
type Stats struct {
	// Published counts messages this connection published that passed
	// validation, whether or not a subscription received them.
	Published uint64
	// NoSubscriber counts published messages no subscription matched; they
	// were dropped.
	NoSubscriber uint64
	// Delivered counts messages handed to this connection's handlers.
	Delivered uint64
	// SlowConsumerDropped counts messages dropped because one of this
	// connection's subscriptions had reached its pending limits.
	SlowConsumerDropped uint64
	// HandlerErrors and HandlerPanics count handler calls that returned an
	// error or panicked.
	HandlerErrors uint64
	HandlerPanics uint64
}

// Stats returns the connection's counters. Each is read atomically; the
// set is not one consistent snapshot while messages are in flight.
func (b *Bus) Stats() Stats {
	c := &b.stats
	return Stats{
		Published:           uint64(c.published.Load()),
		NoSubscriber:        uint64(c.noSubscriber.Load()),
		Delivered:           uint64(c.delivered.Load()),
		SlowConsumerDropped: uint64(c.slowConsumerDropped.Load()),
		HandlerErrors:       uint64(c.handlerErrors.Load()),
		HandlerPanics:       uint64(c.handlerPanics.Load()),
	}
}

// counters are the live Stats. The publisher-side and subscriber-side
// counters sit on separate cache lines, so a publishing goroutine and a
// delivering one do not contend for the same line.
type counters struct {
	published    atomic.Int64
	noSubscriber atomic.Int64
	_            [48]byte

	delivered           atomic.Int64
	slowConsumerDropped atomic.Int64
	handlerErrors       atomic.Int64
	handlerPanics       atomic.Int64
	_                   [32]byte
}
