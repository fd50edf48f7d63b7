// Package natsbus implements bus.Bus over a core NATS connection
// (github.com/nats-io/nats.go).
//
// Connect dials a server and returns a Bus that owns the connection; New
// wraps a connection the caller already has and takes ownership of it. In
// both cases Drain and Close close the connection.
//
//	b, err := natsbus.Connect("nats://127.0.0.1:4222",
//		natsbus.WithLogger(logger),
//		natsbus.WithNATSOptions(nats.UserCredentials("app.creds")))
//	if err != nil {
//		return err // "cannot connect to NATS at ...: ... Is NATS running? ..."
//	}
//	defer b.Close()
//
// # Delivery semantics
//
// Delivery is at-most-once, exactly as core NATS provides it; nothing is
// persisted or acknowledged. A message is lost, without an error to the
// publisher, when:
//
//   - no subscription matches its subject when the server routes it (the
//     server drops it; natsbus cannot see or count this);
//   - a subscription's pending buffer is full (the slow-consumer case: every
//     drop is counted in Subscription.Dropped, which is exact and keeps its
//     value after the subscription closes; the drops are logged as
//     bus.slow_consumer and reported to the error handler once per run of
//     consecutive drops, which is how nats.go signals them);
//   - the connection to the server breaks. Messages in flight in either
//     direction are lost, and messages other clients publish while this one
//     is reconnecting are not delivered to it. Publishes made while
//     reconnecting are buffered by nats.go (nats.ReconnectBufSize, 8 MiB
//     unless set) and sent after the reconnect; when that buffer is full
//     Publish returns an error. If reconnecting finally fails (only when
//     WithMaxReconnects sets a budget) the buffered messages are discarded
//     and the bus closes itself;
//   - Close is called: messages still pending for a handler are discarded
//     (Drain delivers them first).
//
// Publish returns once the message is buffered for the server, not when it
// is delivered; Flush waits for the server to have processed everything
// published before it.
//
// # Outages
//
// The bus reconnects for ever unless WithMaxReconnects sets a budget, so a
// mesh outlasts a NATS outage of any length. The outage is logged once, as
// bus.disconnected at warn level when it begins and bus.reconnected at
// info level when it ends, however many attempts it takes; events go to
// slog.Default() unless WithLogger says otherwise. Subscriptions are
// re-established automatically after a reconnect.
//
// When the bus closes, for whatever reason, its Done channel is closed and
// Err returns an error wrapping bus.ErrClosed that says why (bus.Closer):
// Close or Drain called, the reconnect budget spent, reconnecting
// disabled, credentials refused. A bus that closes without Close or Drain
// also logs bus.closed at error level. The actors of the SDK watch Done
// and return from Run with that error, so that a process whose bus is gone
// exits and its supervisor can restart it.
//
// # Handlers
//
// Each subscription delivers on its own goroutine, in the order the server
// sent the messages, so a handler is never called concurrently with itself.
// Handlers of different subscriptions run concurrently. A handler's context
// is cancelled when its subscription is unsubscribed or the bus is closed,
// but not while draining. Close, Drain, Unsubscribe and Subscription.Drain
// wait for running handlers to return, so a handler must not call Close or
// Drain on its own bus, nor Unsubscribe or Drain on its own subscription;
// it returns instead, or signals another goroutine to do it.
//
// # Subjects and namespaces
//
// Every subject passed to Publish and Subscribe, and every queue group
// name, is checked with the functions of package bus before anything is
// sent; an invalid one is returned to the caller as an error wrapping
// bus.ErrBadSubject or bus.ErrBadQueue, and nothing is published,
// subscribed, logged or counted. The rule is stricter than the NATS
// server's, so a subject natsbus accepts is one membus accepts too.
//
// WithSubjectPrefix gives a bus a subject namespace: several applications
// or test runs can share one server, each under its own prefix, without
// seeing each other's messages, while the code using the bus works with
// the same logical subjects it would use alone.
//
// # Headers
//
// Header keys keep their case and values keep their order. NATS cannot
// carry every string: keys must be printable ASCII without spaces or any of
// "():;<=>?@[\]{},/, and values cannot begin or end with whitespace or
// contain a line break (nats.go would silently trim or rewrite them).
// Publish rejects such headers with ErrBadHeader instead of altering them.
package natsbus
