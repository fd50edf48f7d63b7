// Package heddle is the shared vocabulary of Heddle for Go, an embeddable
// SDK for task meshes over a message bus: the wire messages (TaskMessage,
// TaskResult, OrchestratorGoal, DeadLetter), their enums, encoders,
// decoders and validation errors, the subjects and queue groups of the
// mesh, the dead-letter reasons, the errors every actor shares, Actor,
// Start and Serve, the options every actor takes (WithLogger,
// WithObserver, WithInterceptor, WithPropagator: the observer seam itself
// is package event), and the liveness vocabulary (Heartbeat and its
// defaults).
//
// The actors live in packages of their own: worker (typed, dynamic and
// exec workers), router (routing, rules, rate limits), deadletter (store
// and replay), dispatch (the caller's side: Request, Caller, Stream,
// SubmitGoal), orchestrator, pipeline, scheduler, registry (worker
// liveness) and mcp (the MCP gateway). Every actor talks through the
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
// # Liveness
//
// Every Go worker publishes a Heartbeat on HeartbeatSubject(worker_type)
// (heddle.workers.heartbeat.{worker_type}) when it starts serving, every
// DefaultHeartbeatInterval (30 s) after, and a last one marked stopping
// when it drains. A registry (package registry) marks a worker inactive
// once its last heartbeat is older than DefaultStaleMultiplier (3) times
// its interval, checking every DefaultSweepInterval (60 s), and answers
// requests for its table on SubjectWorkerRegistry. These defaults are the
// one place every judge of staleness reads. Python workers do not
// heartbeat: a worker type never heard from is unknown, not down.
//
// The wire format, subjects and queue groups are those of the Python
// Heddle framework, so Go and Python actors share one mesh; the heartbeat
// subjects are this SDK's own, under a prefix no Python subject uses.
package heddle
