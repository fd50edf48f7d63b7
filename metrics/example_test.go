package metrics_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/metrics"
	"github.com/heddle-go/heddle/worker"
)

// A worker reporting to Metrics on a registry of its own; the counters
// are read once the worker has stopped, when its counts are final.
func Example() {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		panic(err)
	}
	b := membus.New()
	defer b.Close()
	w, _ := worker.NewDynamic(b, "shout", func(_ context.Context, in map[string]any) (map[string]any, error) {
		s, _ := in["text"].(string)
		return map[string]any{"text": strings.ToUpper(s)}, nil
	}, worker.Config{NoHeartbeat: true}, m.Option())
	_ = m.WatchWorker(w)

	group, _ := heddle.Start(ctx, w)
	res, _ := dispatch.Request(ctx, b, heddle.NewTaskMessage("shout", map[string]any{"text": "hi"}), dispatch.Direct())
	_ = group.Stop()
	fmt.Println(res.Output["text"])

	// What /metrics serves, in part.
	rec := httptest.NewRecorder()
	metrics.Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "heddle_worker_tasks_completed_total{") || strings.HasPrefix(line, "heddle_worker_in_flight_tasks{") {
			fmt.Println(line)
		}
	}
	// Output:
	// HI
	// heddle_worker_in_flight_tasks{worker_type="shout"} 0
	// heddle_worker_tasks_completed_total{tier="standard",worker_type="shout"} 1
}
