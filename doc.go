// Package heddle is an embeddable SDK for task meshes over a message bus.
//
// Callers dispatch TaskMessages; a Router validates them, resolves a model
// tier, rate-limits and forwards them to workers, or dead-letters them with
// a reason. Workers in queue groups check each payload against a JSON Schema
// contract, run the user's handler, check the output and publish a
// TaskResult. Orchestrators and pipelines fan goals out into subtasks and
// collect their results through a ResultStream.
//
// Every actor talks through the small bus.Bus interface. Two
// implementations ship: natsbus (core NATS, for production and for scaling
// past one process) and membus (in-process, for tests and embedded use).
// The same actors run unchanged on both; contracttest.TestBus proves the two
// buses keep the same promises.
//
// # Delivery semantics
//
// Delivery is at-most-once, as in core NATS. A task published when no
// router or worker is subscribed is lost; a result published before its
// caller subscribed is lost. The SDK removes the second case by
// construction: ResultStream and DispatchAndWait subscribe before they
// publish. Every other loss (slow consumer, malformed message, rate limit,
// late result) is logged with a named event and counted, never silent.
//
// The wire format and subjects are those of the Python Heddle framework,
// so Go and Python actors can share one mesh.
package heddle
