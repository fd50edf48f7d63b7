package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/health"
	"github.com/heddle-go/heddle/natsbus"
)

const (
	rulesFile       = "testdata/router_rules.yaml"
	wordCounterFile = "testdata/word_counter.yaml"
	echoFile        = "testdata/echo.yaml"
	pipelineFile    = "testdata/count_pipeline.yaml"
)

// result decodes the TaskResult submit printed.
func result(t *testing.T, stdout string) heddle.TaskResult {
	t.Helper()
	r, err := heddle.DecodeTaskResult([]byte(stdout))
	if err != nil {
		t.Fatalf("submit printed no TaskResult (%v):\n%s", err, stdout)
	}
	return r
}

func TestProcessorRunsThePythonWordCounterConfigUnchanged(t *testing.T) {
	url := natsURL(t)
	e := env{"OLLAMA_URL": "http://localhost:11434"}
	proc := serve(t, e, "processor", "--config", wordCounterFile, "--nats-url", url)
	proc.stderr.waitFor(t, "Pre-flight OK: Connected to NATS at "+url)
	sub := proc.stderr.waitFor(t, "actor.subscribed")
	for _, want := range []string{"heddle.tasks.word_counter.local", "processors-word_counter"} {
		if !strings.Contains(sub, want) {
			t.Errorf("actor.subscribed line lacks %s: %s", want, sub)
		}
	}

	code, stdout, stderr := execute(t, e, "submit", "--worker", "word_counter", "--payload", `{"text": "one two three"}`,
		"--tier", "local", "--direct", "--nats-url", url)
	if code != exitOK {
		t.Fatalf("submit exit code %d; stderr:\n%s", code, stderr)
	}
	r := result(t, stdout)
	if r.Status != heddle.StatusCompleted || r.Output["word_count"] != json.Number("3") && r.Output["word_count"] != float64(3) {
		t.Errorf("result %+v, want completed with word_count 3", r)
	}
	if r.ModelUsed != "wc" {
		t.Errorf("model_used %q, want the program name wc, as the Python backend reports it", r.ModelUsed)
	}

	// A payload without the required text fails at the worker's input
	// contract: the result is failed and submit exits 1.
	code, stdout, stderr = execute(t, e, "submit", "--worker", "word_counter", "--payload", `{"txt": "x"}`,
		"--tier", "local", "--direct", "--nats-url", url)
	if code != exitFailed {
		t.Errorf("a failed task: exit code %d, want %d", code, exitFailed)
	}
	if r := result(t, stdout); r.Status != heddle.StatusFailed || !strings.Contains(r.Error, "text") {
		t.Errorf("result %+v, want failed naming the missing text", r)
	}
	if !strings.Contains(stderr, "ended with status failed") {
		t.Errorf("stderr does not say the task failed:\n%s", stderr)
	}

	if code := proc.stop(t); code != exitOK {
		t.Errorf("processor exit code after its context ended: %d; stderr:\n%s", code, proc.stderr.String())
	}
}

func TestSubmitTimesOutWithExitCode4(t *testing.T) {
	url := natsURL(t)
	// A worker that takes the task and never answers.
	b, err := natsbus.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Subscribe(context.Background(), heddle.WorkerSubject("silent", heddle.TierStandard),
		func(context.Context, *bus.Msg) error { return nil }); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := execute(t, env{}, "submit", "--worker", "silent", "--payload", `{}`, "--direct",
		"--timeout", "100ms", "--nats-url", url)
	if code != exitTimeout {
		t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitTimeout, stderr)
	}
	if stdout != "" {
		t.Errorf("a timeout printed a result: %s", stdout)
	}
}

func TestSubmitReportsATaskNothingServesAtOnce(t *testing.T) {
	url := natsURL(t)
	code, _, stderr := execute(t, env{}, "submit", "--worker", "nobody", "--payload", `{}`, "--direct", "--nats-url", url)
	if code != exitFailed || !strings.Contains(stderr, "no worker") {
		t.Errorf("--direct to nobody: exit code %d; stderr:\n%s", code, stderr)
	}
	code, _, stderr = execute(t, env{}, "submit", "--worker", "nobody", "--payload", `{}`, "--nats-url", url)
	if code != exitFailed || !strings.Contains(stderr, "no router") {
		t.Errorf("through no router: exit code %d; stderr:\n%s", code, stderr)
	}
	code, _, stderr = execute(t, env{}, "submit", "a goal", "--nats-url", url)
	if code != exitFailed || !strings.Contains(stderr, "no pipeline or orchestrator") {
		t.Errorf("a goal nobody serves: exit code %d; stderr:\n%s", code, stderr)
	}
	code, _, stderr = execute(t, env{}, "submit", "a goal", "--nats-url", deadURL(t))
	if code != exitConnect || !strings.Contains(stderr, "Cannot connect to NATS at") {
		t.Errorf("no NATS: exit code %d; stderr:\n%s", code, stderr)
	}
}

func TestATaskFlowsThroughTheRouterToAProcessor(t *testing.T) {
	url := natsURL(t)
	e := env{"OLLAMA_URL": "x", "ANTHROPIC_API_KEY": "k"}
	rt := serve(t, e, "router", "--rules", rulesFile, "--nats-url", url, "--log-level", "debug")
	serve(t, e, "processor", "--config", echoFile, "--nats-url", url)

	code, stdout, stderr := execute(t, e, "submit", "--worker", "echo", "--payload", `{"text": "héllo", "n": 12345}`,
		"--tier", "local", "--nats-url", url)
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	r := result(t, stdout)
	if r.Output["text"] != "héllo" {
		t.Errorf("output %v, want the echoed payload", r.Output)
	}
	if !strings.Contains(stdout, `"n": 12345`) {
		t.Errorf("the number did not come back as it was sent:\n%s", stdout)
	}
	if r.ModelUsed != "cat-v1" {
		t.Errorf("model_used %q, want backend_config.model_used", r.ModelUsed)
	}
	rt.stderr.waitFor(t, "router.routed")
}

func TestTheRouterDeadLettersAndTheMonitorLogsIt(t *testing.T) {
	url := natsURL(t)
	serve(t, env{}, "router", "--rules", rulesFile, "--nats-url", url)
	mon := serve(t, env{}, "dead-letter", "monitor", "--nats-url", url, "--log-format", "json")

	// tier_overrides sends lost_worker to the tier "gpu", which does not
	// exist: the router dead-letters the task and answers at once.
	code, _, stderr := execute(t, env{}, "submit", "--worker", "lost_worker", "--payload", `{}`, "--nats-url", url)
	if code != exitFailed || !strings.Contains(stderr, "unknown_tier") {
		t.Errorf("exit code %d; stderr:\n%s", code, stderr)
	}
	line := mon.stderr.waitFor(t, `"msg":"dead_letter.received"`)
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatalf("the monitor's log line is not JSON (%v): %s", err, line)
	}
	if !strings.HasPrefix(rec["reason"].(string), "unknown_tier") || rec["worker_type"] != "lost_worker" {
		t.Errorf("dead_letter.received = %v, want reason unknown_tier and worker_type lost_worker", rec)
	}
}

func TestRouterReloadReachesTheRouter(t *testing.T) {
	url := natsURL(t)
	code, _, stderr := execute(t, env{}, "router", "reload", "--nats-url", url)
	if code != exitFailed || !strings.Contains(stderr, "no router is running") {
		t.Errorf("reload without a router: exit code %d; stderr:\n%s", code, stderr)
	}
	rt := serve(t, env{}, "router", "--rules", rulesFile, "--nats-url", url)
	code, stdout, stderr := execute(t, env{}, "router", "reload", "--nats-url", url)
	if code != exitOK {
		t.Fatalf("reload: exit code %d; stderr:\n%s", code, stderr)
	}
	if stdout != "Published {} on heddle.control.reload\n" {
		t.Errorf("stdout = %q", stdout)
	}
	rt.stderr.waitFor(t, "router.reloaded")
}

func TestAGoalRunsThroughAPipeline(t *testing.T) {
	url := natsURL(t)
	e := env{"OLLAMA_URL": "x"}
	serve(t, e, "processor", "--config", wordCounterFile, "--nats-url", url)
	serve(t, e, "router", "--rules", rulesFile, "--nats-url", url)
	serve(t, e, "pipeline", "--config", pipelineFile, "--nats-url", url)

	code, stdout, stderr := execute(t, e, "submit", "count these four words", "--context", "text=count these four words",
		"--nats-url", url)
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	r := result(t, stdout)
	if r.WorkerType != "count" || !strings.Contains(stdout, `"word_count": 4`) {
		t.Errorf("the goal's result is not the pipeline's count:\n%s", stdout)
	}
	// Addressed to the pipeline by name, with a JSON context.
	code, stdout, stderr = execute(t, e, "submit", "again", "--context", `{"text": "two words"}`, "--to", "count", "--nats-url", url)
	if code != exitOK || !strings.Contains(stdout, `"word_count": 2`) {
		t.Fatalf("--to count: exit code %d; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// --no-wait publishes and prints the goal id, as the Python submit.
	code, stdout, _ = execute(t, e, "submit", "fire and forget", "--context", "text=a", "--no-wait", "--nats-url", url)
	if code != exitOK || !regexp.MustCompile(`^Submitted goal: [0-9a-f-]{36}\n$`).MatchString(stdout) {
		t.Errorf("--no-wait: exit code %d; stdout %q", code, stdout)
	}
}

func TestProbesAndMetricsServeOnMetricsAddr(t *testing.T) {
	url := natsURL(t)
	inv := serve(t, env{}, "dead-letter", "monitor", "--nats-url", url, "--metrics-addr", "127.0.0.1:0")
	line := inv.stderr.waitFor(t, "http.listening")
	addr := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(line)
	if addr == nil {
		t.Fatalf("no address in %q", line)
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr[1] + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/healthz"); code != http.StatusOK || !strings.Contains(body, `"status":"ok"`) || !strings.Contains(body, `"name":"nats"`) {
		t.Errorf("/healthz = %d %q", code, body)
	}
	// Ready once the consumer has subscribed, which it logs.
	inv.stderr.waitFor(t, "actor.subscribed")
	if code, body := get("/readyz"); code != http.StatusOK || !strings.Contains(body, `"name":"dead-letter"`) {
		t.Errorf("/readyz = %d %q", code, body)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "heddle_up 1\n") || !strings.Contains(body, "heddle_ready 1\n") {
		t.Errorf("/metrics = %d %q", code, body)
	}
	if code := inv.stop(t); code != exitOK {
		t.Errorf("exit code %d", code)
	}
}

func TestALongRunningVerbDrainsOnSIGTERMAndExits0(t *testing.T) {
	url := natsURL(t)
	inv := serve(t, env{"OLLAMA_URL": "x"}, "processor", "--config", wordCounterFile, "--nats-url", url, "--drain-timeout", "5s")
	// heddle.Serve has registered for the signal before the worker
	// subscribed, so the signal reaches it and not the test process.
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := inv.wait(t); code != exitOK {
		t.Errorf("exit code %d after SIGTERM; stderr:\n%s", code, inv.stderr.String())
	}
	inv.stderr.waitFor(t, "heddle.stopped")
}

func TestAProcessorConfigWithProblemsDoesNotStart(t *testing.T) {
	url := natsURL(t)
	code, _, stderr := execute(t, env{}, "processor", "--config", "testdata/invalid/processor.yaml", "--nats-url", url)
	if code != exitFailed {
		t.Errorf("exit code %d, want %d", code, exitFailed)
	}
	for _, want := range []string{"line 6: backend_config.io_mode", "line 7: input_schema_ref", "testdata/invalid/processor.yaml"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "actor.connected") {
		t.Errorf("the processor connected despite its config:\n%s", stderr)
	}
}

func TestProbesAndMetricsReportABusThatClosed(t *testing.T) {
	b, err := natsbus.Connect(natsURL(t))
	if err != nil {
		t.Fatal(err)
	}
	hc := health.New()
	if err := hc.AddBus("nats", b); err != nil {
		t.Fatal(err)
	}
	mux, err := probeMux(hc, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "heddle_up 1\n") {
		t.Errorf("/metrics on an open bus = %d %q", code, body)
	}
	b.Close()
	if code, _ := get("/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz on a closed bus = %d, want 503", code)
	}
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz on a closed bus = %d, want 503", code)
	}
	if _, body := get("/metrics"); !strings.Contains(body, "heddle_up 0\n") || !strings.Contains(body, "heddle_ready 0\n") {
		t.Errorf("/metrics on a closed bus = %q", body)
	}
}
