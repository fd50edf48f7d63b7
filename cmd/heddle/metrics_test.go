package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/heddle-go/heddle/contracttest/natstest"
)

// scrape returns the body of GET http://addr/path, failing the test
// unless it is 200.
func scrape(t *testing.T, addr, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d:\n%s", path, resp.StatusCode, body)
	}
	return string(body)
}

// metricsAddr returns the address a verb's --metrics-addr server listens
// on, from its log.
func metricsAddr(t *testing.T, inv *invocation) string {
	t.Helper()
	return regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(inv.stderr.waitFor(t, "http.listening"))[1]
}

// hasSample reports whether a Prometheus text exposition holds the
// sample name{labels} with value, its labels in any order.
func hasSample(body, name string, labels map[string]string, value string) bool {
	for line := range strings.SplitSeq(body, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		all := true
		for k, v := range labels {
			all = all && strings.Contains(rest, k+`="`+v+`"`)
		}
		if all && strings.HasSuffix(rest, " "+value) {
			return true
		}
	}
	return false
}

func TestMetricsAddrServesTheMetricsOfTheVerbsActors(t *testing.T) {
	url := natsURL(t)
	e := env{"NATS_URL": url, "OLLAMA_URL": "x"}
	// The registry first, to hear the worker's first heartbeat.
	reg := serveUntil(t, registryReady, e, "registry", "--metrics-addr", "127.0.0.1:0")
	rt := serve(t, e, "router", "--rules", rulesFile, "--metrics-addr", "127.0.0.1:0")
	wk := serve(t, e, "processor", "--config", wordCounterFile, "--metrics-addr", "127.0.0.1:0")
	reg.stderr.waitFor(t, "msg=worker.joined")

	for range 2 {
		if code, _, stderr := execute(t, e, "submit", "--worker", "word_counter", "--payload", `{"text": "a b c"}`, "--tier", "local"); code != exitOK {
			t.Fatalf("submit: exit code %d; stderr:\n%s", code, stderr)
		}
	}
	wc := map[string]string{"worker_type": "word_counter", "tier": "local"}

	body := scrape(t, metricsAddr(t, rt), "/metrics")
	for _, want := range []struct {
		name   string
		labels map[string]string
		value  string
	}{
		{"heddle_router_routed_total", wc, "2"},
		{"heddle_router_route_duration_seconds_count", map[string]string{"status": "routed"}, "2"},
		{"heddle_up", nil, "1"},
		{"heddle_ready", nil, "1"},
	} {
		if !hasSample(body, want.name, want.labels, want.value) {
			t.Errorf("the router's /metrics lacks %s%v %s", want.name, want.labels, want.value)
		}
	}
	if !strings.Contains(body, "go_goroutines ") || !strings.Contains(body, "process_start_time_seconds ") {
		t.Errorf("the router's /metrics lacks the Go and process collectors")
	}

	body = scrape(t, metricsAddr(t, wk), "/metrics")
	for _, want := range []struct {
		name   string
		labels map[string]string
		value  string
	}{
		{"heddle_worker_tasks_received_total", wc, "2"},
		{"heddle_worker_tasks_completed_total", wc, "2"},
		{"heddle_worker_task_duration_seconds_count", map[string]string{"worker_type": "word_counter", "status": "completed"}, "2"},
		{"heddle_worker_in_flight_tasks", map[string]string{"worker_type": "word_counter"}, "0"},
	} {
		if !hasSample(body, want.name, want.labels, want.value) {
			t.Errorf("the processor's /metrics lacks %s%v %s:\n%s", want.name, want.labels, want.value, body)
		}
	}

	body = scrape(t, metricsAddr(t, reg), "/metrics")
	if !hasSample(body, "heddle_registry_workers", map[string]string{"worker_type": "word_counter", "state": "active"}, "1") {
		t.Errorf("the registry's /metrics lacks heddle_registry_workers{word_counter,active} 1:\n%s", body)
	}
}

// TestMetricsAddrCountsTheBussEvents stops the NATS server under a verb
// and starts it again: its bus reports the disconnection and the
// reconnection to the metrics, and heddle_up follows.
func TestMetricsAddrCountsTheBussEvents(t *testing.T) {
	srv := natstest.StartRestartableServer(t, nil)
	inv := serve(t, env{}, "dead-letter", "monitor", "--nats-url", srv.ClientURL(), "--metrics-addr", "127.0.0.1:0")
	addr := metricsAddr(t, inv)
	if body := scrape(t, addr, "/metrics"); !hasSample(body, "heddle_up", nil, "1") {
		t.Fatalf("before the outage:\n%s", body)
	}
	srv.Stop()
	inv.stderr.waitFor(t, "bus.disconnected")
	body := scrape(t, addr, "/metrics")
	if !hasSample(body, "heddle_bus_events_total", map[string]string{"event": "disconnected"}, "1") {
		t.Errorf("/metrics lacks heddle_bus_events_total{event=disconnected} 1:\n%s", body)
	}
	if !hasSample(body, "heddle_up", nil, "0") {
		t.Errorf("heddle_up is not 0 while NATS is down:\n%s", body)
	}
	srv.Start()
	inv.stderr.waitFor(t, "bus.reconnected")
	body = scrape(t, addr, "/metrics")
	if !hasSample(body, "heddle_bus_events_total", map[string]string{"event": "reconnected"}, "1") || !hasSample(body, "heddle_up", nil, "1") {
		t.Errorf("after the reconnection /metrics lacks heddle_bus_events_total{event=reconnected} 1 or heddle_up 1:\n%s", body)
	}
	if code := inv.stop(t); code != exitOK {
		t.Errorf("exit code %d", code)
	}
}
