package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/health"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/worker"
)

// probe serves one request to h and returns its status code and report.
func probe(t *testing.T, h http.Handler) (int, health.Report) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(testkit.Context(t), http.MethodGet, "/", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	var r health.Report
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("body %q is not a report: %v", rec.Body.String(), err)
	}
	return rec.Code, r
}

// check returns the check named name in r.
func check(t *testing.T, r health.Report, name string) health.Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("report %+v has no check %q", r, name)
	return health.Check{}
}

func echoWorker(t *testing.T, b bus.Bus) *worker.Worker {
	t.Helper()
	w, err := worker.NewDynamic(b, "echo", func(_ context.Context, in map[string]any) (map[string]any, error) {
		return in, nil
	}, worker.Config{NoHeartbeat: true})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestAnEmptyCheckerIsHealthyAndReady(t *testing.T) {
	hc := health.New()
	for name, h := range map[string]http.Handler{"healthz": hc.Healthz(), "readyz": hc.Readyz()} {
		code, r := probe(t, h)
		if code != http.StatusOK || r.Status != health.StatusOK || r.Checks == nil || len(r.Checks) != 0 {
			t.Errorf("%s: %d %+v, want 200 ok with no checks", name, code, r)
		}
	}
}

func TestReadinessFollowsTheActorFromStartToStop(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		b := connect()
		hc := health.New()
		if err := hc.AddBus("bus", b); err != nil {
			t.Fatal(err)
		}
		run, err := hc.AddActor("worker/echo", echoWorker(t, b))
		if err != nil {
			t.Fatal(err)
		}

		code, r := probe(t, hc.Readyz())
		if c := check(t, r, "worker/echo"); code != http.StatusServiceUnavailable || r.Status != health.StatusUnavailable ||
			c.Kind != health.KindActor || c.Status != health.StatusUnavailable || !strings.Contains(c.Error, "not live") {
			t.Fatalf("before Run: readyz %d %+v, want 503 naming the worker as not live", code, r)
		}
		if code, r := probe(t, hc.Healthz()); code != http.StatusOK || len(r.Checks) != 1 || check(t, r, "bus").Status != health.StatusOK {
			t.Fatalf("before Run: healthz %d %+v, want 200 with the bus only", code, r)
		}

		stop := testkit.StartActor(t, run.Run, run.Ready())
		code, r = probe(t, hc.Readyz())
		if code != http.StatusOK || r.Status != health.StatusOK || len(r.Checks) != 2 {
			t.Fatalf("running: readyz %d %+v, want 200 with the bus and the worker", code, r)
		}
		if c := check(t, r, "bus"); c.Kind != health.KindBus || c.Error != "" {
			t.Fatalf("running: bus check %+v", c)
		}

		stop()
		code, r = probe(t, hc.Readyz())
		if c := check(t, r, "worker/echo"); code != http.StatusServiceUnavailable || !strings.Contains(c.Error, "stopped") {
			t.Fatalf("after Run returned: readyz %d %+v, want 503 naming the worker stopped", code, r)
		}
		if code, _ := probe(t, hc.Healthz()); code != http.StatusOK {
			t.Fatalf("after Run returned: healthz %d, want 200: the bus is still connected", code)
		}
	})
}

func TestAClosedBusFailsBothProbesAndTheActorsOnIt(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		b, other := connect(), connect()
		hc := health.New()
		for name, b := range map[string]bus.Bus{"closing": b, "other": other} {
			if err := hc.AddBus(name, b); err != nil {
				t.Fatal(err)
			}
		}
		run, err := hc.AddActor("worker/echo", echoWorker(t, b))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- run.Run(context.Background()) }()
		<-run.Ready()
		if code, _ := probe(t, hc.Readyz()); code != http.StatusOK {
			t.Fatalf("readyz %d before the bus closed, want 200", code)
		}

		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, bus.ErrClosed) {
			t.Fatalf("Run returned %v, want an error wrapping bus.ErrClosed", err)
		}
		for name, h := range map[string]http.Handler{"healthz": hc.Healthz(), "readyz": hc.Readyz()} {
			code, r := probe(t, h)
			closing, other := check(t, r, "closing"), check(t, r, "other")
			if code != http.StatusServiceUnavailable || r.Status != health.StatusUnavailable ||
				closing.Status != health.StatusUnavailable || !strings.HasPrefix(closing.Error, "closed: ") ||
				other.Status != health.StatusOK {
				t.Errorf("%s: %d %+v, want 503 naming the closed bus only", name, code, r)
			}
		}
		_, r := probe(t, hc.Readyz())
		if c := check(t, r, "worker/echo"); !strings.Contains(c.Error, "stopped") || !strings.Contains(c.Error, "closed") {
			t.Errorf("worker check %+v, want it stopped with the bus's error", c)
		}
	})
}

func TestAnUnreachableServerFailsTheProbesUntilTheBusReconnects(t *testing.T) {
	cluster := natstest.StartCluster(t, 1)
	logs := testlog.New()
	b, err := natsbus.Connect(cluster.ClientURL(0), natsbus.WithLogger(logs.Logger()), natsbus.WithReconnectWait(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	hc := health.New(health.WithTimeout(100 * time.Millisecond))
	if err := hc.AddBus("nats", b); err != nil {
		t.Fatal(err)
	}
	if code, _ := probe(t, hc.Healthz()); code != http.StatusOK {
		t.Fatalf("healthz %d while connected, want 200", code)
	}

	cluster.Kill(0)
	logs.Wait(t, "bus.disconnected", 1)
	code, r := probe(t, hc.Healthz())
	if c := check(t, r, "nats"); code != http.StatusServiceUnavailable || !strings.Contains(c.Error, "not connected") {
		t.Fatalf("healthz %d %+v during the outage, want 503 naming the bus not connected", code, r)
	}

	cluster.Restart(0)
	logs.Wait(t, "bus.reconnected", 1)
	if code, r := probe(t, hc.Healthz()); code != http.StatusOK {
		t.Fatalf("healthz %d %+v after the reconnect, want 200", code, r)
	}
}

func TestBadConfigurationIsRefusedNamingWhatIsWrong(t *testing.T) {
	b := natstest.Transports()[0].Connector(t)()
	w := echoWorker(t, b)
	hc := health.New()
	if err := hc.AddBus("bus", b); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"a nil bus", hc.AddBus("nothing", nil), `bus "nothing" is nil`},
		{"a bus without a name", hc.AddBus("", b), "name is empty"},
		{"a name taken", hc.AddBus("bus", b), `"bus" was added before`},
		{"a nil actor", func() error { _, err := hc.AddActor("a", nil); return err }(), `actor "a" is nil`},
		{"an actor named as a bus", func() error { _, err := hc.AddActor("bus", w); return err }(), `"bus" was added before`},
		{"a timeout of zero", health.New(health.WithTimeout(0)).AddBus("bus", b), "WithTimeout must be positive"},
	}
	for _, c := range cases {
		if !errors.Is(c.err, heddle.ErrConfig) || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: %v, want heddle.ErrConfig saying %q", c.name, c.err, c.want)
		}
	}
}
