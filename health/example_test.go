package health_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/health"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/worker"
)

// A worker and its bus behind /healthz and /readyz: ready while the
// worker serves, not once it has stopped.
func Example() {
	b := membus.New()
	defer b.Close()
	w, _ := worker.NewDynamic(b, "echo", func(_ context.Context, in map[string]any) (map[string]any, error) {
		return in, nil
	}, worker.Config{NoHeartbeat: true})

	hc := health.New()
	_ = hc.AddBus("bus", b)
	run, _ := hc.AddActor("worker/echo", w) // run this in w's place

	probe := func() int {
		rec := httptest.NewRecorder()
		hc.Readyz().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code
	}
	group, _ := heddle.Start(context.Background(), run)
	fmt.Println("serving:", probe())
	_ = group.Stop()
	fmt.Println("stopped:", probe())
	// Output:
	// serving: 200
	// stopped: 503
}
