package metrics_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/metrics"
)

// everyEvent is one event of each kind Metrics counts, with the typed
// fields its actor sets.
var everyEvent = []event.Event{
	{Name: event.WorkerReceived, WorkerType: "echo", Tier: "standard"},
	{Name: event.WorkerCompleted, WorkerType: "echo", Tier: "standard", Status: "completed", Duration: time.Millisecond},
	{Name: event.WorkerFailed, WorkerType: "echo", Tier: "standard", Status: "failed", Reason: event.ReasonInputContract, Duration: time.Millisecond},
	{Name: event.WorkerFailed, WorkerType: "echo", Reason: event.ReasonDecode},
	{Name: event.WorkerFailed, WorkerType: "echo", Status: "completed", Reason: event.ReasonPublish},
	{Name: event.WorkerRetry, WorkerType: "echo", Tier: "standard", Reason: event.ReasonHandler, Attempt: 1},
	{Name: event.WorkerAbandoned, WorkerType: "echo", Reason: event.ReasonTimeout},
	{Name: event.WorkerDiscarded, WorkerType: "echo"},
	{Name: event.WorkerGoexit, WorkerType: "echo", Reason: event.ReasonGoexit},
	{Name: event.WorkerPoolShrunk, WorkerType: "echo"},
	{Name: event.WorkerSlowConsumer, WorkerType: "echo", Count: 7},
	{Name: event.RouterRouted, WorkerType: "echo", Tier: "standard", Status: "routed", Duration: time.Millisecond},
	{Name: event.RouterDeadLettered, WorkerType: "echo", Status: "dead_lettered", Reason: event.ReasonRateLimited, Detail: "rate_limited: tier 'standard' has no available capacity"},
	{Name: event.RouterThrottled, WorkerType: "echo", Tier: "standard", Status: "held"},
	{Name: event.RouterPublishFailed, Subject: heddle.SubjectDeadLetter, Reason: event.ReasonPublish},
	{Name: event.RouterReloaded},
	{Name: event.RouterReloadFailed},
	{Name: event.RouterNoWorkerUnknown},
	{Name: event.ResultStreamCollected, Status: "completed"},
	{Name: event.ResultStreamIgnored},
	{Name: event.ResultStreamDuplicate},
	{Name: event.ResultStreamParseError, Reason: event.ReasonDecode},
	{Name: event.ResultStreamTimeout, Reason: event.ReasonTimeout},
	{Name: event.ResultStreamLate},
	{Name: event.ResultStreamUnserved, Reason: event.ReasonNoWorker},
	{Name: event.ResultStreamError},
	{Name: event.DeadLetterReceived, Reason: event.ReasonNoWorker},
	{Name: event.DeadLetterParseError},
	{Name: event.DeadLetterEvicted, Reason: event.ReasonNoWorker},
	{Name: event.DeadLetterReplayed, Reason: event.ReasonNoWorker},
	{Name: event.DeadLetterReplayFailed, Reason: event.ReasonNoWorker},
	{Name: event.OrchestratorGoalReceived, Actor: "orchestrator"},
	{Name: event.OrchestratorGoalCompleted, Actor: "orchestrator"},
	{Name: event.OrchestratorParseError, Actor: "orchestrator"},
	{Name: event.PipelineGoalReceived, Actor: "pipeline"},
	{Name: event.PipelineGoalCompleted, Actor: "pipeline"},
	{Name: event.PipelineParseError, Actor: "pipeline"},
	{Name: event.PipelineStageStarted}, {Name: event.PipelineStageCompleted}, {Name: event.PipelineStageFailed},
	{Name: event.PipelineStageRetry}, {Name: event.PipelineStageSkipped},
	{Name: event.BusClosed, Actor: "natsbus", Reason: "closed"},
	{Name: event.BusDisconnected, Actor: "natsbus"},
	{Name: event.BusReconnected, Actor: "natsbus"},
	{Name: event.BusSlowConsumer, Actor: "natsbus", Count: 3},
	{Name: event.BusNoSubscriber, Actor: "membus"},
	{Name: event.BusHandlerPanic, Actor: "membus"},
	{Name: event.BusHandlerError, Actor: "membus"},
	{Name: event.BusError, Actor: "natsbus"},
	{Name: event.WorkerHeartbeatStale, Actor: "registry", WorkerType: "echo"},
	{Name: event.WorkerReactivated, Actor: "registry", WorkerType: "echo"},
	{Name: event.WorkerStopped, Actor: "registry", WorkerType: "echo"},
}

// everyOp is one operation of each kind the interceptor times.
var everyOp = []event.Op{
	{Kind: event.OpDispatch, WorkerType: "echo"},
	{Kind: event.OpGoal, Actor: "pipeline", Status: "completed"},
}

// populated returns a registry whose every metric has a series: one of
// each event and operation, a label value too long, a watched registry.
func populated(t *testing.T) (*prometheus.Registry, *metrics.Metrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range everyEvent {
		if !m.Wants(e.Name) {
			t.Errorf("Metrics does not want %s, which it counts", e.Name)
		}
		m.Observe(context.Background(), e)
	}
	for _, op := range everyOp {
		if err := m.Intercept(context.Background(), &op, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	m.Observe(context.Background(), event.Event{Name: event.RouterRouted, WorkerType: strings.Repeat("x", metrics.MaxLabelLength+1), Tier: "standard"})
	if err := m.WatchRegistry(func() []metrics.WorkerCount {
		return []metrics.WorkerCount{{WorkerType: "echo", Active: 2, Inactive: 1}}
	}); err != nil {
		t.Fatal(err)
	}
	return reg, m
}

// registered returns the names of the metric families reg has.
func registered(t *testing.T, reg prometheus.Gatherer) map[string]bool {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	return names
}

func TestEveryMetricIsRegisteredDocumentedAndNamedByTheConventions(t *testing.T) {
	reg, m := populated(t)
	watchAWorker(t, m)
	names := registered(t, reg)
	doc := packageDoc(t)
	rec := &recordingRegisterer{}
	if _, err := metrics.New(rec); err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc, 256)
	for _, c := range rec.all {
		c.Describe(ch)
	}
	close(ch)
	descs := len(ch)
	if descs != len(names) {
		t.Errorf("%d metrics described, %d populated: each metric must be populated by the test's events (%v)", descs, len(names), names)
	}
	for name := range names {
		if !strings.HasPrefix(name, "heddle_") {
			t.Errorf("%s does not start with heddle_", name)
		}
		if !strings.Contains(doc, "\t"+name+"{") && !strings.Contains(doc, "\t"+name+" ") {
			t.Errorf("%s is not listed in the package documentation", name)
		}
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// recordingRegisterer keeps what is registered on it.
type recordingRegisterer struct{ all []prometheus.Collector }

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	r.all = append(r.all, c)
	return nil
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	r.all = append(r.all, cs...)
}

func (r *recordingRegisterer) Unregister(prometheus.Collector) bool { return true }

func TestEachEventCountsWhatItStandsFor(t *testing.T) {
	reg, _ := populated(t)
	cases := []struct {
		metric string
		labels []string
		want   float64
	}{
		{"heddle_worker_dropped_tasks_total", []string{"worker_type", "echo"}, 7},
		{"heddle_bus_dropped_messages_total", []string{"actor", "natsbus"}, 3},
		{"heddle_worker_tasks_failed_total", []string{"worker_type", "echo", "reason", event.ReasonInputContract}, 1},
		{"heddle_worker_contract_violations_total", []string{"side", "input"}, 1},
		{"heddle_worker_malformed_messages_total", []string{"reason", event.ReasonDecode}, 1},
		{"heddle_worker_publish_errors_total", nil, 1},
		{"heddle_worker_task_duration_seconds", []string{"status", "completed"}, 1},
		{"heddle_worker_task_duration_seconds", []string{"status", "failed"}, 1},
		{"heddle_router_dead_lettered_total", []string{"reason", event.ReasonRateLimited}, 1},
		{"heddle_router_publish_errors_total", []string{"target", "dead_letter"}, 1},
		{"heddle_router_reloads_total", []string{"result", "ok"}, 1},
		{"heddle_router_reloads_total", []string{"result", "failed"}, 1},
		{"heddle_result_stream_events_total", nil, 8},
		{"heddle_dead_letters_total", []string{"event", "parse_error", "reason", ""}, 1},
		{"heddle_dead_letters_total", []string{"reason", event.ReasonNoWorker}, 4},
		{"heddle_goal_events_total", []string{"actor", "pipeline"}, 3},
		{"heddle_pipeline_stage_events_total", nil, 5},
		{"heddle_bus_events_total", []string{"event", "closed"}, 1},
		{"heddle_registry_transitions_total", []string{"event", "heartbeat_stale"}, 1},
		{"heddle_registry_workers", []string{"worker_type", "echo", "state", "active"}, 2},
		{"heddle_registry_workers", []string{"worker_type", "echo", "state", "inactive"}, 1},
		{"heddle_dispatch_wait_seconds", []string{"status", "completed"}, 1},
		{"heddle_router_route_duration_seconds", []string{"status", "routed"}, 1},
	}
	for _, c := range cases {
		if got := sample(t, reg, c.metric, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.metric, c.labels, got, c.want)
		}
	}
}

func TestADeadLetterWithoutATypedReasonIsCountedByTheKindOfItsText(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []event.Event{
		{Name: event.DeadLetterReceived, Detail: "unknown_tier: model_tier: 'huge' is not one of local, standard, frontier"},
		{Name: event.DeadLetterReceived, Attrs: []slog.Attr{slog.String("reason", "no_worker: no worker serves 'x' at tier 'local'")}},
		{Name: event.DeadLetterReceived, Attrs: []slog.Attr{slog.String("reason", "something a newer router says")}},
	} {
		m.Observe(context.Background(), e)
	}
	for reason, want := range map[string]float64{event.ReasonUnknownTier: 1, event.ReasonNoWorker: 1, event.ReasonOther: 1} {
		if got := sample(t, reg, "heddle_dead_letters_total", "event", "received", "reason", reason); got != want {
			t.Errorf("received %s: %v, want %v", reason, got, want)
		}
	}
}

func TestLabelValuesFromPeersAreCappedAndTheFoldIsCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.WithLabelLimit(3))
	if err != nil {
		t.Fatal(err)
	}
	// A peer dead-letters tasks of a new invented worker type each time:
	// ten times the limit, then a name too long and one not UTF-8.
	for i := range 30 {
		m.Observe(context.Background(), event.Event{Name: event.RouterDeadLettered, WorkerType: "invented-" + strings.Repeat("x", i), Reason: event.ReasonNoWorker})
	}
	m.Observe(context.Background(), event.Event{Name: event.RouterDeadLettered, WorkerType: strings.Repeat("y", metrics.MaxLabelLength+1), Reason: event.ReasonNoWorker})
	m.Observe(context.Background(), event.Event{Name: event.RouterDeadLettered, WorkerType: "bad\xff", Reason: event.ReasonNoWorker})
	// A value seen before the limit was reached keeps its series.
	m.Observe(context.Background(), event.Event{Name: event.RouterDeadLettered, WorkerType: "invented-", Reason: event.ReasonNoWorker})

	series := seriesOf(t, reg, "heddle_router_dead_lettered_total")
	if len(series) != 4 {
		t.Fatalf("series %q, want 3 worker types and other", series)
	}
	if got := sample(t, reg, "heddle_router_dead_lettered_total", "worker_type", metrics.OtherLabel); got != 29 {
		t.Errorf("other: %v, want 27 past the limit, the long one and the bad one", got)
	}
	if got := sample(t, reg, "heddle_router_dead_lettered_total", "worker_type", "invented-"); got != 2 {
		t.Errorf("invented-: %v, want 2", got)
	}
	if got := sample(t, reg, "heddle_router_dead_lettered_total"); got != 33 {
		t.Errorf("total %v, want every one of the 33 dead letters counted", got)
	}
	if got := sample(t, reg, "heddle_metrics_label_overflow_total", "label", "worker_type"); got != 29 {
		t.Errorf("overflow: %v, want 29", got)
	}
}

func TestMetricsWantOnlyWhatTheyCount(t *testing.T) {
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{event.ActorSubscribed, event.ActorConnected, event.RouterRulesLoaded, event.RouterRulesWarning,
		event.ObserverPanicked, "my_actor.did_something"} {
		if m.Wants(name) {
			t.Errorf("Metrics wants %s, which it does not count", name)
		}
	}
}

func TestNewRefusesWhatCannotWork(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg); err != nil {
		t.Fatal(err)
	}
	_, err := metrics.New(reg)
	if err == nil || !strings.Contains(err.Error(), "already registered") || !strings.Contains(err.Error(), "heddle_") {
		t.Errorf("second Metrics on one registry: %v, want an error naming the metric already registered", err)
	}
	cases := []struct {
		name string
		reg  prometheus.Registerer
		opts []metrics.Option
		want string
	}{
		{"a nil Registerer", nil, nil, "Registerer is nil"},
		{"a label limit of zero", prometheus.NewRegistry(), []metrics.Option{metrics.WithLabelLimit(0)}, "WithLabelLimit"},
		{"no buckets", prometheus.NewRegistry(), []metrics.Option{metrics.WithDurationBuckets()}, "no bucket"},
		{"buckets out of order", prometheus.NewRegistry(), []metrics.Option{metrics.WithDurationBuckets(1, 0.5)}, "bucket 1 (0.5) is not above bucket 0 (1)"},
	}
	for _, c := range cases {
		_, err := metrics.New(c.reg, c.opts...)
		if !errors.Is(err, heddle.ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want heddle.ErrConfig saying %q", c.name, err, c.want)
		}
	}
	m, _ := metrics.New(prometheus.NewRegistry())
	if err := m.WatchWorker(nil); !errors.Is(err, heddle.ErrConfig) {
		t.Errorf("WatchWorker(nil): %v", err)
	}
	if err := m.WatchRegistry(nil); !errors.Is(err, heddle.ErrConfig) {
		t.Errorf("WatchRegistry(nil): %v", err)
	}
}

func TestAFailedNewLeavesTheRegistryAsItWas(t *testing.T) {
	reg := prometheus.NewRegistry()
	clash := prometheus.NewCounter(prometheus.CounterOpts{Name: "heddle_dead_letters_total", Help: "the user's own"})
	reg.MustRegister(clash)
	if _, err := metrics.New(reg); err == nil {
		t.Fatal("New on a registry holding heddle_dead_letters_total: no error")
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	if names := registered(t, reg); len(names) != 1 || !names["heddle_dead_letters_total"] {
		t.Errorf("registry holds %v after the failed New, want only the user's counter", names)
	}
}

func TestTheInterceptorPassesTheOperationThroughAndTimesItsOutcome(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	type key struct{}
	boom := errors.New("boom")
	ctx := context.WithValue(context.Background(), key{}, "mine")
	for _, kind := range []event.OpKind{event.OpHandle, event.OpRoute, event.OpDispatch, event.OpGoal} {
		ran := 0
		err = m.Intercept(ctx, &event.Op{Kind: kind, WorkerType: "echo", Actor: "pipeline"}, func(c context.Context) error {
			ran++
			if c.Value(key{}) != "mine" {
				t.Errorf("%s: the operation did not get the caller's context", kind)
			}
			return boom
		})
		if err != boom || ran != 1 {
			t.Fatalf("%s: Intercept returned %v after %d runs, want the operation's error after one", kind, err, ran)
		}
	}
	if got := sample(t, reg, "heddle_dispatch_wait_seconds", "worker_type", "echo", "status", "failed"); got != 1 {
		t.Errorf("failed dispatches timed: %v, want 1", got)
	}
	if got := sample(t, reg, "heddle_goal_duration_seconds", "actor", "pipeline", "status", "failed"); got != 1 {
		t.Errorf("failed goals timed: %v, want 1", got)
	}
	if got := sample(t, reg, "heddle_router_route_duration_seconds"); got != 0 {
		t.Errorf("routes timed by the interceptor: %v, want 0 (their events carry their durations)", got)
	}
}

func TestTheInterceptorWrapsOnlyDispatchesAndGoals(t *testing.T) {
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	want := map[event.OpKind]bool{event.OpHandle: false, event.OpRoute: false, event.OpDispatch: true, event.OpGoal: true}
	for kind, w := range want {
		if got := event.Intercepts(m, kind); got != w {
			t.Errorf("Intercepts(%s) = %v, want %v", kind, got, w)
		}
	}
}

func TestARoutesDurationIsTimedFromItsEvent(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m.Observe(ctx, event.Event{Name: event.RouterRouted, WorkerType: "echo", Tier: "standard", Duration: 2 * time.Millisecond})
	m.Observe(ctx, event.Event{Name: event.RouterRouted, WorkerType: "echo", Tier: "standard"}) // untimed
	m.Observe(ctx, event.Event{Name: event.RouterDeadLettered, WorkerType: "echo", Reason: event.ReasonNoWorker, Duration: time.Millisecond})
	if got := sample(t, reg, "heddle_router_route_duration_seconds", "status", "routed"); got != 1 {
		t.Errorf("routed routes timed: %v, want 1 (the one with a duration)", got)
	}
	if got := sample(t, reg, "heddle_router_route_duration_seconds", "status", "dead_lettered"); got != 1 {
		t.Errorf("dead-lettered routes timed: %v, want 1", got)
	}
	if got := sample(t, reg, "heddle_router_routed_total"); got != 2 {
		t.Errorf("routed: %v, want 2", got)
	}
}

func TestARegistryHookThatPanicsLosesItsGaugesNotTheScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	_ = m.WatchRegistry(func() []metrics.WorkerCount { panic("broken hook") })
	_ = m.WatchRegistry(func() []metrics.WorkerCount { return []metrics.WorkerCount{{WorkerType: "echo", Stopped: 1}} })
	if got := sample(t, reg, "heddle_registry_workers", "state", "stopped"); got != 1 {
		t.Errorf("stopped workers: %v, want the working hook's 1", got)
	}
}

func TestTheHandlerServesTheExpositionFormat(t *testing.T) {
	reg, _ := populated(t)
	srv := httptest.NewServer(metrics.Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `heddle_router_routed_total{tier="standard",worker_type="echo"} 1`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestAHandlerWithoutAGathererAnswers500(t *testing.T) {
	rec := httptest.NewRecorder()
	metrics.Handler(nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "no Gatherer") {
		t.Fatalf("%d %q, want 500 saying there is no Gatherer", rec.Code, rec.Body.String())
	}
}
