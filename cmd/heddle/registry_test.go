package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/internal/version"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/registry"
)

// registryReady is the registry's log line once it answers requests.
const registryReady = "subject=" + heddle.SubjectWorkerRegistry

// heartbeat is a valid heartbeat of one instance of workerType.
func heartbeat(workerType, instance string) heddle.Heartbeat {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return heddle.Heartbeat{
		InstanceID: instance,
		WorkerType: workerType,
		Tiers:      []heddle.ModelTier{heddle.TierLocal},
		QueueGroup: heddle.WorkerQueueGroup(workerType),
		Language:   "go",
		SDKVersion: version.SDK,
		StartedAt:  now,
		SentAt:     now,
		Interval:   time.Minute,
		Capacity:   4,
	}
}

// publishHeartbeats publishes hbs on b, in order, and flushes.
func publishHeartbeats(t *testing.T, b bus.Bus, hbs ...heddle.Heartbeat) {
	t.Helper()
	ctx := context.Background()
	for _, hb := range hbs {
		data, err := hb.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(ctx, &bus.Msg{Subject: hb.Subject(), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestWorkersWithoutARegistryExits1AndSaysToRunOne(t *testing.T) {
	url := natsURL(t)
	code, stdout, stderr := execute(t, env{}, "workers", "--nats-url", url)
	if code != exitFailed {
		t.Errorf("exit code %d, want %d", code, exitFailed)
	}
	if !strings.Contains(stderr, "no worker registry runs") || !strings.Contains(stderr, "heddle registry") {
		t.Errorf("stderr does not say to run heddle registry:\n%s", stderr)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
	code, _, stderr = execute(t, env{}, "workers", "--nats-url", deadURL(t))
	if code != exitConnect || !strings.Contains(stderr, "Cannot connect to NATS at") {
		t.Errorf("no NATS: exit code %d; stderr:\n%s", code, stderr)
	}
}

// TestWorkersPrintsEveryPageOfTheTable has more workers than one answer
// holds (registry.DefaultQueryLimit), so that workers pages with Offset.
func TestWorkersPrintsEveryPageOfTheTable(t *testing.T) {
	url := natsURL(t)
	reg := serveUntil(t, registryReady, env{}, "registry", "--nats-url", url, "--metrics-addr", "127.0.0.1:0")
	b, err := natsbus.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	busy := heartbeat("alpha", "alpha-1")
	busy.InFlight, busy.Completed, busy.Failed = 3, 17, 2
	hbs := []heddle.Heartbeat{busy, heartbeat("gamma", "gamma-1")}
	bulk := registry.DefaultQueryLimit + 20
	for i := range bulk {
		hbs = append(hbs, heartbeat("bulk", fmt.Sprintf("bulk-%04d", i)))
	}
	publishHeartbeats(t, b, hbs...)
	reg.stderr.waitCount(t, "msg=worker.joined", len(hbs))
	gone := heartbeat("gamma", "gamma-1")
	gone.Stopping = true
	publishHeartbeats(t, b, gone)
	reg.stderr.waitFor(t, "msg=worker.stopped")

	// The table, every page.
	code, stdout, stderr := execute(t, env{}, "workers", "--json", "--nats-url", url)
	if code != exitOK {
		t.Fatalf("workers --json: exit code %d; stderr:\n%s", code, stderr)
	}
	var table registry.Table
	if err := json.Unmarshal([]byte(stdout), &table); err != nil {
		t.Fatalf("workers --json printed no registry table (%v):\n%.500s", err, stdout)
	}
	if table.Total != len(hbs) || len(table.Workers) != len(hbs) {
		t.Errorf("total %d, %d workers; want %d of each", table.Total, len(table.Workers), len(hbs))
	}
	seen := map[string]bool{}
	for _, e := range table.Workers {
		if seen[e.InstanceID] {
			t.Errorf("instance %s printed twice", e.InstanceID)
		}
		seen[e.InstanceID] = true
	}
	for typ, want := range map[string]registry.TypeState{"alpha": registry.TypeUp, "bulk": registry.TypeUp, "gamma": registry.TypeDown, "python_only": registry.TypeUnknown} {
		if got := table.TypeState(typ); got != want {
			t.Errorf("%s is %s, want %s", typ, got, want)
		}
	}

	// One type, as a table: the worker's counters from its heartbeat.
	code, stdout, stderr = execute(t, env{}, "workers", "--type", "alpha", "--nats-url", url)
	if code != exitOK {
		t.Fatalf("workers --type alpha: exit code %d; stderr:\n%s", code, stderr)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^WORKER TYPE +INSTANCE +STATUS +LAST HEARTBEAT +IN FLIGHT +COMPLETED +FAILED$`),
		regexp.MustCompile(`(?m)^alpha +alpha-1 +active +\d+s ago +3/4 +17 +2$`),
		regexp.MustCompile(`(?m)^alpha +up +1 active, 0 inactive, 0 stopped$`),
		regexp.MustCompile(`(?m)^1 worker; registry [0-9a-f-]{36} as of `),
	} {
		if !want.MatchString(stdout) {
			t.Errorf("workers --type alpha lacks %s:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "bulk") {
		t.Errorf("--type alpha printed other types:\n%s", stdout)
	}

	// A type whose only worker stopped is down; one never heard of is
	// unknown, not down.
	_, stdout, _ = execute(t, env{}, "workers", "--type", "gamma", "--nats-url", url)
	if !regexp.MustCompile(`(?m)^gamma +gamma-1 +stopped `).MatchString(stdout) ||
		!regexp.MustCompile(`(?m)^gamma +down +0 active, 0 inactive, 1 stopped$`).MatchString(stdout) {
		t.Errorf("workers --type gamma:\n%s", stdout)
	}
	code, stdout, _ = execute(t, env{}, "workers", "--type", "python_only", "--nats-url", url)
	if code != exitOK || !regexp.MustCompile(`(?m)^python_only +unknown +nothing of this type ever heartbeated`).MatchString(stdout) ||
		strings.Contains(stdout, "down") {
		t.Errorf("workers --type python_only: exit code %d:\n%s", code, stdout)
	}

	// The registry's probes name it.
	addr := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(reg.stderr.waitFor(t, "http.listening"))[1]
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"name":"registry"`) {
		t.Errorf("/readyz = %d %s", resp.StatusCode, body)
	}
	if code := reg.stop(t); code != exitOK {
		t.Errorf("registry exit code %d after its context ended", code)
	}
	reg.stderr.waitFor(t, "heddle.stopped")
}

func TestWorkersTimesOutWithExitCode4WhenNoRegistryAnswers(t *testing.T) {
	url := natsURL(t)
	// Something is subscribed to the registry's subject and never answers.
	b, err := natsbus.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Subscribe(context.Background(), heddle.SubjectWorkerRegistry, func(context.Context, *bus.Msg) error { return nil }); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := execute(t, env{}, "workers", "--timeout", "100ms", "--nats-url", url)
	if code != exitTimeout || !strings.Contains(stderr, "no worker registry answered") {
		t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitTimeout, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
}

func TestWorkersReportsARegistrysRefusal(t *testing.T) {
	url := natsURL(t)
	// A registry of another make that refuses every request.
	b, err := natsbus.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Subscribe(context.Background(), heddle.SubjectWorkerRegistry, func(ctx context.Context, m *bus.Msg) error {
		return b.Publish(ctx, &bus.Msg{Subject: m.Reply, Data: []byte(`{"registry_id": "r1", "error": "busy"}`)})
	}); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := execute(t, env{}, "workers", "--nats-url", url)
	if code != exitFailed || !strings.Contains(stderr, "refused") || !strings.Contains(stderr, "busy") {
		t.Errorf("exit code %d; stderr:\n%s", code, stderr)
	}
}

func TestWorkersOfAnEmptyRegistrySaysNothingHeartbeated(t *testing.T) {
	url := natsURL(t)
	serveUntil(t, registryReady, env{}, "registry", "--nats-url", url)
	code, stdout, stderr := execute(t, env{}, "workers", "--nats-url", url)
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "No worker has heartbeated to this registry.") || !strings.Contains(stdout, "0 workers; registry ") ||
		strings.Contains(stdout, "INSTANCE") {
		t.Errorf("stdout:\n%s", stdout)
	}
}

// TestTheRegistryMarksASilentWorkerInactiveAtItsSweep runs the registry
// with a short sweep: a worker that falls silent without draining (as a
// killed process does) is inactive once silent for --stale-multiplier of
// its own interval, and its type is down.
func TestTheRegistryMarksASilentWorkerInactiveAtItsSweep(t *testing.T) {
	url := natsURL(t)
	e := env{"NATS_URL": url, "OLLAMA_URL": "x"}
	reg := serveUntil(t, registryReady, e, "registry", "--sweep-interval", "20ms", "--stale-multiplier", "4")
	proc := serve(t, e, "processor", "--config", echoFile, "--heartbeat-interval", "1s")
	id := regexp.MustCompile(`instance_id=(\S+)`).FindStringSubmatch(proc.stderr.waitFor(t, "worker.heartbeat_started"))[1]

	b, err := natsbus.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	silent := heartbeat("silent", "silent-1")
	silent.Interval = 10 * time.Millisecond
	publishHeartbeats(t, b, silent)
	if l := reg.stderr.waitFor(t, "msg=worker.heartbeat_stale"); !strings.Contains(l, "silent-1") {
		t.Errorf("worker.heartbeat_stale names another instance: %s", l)
	}
	reg.stderr.waitFor(t, "instance_id="+id)

	code, stdout, stderr := execute(t, e, "workers", "--json")
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	var table registry.Table
	if err := json.Unmarshal([]byte(stdout), &table); err != nil {
		t.Fatal(err)
	}
	if table.SweepInterval != 20*time.Millisecond || table.StaleMultiplier != 4 {
		t.Errorf("the registry sweeps every %v, stale after %d intervals; want the flags' 20ms and 4", table.SweepInterval, table.StaleMultiplier)
	}
	want := map[string]struct {
		status     registry.Status
		staleAfter time.Duration
	}{
		"silent-1": {registry.StatusInactive, 40 * time.Millisecond},
		id:         {registry.StatusActive, 4 * time.Second}, // the processor's --heartbeat-interval, 4 times
	}
	for _, e := range table.Workers {
		w, ok := want[e.InstanceID]
		if !ok {
			t.Errorf("unexpected worker %+v", e)
			continue
		}
		delete(want, e.InstanceID)
		if e.Status != w.status || e.StaleAfter != w.staleAfter {
			t.Errorf("%s: %s, stale after %v; want %s, %v", e.InstanceID, e.Status, e.StaleAfter, w.status, w.staleAfter)
		}
	}
	if len(want) > 0 {
		t.Errorf("workers missing from the table: %v", want)
	}
	if table.TypeState("silent") != registry.TypeDown || table.TypeState("echo") != registry.TypeUp {
		t.Errorf("types %+v, want silent down and echo up", table.Types)
	}
	_, stdout, _ = execute(t, e, "workers", "--type", "silent")
	if !regexp.MustCompile(`(?m)^silent +silent-1 +inactive +\d+s ago +0/4 +0 +0$`).MatchString(stdout) {
		t.Errorf("workers --type silent:\n%s", stdout)
	}
}
