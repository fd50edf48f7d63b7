// Package metrics exports what Heddle's actors and buses do as Prometheus
// metrics, on a prometheus.Registerer the caller passes: never the global
// registry unless that is the one passed. client_golang is imported by
// this package alone, so a program that does not import it does not build
// client_golang.
//
//	reg := prometheus.NewRegistry()
//	m, err := metrics.New(reg)
//	...
//	w, err := worker.New(b, "summarize", handle, worker.Config{}, m.Option())
//	m.WatchWorker(w)
//	http.Handle("/metrics", metrics.Handler(reg))
//
// A Metrics is an event.Observer that wants only the events it counts (an
// actor builds no debug event for it that its logger does not log) and an
// event.Interceptor that times dispatches and goals (an event.OpSelector:
// it wraps no handler attempt and no routing decision, whose durations
// come with their events); Option gives it to an actor as both.
// Counters follow the events one for one (DESIGN invariant 13): each
// counter's value equals the number of its events, Event.N() for the
// events that stand for several things, and so equals the actor's Stats
// counter of the same outcome.
//
// # Labels
//
// Labels are bounded: worker_type, tier, reason (the event's reason kind,
// never its free text), status, actor, and words of this package (event,
// side, target, result, state). No metric has a task id. The labels fed
// by what peers send (worker_type, tier, reason, status, actor) take at
// most DefaultLabelLimit distinct values each (WithLabelLimit), and no
// value longer than MaxLabelLength bytes or not valid UTF-8; beyond that
// the value is counted as "other" (OtherLabel) and the fold is counted in
// heddle_metrics_label_overflow_total{label}. A hostile peer inventing a
// worker type per dead letter so costs one series, not one per message.
//
// # Metrics
//
// Workers (package worker), from their events:
//
//	heddle_worker_tasks_received_total{worker_type,tier}         tasks taken to handle (worker.received; Stats.Received)
//	heddle_worker_tasks_completed_total{worker_type,tier}        completed results published (worker.completed; Stats.Completed)
//	heddle_worker_tasks_failed_total{worker_type,tier,reason}    failed results published, by reason kind (worker.failed; Stats.Failed)
//	heddle_worker_task_retries_total{worker_type,tier,reason}    attempts failed and retried (worker.retry; Stats.Retried)
//	heddle_worker_contract_violations_total{worker_type,side}    tasks failed by the input or output contract (a part of the failed)
//	heddle_worker_malformed_messages_total{worker_type,reason}   messages that were not a task for the worker (Stats.Malformed)
//	heddle_worker_publish_errors_total{worker_type}              results that could not be published (Stats.PublishErrors)
//	heddle_worker_handlers_abandoned_total{worker_type}          handlers given up on (worker.abandoned; Stats.Abandoned)
//	heddle_worker_handlers_discarded_total{worker_type}          given-up handlers that returned at last (worker.discarded; Stats.Discarded)
//	heddle_worker_goexits_total{worker_type}                     pool goroutines ended by runtime.Goexit (worker.goexit; Stats.Goexits)
//	heddle_worker_pool_shrinks_total{worker_type}                pool goroutines lost and not replaced (worker.pool_shrunk)
//	heddle_worker_dropped_tasks_total{worker_type}               tasks dropped by the worker's subscriptions, a slow consumer (worker.slow_consumer; Stats.Dropped)
//	heddle_worker_task_duration_seconds{worker_type,status}      histogram: from taking a task to its result, retries included
//
// and, for the workers given to WatchWorker, read from Stats at each scrape:
//
//	heddle_worker_in_flight_tasks{worker_type}                   gauge: received and not finished
//	heddle_worker_hung_handlers{worker_type}                     gauge: handlers given up on that still run
//	heddle_worker_pool_goroutines{worker_type}                   gauge: pool goroutines serving tasks
//	heddle_worker_pending_tasks{worker_type}                     gauge: tasks the subscriptions hold, not yet handed over
//	heddle_worker_observer_panics_total{worker_type}             panics of the worker's observers (Stats.ObserverPanics)
//
// Routers (package router):
//
//	heddle_router_routed_total{worker_type,tier}                 tasks forwarded (router.routed; Stats.Routed)
//	heddle_router_dead_lettered_total{worker_type,reason}        tasks dead-lettered, by reason kind: invalid_task_message,
//	                                                             unknown_tier, rate_limited, no_worker, shutdown (router.dead_lettered;
//	                                                             Stats.DeadLettered and its counters by reason)
//	heddle_router_throttled_total{worker_type,tier}              tasks held for their tier's capacity (router.throttled; Stats.Throttled)
//	heddle_router_publish_errors_total{target}                   publishes that failed: forward, dead_letter, answer
//	                                                             (router.publish_failed; Stats.PublishErrors, DeadLetterErrors, AnswerErrors)
//	heddle_router_reloads_total{result}                          rule reloads: ok, failed (Stats.Reloads, ReloadErrors)
//	heddle_router_no_worker_unknown_total                        unserved reports of tasks already counted routed (Stats.NoWorkerUnknown)
//
// Callers (package dispatch: Request, Caller, Stream, Call, goals):
//
//	heddle_result_stream_events_total{event}                     results and waits: collected, ignored, duplicate, parse_error,
//	                                                             late, timeout, unserved, error (result_stream.*; StreamStats)
//
// Dead-letter stores (package deadletter), orchestrators, pipelines:
//
//	heddle_dead_letters_total{event,reason}                      received, parse_error, evicted, replayed, replay_failed, by
//	                                                             the dead letter's reason kind (dead_letter.*; Stats)
//	heddle_goal_events_total{actor,event}                        goals received, completed, parse_error (orchestrator.*, pipeline.goal_*)
//	heddle_pipeline_stage_events_total{event}                    stages started, completed, failed, retry, skipped
//
// Buses (membus, natsbus) and registries (package registry):
//
//	heddle_bus_events_total{actor,event}                         disconnected, reconnected, closed, no_subscriber,
//	                                                             handler_panic, handler_error, error (bus.*)
//	heddle_bus_dropped_messages_total{actor}                     messages dropped at a subscription's pending limits (bus.slow_consumer)
//	heddle_registry_transitions_total{worker_type,event}         heartbeat_stale, reactivated, stopped (worker.heartbeat_stale, ...)
//	heddle_registry_workers{worker_type,state}                   gauge: instances by state, active, inactive, stopped (WatchRegistry)
//
// Durations (histograms, seconds, buckets DefaultDurationBuckets or
// WithDurationBuckets), from the events' Duration and, for dispatches
// and goals, from the interceptor:
//
//	heddle_worker_task_duration_seconds{worker_type,status}      see above: the handler's time, retries included
//	heddle_router_route_duration_seconds{status}                 a task's route, from its delivery to its forward (routed,
//	                                                             a held task's wait included) or dead letter (dead_lettered)
//	heddle_dispatch_wait_seconds{worker_type,status}             a caller's dispatch and wait for one result
//	heddle_goal_duration_seconds{actor,status}                   an orchestrator's or pipeline's goal
//
// Each handler attempt has its own span in package otel; no histogram
// times attempts one by one, since timing them would put an interceptor
// around every attempt.
//
// And of the package itself:
//
//	heddle_metrics_label_overflow_total{label}                   label values counted as "other" (see Labels)
//
// heddle_bus_dropped_messages_total adds Event.N() of each
// bus.slow_consumer event. membus and natsbus report a run of drops as
// one event and set no Count today, so it counts runs of drops, not
// messages; Subscription.Dropped has the exact number, and
// heddle_worker_dropped_tasks_total has it for workers' subscriptions.
//
// The slow-consumer drops of a worker's subscriptions are counted twice
// when the bus is observed too: once by the worker
// (heddle_worker_dropped_tasks_total) and once by the bus
// (heddle_bus_dropped_messages_total); add neither to the other.
//
// The repository's deploy/prometheus/alerts.yml and
// deploy/grafana/heddle.json are built on these names; a test of this
// package checks that every metric they name is registered here.
package metrics
