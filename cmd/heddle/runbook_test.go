package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/heddle-go/heddle"
)

// These tests walk the Verify sections of the runbooks in
// /work/shared/reference/runbooks, with the Go commands docs/operating.md
// gives for them, against an embedded NATS server.

// TestRunbookVerifyNATSConnectivity follows "Verify NATS connectivity".
func TestRunbookVerifyNATSConnectivity(t *testing.T) {
	url := natsURL(t)
	e := env{"NATS_URL": url, "OLLAMA_URL": "http://localhost:11434"}

	// Test manually: a known-bad URL exercises the check.
	code, _, stderr := execute(t, e, "processor", "--config", echoFile, "--nats-url", "nats://127.0.0.1:1")
	if code != exitConnect || !strings.Contains(stderr, "Cannot connect to NATS at nats://127.0.0.1:1. Is NATS running? Try: nats-server -p 1, or docker run -p 1:4222 nats:latest") {
		t.Errorf("the bad URL: exit code %d; stderr:\n%s", code, stderr)
	}

	// Verify: the worker's start shows the three lines, in order.
	w := serve(t, e, "processor", "--config", echoFile)
	out := w.stderr.String()
	i := strings.Index(out, "Connected to NATS at "+url)
	j := strings.Index(out, "actor.connected")
	k := strings.Index(out, "actor.subscribed")
	if i < 0 || j < i || k < j {
		t.Errorf("want Connected to NATS, actor.connected, actor.subscribed in that order:\n%s", out)
	}
	if sub := w.stderr.waitFor(t, "actor.subscribed"); !strings.Contains(sub, heddle.WorkerSubject("echo", heddle.TierLocal)) {
		t.Errorf("actor.subscribed does not name the worker's subject: %s", sub)
	}

	// Then publish a smoke task; its result comes back on the caller's
	// result subject and is printed.
	code, stdout, stderr := execute(t, e, "submit", "--worker", "echo", "--payload", `{"text": "echo"}`, "--tier", "local", "--direct")
	if code != exitOK || result(t, stdout).Output["text"] != "echo" {
		t.Errorf("the smoke task: exit code %d; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// Mitigation rows: a config that is not readable, and its schema check.
	code, _, stderr = execute(t, e, "processor", "--config", "testdata/nope.yaml")
	if code != exitFailed || !strings.Contains(stderr, "Pre-flight FAIL: Config file not found: testdata/nope.yaml") {
		t.Errorf("a missing config: exit code %d; stderr:\n%s", code, stderr)
	}
	if code, stdout, _ := execute(t, e, "validate", echoFile); code != exitOK || !strings.Contains(stdout, "✓ [processor] "+echoFile) {
		t.Errorf("heddle validate %s: exit code %d; stdout:\n%s", echoFile, code, stdout)
	}
}

// TestRunbookVerifyMissingWorkerResults follows "Debug missing worker
// results": inspect the dead-letter queue first, re-dispatch the same
// payload, and check for one worker.completed, one collected result and
// no parse errors.
func TestRunbookVerifyMissingWorkerResults(t *testing.T) {
	url := natsURL(t)
	e := env{"NATS_URL": url, "OLLAMA_URL": "x", "ANTHROPIC_API_KEY": "k"}
	serve(t, e, "router", "--rules", rulesFile)
	w := serve(t, e, "processor", "--config", wordCounterFile)
	mon := serve(t, e, "dead-letter", "monitor")

	payload := `{"text": "the same payload"}`
	var taskIDs []string
	for range 2 { // dispatched, then re-dispatched
		inv := start(t, e, "", "submit", "--worker", "word_counter", "--payload", payload, "--log-level", "debug")
		if code := inv.wait(t); code != exitOK {
			t.Fatalf("submit: exit code %d; stderr:\n%s", code, inv.stderr.String())
		}
		r := result(t, inv.stdout.String())
		taskIDs = append(taskIDs, r.TaskID)
		if n := inv.stderr.count("result_stream.collected"); n != 1 {
			t.Errorf("the caller logged %d result_stream.collected lines, want 1:\n%s", n, inv.stderr.String())
		}
		if n := inv.stderr.count("parse_error"); n != 0 {
			t.Errorf("the caller logged a parse error:\n%s", inv.stderr.String())
		}
	}
	for _, id := range taskIDs {
		w.stderr.waitFor(t, "task_id="+id)
		if n := w.stderr.lines("msg=worker.completed", "task_id="+id); n != 1 {
			t.Errorf("worker.completed logged %d times for %s, want once:\n%s", n, id, w.stderr.String())
		}
	}
	if n := mon.stderr.count("dead_letter.received"); n != 0 {
		t.Errorf("the tasks were dead-lettered:\n%s", mon.stderr.String())
	}
}

// TestRunbookVerifyDeadLetters follows "Interpret dead letters": inspect
// the queue, fix the rules, reload, replay, and check that dead letters
// stop accruing and the replay count matches what was re-injected.
func TestRunbookVerifyDeadLetters(t *testing.T) {
	url := natsURL(t)
	dir := t.TempDir()
	rules := filepath.Join(dir, "router_rules.yaml")
	writeFile(t, rules, "tier_overrides:\n  lost_worker: gpu\n")
	worker := filepath.Join(dir, "lost_worker.yaml")
	writeFile(t, worker, strings.Replace(readFile(t, echoFile), `name: "echo"`, `name: "lost_worker"`, 1))
	e := env{"NATS_URL": url, "OLLAMA_URL": "x"}

	rt := serve(t, e, "router", "--rules", rules)
	w := serve(t, e, "processor", "--config", worker)
	dl := serve(t, e, "dead-letter", "serve", "--addr", "127.0.0.1:0")
	server := regexp.MustCompile(`url=(http://\S+)`).FindStringSubmatch(dl.stderr.waitFor(t, "dead_letter.serving"))[1]

	// Three tasks dead-lettered as unknown_tier.
	for range 3 {
		code, _, stderr := execute(t, e, "submit", "--worker", "lost_worker", "--payload", `{"text": "x"}`)
		if code != exitFailed || !strings.Contains(stderr, "unknown_tier") {
			t.Fatalf("submit: exit code %d; stderr:\n%s", code, stderr)
		}
	}
	dl.stderr.waitCount(t, "dead_letter.received", 3)

	// Inspect: list and show.
	code, stdout, stderr := execute(t, e, "dead-letter", "list", "--server", server, "--reason", "unknown_tier")
	if code != exitOK {
		t.Fatalf("list: exit code %d; stderr:\n%s", code, stderr)
	}
	if n := strings.Count(stdout, "unknown_tier: "); n != 3 || !strings.Contains(stdout, "3 of 3 matching; held 3, unknown_tier 3; replayed 0") {
		t.Errorf("list:\n%s", stdout)
	}
	id := strings.Fields(stdout)[0]
	code, stdout, _ = execute(t, e, "dead-letter", "show", id, "--server", server)
	var entry struct {
		DeadLetter struct {
			Reason   string          `json:"reason"`
			Original json.RawMessage `json:"original_task"`
		} `json:"dead_letter"`
	}
	if err := json.Unmarshal([]byte(stdout), &entry); code != exitOK || err != nil || !strings.Contains(string(entry.DeadLetter.Original), `"lost_worker"`) {
		t.Errorf("show: exit code %d, %v:\n%s", code, err, stdout)
	}
	if code, _, stderr := execute(t, e, "dead-letter", "show", "no-such-id", "--server", server); code != exitFailed || !strings.Contains(stderr, "not found") {
		t.Errorf("show of an unknown id: exit code %d; stderr:\n%s", code, stderr)
	}

	// Mitigation: fix the override and reload the router.
	writeFile(t, rules, "tier_overrides:\n  lost_worker: local\n")
	if code, _, stderr := execute(t, e, "router", "reload"); code != exitOK {
		t.Fatalf("reload: exit code %d; stderr:\n%s", code, stderr)
	}
	rt.stderr.waitFor(t, "router.reloaded")

	// Replay every unknown_tier entry.
	code, stdout, stderr = execute(t, e, "dead-letter", "replay", "--all", "--reason", "unknown_tier", "--server", server)
	if code != exitOK || !strings.HasSuffix(stdout, "3 replayed, 0 failed\n") {
		t.Fatalf("replay: exit code %d; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	replayed := regexp.MustCompile(`task_id (\S+),`).FindAllStringSubmatch(stdout, -1)
	if len(replayed) != 3 {
		t.Errorf("replay named %d tasks, want 3:\n%s", len(replayed), stdout)
	}
	w.stderr.waitCount(t, "msg=worker.completed", 3)
	for _, m := range replayed {
		if w.stderr.lines("msg=worker.completed", "task_id="+m[1]) != 1 {
			t.Errorf("replayed task %s did not complete once:\n%s", m[1], w.stderr.String())
		}
	}

	// Verify: nothing more accrued, and the replay count is 3.
	if n := dl.stderr.count("dead_letter.received"); n != 3 {
		t.Errorf("dead_letter.received logged %d times, want the 3 before the fix", n)
	}
	code, stdout, _ = execute(t, e, "dead-letter", "list", "--server", server)
	if code != exitOK || !strings.Contains(stdout, "0 of 0 matching; held 0; replayed 3") {
		t.Errorf("list after the replay: exit code %d:\n%s", code, stdout)
	}
	// A replay of an entry that is gone fails, exit 1.
	code, stdout, _ = execute(t, e, "dead-letter", "replay", id, "--server", server)
	if code != exitFailed || !strings.Contains(stdout, "failed   "+id) {
		t.Errorf("replay of a replayed entry: exit code %d:\n%s", code, stdout)
	}
}

// TestRunbookWorkerHeartbeats follows docs/operating.md's "Worker
// heartbeats": two processor workers and a registry; heddle workers shows
// both active; one stops gracefully and shows as stopped at once, its
// type still up.
func TestRunbookWorkerHeartbeats(t *testing.T) {
	url := natsURL(t)
	e := env{"NATS_URL": url, "OLLAMA_URL": "x"}
	reg := serveUntil(t, registryReady, e, "registry")
	instance := regexp.MustCompile(`instance_id=(\S+)`)
	var procs []*invocation
	var ids []string
	for range 2 {
		p := serve(t, e, "processor", "--config", echoFile)
		procs = append(procs, p)
		ids = append(ids, instance.FindStringSubmatch(p.stderr.waitFor(t, "worker.heartbeat_started"))[1])
	}
	reg.stderr.waitCount(t, "msg=worker.joined", 2)

	code, stdout, stderr := execute(t, e, "workers")
	if code != exitOK {
		t.Fatalf("workers: exit code %d; stderr:\n%s", code, stderr)
	}
	for _, id := range ids {
		if !regexp.MustCompile(`(?m)^echo +` + id + ` +active +\d+s ago +0/4 +0 +0$`).MatchString(stdout) {
			t.Errorf("workers does not show %s active:\n%s", id, stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^echo +up +2 active, 0 inactive, 0 stopped$`).MatchString(stdout) {
		t.Errorf("workers does not show echo up with 2 active:\n%s", stdout)
	}

	// One worker drains: its last heartbeat says so, and the registry
	// marks it stopped without waiting for it to go stale.
	if code := procs[0].stop(t); code != exitOK {
		t.Fatalf("processor exit code %d", code)
	}
	if l := reg.stderr.waitFor(t, "msg=worker.stopped"); !strings.Contains(l, ids[0]) {
		t.Errorf("worker.stopped names another instance: %s", l)
	}
	code, stdout, _ = execute(t, e, "workers", "--type", "echo")
	if code != exitOK ||
		!regexp.MustCompile(`(?m)^echo +`+ids[0]+` +stopped `).MatchString(stdout) ||
		!regexp.MustCompile(`(?m)^echo +`+ids[1]+` +active `).MatchString(stdout) ||
		!regexp.MustCompile(`(?m)^echo +up +1 active, 0 inactive, 1 stopped$`).MatchString(stdout) {
		t.Errorf("after one worker stopped: exit code %d:\n%s", code, stdout)
	}
	// The other stops too: the type is down, not unknown.
	if code := procs[1].stop(t); code != exitOK {
		t.Fatalf("processor exit code %d", code)
	}
	reg.stderr.waitCount(t, "msg=worker.stopped", 2)
	if _, stdout, _ = execute(t, e, "workers", "--type", "echo"); !regexp.MustCompile(`(?m)^echo +down +0 active, 0 inactive, 2 stopped$`).MatchString(stdout) {
		t.Errorf("after both stopped:\n%s", stdout)
	}
}

func TestDeadLetterClientsNeedTheServersToken(t *testing.T) {
	url := natsURL(t)
	token := "0123456789abcdef0123"
	e := env{"NATS_URL": url, "HEDDLE_WORKSHOP_TOKEN": token}
	dl := serve(t, e, "dead-letter", "serve", "--addr", "127.0.0.1:0")
	server := regexp.MustCompile(`url=(http://\S+)`).FindStringSubmatch(dl.stderr.waitFor(t, "dead_letter.serving"))[1]
	if code, stdout, stderr := execute(t, e, "dead-letter", "list", "--server", server); code != exitOK {
		t.Errorf("with the token: exit code %d:\n%s%s", code, stdout, stderr)
	}
	code, _, stderr := execute(t, env{"NATS_URL": url}, "dead-letter", "list", "--server", server)
	if code != exitFailed || !strings.Contains(stderr, "set HEDDLE_WORKSHOP_TOKEN") {
		t.Errorf("without the token: exit code %d; stderr:\n%s", code, stderr)
	}
	// Off loopback without a token, serve refuses to start.
	code, _, stderr = execute(t, env{"NATS_URL": url}, "dead-letter", "serve", "--addr", "0.0.0.0:0")
	if code != exitFailed || !strings.Contains(stderr, "--addr") {
		t.Errorf("serve on every interface without a token: exit code %d; stderr:\n%s", code, stderr)
	}
	// No server at all.
	code, _, stderr = execute(t, e, "dead-letter", "list", "--server", "http://"+deadListener(t))
	if code != exitFailed || !strings.Contains(stderr, "is heddle dead-letter serve running?") {
		t.Errorf("no server: exit code %d; stderr:\n%s", code, stderr)
	}
	if code, _, _ := execute(t, e, "dead-letter", "replay", "--server", server); code != exitUsage {
		t.Errorf("replay without ids or --all: exit code %d, want %d", code, exitUsage)
	}
}

func TestSchedulerPublishesOnItsTimer(t *testing.T) {
	url := natsURL(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "every.yaml")
	writeFile(t, config, `name: quick
schedules:
  - name: count_often
    interval_seconds: 0.05
    dispatch_type: task
    task:
      worker_type: word_counter
      payload: {text: "three small words"}
      model_tier: local
`)
	e := env{"NATS_URL": url, "OLLAMA_URL": "x"}
	w := serve(t, e, "processor", "--config", wordCounterFile)
	serve(t, e, "router", "--rules", rulesFile)
	s := serveUntil(t, "scheduler.running", e, "scheduler", "--config", config)
	s.stderr.waitFor(t, "scheduler.fired")
	w.stderr.waitFor(t, "worker.completed")
	if code := s.stop(t); code != exitOK {
		t.Errorf("scheduler exit code %d", code)
	}
	if code, stdout, _ := execute(t, e, "validate", config); code != exitOK || !strings.Contains(stdout, "[scheduler]") {
		t.Errorf("validate: exit code %d:\n%s", code, stdout)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
