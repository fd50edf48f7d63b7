// Package deadletter keeps the dead letters a router publishes on
// heddle.SubjectDeadLetter, in a bounded in-memory store, and replays
// them: Replay publishes the original task, byte for byte and with its
// headers, on heddle.SubjectTasksIncoming, as the runbooks describe.
//
// It reads the envelopes of both Go and Python routers. When the store is
// full the oldest entry is evicted, reported as dead_letter.evicted and
// counted: nothing leaves the store silently. Run returns after a drain
// bounded by Config.DrainTimeout; the store outlives Run.
//
// # Stores
//
// Store is what readers of dead letters need: a page of entries filtered
// by reason kind (ReasonKind) and worker type, one entry, replay, and the
// counts by reason kind with the replay count. Consumer is the in-memory
// Store; a durable one implements the same interface. ReplayMatching
// replays every entry a Filter selects and reports each outcome.
//
// A successful replay removes the entry, as the Python Heddle's consumer
// does: the store holds what still awaits a decision, and the replay
// count (Counts.ReplayCount, Stats.Replayed) says how many tasks an
// operator re-injected. A replayed task the router dead-letters again
// comes back as a new entry whose ReplayCount and LastReplayedAt say how
// often and when it was replayed, so that a task replayed in vain stands
// out.
//
// # The web view
//
// NewHandler serves the store as the dead-letter page of the Python
// Heddle's Workshop: the counts by reason kind first (the question is why
// the tasks are there), the entries, filters, a page per entry with its
// original task, replay of one entry or of a selection, and a JSON API for
// scripts. It serves loopback clients only unless a token
// (HandlerOptions.Token, from the environment variable TokenEnv) is
// set; CheckListenAddr tells a program whether an address is safe to
// listen on with the token it has.
package deadletter
