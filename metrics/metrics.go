package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/cowmap"
)

// DefaultDurationBuckets are the bounds, in seconds, of the duration
// histograms unless WithDurationBuckets says otherwise: from 1 ms to
// about 5 minutes, each 2.5 times the last, which covers an in-process
// route (well under a millisecond lands in the first) as well as a
// model's answer (DefaultTaskTimeout is 5 minutes).
var DefaultDurationBuckets = []float64{0.001, 0.0025, 0.00625, 0.015625, 0.0390625, 0.09765625, 0.244140625,
	0.6103515625, 1.52587890625, 3.814697265625, 9.5367431640625, 23.84185791015625, 59.604644775390625,
	149.01161193847656, 372.5290298461914}

// Option configures New.
type Option func(*config)

type config struct {
	labelLimit int
	buckets    []float64
}

// WithLabelLimit sets how many distinct values each bounded label takes
// before new ones are counted under OtherLabel (see DefaultLabelLimit).
// It must be at least 1.
func WithLabelLimit(n int) Option {
	return func(c *config) { c.labelLimit = n }
}

// WithDurationBuckets sets the bounds, in seconds, of every duration
// histogram (see DefaultDurationBuckets). They must be increasing.
func WithDurationBuckets(b ...float64) Option {
	return func(c *config) { c.buckets = slices.Clone(b) }
}

// Metrics turns the events of the actors and buses it observes into
// Prometheus metrics on the Registerer given to New. It is an
// event.Observer and event.Selector (it wants only the events it counts)
// and an event.Interceptor (it times handler attempts, routing decisions,
// dispatches and goals): give it to each actor with Option, or with
// heddle.WithObserver and heddle.WithInterceptor. One Metrics serves any
// number of actors; it is safe for concurrent use. Each metric is listed,
// with its meaning, in the package documentation.
type Metrics struct {
	labels map[string]*labelSet

	workerReceived, workerCompleted, workerFailed, workerRetries, workerContract, workerMalformed,
	workerPublishErrors, workerAbandoned, workerDiscarded, workerGoexits, workerPoolShrinks,
	workerDropped *prometheus.CounterVec

	routerRouted, routerDeadLettered, routerThrottled, routerPublishErrors, routerReloads,
	routerNoWorkerUnknown *prometheus.CounterVec

	resultStream, deadLetters, goals, stages, busEvents, busDropped, registryTransitions,
	labelOverflow *prometheus.CounterVec

	taskDuration, routeDuration, dispatchWait, goalDuration *prometheus.HistogramVec

	// routeRouted and routeDeadLettered are routeDuration's two series.
	routeRouted, routeDeadLettered prometheus.Observer

	watch *watcher

	taskSeries cowmap.Map[seriesKey, *taskSeries]
}

// New returns Metrics whose collectors are registered on reg, never on
// the global registry unless that is what reg is. It fails when reg is
// nil, an option is out of range (errors matching heddle.ErrConfig), or
// a metric of the same name is already registered on reg (two Metrics
// on one registry): the error names the metric.
func New(reg prometheus.Registerer, opts ...Option) (*Metrics, error) {
	if reg == nil {
		return nil, fmt.Errorf("%w: metrics: the Registerer is nil; pass prometheus.NewRegistry() or your own", heddle.ErrConfig)
	}
	cfg := config{labelLimit: DefaultLabelLimit, buckets: DefaultDurationBuckets}
	for _, opt := range opts {
		if opt != nil {
			opt(&cfg)
		}
	}
	if cfg.labelLimit < 1 {
		return nil, fmt.Errorf("%w: metrics: WithLabelLimit: must be at least 1, got %d", heddle.ErrConfig, cfg.labelLimit)
	}
	if len(cfg.buckets) == 0 {
		return nil, fmt.Errorf("%w: metrics: WithDurationBuckets: no bucket given", heddle.ErrConfig)
	}
	for i := 1; i < len(cfg.buckets); i++ {
		if !(cfg.buckets[i] > cfg.buckets[i-1]) {
			return nil, fmt.Errorf("%w: metrics: WithDurationBuckets: bucket %d (%v) is not above bucket %d (%v)",
				heddle.ErrConfig, i, cfg.buckets[i], i-1, cfg.buckets[i-1])
		}
	}

	m := &Metrics{labels: map[string]*labelSet{}}
	var all []prometheus.Collector
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		all = append(all, c)
		return c
	}
	histogram := func(name, help string, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: cfg.buckets}, labels)
		all = append(all, h)
		return h
	}

	m.labelOverflow = counter("heddle_metrics_label_overflow_total",
		"Label values counted under \"other\": beyond the label's limit of distinct values, too long, or not UTF-8.", "label")
	for _, name := range boundedLabels {
		s := &labelSet{name: name, limit: cfg.labelLimit}
		over := m.labelOverflow.WithLabelValues(name)
		s.overflow = over.Inc
		m.labels[name] = s
	}

	m.workerReceived = counter("heddle_worker_tasks_received_total", "Tasks a worker took to handle (worker.received).", lWorkerType, lTier)
	m.workerCompleted = counter("heddle_worker_tasks_completed_total", "Tasks whose completed result a worker published (worker.completed).", lWorkerType, lTier)
	m.workerFailed = counter("heddle_worker_tasks_failed_total", "Tasks whose failed result a worker published, by reason kind (worker.failed).", lWorkerType, lTier, lReason)
	m.workerRetries = counter("heddle_worker_task_retries_total", "Handler attempts that failed and were retried, by reason kind (worker.retry).", lWorkerType, lTier, lReason)
	m.workerContract = counter("heddle_worker_contract_violations_total", "Tasks failed by a contract check, by side (input or output); also counted in heddle_worker_tasks_failed_total.", lWorkerType, lSide)
	m.workerMalformed = counter("heddle_worker_malformed_messages_total", "Messages on a worker subject that were not a task for the worker, by reason kind (worker.failed, decode or worker_type_mismatch).", lWorkerType, lReason)
	m.workerPublishErrors = counter("heddle_worker_publish_errors_total", "Results a worker could not publish (worker.failed, reason publish).", lWorkerType)
	m.workerAbandoned = counter("heddle_worker_handlers_abandoned_total", "Handlers given up on after their context ended (worker.abandoned).", lWorkerType)
	m.workerDiscarded = counter("heddle_worker_handlers_discarded_total", "Abandoned handlers that returned at last, their output discarded (worker.discarded).", lWorkerType)
	m.workerGoexits = counter("heddle_worker_goexits_total", "Pool goroutines ended by runtime.Goexit (worker.goexit).", lWorkerType)
	m.workerPoolShrinks = counter("heddle_worker_pool_shrinks_total", "Pool goroutines lost to stuck handlers and not replaced (worker.pool_shrunk).", lWorkerType)
	m.workerDropped = counter("heddle_worker_dropped_tasks_total", "Tasks a worker's subscriptions dropped at their pending limits, a slow consumer (worker.slow_consumer).", lWorkerType)

	m.routerRouted = counter("heddle_router_routed_total", "Tasks a router forwarded to their worker subject (router.routed).", lWorkerType, lTier)
	m.routerDeadLettered = counter("heddle_router_dead_lettered_total", "Tasks a router dead-lettered, by reason kind (router.dead_lettered).", lWorkerType, lReason)
	m.routerThrottled = counter("heddle_router_throttled_total", "Tasks a router held for their tier's capacity (router.throttled).", lWorkerType, lTier)
	m.routerPublishErrors = counter("heddle_router_publish_errors_total", "Publishes a router could not make, by target: forward, dead_letter or answer (router.publish_failed).", lTarget)
	m.routerReloads = counter("heddle_router_reloads_total", "Rule reloads, by result: ok or failed (router.reloaded, router.reload_failed).", lResult)
	m.routerNoWorkerUnknown = counter("heddle_router_no_worker_unknown_total", "No-responder reports for tasks a router had already counted routed (router.no_worker_unknown).")

	m.resultStream = counter("heddle_result_stream_events_total", "Results and waits of callers, by event: collected, ignored, duplicate, parse_error, late, timeout, unserved, error (result_stream.*).", lEvent)
	m.deadLetters = counter("heddle_dead_letters_total", "Dead-letter store events, by event (received, parse_error, evicted, replayed, replay_failed) and reason kind (dead_letter.*).", lEvent, lReason)
	m.goals = counter("heddle_goal_events_total", "Goals of orchestrators and pipelines, by actor and event: received, completed, parse_error.", lActor, lEvent)
	m.stages = counter("heddle_pipeline_stage_events_total", "Pipeline stages, by event: started, completed, failed, retry, skipped (pipeline.stage_*).", lEvent)
	m.busEvents = counter("heddle_bus_events_total", "Connection and delivery events of the buses, by bus and event: disconnected, reconnected, closed, no_subscriber, handler_panic, handler_error, error (bus.*).", lActor, lEvent)
	m.busDropped = counter("heddle_bus_dropped_messages_total", "Messages a bus dropped at a subscription's pending limits, a slow consumer (bus.slow_consumer).", lActor)
	m.registryTransitions = counter("heddle_registry_transitions_total", "Worker liveness changes a registry saw, by event: heartbeat_stale, reactivated, stopped.", lWorkerType, lEvent)

	m.taskDuration = histogram("heddle_worker_task_duration_seconds", "Time from a worker taking a task to its result, retries included, by status: completed or failed.", lWorkerType, lStatus)
	m.routeDuration = histogram("heddle_router_route_duration_seconds", "Time a router took over one task, from delivery to its forward (a held task's wait included) or dead letter, by status: routed or dead_lettered.", lStatus)
	m.dispatchWait = histogram("heddle_dispatch_wait_seconds", "Time a caller waited for one task's result, publish included, by status: completed or failed.", lWorkerType, lStatus)
	m.goalDuration = histogram("heddle_goal_duration_seconds", "Time an orchestrator or pipeline took over one goal, by status: completed or failed.", lActor, lStatus)

	m.routeRouted = m.routeDuration.WithLabelValues("routed")
	m.routeDeadLettered = m.routeDuration.WithLabelValues("dead_lettered")

	m.watch = newWatcher()
	m.watch.label = m.label
	all = append(all, m.watch)

	for i, c := range all {
		if err := reg.Register(c); err != nil {
			for _, done := range all[:i] {
				reg.Unregister(done)
			}
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("metrics: %s is already registered on this Registerer (one Metrics per registry): %w", collectorName(c), err)
			}
			return nil, fmt.Errorf("metrics: registering %s: %w", collectorName(c), err)
		}
	}
	return m, nil
}

// collectorName returns the name of c's first metric, for errors.
func collectorName(c prometheus.Collector) string {
	ch := make(chan *prometheus.Desc, 16)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	name := ""
	for d := range ch {
		if name == "" {
			name = d.String()
		}
	}
	return name
}

// Option returns the heddle.Option that makes an actor report to m: its
// events (as heddle.WithObserver(m)) and the durations of its dispatches
// and goals (as heddle.WithInterceptor(m)). Workers and routers are timed
// from their events, so m puts nothing around their handler attempts and
// routing decisions (BenchmarkTaskPath measures what m costs them).
func (m *Metrics) Option() heddle.Option {
	return func(s *heddle.Settings) {
		heddle.WithObserver(m)(s)
		heddle.WithInterceptor(m)(s)
	}
}

// Handler returns the http.Handler that serves g's metrics in the
// Prometheus exposition formats, for /metrics: promhttp.HandlerFor with
// its default options, errors served as HTTP 500. A nil g serves 500
// saying so, rather than panicking at the first scrape.
func Handler(g prometheus.Gatherer) http.Handler {
	if g == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "metrics: Handler was given no Gatherer", http.StatusInternalServerError)
		})
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

// seconds returns d in seconds.
func seconds(d time.Duration) float64 { return d.Seconds() }

var _ interface {
	event.Observer
	event.Selector
	event.Interceptor
	event.OpSelector
} = (*Metrics)(nil)
