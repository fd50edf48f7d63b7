// Package registry answers "which workers are up?": a Registry listens
// to the heartbeats workers publish (see heddle.Heartbeat and
// worker.Config.HeartbeatInterval), keeps a table of worker instances and
// their liveness, and serves it in process and over the bus.
//
// # Liveness
//
// A worker publishes a heartbeat on heddle.HeartbeatSubject(worker_type)
// when it starts serving, every interval (heddle.DefaultHeartbeatInterval,
// 30 s) and once more, marked stopping, when it drains. Per instance the
// Registry keeps a status:
//
//   - active: heard from within its stale threshold, the stale multiplier
//     (heddle.DefaultStaleMultiplier, 3) times the interval the worker
//     announced: 90 s by default;
//   - inactive: silent for longer. The Registry's monitor sweeps every
//     Config.SweepInterval (heddle.DefaultSweepInterval, 60 s), so a
//     worker is marked inactive at the first sweep after its threshold:
//     never before, and at most one sweep later. A worker the Registry
//     was told to expect (Expect) that never heartbeats goes inactive the
//     same way, counting from when it was expected;
//   - stopped: it said it stopped (a graceful drain), at once.
//
// The next heartbeat of an inactive or stopped worker makes it active
// again. Each change is logged once and counted: worker.heartbeat_stale,
// worker.reactivated, worker.stopped (and worker.joined, worker.expected,
// worker.forgotten for the table's own changes). The thresholds are the
// constants of package heddle, shared with the workers.
//
// A worker type is up when one of its workers is active, down when the
// Registry knows workers of it and none is active, and unknown when
// nothing of that type ever heartbeated. Python Heddle workers send no
// heartbeats, so their types are unknown, never down: an alert on
// "no live worker for a type" reads TypeDown only.
//
// # Over the bus
//
// A request on heddle.SubjectWorkerRegistry (Query does it) is answered
// with the table as JSON, whose schema is schemas.HeartbeatRegistry.
// Every registry answers and the first answer wins; registries fed by the
// same heartbeats agree, each as of its last sweep.
//
// # Bounds
//
// The table holds at most Config.MaxWorkers instances, each of bounded
// size (a heartbeat's text fields hold at most 256 bytes, and unknown
// fields are not kept). Instances inactive or stopped for longer than
// Config.Retention are forgotten, and when the table is full the one
// inactive or stopped the longest makes room; a new worker arriving at a
// table full of active ones is refused, logged and counted.
//
// The table lives in memory: a restarted Registry knows only the workers
// that heartbeat after it started, and those its caller expects again.
// It is not kept in a JetStream key-value bucket, since the Registry runs
// on membus as well as on natsbus; a worker that died while no registry
// ran is invisible until the caller expects it.
package registry
