package contracttest

import (
	"testing"

	"github.com/heddle-go/heddle/bus"
)

// BusFactory opens a new connection for one test of the Bus conformance
// suite.
//
// t is the (sub)test the connection belongs to. errs is the error handler
// the connection must report its asynchronous errors to (slow-consumer
// drops, handler errors, recovered handler panics); it is never nil and
// may be called concurrently.
//
// Connections a factory opens within one test (the same t) must reach each
// other: they share one broker (membus) or one server (natsbus). They may
// also share it with other tests: every subtest publishes and subscribes
// only under a subject prefix of its own. The connection must use the
// default limits: a max payload of bus.DefaultMaxPayload and the default
// pending limits.
//
// The suite closes every connection it opens when the test ends; a factory
// may register its own cleanup too, since Close is idempotent. Anything
// else the factory starts (a server, a broker) is the factory's to stop,
// typically with t.Cleanup.
type BusFactory func(t *testing.T, errs bus.ErrorHandler) bus.Bus

// BusOption adjusts TestBus to a documented variant of the contract.
type BusOption func(*busConfig)

// busReuseBuffersTest is the name of the subtest PublishTakesBuffers skips.
const busReuseBuffersTest = "the publisher may reuse its buffers once Publish returns"

type busConfig struct {
	publishTakesBuffers bool
}

// PublishTakesBuffers declares that the bus under test takes ownership of
// a published message's Data and Header instead of copying them, as a
// membus connection made with membus.WithZeroCopyPublish does: the
// publisher must not modify them once Publish returns. TestBus then skips
// the one subtest that checks the opposite ("the publisher may reuse its
// buffers once Publish returns"), gives every other publish of the suite
// a buffer of its own, and runs every other subtest unchanged.
func PublishTakesBuffers() BusOption {
	return func(c *busConfig) { c.publishTakesBuffers = true }
}

// TestBus runs the Bus conformance suite: one subtest per promise of the
// bus contract (the bus package documentation).
// Every Bus implementation must pass it, under -race, with goleak.
//
// Beyond the bus package's documentation, the suite pins these choices:
//
//   - Close is idempotent and returns nil every time, also after Drain.
//     Every other call on a closed connection (Publish, Subscribe, Flush,
//     Drain) returns an error wrapping bus.ErrClosed, and so do
//     Unsubscribe and Drain on a subscription of a closed connection or a
//     subscription already unsubscribed or drained.
//   - A call whose context is already cancelled returns an error wrapping
//     context.Canceled.
//   - Drain whose context ends while a handler is still running returns
//     the context's error.
//   - Close cancels the context of running handlers and returns only when
//     they have returned.
//   - A slow-consumer error is reported with the subscription's subject,
//     wraps bus.ErrSlowConsumer and names the subject in its message.
//   - Queue subscriptions with the same queue name form one group even on
//     different, overlapping subjects (as in the NATS server).
//   - Header values are compared exactly; the suite only uses values
//     without leading or trailing white space or line breaks, which NATS
//     cannot carry.
//   - Subscription.Dropped counts every dropped message exactly, never
//     decreases, and keeps its final value after the subscription is
//     drained, alone or with its connection. The flood subtests that check
//     it publish and subscribe on one connection and rely on Flush: when
//     it returns, every message the connection published before has
//     reached the connection's own matching subscriptions (handled,
//     pending or dropped).
//   - bus.Closer is optional: its subtest ("a bus.Closer says the
//     connection is open ...") is skipped for a bus that does not
//     implement it. A bus that does has Err() == nil and Done() open until
//     Close or Drain, and by the time either returns, Done() is closed and
//     Err() returns an error wrapping bus.ErrClosed.
//   - bus.Keeper is optional: its subtest ("a bus.Keeper keeps one value
//     per key for the connection") is skipped for a bus that does not
//     implement it. A bus that does keeps values per connection: each
//     connection the factory opens calls create again for a key another
//     connection already keeps.
//
// The suite never sleeps: it synchronises with handlers through channels,
// uses Flush and sentinel messages to know that nothing else will arrive,
// and bounds every wait with a deadline that only a broken implementation
// reaches.
//
// Options adapt the suite to a variant of the contract; without any, it
// checks the full contract.
func TestBus(t *testing.T, newBus BusFactory, opts ...BusOption) {
	t.Helper()
	var cfg busConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	tests := []struct {
		name string
		run  func(h *busHarness)
	}{
		// delivery
		{"publishing with no subscriber succeeds", busTestNoSubscriber},
		{"closing one connection leaves the other connections working", busTestIndependentConnections},
		// subjects
		{"invalid publish subjects are rejected with ErrBadSubject", busTestBadPublishSubjects},
		{"invalid subscribe subjects are rejected with ErrBadSubject", busTestBadSubscribeSubjects},
		{"an invalid queue group name is rejected with ErrBadQueue", busTestBadQueue},
		{"wildcard subscriptions receive exactly the subjects they match", busTestWildcardMatrix},
		{"overlapping literal and wildcard subscriptions each receive the message", busTestOverlappingSubscriptions},
		// queue groups
		{"a queue group delivers each message to exactly one member", busTestQueueGroupOnce},
		{"every queue group and every plain subscription get each message once", busTestQueueGroupsAndPlain},
		{"queue members on overlapping subjects form one group", busTestQueueGroupAcrossSubjects},
		// subscribe-before-publish
		{"a publish from another connection right after Subscribe returns is delivered", busTestSubscribeBeforePublish},
		{"with LocalInterest, the reply to a request published right after Subscribe is delivered", busTestLocalInterest},
		{"a publish with a reply subject to a subject nobody subscribes gets a no-responders status there, and none with a subscriber", busTestNoResponders},
		// order and handlers
		{"messages from concurrent publishers all arrive, each publisher's in order, one at a time", busTestOrderConcurrentPublishers},
		// headers and payload
		{"headers round-trip exactly, multi-valued and case-preserving", busTestHeaders},
		{"binary and empty payloads round-trip exactly", busTestBinaryPayload},
		{busReuseBuffersTest, busTestPublisherReusesBuffers},
		// limits
		{"a payload at the maximum is delivered and a larger one is rejected with ErrMaxPayload", busTestMaxPayload},
		{"a slow consumer drops beyond its pending limit and reports ErrSlowConsumer", busTestSlowConsumer},
		{"a flooded subscription counts every drop exactly, also after Subscription.Drain", busTestFloodSubscriptionDrain},
		{"a flooded subscription counts every drop exactly, also after the connection's Drain", busTestFloodConnectionDrain},
		// handlers
		{"a handler error is reported to the error handler", busTestHandlerError},
		{"a panicking handler is recovered, reported, and the subscription goes on", busTestHandlerPanic},
		// context
		{"calls with a cancelled context return context.Canceled", busTestCancelledContext},
		// close
		{"Unsubscribe stops delivery and a second Unsubscribe returns ErrClosed", busTestUnsubscribe},
		{"Subscription.Drain delivers what is pending and then stops", busTestSubscriptionDrain},
		{"Drain waits for the running handler and pending messages, then closes", busTestDrain},
		{"Drain returns the context's error when a handler outlasts it", busTestDrainDeadline},
		{"Close cancels running handlers and waits for them", busTestCloseCancelsHandlers},
		{"every call after Close returns ErrClosed and Close is idempotent", busTestAfterClose},
		{"a bus.Closer says the connection is open until Close or Drain returns, and closed with ErrClosed after", busTestCloser},
		// optional interfaces
		{"a bus.Keeper keeps one value per key for the connection", busTestKeeper},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == busReuseBuffersTest && cfg.publishTakesBuffers {
				t.Skip("the bus takes ownership of published buffers (contracttest.PublishTakesBuffers)")
			}
			tc.run(newBusHarness(t, newBus, cfg))
		})
	}
	testDurable(t, newBus, cfg)
}
