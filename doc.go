// Package heddle is the shared vocabulary of Heddle for Go, an embeddable
// SDK for task meshes over a message bus: the wire messages (TaskMessage,
// TaskResult, OrchestratorGoal, DeadLetter), their enums, encoders,
// decoders and validation errors, the subjects and queue groups of the
// mesh, the dead-letter reasons, the errors every actor shares, Actor,
// Start and Serve, and the observer seam (Event, Observer, WithLogger,
// WithObserver).
//
// The actors live in packages of their own: worker (typed, dynamic and
// exec workers), router (routing, rules, rate limits), deadletter (store
// and replay), dispatch (the caller's side: Request, Caller, Stream,
// SubmitGoal), orchestrator and pipeline. Every actor talks through the
// small bus.Bus interface; natsbus (core NATS, for production and for
// scaling past one process) and membus (in-process, for tests and
// embedded use) implement it, and the same actors run unchanged on both.
//
// # Delivery semantics
//
// Delivery is at-most-once, as in core NATS. A task published when no
// router or worker is subscribed is lost; a result published before its
// caller subscribed is lost. The SDK removes the second case by
// construction: every wait in package dispatch subscribes before it
// publishes. Every other loss (slow consumer, malformed message, rate
// limit, late result) is reported as one named event, through the
// logger (slog.Default() unless WithLogger says otherwise) and every
// Observer, and counted: never silent.
//
// The wire format, subjects and queue groups are those of the Python
// Heddle framework, so Go and Python actors share one mesh.
package heddle
