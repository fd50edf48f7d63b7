package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExitCodesOfTheCommandLine(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{"help exits 0", []string{"--help"}, exitOK, "Exit codes:"},
		{"no verb prints the help and exits 0", nil, exitOK, "Available Commands:"},
		{"an unknown verb is a usage error", []string{"bogus"}, exitUsage, `unknown command "bogus"`},
		{"an unknown flag is a usage error", []string{"preflight", "--bogus"}, exitUsage, "unknown flag: --bogus"},
		{"a bad log format is a usage error", []string{"--log-format", "xml", "validate", "x.yaml"}, exitUsage, `--log-format "xml"`},
		{"a bad log level is a usage error", []string{"--log-level", "loud", "validate", "x.yaml"}, exitUsage, `--log-level "loud"`},
		{"a bad tier is a usage error", []string{"preflight", "--tier", "gpu"}, exitUsage, `--tier "gpu"`},
		{"validate without files is a usage error", []string{"validate"}, exitUsage, "requires at least 1 arg"},
		{"processor without --config is a usage error", []string{"processor"}, exitUsage, "--config is required"},
		{"pipeline without --config is a usage error", []string{"pipeline"}, exitUsage, "--config is required"},
		{"submit without a goal or worker is a usage error", []string{"submit"}, exitUsage, "give a goal"},
		{"submit with a payload that is not an object is a usage error", []string{"submit", "--worker", "w", "--payload", "[1]"}, exitUsage, "--payload: not a JSON object"},
		{"submit with a bad context is a usage error", []string{"submit", "goal", "--context", "novalue"}, exitUsage, "--context must be key=value"},
		{"a verb's help explains its exit codes", []string{"submit", "--help"}, exitOK, "4 no result within --timeout"},
		{"registry with a stale multiplier of 0 is a usage error", []string{"registry", "--stale-multiplier", "0"}, exitUsage, "--stale-multiplier must be positive"},
		{"registry with a negative sweep interval is a usage error", []string{"registry", "--sweep-interval", "-1s"}, exitUsage, "--sweep-interval must be positive"},
		{"workers with a timeout of 0 is a usage error", []string{"workers", "--timeout", "0s"}, exitUsage, "--timeout must be positive"},
		{"workers of a type that cannot be a subject is a usage error", []string{"workers", "--type", "a b"}, exitUsage, `--type "a b"`},
		{"workers takes no arguments", []string{"workers", "alpha"}, exitUsage, "unknown command"},
		{"mcp without --config is a usage error", []string{"mcp"}, exitUsage, "--config is required"},
		{"mcp with an --http that is not host:port is a usage error", []string{"mcp", "--config", "x.yaml", "--http", "8000"}, exitUsage, `--http "8000"`},
		{"processor with a negative heartbeat interval is a usage error", []string{"processor", "--config", "x.yaml", "--heartbeat-interval", "-1s"}, exitUsage, "--heartbeat-interval"},
		{"the workers help explains its exit codes", []string{"workers", "--help"}, exitOK, "4 no registry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := execute(t, env{}, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			if !strings.Contains(stdout+stderr, tt.out) {
				t.Errorf("output lacks %q:\nstdout:\n%s\nstderr:\n%s", tt.out, stdout, stderr)
			}
		})
	}
}

func TestPreflightPassesAgainstARunningServer(t *testing.T) {
	url := natsURL(t)
	code, _, stderr := execute(t, env{}, "preflight", "--nats-url", url)
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	if want := "Pre-flight OK: Connected to NATS at " + url + "\n"; stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
}

func TestPreflightTakesTheURLFromNATS_URL(t *testing.T) {
	url := natsURL(t)
	code, _, stderr := execute(t, env{"NATS_URL": url}, "preflight")
	if code != exitOK || !strings.Contains(stderr, "Connected to NATS at "+url) {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	// The flag wins over the variable.
	code, _, stderr = execute(t, env{"NATS_URL": "nats://127.0.0.1:1"}, "preflight", "--nats-url", url)
	if code != exitOK || !strings.Contains(stderr, "Connected to NATS at "+url) {
		t.Fatalf("with --nats-url: exit code %d; stderr:\n%s", code, stderr)
	}
}

func TestPreflightConnectionFailureIsFatalWithTheRunbookMessage(t *testing.T) {
	url := deadURL(t)
	port := url[strings.LastIndexByte(url, ':')+1:]
	code, _, stderr := execute(t, env{}, "preflight", "--nats-url", url)
	if code != exitConnect {
		t.Errorf("exit code %d, want %d", code, exitConnect)
	}
	want := "Pre-flight FAIL: Cannot connect to NATS at " + url + ". Is NATS running? Try: nats-server -p " + port +
		", or docker run -p " + port + ":4222 nats:latest (error: nats: no servers available for connection)\n"
	if stderr != want {
		t.Errorf("stderr =\n%q\nwant\n%q", stderr, want)
	}
}

func TestADefaultURLHintNamesPort4222(t *testing.T) {
	if got := urlPort("nats://does-not-exist"); got != "4222" {
		t.Errorf("urlPort without a port = %q, want 4222", got)
	}
	if got := urlPort("tls://a:7422,nats://b:4333"); got != "7422" {
		t.Errorf("urlPort of a list = %q, want the first server's 7422", got)
	}
	if got := redact("nats://alice:secret@host:4222"); strings.Contains(got, "secret") {
		t.Errorf("redact left the password in: %s", got)
	}
}

func TestActorVerbsRunThePreflightUnlessSkipped(t *testing.T) {
	url := deadURL(t)
	rules := filepath.Join("testdata", "router_rules.yaml")
	code, _, stderr := execute(t, env{}, "router", "--rules", rules, "--nats-url", url)
	if code != exitConnect || !strings.Contains(stderr, "Pre-flight FAIL: Cannot connect to NATS at "+url) {
		t.Errorf("router: exit code %d; stderr:\n%s", code, stderr)
	}
	code, _, stderr = execute(t, env{}, "router", "--rules", rules, "--nats-url", url, "--skip-preflight")
	if code != exitConnect {
		t.Errorf("router --skip-preflight: exit code %d, want %d", code, exitConnect)
	}
	if strings.Contains(stderr, "Pre-flight") {
		t.Errorf("router --skip-preflight ran the preflight:\n%s", stderr)
	}
	if !strings.Contains(stderr, "Error: Cannot connect to NATS at "+url+". Is NATS running?") {
		t.Errorf("router --skip-preflight: the connection failure is not the runbook's message:\n%s", stderr)
	}
}

func TestPreflightWarnsOfMissingTierVariables(t *testing.T) {
	url := natsURL(t)
	tests := []struct {
		name string
		env  env
		tier string
		want string // "" for no warning
	}{
		{"local without LM Studio or Ollama", env{}, "local", "Pre-flight WARNING: Neither LM_STUDIO_URL nor OLLAMA_URL is set."},
		{"local with Ollama", env{"OLLAMA_URL": "http://localhost:11434"}, "local", ""},
		{"local with LM Studio", env{"LM_STUDIO_URL": "http://localhost:1234/v1"}, "local", ""},
		{"standard without a key", env{}, "standard", "Pre-flight WARNING: ANTHROPIC_API_KEY not set. Required for standard tier workers."},
		{"frontier without a key", env{}, "frontier", "Pre-flight WARNING: ANTHROPIC_API_KEY not set. Required for frontier tier workers."},
		{"frontier with a key", env{"ANTHROPIC_API_KEY": "k"}, "frontier", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := execute(t, tt.env, "preflight", "--nats-url", url, "--tier", tt.tier)
			if code != exitOK {
				t.Errorf("a warning changed the exit code to %d", code)
			}
			if tt.want == "" && strings.Contains(stderr, "WARNING") {
				t.Errorf("unexpected warning:\n%s", stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, stderr)
			}
			if !strings.HasSuffix(stderr, "Pre-flight OK: Connected to NATS at "+url+"\n") {
				t.Errorf("the last line is not the connection's:\n%s", stderr)
			}
		})
	}
}

func TestPreflightConfigChecksNameTheFileAndLine(t *testing.T) {
	url := natsURL(t)
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte("name: x\ntier_overrides:\n  a: local\n   b: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, []byte("# nothing\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file, want string
	}{
		{"a missing file", filepath.Join(dir, "nope.yaml"), "Pre-flight FAIL: Config file not found: " + filepath.Join(dir, "nope.yaml") + "\n"},
		{"invalid YAML", broken, "Pre-flight FAIL: Config file has invalid YAML: " + broken + ":4: "},
		{"an empty file", empty, "Pre-flight FAIL: Config file is empty: " + empty + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := execute(t, env{}, "preflight", "--nats-url", url, "--config", tt.file)
			if code != exitFailed {
				t.Errorf("exit code %d, want %d", code, exitFailed)
			}
			if !strings.HasPrefix(stderr, tt.want) {
				t.Errorf("stderr = %q, want it to start with %q", stderr, tt.want)
			}
			if strings.Contains(stderr, "Connected") {
				t.Errorf("the preflight went on after a fatal config check:\n%s", stderr)
			}
		})
	}
}

// deadURL returns the URL of a NATS server that has stopped, so nothing
// listens on its port.
func deadURL(t *testing.T) string {
	t.Helper()
	s := natstestServer(t)
	url := s.ClientURL()
	s.Shutdown()
	s.WaitForShutdown()
	return url
}
