package bus

import (
	"context"
	"errors"
	"time"
)

// Durable is the optional durable capability of a Bus: messages stored in
// a stream before anyone acts on them, consumed through durable consumers
// that redeliver what is not acknowledged. Its shape follows the
// JetStream API of nats.go (package jetstream), which natsbus implements
// it with; membus implements it in memory with the same semantics, so an
// actor in durable mode runs identically in unit tests.
//
// The promises, proved by the durable rows of contracttest.TestBus:
//
//   - Store before act: PublishDurable returns once the message is stored
//     in the stream whose subjects capture its subject. A core Publish to
//     such a subject is stored too (without an acknowledgement), as
//     JetStream stores it.
//   - Duplicates: a PublishDurable whose msgID was stored within the
//     stream's Duplicates window stores nothing and reports Duplicate.
//   - Shared consumers: every Consume of one consumer, on any connection,
//     shares its messages; each message goes to one of them at a time.
//   - At-least-once: a delivered message is redelivered (to any
//     consumption of the consumer) once its AckWait passes without Ack,
//     Nak, InProgress or Term, until it has been delivered MaxDeliver
//     times; after that it is not delivered again.
//   - Nak hands the message back for redelivery at once (or after the
//     delay given); InProgress restarts the ack wait; Term ends the
//     message's deliveries for good.
//   - A connection that closes or is lost leaves its unacknowledged
//     messages to be redelivered after their ack wait.
//
// Find it with a type assertion; actors that need it fail with an error
// wrapping ErrNotDurable on a bus that lacks it:
//
//	d, ok := b.(bus.Durable)
type Durable interface {
	// EnsureStream creates the stream when it is missing and checks it
	// when it exists: an existing stream whose subjects, retention or
	// storage differ, or whose limit differs from a non-zero field of cfg,
	// is an error wrapping ErrStreamConflict that names the stream and the
	// setting. Zero fields of cfg leave an existing stream's setting as the
	// operator shaped it, and mean the documented defaults on creation.
	EnsureStream(ctx context.Context, cfg StreamConfig) error
	// PublishDurable stores msg in the stream that captures msg.Subject
	// and returns once it is stored (or was a duplicate). msgID, when not
	// empty, is the message id duplicates are detected by (the
	// Nats-Msg-Id header, which the stored message carries). No stream
	// capturing the subject is an error wrapping ErrNoStream.
	PublishDurable(ctx context.Context, msg *Msg, msgID string) (PubAck, error)
	// StreamOf returns the name of the stream that captures subject, or an
	// error wrapping ErrNoStream when none does. A publisher that falls
	// back to a core publish without a stream asks it first: a durable
	// publish to a subject with core subscribers and no stream waits for
	// an acknowledgement that never comes.
	StreamOf(ctx context.Context, subject string) (string, error)
	// Consume creates the durable consumer cfg names when it is missing
	// (an existing one that differs is an error wrapping
	// ErrStreamConflict) and delivers its messages to h, one call at a
	// time, until the Consumption is stopped or the connection closes.
	Consume(ctx context.Context, cfg ConsumerConfig, h DurableHandler) (Consumption, error)
}

// Errors of the durable capability, wrapped with %w.
var (
	// ErrNotDurable reports a bus without the Durable capability where
	// durable mode was asked for.
	ErrNotDurable = errors.New("bus: the bus has no durable capability (bus.Durable)")
	// ErrNoStream reports a subject no stream captures, or a consumer of
	// a stream that does not exist.
	ErrNoStream = errors.New("bus: no stream")
	// ErrStreamConflict reports an existing stream or consumer whose
	// configuration conflicts with the one asked for.
	ErrStreamConflict = errors.New("bus: stream configuration conflict")
	// ErrSettled reports an Ack, Nak, InProgress or Term on a message
	// already acknowledged, handed back or terminated.
	ErrSettled = errors.New("bus: message already settled")
)

// Defaults of StreamConfig and ConsumerConfig, used when a field is zero.
const (
	// DefaultStreamMaxAge is how long a stream keeps a message.
	DefaultStreamMaxAge = 7 * 24 * time.Hour
	// DefaultStreamMaxBytes bounds a stream's stored bytes (1 GiB).
	DefaultStreamMaxBytes = 1 << 30
	// DefaultDuplicates is the window within which a PublishDurable with
	// a msgID already stored is dropped (JetStream's default).
	DefaultDuplicates = 2 * time.Minute
	// DefaultAckWait is how long a delivered message waits for its
	// acknowledgement before it is redelivered (JetStream's default).
	DefaultAckWait = 30 * time.Second
	// DefaultMaxDeliver bounds the deliveries of one message.
	DefaultMaxDeliver = 5
	// DefaultMaxAckPending bounds the messages of one consumer delivered
	// and not yet settled, across every consumption.
	DefaultMaxAckPending = 1000
	// MsgIDHeader is the header carrying a message's id for duplicate
	// detection, JetStream's.
	MsgIDHeader = "Nats-Msg-Id"
)

// StreamConfig describes a stream. Zero fields mean the defaults above.
type StreamConfig struct {
	// Name is the stream's name: letters, digits, '-' and '_'.
	Name string
	// Subjects are the subjects (wildcards allowed) the stream captures.
	Subjects []string
	// WorkQueue removes a message once a consumer acknowledged it (or
	// terminated it), and allows one consumer per subject; otherwise the
	// stream keeps messages until its limits discard the oldest.
	WorkQueue bool
	// Memory keeps the stream in memory instead of file storage.
	Memory bool
	// MaxAge, MaxBytes and MaxMsgs are the stream's limits; past them the
	// oldest messages are discarded. Zero means DefaultStreamMaxAge,
	// DefaultStreamMaxBytes and no limit on the count.
	MaxAge   time.Duration
	MaxBytes int64
	MaxMsgs  int64
	// Replicas is how many servers of a cluster keep the stream (3 on a
	// cluster of three or more); zero means 1.
	Replicas int
	// Duplicates is the duplicate-detection window; zero means
	// DefaultDuplicates.
	Duplicates time.Duration
}

// ConsumerConfig describes a durable consumer of a stream.
type ConsumerConfig struct {
	// Stream and Name name the stream and the durable consumer.
	Stream, Name string
	// FilterSubjects restricts the consumer to these subjects of the
	// stream (wildcards allowed); empty means all of them.
	FilterSubjects []string
	// AckWait is how long a delivered message waits for a settlement
	// before it is redelivered; zero means DefaultAckWait.
	AckWait time.Duration
	// MaxDeliver bounds the deliveries of one message; zero means
	// DefaultMaxDeliver.
	MaxDeliver int
	// MaxAckPending bounds the messages delivered and not settled; zero
	// means DefaultMaxAckPending.
	MaxAckPending int
	// Prefetch is how many messages a consumption may hold before its
	// handler takes them (natsbus pulls in batches of this size); zero
	// means 1. membus hands messages over one at a time.
	Prefetch int
}

// PubAck is the stream's acknowledgement of a PublishDurable.
type PubAck struct {
	// Stream is the stream that stored the message.
	Stream string
	// Sequence is its sequence number in the stream.
	Sequence uint64
	// Duplicate reports that the msgID was already stored within the
	// window: nothing new was stored.
	Duplicate bool
}

// DurableMsg is one delivery of a stored message. Exactly one of Ack, Nak
// and Term settles it; InProgress may be called any number of times
// before. Calls after it is settled return an error wrapping ErrSettled
// (membus; a NATS server ignores them, and natsbus reports what nats.go
// does). None of them blocks on the server.
type DurableMsg interface {
	// Msg returns the message: its subject (logical, as published), header
	// and data. The handler must not modify it.
	Msg() *Msg
	// Delivered is how many times the message has been delivered,
	// counting this delivery: 1 the first time.
	Delivered() int
	// Ack acknowledges the message: it is not delivered again.
	Ack() error
	// Nak hands the message back for redelivery after delay (0: at once),
	// unless it has been delivered MaxDeliver times.
	Nak(delay time.Duration) error
	// InProgress restarts the message's ack wait.
	InProgress() error
	// Term ends the message's deliveries: it is never delivered again.
	Term() error
}

// DurableHandler handles one delivery. It may settle the message after it
// returns, from any goroutine; the next delivery comes once it has
// returned. A returned error is reported to the bus's error handler and
// settles nothing; a panic is recovered and reported the same way.
type DurableHandler func(ctx context.Context, m DurableMsg) error

// Consumption is one consumer's deliveries to one handler.
type Consumption interface {
	// Stop ends the deliveries: no handler call starts after it returns,
	// and messages fetched but not yet handed to the handler are handed
	// back (Nak) so that another consumption gets them at once. It waits
	// for a running handler call to return, or for ctx. Messages the
	// handler holds stay its to settle. Stop is idempotent.
	Stop(ctx context.Context) error
	// Done is closed once the consumption has ended: stopped, or its
	// connection closed.
	Done() <-chan struct{}
}
