package metrics_test

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/metrics"
	"github.com/heddle-go/heddle/worker"
)

// sample returns the sum, over the series of the metric family name in
// g whose labels include every pair of labels ("k", "v", ...), of their
// values: a counter's or gauge's value, a histogram's sample count.
func sample(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	if len(labels)%2 != 0 {
		t.Fatalf("odd label list %q", labels)
	}
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gathering: %v", err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				sum += m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				sum += m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				sum += float64(m.GetHistogram().GetSampleCount())
			default:
				t.Fatalf("%s has type %v", name, f.GetType())
			}
		}
	}
	return sum
}

// seriesOf returns the label sets of the series of name, each as
// "k=v,k=v" with the keys sorted.
func seriesOf(t *testing.T, g prometheus.Gatherer, name string) []string {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var kv []string
			for _, l := range m.GetLabel() {
				kv = append(kv, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(kv)
			out = append(out, strings.Join(kv, ","))
		}
	}
	sort.Strings(out)
	return out
}

// events counts every event its actors emit, by name and by the typed
// fields the metrics read, for comparing with them.
type events struct {
	mu      sync.Mutex
	n       map[string]uint64
	changed chan struct{}
}

func newEvents() *events { return &events{n: map[string]uint64{}, changed: make(chan struct{})} }

// key is how events counts e: its name, and the fields given.
func key(name string, fields ...string) string {
	return name + "|" + strings.Join(fields, "|")
}

// Observe counts e under its name alone, and under its name with each
// typed field the metrics read.
func (c *events) Observe(_ context.Context, e event.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := e.N()
	c.n[key(e.Name)] += n
	c.n[key(e.Name, "worker_type="+e.WorkerType)] += n
	c.n[key(e.Name, "reason="+e.Reason)] += n
	c.n[key(e.Name, "status="+e.Status)] += n
	c.n[key(e.Name, "worker_type="+e.WorkerType, "reason="+e.Reason)] += n
	c.n[key(e.Name, "worker_type="+e.WorkerType, "status="+e.Status)] += n
	close(c.changed)
	c.changed = make(chan struct{})
}

// count returns how many events were counted under key.
func (c *events) count(k string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

// wait returns once at least n events were counted under k.
func (c *events) wait(t *testing.T, k string, n uint64) {
	t.Helper()
	deadline := time.NewTimer(testkit.Wait)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		have, changed := c.n[k], c.changed
		c.mu.Unlock()
		if have >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %d events %s; got %d", n, k, have)
		}
	}
}

// same requires the metric, the Stats counter and the event count to be
// want, one and the same.
func same(t *testing.T, what string, metric float64, stats, evs uint64, want uint64) {
	t.Helper()
	if metric != float64(want) || stats != want || evs != want {
		t.Errorf("%s: metric %v, Stats %d, events %d; want %d each", what, metric, stats, evs, want)
	}
}

// agree requires the metric, the Stats counter and the event count to be
// equal, whatever their value.
func agree(t *testing.T, what string, metric float64, stats, evs uint64) {
	t.Helper()
	if metric != float64(stats) || stats != evs {
		t.Errorf("%s: metric %v, Stats %d, events %d; want them equal", what, metric, stats, evs)
	}
}

// watchAWorker makes m watch a worker that never runs, so that the
// worker gauges have a series.
func watchAWorker(t *testing.T, m *metrics.Metrics) {
	t.Helper()
	b := membus.New()
	t.Cleanup(func() { _ = b.Close() })
	w, err := worker.NewDynamic(b, "echo", func(_ context.Context, in map[string]any) (map[string]any, error) { return in, nil }, worker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WatchWorker(w); err != nil {
		t.Fatal(err)
	}
}
