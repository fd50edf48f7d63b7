package event

// Event names. The slog record of an event has its name as its message;
// the runbooks and alerts read these.
const (
	// ActorConnected: a process connected to the bus; natsbus logs it
	// once per connection, with the server URL (credentials redacted) as
	// Detail and the url attribute, before any actor.subscribed.
	ActorConnected = "actor.connected"
	// ActorSubscribed: an actor's subscription is live (subject, queue).
	ActorSubscribed = "actor.subscribed"
	// ObserverPanicked: an observer or interceptor panicked; the actor
	// went on. Logged at most once per PanicLogInterval, with the count.
	ObserverPanicked = "observer.panicked"

	// WorkerReceived: a task reached a handler's goroutine.
	WorkerReceived = "worker.received"
	// WorkerCompleted: a task's completed result was published.
	WorkerCompleted = "worker.completed"
	// WorkerFailed: a task's failed result was published, or a message
	// was not a task for this worker (Reason decode or
	// worker_type_mismatch), or a result could not be published (Reason
	// publish).
	WorkerFailed = "worker.failed"
	// WorkerRetry: a handler attempt failed and the task will be retried.
	WorkerRetry = "worker.retry"
	// WorkerAbandoned: a handler still running after the drain timeout was
	// given up on; its task failed.
	WorkerAbandoned = "worker.abandoned"
	// WorkerDiscarded: an abandoned handler returned at last; what it
	// returned was discarded.
	WorkerDiscarded = "worker.discarded"
	// WorkerGoexit: a handler called runtime.Goexit; its task failed.
	WorkerGoexit = "worker.goexit"
	// WorkerPoolShrunk: a pool goroutine was lost (a stuck handler) and
	// not replaced.
	WorkerPoolShrunk = "worker.pool_shrunk"
	// WorkerSlowConsumer: the worker's subscriptions dropped tasks at
	// their pending limits (Count: how many).
	WorkerSlowConsumer = "worker.slow_consumer"
	// WorkerHeartbeatStale: the registry marked a worker inactive.
	WorkerHeartbeatStale = "worker.heartbeat_stale"
	// WorkerReactivated: an inactive worker heartbeated again.
	WorkerReactivated = "worker.reactivated"
	// WorkerStopped: a worker said it stopped.
	WorkerStopped = "worker.stopped"
	// WorkerJoined, WorkerExpected and WorkerForgotten: a registry heard
	// an instance for the first time, was told to expect one, or dropped
	// one from its table (Reason retention or full).
	WorkerJoined    = "worker.joined"
	WorkerExpected  = "worker.expected"
	WorkerForgotten = "worker.forgotten"
	// WorkerHeartbeatStarted and WorkerHeartbeatFailed: a worker's
	// heartbeat loop started (naming its instance id), or a heartbeat
	// could not be published.
	WorkerHeartbeatStarted = "worker.heartbeat_started"
	WorkerHeartbeatFailed  = "worker.heartbeat_failed"

	// RegistryHeartbeat, RegistryParseError, RegistryFull and
	// RegistryQueryFailed: a registry received a heartbeat, dropped a
	// message that was none, refused a new instance with its table full of
	// active ones, or could not answer a query.
	RegistryHeartbeat   = "registry.heartbeat"
	RegistryParseError  = "registry.parse_error"
	RegistryFull        = "registry.full"
	RegistryQueryFailed = "registry.query_failed"

	// RouterRouted: a task was forwarded to its worker subject.
	RouterRouted = "router.routed"
	// RouterDeadLettered: a task was dead-lettered (Reason: its kind).
	RouterDeadLettered = "router.dead_lettered"
	// RouterThrottled: a task waits for its tier's capacity.
	RouterThrottled = "router.throttled"
	// RouterPublishFailed: a forward, dead letter or answer could not be
	// published.
	RouterPublishFailed = "router.publish_failed"
	// RouterReloaded: rules were reloaded.
	RouterReloaded = "router.reloaded"
	// RouterReloadFailed: a reload was refused; the rules in force stay.
	RouterReloadFailed = "router.reload_failed"
	// RouterRulesLoaded: the first rules were loaded.
	RouterRulesLoaded = "router.rules_loaded"
	// RouterRulesWarning: the rules hold something suspicious.
	RouterRulesWarning = "router.rules_warning"
	// RouterNoWorkerUnknown: the bus cannot say whether a worker serves a
	// subject.
	RouterNoWorkerUnknown = "router.no_worker_unknown"

	// DeadLetterReceived: a dead-letter store received an envelope.
	DeadLetterReceived = "dead_letter.received"
	// DeadLetterParseError: a message on the dead-letter subject was not
	// an envelope.
	DeadLetterParseError = "dead_letter.parse_error"
	// DeadLetterEvicted: a dead letter was dropped to keep the store
	// within its bounds.
	DeadLetterEvicted = "dead_letter.evicted"
	// DeadLetterReplayed: a dead letter's task was published again.
	DeadLetterReplayed = "dead_letter.replayed"
	// DeadLetterReplayFailed: a replay's publish failed; the entry stays.
	DeadLetterReplayFailed = "dead_letter.replay_failed"

	// ResultStreamCollected: a caller collected a result.
	ResultStreamCollected = "result_stream.collected"
	// ResultStreamIgnored: a result for a task the caller does not wait
	// for.
	ResultStreamIgnored = "result_stream.ignored"
	// ResultStreamDuplicate: a second result for a task already collected.
	ResultStreamDuplicate = "result_stream.duplicate"
	// ResultStreamParseError: a message on a result subject was not a
	// result; the caller goes on waiting.
	ResultStreamParseError = "result_stream.parse_error"
	// ResultStreamTimeout: a caller's wait ended with results missing.
	ResultStreamTimeout = "result_stream.timeout"
	// ResultStreamLate: a result came after its caller stopped waiting.
	ResultStreamLate = "result_stream.late"
	// ResultStreamUnserved: nothing serves a task's subject; its call
	// fails at once.
	ResultStreamUnserved = "result_stream.unserved"
	// ResultStreamError: a caller's subscription failed.
	ResultStreamError = "result_stream.error"

	// OrchestratorGoalReceived, OrchestratorGoalCompleted and
	// OrchestratorParseError: an orchestrator's goals.
	OrchestratorGoalReceived  = "orchestrator.goal_received"
	OrchestratorGoalCompleted = "orchestrator.goal_completed"
	OrchestratorParseError    = "orchestrator.parse_error"
	// PipelineGoalReceived, PipelineGoalCompleted, PipelineParseError and
	// PipelineStage*: a pipeline's goals and stages.
	PipelineGoalReceived   = "pipeline.goal_received"
	PipelineGoalCompleted  = "pipeline.goal_completed"
	PipelineParseError     = "pipeline.parse_error"
	PipelineStageStarted   = "pipeline.stage_started"
	PipelineStageCompleted = "pipeline.stage_completed"
	PipelineStageFailed    = "pipeline.stage_failed"
	PipelineStageRetry     = "pipeline.stage_retry"
	PipelineStageSkipped   = "pipeline.stage_skipped"

	// BusClosed: a bus closed for good (Reason says why: closed,
	// reconnect_budget, auth, ...).
	BusClosed = "bus.closed"
	// BusDisconnected and BusReconnected: a connection to the server was
	// lost and regained.
	BusDisconnected = "bus.disconnected"
	BusReconnected  = "bus.reconnected"
	// BusSlowConsumer: a subscription began to drop messages at its
	// pending limits: one event per run of drops (the "dropped" attribute
	// is the subscription's count so far; bus.Subscription.Dropped is
	// exact). An actor reports its own exact drops (WorkerSlowConsumer's
	// Count).
	BusSlowConsumer = "bus.slow_consumer"
	// BusNoSubscriber: a message was published with no subscriber (where
	// the bus can know).
	BusNoSubscriber = "bus.no_subscriber"
	// BusHandlerPanic and BusHandlerError: a subscription's handler
	// panicked or returned an error; the subscription went on.
	BusHandlerPanic = "bus.handler_panic"
	BusHandlerError = "bus.handler_error"
	// BusError: an asynchronous error the server or client reported.
	BusError = "bus.error"
)

// Reason kinds: the bounded values of Event.Reason and Op.Reason.
const (
	// Dead-letter reason prefixes. A router's reason is the prefix, ": ",
	// and a human-readable explanation; operators and alerts match on the
	// prefix (DeadLetterKind).
	//
	// ReasonInvalidTaskMessage: the message is not a valid TaskMessage
	// (malformed JSON, a missing or bad field). The explanation names the
	// fields.
	ReasonInvalidTaskMessage = "invalid_task_message"
	// ReasonUnknownTier: the task's tier, or the tier override for its
	// worker_type, is not a ModelTier.
	ReasonUnknownTier = "unknown_tier"
	// ReasonRateLimited: the tier's token bucket is empty. The full reason
	// is exactly "rate_limited: tier 'X' has no available capacity".
	ReasonRateLimited = "rate_limited"
	// ReasonNoWorker: nothing was subscribed to the worker subject the
	// task was routed to (a worker_type with a typo, a worker that is
	// down). The full reason is "no_worker: no worker serves 'X' at tier
	// 'Y'". A Go router finds out from the bus at once; the Python router
	// does not check.
	ReasonNoWorker = "no_worker"
	// ReasonShutdown: work refused or cut short because its actor stopped.
	ReasonShutdown = "shutdown"
	// ReasonMaxDeliveries: in durable mode, a task delivered MaxDeliver
	// times without an outcome (its workers or routers crashed, or
	// stopped, each time) was dead-lettered instead of delivered again.
	ReasonMaxDeliveries = "max_deliveries"

	// Why a worker failed a task or dropped a message.
	ReasonDecode         = "decode"
	ReasonWrongType      = "worker_type_mismatch"
	ReasonInputContract  = "input_contract"
	ReasonInputDecode    = "input_decode"
	ReasonOutputContract = "output_contract"
	ReasonOutputEncode   = "output_encode"
	ReasonHandler        = "handler_error"
	ReasonPermanent      = "permanent_error"
	ReasonPanic          = "panic"
	ReasonTimeout        = "timeout"
	ReasonGoexit         = "goexit"
	ReasonPublish        = "publish"
	ReasonOutputTooLarge = "output_too_large"

	// ReasonOther stands for a reason text that names no known kind.
	ReasonOther = "other"
)

// deadLetterKinds are the reason kinds a dead letter's reason text may
// start with.
var deadLetterKinds = []string{ReasonInvalidTaskMessage, ReasonUnknownTier, ReasonRateLimited, ReasonNoWorker, ReasonShutdown, ReasonMaxDeliveries}

// DeadLetterKind returns the kind of a dead letter's reason text: the
// word before its first ':' when that is a known dead-letter reason kind,
// ReasonOther otherwise (a reason from a newer or foreign router). Its
// values are bounded, fit for a metric label.
func DeadLetterKind(reason string) string {
	for _, k := range deadLetterKinds {
		if len(reason) >= len(k) && reason[:len(k)] == k && (len(reason) == len(k) || reason[len(k)] == ':') {
			return k
		}
	}
	return ReasonOther
}

// Events of durable mode (a bus.Durable bus; see docs/durable.md).
const (
	// WorkerDeadLettered: in durable mode, a task delivered MaxDeliver
	// times was dead-lettered (Reason ReasonMaxDeliveries) and its caller
	// answered.
	WorkerDeadLettered = "worker.dead_lettered"
	// WorkerHandedBack and RouterHandedBack: a task was handed back to its
	// stream (Nak) for another replica, because its actor stopped, or
	// could not store its outcome, before the task was done.
	WorkerHandedBack = "worker.handed_back"
	RouterHandedBack = "router.handed_back"
	// WorkerSettleError and RouterSettleError: an acknowledgement,
	// negative acknowledgement or in-progress signal could not be sent;
	// the stream redelivers the task after its ack wait.
	WorkerSettleError = "worker.settle_error"
	RouterSettleError = "router.settle_error"
)
