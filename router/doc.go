// Package router forwards each task on heddle.SubjectTasksIncoming to its
// worker subject, or dead-letters it on heddle.SubjectDeadLetter with a
// reason (event.ReasonInvalidTaskMessage, event.ReasonUnknownTier,
// event.ReasonRateLimited, ReasonShutdown) and the original bytes
// untouched. Rules (tier overrides and per-tier rate limits) come from a
// RulesSource, usually the Python Heddle's configs/router_rules.yaml
// through RulesFile, and are reloaded on heddle.SubjectControlReload.
//
// Over its tier's rate limit a task is dead-lettered at once, as the
// Python router does, unless the tier has a maximum wait
// (max_wait_seconds, a Go extension of the rules file): then the task
// waits for its token up to that long, held by the router without holding
// up the tasks behind it, and is dead-lettered only when its token would
// come later (see Router's Throttling).
//
// Go routers share the work in queue group heddle.RouterQueueGroup. The
// Python router subscribes without a queue group, so every Python router
// sees every task: a mesh runs one kind of router, since a Python router
// beside Go routers routes each task once more.
//
// Guarantees: every message on the incoming subject is counted exactly
// once, when its fate is known (routed, dead-lettered by reason, or lost to
// a failed forward, each reported as one event), and the counters only
// increase; every task nothing serves is dead-lettered and its caller
// answered, however many come at once; what the router keeps of forwarded
// tasks is bounded in bytes (Config.ForwardBudget) and let go when their
// fate is known; the tasks held for capacity are bounded in number and
// bytes (Config.MaxHeld, Config.HoldBudget), and each is forwarded or
// dead-lettered and answered, also when Run ends; the router never coerces bad input; Run returns after a
// drain bounded by Config.DrainTimeout, or at once with an error wrapping
// bus.ErrClosed when its bus closes.
package router
