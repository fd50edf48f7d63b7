// Package bus defines the transport contract every Heddle actor talks
// through: a small Bus interface, the Msg it carries, subscription options,
// sentinel errors and subject validation and matching.
//
// Two implementations ship with the SDK: membus (in-process) and natsbus
// (core NATS). Both keep the same promises, proved by
// contracttest.TestBus:
//
//   - Delivery is at-most-once, like core NATS. A message published when no
//     subscription matches is dropped; that is not an error. A message is
//     also lost when a subscription's pending buffer is full (the slow
//     consumer case, reported to the bus's error handler), or when the
//     connection to the server is lost while it is in flight.
//   - When Subscribe returns, the interest is live: a message published
//     after it, from any connection, is delivered.
//   - Messages from one publisher to one subscription arrive in publish
//     order. Each subscription delivers on one goroutine, so its handler is
//     never called concurrently with itself.
//   - Each message goes to exactly one member of each queue group and to
//     every plain subscription.
//   - Headers are multi-valued and case-preserving; payloads are opaque
//     bytes.
//   - A subscription's pending buffer is bounded; beyond it messages are
//     dropped, reported as ErrSlowConsumer, and counted exactly by
//     Subscription.Dropped.
//   - Drain stops new deliveries, lets handlers finish what is pending and
//     then closes; after Close every call returns ErrClosed and no goroutine
//     of the bus is left running.
//   - A bus that closes, for any reason, says so through Closer: Done is
//     closed and Err says why. natsbus reconnects for ever unless told
//     otherwise, so it closes by itself only when given a reconnect budget
//     or when NATS refuses it for good; the actors of the SDK watch Done
//     and return from Run with an error wrapping ErrClosed.
//
// # Subjects and queue groups
//
// A subject is one or more tokens separated by '.'. In a subscription a
// token may be the wildcard "*", which matches exactly one token, and the
// last token may be ">", which matches one or more tokens; "*" or ">" as
// part of a longer token ("a*") is an ordinary character. A publish
// subject has no wildcards. A queue group name follows the publish subject
// rule. membus and natsbus check every subject and queue group name with
// the functions of this package before they use it, so what one accepts
// the other accepts too; the NATS server itself is more lenient.
//
// A subject, token or queue group name is invalid when it:
//
//   - is empty, or has an empty token (a leading, trailing or doubled '.');
//   - is not valid UTF-8;
//   - contains white space of any script: the Unicode White_Space
//     property, which is U+0009–U+000D, U+0020, U+0085, U+00A0, U+1680,
//     U+2000–U+200A, U+2028, U+2029, U+202F, U+205F and U+3000;
//   - contains a control character (category Cc: U+0000–U+001F and
//     U+007F–U+009F);
//   - contains a format character (category Cf), such as the zero-width
//     space U+200B, the joiners U+200C and U+200D, the bidirectional
//     controls U+202A–U+202E and U+2066–U+2069, the soft hyphen U+00AD and
//     the byte-order mark U+FEFF. They are invisible or reorder what is
//     shown, so two subjects that print alike would differ on the wire;
//     the price is that emoji sequences built with U+200D are refused too;
//   - contains a character that reads as '.' but does not separate tokens:
//     those NFKC normalisation maps to '.' (U+2024 one dot leader, U+FE52
//     small full stop, U+FF0E fullwidth full stop) and the ideographic full
//     stops IDNA treats as label separators (U+3002, U+FF61);
//   - has a wildcard token where none is allowed: "*" or ">" in a publish
//     subject, a queue group name or a single token, or ">" before the
//     last token of a subscription.
//
// Every other character is allowed, in any script. ValidateToken checks a
// value that becomes one token of a subject (a worker type, a task id), so
// callers refuse it before they build the subject. The errors wrap
// ErrBadSubject (ErrBadQueue for a queue group name) and name the string,
// the offending character with its code point, and its byte offset:
//
//	bus: bad subject "heddle.tasks.a b": white space U+0020 at byte 14
package bus

import (
	"context"
	"errors"
)

// Sentinel errors shared by every Bus implementation. Implementations wrap
// them with %w and add the subject or limit at fault, so callers test with
// errors.Is.
var (
	// ErrClosed is returned by every call made after Close or Drain.
	ErrClosed = errors.New("bus: closed")
	// ErrBadSubject reports a subject or subject token that breaks the
	// rule in the package documentation ("Subjects and queue groups").
	ErrBadSubject = errors.New("bus: bad subject")
	// ErrBadQueue reports a queue group name that breaks the same rule.
	ErrBadQueue = errors.New("bus: bad queue group")
	// ErrMaxPayload reports a message larger than the bus accepts.
	ErrMaxPayload = errors.New("bus: maximum payload exceeded")
	// ErrSlowConsumer is reported to the error handler when a subscription's
	// pending buffer is full and a message for it was dropped.
	ErrSlowConsumer = errors.New("bus: slow consumer, message dropped")
)

// Defaults shared by the implementations. They match core NATS.
const (
	// DefaultMaxPayload is the largest message a bus accepts unless
	// configured otherwise (the NATS server default, 1 MiB).
	DefaultMaxPayload = 1 << 20
	// DefaultPendingMsgs bounds how many delivered but unhandled messages a
	// subscription holds before it drops (the nats.go default).
	DefaultPendingMsgs = 512 * 1024
	// DefaultPendingBytes bounds the payload bytes a subscription holds
	// before it drops (the nats.go default, 64 MiB).
	DefaultPendingBytes = 64 * 1024 * 1024
)

// Msg is one message on the bus.
type Msg struct {
	// Subject the message was published to.
	Subject string
	// Reply, when set on a publish, is a subject on which the bus reports
	// that nothing at all is subscribed to Subject: one message with no
	// data and the no-responders status (see NoResponders), sent at once,
	// as NATS does. With a subscriber nothing comes back; subscribers see
	// Reply and may answer on it.
	Reply string
	// Header holds optional metadata; nil means none.
	Header Header
	// Data is the payload, opaque to the bus.
	Data []byte
}

// StatusHeader is the header of a status message from the bus; its value
// is the status code, "503" for no responders.
const StatusHeader = "Status"

// StatusNoResponders is the status of the message a bus sends on a
// publish's Reply subject when nothing is subscribed to its Subject.
const StatusNoResponders = "503"

// NoResponders reports whether m is the bus's report that nothing was
// subscribed to the subject of a message published with m.Subject as its
// Reply.
func NoResponders(m *Msg) bool {
	return len(m.Data) == 0 && m.Header.Get(StatusHeader) == StatusNoResponders
}

// Size is the number of bytes the message counts against payload and
// pending limits: its data plus its header keys and values.
func (m *Msg) Size() int {
	n := len(m.Data)
	for k, vs := range m.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// Handler processes one delivered message. The context is cancelled when
// the subscription is closed without draining (Unsubscribe, Close). A
// returned error is reported to the bus's error handler; it does not stop
// the subscription. A panic is recovered and reported the same way.
//
// The bus may reuse nothing of msg after the handler returns, but the
// handler must not modify msg.Data if other subscriptions may share it.
type Handler func(ctx context.Context, msg *Msg) error

// ErrorHandler receives asynchronous errors: slow-consumer drops (wrapping
// ErrSlowConsumer), handler errors and recovered handler panics. subject is
// the subscription's subject, or empty for connection-level errors.
type ErrorHandler func(subject string, err error)

// Bus is the transport contract. Implementations are safe for concurrent
// use.
type Bus interface {
	// Publish sends msg to every matching subscription. A publish with no
	// matching subscription succeeds and the message is dropped.
	// Publish does not wait for delivery; call Flush for that.
	Publish(ctx context.Context, msg *Msg) error
	// Subscribe registers h for subject, which may contain wildcards. When
	// it returns without error the interest is live for publishes made
	// afterwards from any connection.
	Subscribe(ctx context.Context, subject string, h Handler, opts ...SubscribeOption) (Subscription, error)
	// Flush returns when everything published before it has been handed to
	// the transport's routing (the server, for NATS), or when ctx ends.
	Flush(ctx context.Context) error
	// Drain stops new deliveries on every subscription, waits until the
	// handlers have processed every pending message (or ctx ends), and
	// closes the bus.
	Drain(ctx context.Context) error
	// Close closes the bus at once: pending messages are discarded, handler
	// contexts are cancelled, and Close waits for running handlers to
	// return. It is idempotent.
	Close() error
}

// Subscription is one registered interest.
type Subscription interface {
	// Subject returns the subject the subscription was made on.
	Subject() string
	// Queue returns the queue group name, or "" for a plain subscription.
	Queue() string
	// Dropped returns how many messages this subscription has dropped
	// because its pending limits were reached: every drop, counted
	// exactly. The count never decreases, and after the subscription or
	// its bus is closed it keeps its final value.
	Dropped() int
	// Unsubscribe removes the interest at once, discarding pending
	// messages. It waits for a running handler to return.
	Unsubscribe() error
	// Drain removes the interest, lets the handler process the messages
	// already pending, and returns when it has (or when ctx ends).
	Drain(ctx context.Context) error
}
