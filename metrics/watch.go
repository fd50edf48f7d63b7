package metrics

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/worker"
)

// WorkerCount is how many instances of one worker type a worker registry
// knows, by liveness: what WatchRegistry reads (registry.TypeSummary has
// these fields).
type WorkerCount struct {
	WorkerType                string
	Active, Inactive, Stopped int
}

// watcher is the Collector of the gauges read at scrape time, from the
// workers and registries m watches.
type watcher struct {
	inFlight, hung, live, pending, observerPanics, registryWorkers *prometheus.Desc

	mu         sync.Mutex
	workers    []*worker.Worker
	registries []func() []WorkerCount
	label      func(name, v string) string
}

func newWatcher() *watcher {
	return &watcher{
		inFlight: prometheus.NewDesc("heddle_worker_in_flight_tasks",
			"Tasks a worker has received and not finished: received less completed, failed and unpublished.", []string{lWorkerType}, nil),
		hung: prometheus.NewDesc("heddle_worker_hung_handlers",
			"Handlers a worker gave up on that still run.", []string{lWorkerType}, nil),
		live: prometheus.NewDesc("heddle_worker_pool_goroutines",
			"A worker's pool goroutines serving tasks.", []string{lWorkerType}, nil),
		pending: prometheus.NewDesc("heddle_worker_pending_tasks",
			"Tasks a worker's subscriptions hold, delivered and not yet handed to a handler.", []string{lWorkerType}, nil),
		observerPanics: prometheus.NewDesc("heddle_worker_observer_panics_total",
			"Panics of a worker's observers, each recovered.", []string{lWorkerType}, nil),
		registryWorkers: prometheus.NewDesc("heddle_registry_workers",
			"Worker instances a registry knows, by state: active, inactive or stopped.", []string{lWorkerType, lState}, nil),
	}
}

// Describe sends the gauges' descriptions.
func (w *watcher) Describe(ch chan<- *prometheus.Desc) {
	ch <- w.inFlight
	ch <- w.hung
	ch <- w.live
	ch <- w.pending
	ch <- w.observerPanics
	ch <- w.registryWorkers
}

// Collect reads every watched worker's Stats and every registry's counts,
// summing those of one worker type (two workers of a type in one process
// are one series).
func (w *watcher) Collect(ch chan<- prometheus.Metric) {
	w.mu.Lock()
	workers := append([]*worker.Worker(nil), w.workers...)
	registries := append([]func() []WorkerCount(nil), w.registries...)
	w.mu.Unlock()

	type workerSums struct{ inFlight, hung, live, pending, panics uint64 }
	sums := map[string]*workerSums{}
	var order []string
	for _, wk := range workers {
		s := wk.Stats()
		wt := wk.WorkerType()
		t, ok := sums[wt]
		if !ok {
			t = new(workerSums)
			sums[wt] = t
			order = append(order, wt)
		}
		t.inFlight += sub(s.Received, s.Completed+s.Failed+s.PublishErrors)
		t.hung += uint64(s.PoolHung)
		t.live += uint64(s.PoolLive)
		t.pending += uint64(s.Pending)
		t.panics += s.ObserverPanics
	}
	for _, wt := range order {
		t := sums[wt]
		ch <- prometheus.MustNewConstMetric(w.inFlight, prometheus.GaugeValue, float64(t.inFlight), wt)
		ch <- prometheus.MustNewConstMetric(w.hung, prometheus.GaugeValue, float64(t.hung), wt)
		ch <- prometheus.MustNewConstMetric(w.live, prometheus.GaugeValue, float64(t.live), wt)
		ch <- prometheus.MustNewConstMetric(w.pending, prometheus.GaugeValue, float64(t.pending), wt)
		ch <- prometheus.MustNewConstMetric(w.observerPanics, prometheus.CounterValue, float64(t.panics), wt)
	}

	counts := map[string]*WorkerCount{}
	order = order[:0]
	for _, read := range registries {
		for _, c := range readCounts(read) {
			wt := w.label(lWorkerType, c.WorkerType)
			t, ok := counts[wt]
			if !ok {
				t = &WorkerCount{WorkerType: wt}
				counts[wt] = t
				order = append(order, wt)
			}
			t.Active += max(c.Active, 0)
			t.Inactive += max(c.Inactive, 0)
			t.Stopped += max(c.Stopped, 0)
		}
	}
	for _, wt := range order {
		c := counts[wt]
		ch <- prometheus.MustNewConstMetric(w.registryWorkers, prometheus.GaugeValue, float64(c.Active), wt, "active")
		ch <- prometheus.MustNewConstMetric(w.registryWorkers, prometheus.GaugeValue, float64(c.Inactive), wt, "inactive")
		ch <- prometheus.MustNewConstMetric(w.registryWorkers, prometheus.GaugeValue, float64(c.Stopped), wt, "stopped")
	}
}

// sub returns a-b, or 0 when b is larger: the counters of a Stats are
// read one after another, so a task may be counted finished in a read
// that came after the one that missed its receipt.
func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// WatchWorker adds w's gauges, read from w.Stats() at each scrape:
// heddle_worker_in_flight_tasks, heddle_worker_hung_handlers,
// heddle_worker_pool_goroutines, heddle_worker_pending_tasks and
// heddle_worker_observer_panics_total. The worker's events are counted
// only when it was made with m's Option (or heddle.WithObserver(m)).
// A worker stays watched for m's life; its Stats stay readable after its
// Run returned.
func (m *Metrics) WatchWorker(w *worker.Worker) error {
	if w == nil {
		return fmt.Errorf("%w: metrics: WatchWorker: the worker is nil", heddle.ErrConfig)
	}
	m.watch.mu.Lock()
	defer m.watch.mu.Unlock()
	m.watch.workers = append(m.watch.workers, w)
	return nil
}

// WatchRegistry adds heddle_registry_workers{worker_type,state}, read
// from counts at each scrape: the instances a worker registry knows per
// worker type, by liveness. With a registry.Registry r:
//
//	m.WatchRegistry(func() []metrics.WorkerCount {
//		var out []metrics.WorkerCount
//		for _, s := range r.Types() {
//			out = append(out, metrics.WorkerCount{WorkerType: s.WorkerType,
//				Active: s.Active, Inactive: s.Inactive, Stopped: s.Stopped})
//		}
//		return out
//	})
//
// counts is called on the scraping goroutine and must be safe for
// concurrent use; a panic in it is taken for no counts. The worker types it names come from heartbeats, so the
// label is capped as every label fed by peers (see DefaultLabelLimit).
func (m *Metrics) WatchRegistry(counts func() []WorkerCount) error {
	if counts == nil {
		return fmt.Errorf("%w: metrics: WatchRegistry: the counts function is nil", heddle.ErrConfig)
	}
	m.watch.mu.Lock()
	defer m.watch.mu.Unlock()
	m.watch.registries = append(m.watch.registries, counts)
	return nil
}

// readCounts calls read, taking a panic in it for no counts: a broken
// hook loses its own gauges, not the scrape.
func readCounts(read func() []WorkerCount) (out []WorkerCount) {
	defer func() {
		if recover() != nil {
			out = nil
		}
	}()
	return read()
}
