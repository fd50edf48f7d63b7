package router_test

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle/ratelimit"
	"github.com/heddle-go/heddle/router"
)

func TestLoadRouterRulesReadsThePythonExampleFile(t *testing.T) {
	rules, err := router.LoadRules("testdata/router_rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wantOverrides := map[string]string{"summarizer": "local", "classifier": "local", "extractor": "standard"}
	if !maps.Equal(rules.TierOverrides, wantOverrides) {
		t.Errorf("TierOverrides = %v, want %v", rules.TierOverrides, wantOverrides)
	}
	wantLimits := map[string]router.TierRateLimit{
		"local":    {MaxConcurrent: 4, TokensPerMinute: 100000},
		"standard": {MaxConcurrent: 10, TokensPerMinute: 200000},
		"frontier": {MaxConcurrent: 3, TokensPerMinute: 50000},
	}
	if !maps.Equal(rules.RateLimits, wantLimits) {
		t.Errorf("RateLimits = %v, want %v", rules.RateLimits, wantLimits)
	}
	if w := rules.Warnings(); len(w) != 0 {
		t.Errorf("the reference file has warnings: %q", w)
	}
	// The Python bucket: capacity max_concurrent, refilled max_concurrent
	// per minute; tokens_per_minute plays no part.
	wantBuckets := map[string]ratelimit.Limit{
		"local":    {RatePerSecond: 4.0 / 60, Burst: 4},
		"standard": {RatePerSecond: 10.0 / 60, Burst: 10},
		"frontier": {RatePerSecond: 3.0 / 60, Burst: 3},
	}
	if got := rules.Limits(); !maps.Equal(got, wantBuckets) {
		t.Errorf("Limits() = %v, want %v", got, wantBuckets)
	}
}

func TestParseRulesReadsThePythonRulesFileAndNamesEveryBadEntry(t *testing.T) {
	tests := []struct {
		name          string
		yaml          string
		wantOverrides map[string]string
		wantLimits    map[string]router.TierRateLimit
		wantWarnings  []string // substrings, one per warning, in order
		wantErrs      []string // substrings of the error; none means success
	}{
		{
			name:          "an override naming an unknown tier loads, with a warning",
			yaml:          "tier_overrides:\n  summarizer: gigantic\n",
			wantOverrides: map[string]string{"summarizer": "gigantic"},
			wantWarnings:  []string{`tier_overrides.summarizer: "gigantic" is not a model tier (local, standard, frontier): tasks of worker_type "summarizer" will be dead-lettered with unknown_tier`},
		},
		{
			name:         "unknown top-level keys are ignored, with a warning naming them",
			yaml:         "version: 2\ntier_override:\n  a: local\nrate_limits: {}\n",
			wantLimits:   map[string]router.TierRateLimit{},
			wantWarnings: []string{"version: unknown top-level key ignored (line 1)", "tier_override: unknown top-level key ignored (line 3)"},
		},
		{
			name:         "unknown keys inside a limit are ignored, with a warning",
			yaml:         "rate_limits:\n  local:\n    max_concurrent: 2\n    note: cheap\n",
			wantLimits:   map[string]router.TierRateLimit{"local": {MaxConcurrent: 2}},
			wantWarnings: []string{"rate_limits.local.note: unknown key ignored (line 4)"},
		},
		{
			name:         "a limit for a tier that does not exist loads, with a warning",
			yaml:         "rate_limits:\n  gpu:\n    max_concurrent: 2\n",
			wantLimits:   map[string]router.TierRateLimit{"gpu": {MaxConcurrent: 2}},
			wantWarnings: []string{`rate_limits.gpu: "gpu" is not a model tier`},
		},
		{
			name:          "null sections mean empty ones",
			yaml:          "tier_overrides:\nrate_limits: ~\n",
			wantOverrides: map[string]string{},
			wantLimits:    map[string]router.TierRateLimit{},
		},
		{
			name: "rate_per_second and burst are read as extensions",
			yaml: "rate_limits:\n  frontier:\n    max_concurrent: 3\n    rate_per_second: 0.5\n    burst: 6\n" +
				"  local:\n    rate_per_second: .inf\n    burst: 1\n",
			wantLimits: map[string]router.TierRateLimit{
				"frontier": {MaxConcurrent: 3, RatePerSecond: 0.5, Burst: 6},
				"local":    {RatePerSecond: math.Inf(1), Burst: 1},
			},
		},
		{
			name: "max_wait_seconds is read as an extension, in seconds",
			yaml: "rate_limits:\n  local:\n    max_concurrent: 4\n    tokens_per_minute: 100000\n    max_wait_seconds: 20\n" +
				"  frontier: {max_concurrent: 3, max_wait_seconds: 0.25}\n",
			wantLimits: map[string]router.TierRateLimit{
				"local":    {MaxConcurrent: 4, TokensPerMinute: 100000, MaxWaitSeconds: 20},
				"frontier": {MaxConcurrent: 3, MaxWaitSeconds: 0.25},
			},
		},
		{
			name:     "a negative max_wait_seconds is rejected",
			yaml:     "rate_limits:\n  local:\n    max_concurrent: 1\n    max_wait_seconds: -1\n",
			wantErrs: []string{"rate_limits.local.max_wait_seconds: must be >= 0, got -1 (line 4)"},
		},
		{
			name:     "an infinite max_wait_seconds is rejected: a task is never held for ever",
			yaml:     "rate_limits:\n  local:\n    max_concurrent: 1\n    max_wait_seconds: .inf\n",
			wantErrs: []string{"rate_limits.local.max_wait_seconds: must be a number of seconds from 0 to 9223372036, got .inf (line 4)"},
		},
		{
			name:     "a max_wait_seconds that is not a number is rejected",
			yaml:     "rate_limits:\n  local:\n    max_concurrent: 1\n    max_wait_seconds: 20s\n",
			wantErrs: []string{`rate_limits.local.max_wait_seconds: expected a number, got string "20s" (line 4)`},
		},
		{
			name:          "anchors and aliases are followed",
			yaml:          "defaults: &small\n  max_concurrent: 1\nrate_limits:\n  local: *small\n  standard: *small\ntier_overrides:\n  a: &t local\n  b: *t\n",
			wantOverrides: map[string]string{"a": "local", "b": "local"},
			wantLimits:    map[string]router.TierRateLimit{"local": {MaxConcurrent: 1}, "standard": {MaxConcurrent: 1}},
			wantWarnings:  []string{"defaults: unknown top-level key ignored"},
		},
		{
			name:     "a negative max_concurrent names the key",
			yaml:     "rate_limits:\n  local:\n    max_concurrent: -1\n",
			wantErrs: []string{"rate_limits.local.max_concurrent: must be >= 0, got -1 (line 3)"},
		},
		{
			name:     "a string where an integer belongs names the key, the value and the line",
			yaml:     "rate_limits:\n  local:\n    max_concurrent: four\n    tokens_per_minute: \"100\"\n",
			wantErrs: []string{`rate_limits.local.max_concurrent: expected an integer, got string "four" (line 3)`, `rate_limits.local.tokens_per_minute: expected an integer, got string "100" (line 4)`},
		},
		{
			name:     "a fractional max_concurrent is rejected",
			yaml:     "rate_limits:\n  local:\n    max_concurrent: 2.5\n",
			wantErrs: []string{"rate_limits.local.max_concurrent: expected an integer, got number 2.5"},
		},
		{
			name:     "an integer too large for int is rejected",
			yaml:     "rate_limits:\n  local:\n    max_concurrent: 99999999999999999999999\n",
			wantErrs: []string{"rate_limits.local.max_concurrent: "},
		},
		{
			name:     "a negative rate_per_second is rejected",
			yaml:     "rate_limits:\n  local:\n    max_concurrent: 1\n    rate_per_second: -2\n",
			wantErrs: []string{"rate_limits.local.rate_per_second: must be >= 0, got -2 (line 4)"},
		},
		{
			name:     "a limit without max_concurrent is rejected",
			yaml:     "rate_limits:\n  local:\n    tokens_per_minute: 100\n",
			wantErrs: []string{"rate_limits.local.max_concurrent: required (or give both rate_per_second and burst)"},
		},
		{
			name:     "rate_per_second without burst or max_concurrent is rejected",
			yaml:     "rate_limits:\n  local:\n    max_concurrent: 0\n    rate_per_second: 2\n",
			wantErrs: []string{"rate_limits.local: rate_per_second and burst must be given together"},
		},
		{
			name:     "a limit that is not a mapping is rejected",
			yaml:     "rate_limits:\n  local: 4\n",
			wantErrs: []string{"rate_limits.local: expected a mapping with max_concurrent and tokens_per_minute, got integer 4 (line 2)"},
		},
		{
			name:     "an override that is not a string is rejected",
			yaml:     "tier_overrides:\n  summarizer: {tier: local}\n  classifier: 3\n",
			wantErrs: []string{"tier_overrides.summarizer: expected a tier name string, got a mapping (line 2)", "tier_overrides.classifier: expected a tier name string, got integer 3 (line 3)"},
		},
		{
			name:     "tier_overrides as a list is rejected",
			yaml:     "tier_overrides:\n  - summarizer\n",
			wantErrs: []string{"tier_overrides: expected a mapping, got a list (line 2)"},
		},
		{
			name:     "a worker_type that cannot be a subject token is rejected",
			yaml:     "tier_overrides:\n  \"sum marizer\": local\n",
			wantErrs: []string{`tier_overrides.sum marizer: worker_type "sum marizer" cannot be used in a subject`},
		},
		{
			name:     "a duplicated key is rejected",
			yaml:     "tier_overrides:\n  a: local\n  a: frontier\n",
			wantErrs: []string{"tier_overrides.a: duplicated key (first at line 2) (line 3)"},
		},
		{
			name:     "an empty document is rejected, so a truncated file is not taken for no rules",
			yaml:     "# nothing here\n",
			wantErrs: []string{"the document is empty"},
		},
		{
			name:     "a null document is rejected",
			yaml:     "~\n",
			wantErrs: []string{"the document is empty"},
		},
		{
			name:     "a document that is not a mapping is rejected",
			yaml:     "- local\n",
			wantErrs: []string{"expected a mapping with tier_overrides and rate_limits, got a list"},
		},
		{
			name:     "malformed YAML is rejected",
			yaml:     "tier_overrides: [local\n",
			wantErrs: []string{"not valid YAML"},
		},
		{
			name:     "two documents are rejected",
			yaml:     "tier_overrides: {}\n---\nrate_limits: {}\n",
			wantErrs: []string{"more than one YAML document"},
		},
		{
			name: "every problem is reported at once",
			yaml: "tier_overrides:\n  a: 1\nrate_limits:\n  local:\n    max_concurrent: -1\n  standard:\n    max_concurrent: x\n",
			wantErrs: []string{"tier_overrides.a: expected a tier name string", "rate_limits.local.max_concurrent: must be >= 0",
				`rate_limits.standard.max_concurrent: expected an integer, got string "x"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := router.ParseRules([]byte(tt.yaml))
			if len(tt.wantErrs) > 0 {
				if err == nil {
					t.Fatalf("ParseRouterRules succeeded with %+v, want an error", rules)
				}
				if !errors.Is(err, router.ErrInvalidRules) {
					t.Errorf("error %v does not match ErrInvalidRouterRules", err)
				}
				var re *router.RulesError
				if !errors.As(err, &re) || len(re.Problems) != len(tt.wantErrs) {
					t.Errorf("error %v lists %d problems, want %d", err, len(re.Problems), len(tt.wantErrs))
				}
				for _, want := range tt.wantErrs {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(rules.TierOverrides, tt.wantOverrides) {
				t.Errorf("TierOverrides = %v, want %v", rules.TierOverrides, tt.wantOverrides)
			}
			if !maps.Equal(rules.RateLimits, tt.wantLimits) {
				t.Errorf("RateLimits = %v, want %v", rules.RateLimits, tt.wantLimits)
			}
			warnings := rules.Warnings()
			if len(warnings) != len(tt.wantWarnings) {
				t.Fatalf("Warnings() = %q, want %d warnings", warnings, len(tt.wantWarnings))
			}
			for i, want := range tt.wantWarnings {
				if !strings.Contains(warnings[i], want) {
					t.Errorf("warning %d = %q, want it to contain %q", i, warnings[i], want)
				}
			}
		})
	}
}

func TestTierRateLimitLimit(t *testing.T) {
	tests := []struct {
		name  string
		limit router.TierRateLimit
		want  ratelimit.Limit
	}{
		{"max_concurrent alone gives the Python bucket", router.TierRateLimit{MaxConcurrent: 6, TokensPerMinute: 9}, ratelimit.Limit{RatePerSecond: 0.1, Burst: 6}},
		{"max_concurrent 0 admits nothing", router.TierRateLimit{}, ratelimit.Limit{}},
		{"rate_per_second replaces the refill only", router.TierRateLimit{MaxConcurrent: 6, RatePerSecond: 2}, ratelimit.Limit{RatePerSecond: 2, Burst: 6}},
		{"burst replaces the capacity only", router.TierRateLimit{MaxConcurrent: 6, Burst: 1}, ratelimit.Limit{RatePerSecond: 0.1, Burst: 1}},
		{"both replace the whole bucket", router.TierRateLimit{RatePerSecond: 5, Burst: 10}, ratelimit.Limit{RatePerSecond: 5, Burst: 10}},
		{"max_wait_seconds leaves the bucket alone", router.TierRateLimit{MaxConcurrent: 6, MaxWaitSeconds: 30}, ratelimit.Limit{RatePerSecond: 0.1, Burst: 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.limit.Limit(); got != tt.want {
				t.Errorf("Limit() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTierRateLimitMaxWaitIsMaxWaitSecondsAsADuration(t *testing.T) {
	for _, tt := range []struct {
		seconds float64
		want    time.Duration
	}{
		{0, 0},
		{0.25, 250 * time.Millisecond},
		{20, 20 * time.Second},
		{-1, 0},          // refused by Validate
		{math.Inf(1), 0}, // refused by Validate
		{math.NaN(), 0},  // refused by Validate
	} {
		if got := (router.TierRateLimit{MaxWaitSeconds: tt.seconds}).MaxWait(); got != tt.want {
			t.Errorf("MaxWaitSeconds %v: MaxWait() = %v, want %v", tt.seconds, got, tt.want)
		}
	}
}

func TestRouterRulesValidateNamesEveryBadEntryOfGoValues(t *testing.T) {
	rules := router.Rules{
		TierOverrides: map[string]string{"": "local", "a.*": "local", "ok": "nonsense"},
		RateLimits: map[string]router.TierRateLimit{
			"local":    {MaxConcurrent: -1, TokensPerMinute: -2, Burst: -3, MaxWaitSeconds: -4},
			"standard": {RatePerSecond: math.NaN(), MaxWaitSeconds: math.Inf(1)},
			"frontier": {Burst: 4},
		},
	}
	err := rules.Validate()
	if !errors.Is(err, router.ErrInvalidRules) {
		t.Fatalf("Validate() = %v, want ErrInvalidRouterRules", err)
	}
	var re *router.RulesError
	errors.As(err, &re)
	var fields []string
	for _, p := range re.Problems {
		fields = append(fields, p.Field)
	}
	want := []string{"tier_overrides", "tier_overrides.a.*",
		"rate_limits.frontier",
		"rate_limits.local.max_concurrent", "rate_limits.local.tokens_per_minute", "rate_limits.local.burst", "rate_limits.local.max_wait_seconds",
		"rate_limits.standard.rate_per_second", "rate_limits.standard.max_wait_seconds"}
	if !slices.Equal(fields, want) {
		t.Errorf("Validate names %q, want %q", fields, want)
	}
	if err := (router.Rules{}).Validate(); err != nil {
		t.Errorf("the zero RouterRules is invalid: %v", err)
	}
}

func TestLoadRouterRulesNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	_, err := router.LoadRules(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("loading a missing file = %v, want fs.ErrNotExist naming the file", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("rate_limits:\n  local:\n    max_concurrent: -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = router.LoadRules(bad)
	var re *router.RulesError
	if !errors.As(err, &re) || re.Source != bad || !strings.Contains(err.Error(), "in "+bad+": rate_limits.local.max_concurrent") {
		t.Errorf("loading a bad file = %v, want a RouterRulesError naming %s and the key", err, bad)
	}
}

func TestARulesSourceHandsOutItsOwnCopyOfTheRules(t *testing.T) {
	ctx := t.Context()
	orig := router.Rules{TierOverrides: map[string]string{"a": "local"}}
	src := router.StaticRules(orig)
	orig.TierOverrides["a"] = "frontier"
	got, err := src(ctx)
	if err != nil || got.TierOverrides["a"] != "local" {
		t.Fatalf("StaticRules supplied %v, %v; want the rules as they were when it was called", got.TierOverrides, err)
	}
	got.TierOverrides["a"] = "standard"
	if again, _ := src(ctx); again.TierOverrides["a"] != "local" {
		t.Fatal("changing a supplied copy changed the StaticRules source")
	}

	path := filepath.Join(t.TempDir(), "rules.yaml")
	file := router.RulesFile(path)
	if _, err := file(ctx); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("RulesFile on a missing file = %v, want fs.ErrNotExist", err)
	}
	for _, tier := range []string{"local", "frontier"} {
		if err := os.WriteFile(path, []byte("tier_overrides:\n  a: "+tier+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := file(ctx)
		if err != nil || got.TierOverrides["a"] != tier {
			t.Fatalf("RulesFile supplied %v, %v; want the file's current override %q", got.TierOverrides, err, tier)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := file(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("RulesFile with a cancelled context = %v, want context.Canceled", err)
	}
}
