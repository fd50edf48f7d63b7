// Package deadletter keeps the dead letters a router publishes on
// heddle.SubjectDeadLetter, in a bounded in-memory store, and replays
// them: Replay publishes the original task, byte for byte and with its
// headers, on heddle.SubjectTasksIncoming, as the runbooks describe.
//
// It reads the envelopes of both Go and Python routers. When the store is
// full the oldest entry is evicted, reported as dead_letter.evicted and
// counted: nothing leaves the store silently. Run returns after a drain
// bounded by Config.DrainTimeout; the store outlives Run.
package deadletter
