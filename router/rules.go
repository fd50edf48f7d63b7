package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/internal/yamlnode"
	"github.com/heddle-go/heddle/ratelimit"
)

// ErrInvalidRules is matched (errors.Is) by every *RulesError, as is
// heddle.ErrConfig: rules that cannot work are a configuration error.
var ErrInvalidRules = errors.New("heddle: invalid router rules")

// Rules are the Router's rules, in the format of the Python Heddle's
// configs/router_rules.yaml:
//
//	tier_overrides:        # worker_type → tier, replacing the task's model_tier
//	  summarizer: local
//	rate_limits:           # tier → token bucket
//	  local:
//	    max_concurrent: 4
//	    tokens_per_minute: 100000
//	    max_wait_seconds: 20 # Go only: hold a task up to 20 s for a token
//
// The zero value routes every task to its own tier, unlimited.
type Rules struct {
	// TierOverrides maps a worker_type to the tier its tasks are routed to,
	// whatever their model_tier. An override naming a tier that is not a
	// ModelTier is accepted (Warnings reports it): the Router dead-letters
	// the worker type's tasks with reason unknown_tier, as the Python
	// router does.
	TierOverrides map[string]string `yaml:"tier_overrides,omitempty"`
	// RateLimits maps a tier to its token bucket. A tier without an entry
	// is never limited.
	RateLimits map[string]TierRateLimit `yaml:"rate_limits,omitempty"`

	// warnings found while parsing: top-level and rate-limit keys that are
	// ignored.
	warnings []string
}

// TierRateLimit is one tier's entry under rate_limits.
//
// As in the Python Heddle, the bucket holds MaxConcurrent tokens, starts
// full, and refills at MaxConcurrent tokens per 60 seconds (see
// ratelimit.FromMaxConcurrent); a MaxConcurrent of 0 admits nothing.
// RatePerSecond and Burst are Go extensions: when set (non-zero) they
// replace the refill rate and the capacity derived from MaxConcurrent.
// MaxWaitSeconds, also a Go extension, makes the Router hold a task that
// finds the bucket empty until its token comes, instead of dead-lettering
// it at once. Tokens are counted per dispatched task, not per LLM token,
// and each Router replica has buckets of its own.
type TierRateLimit struct {
	// MaxConcurrent sets the capacity and the refill (MaxConcurrent per
	// minute). Required in a rules file unless both RatePerSecond and
	// Burst are given.
	MaxConcurrent int `yaml:"max_concurrent"`
	// TokensPerMinute is an LLM token budget. It is read and kept for
	// compatibility, and does not affect the bucket (nor does it in the
	// Python router).
	TokensPerMinute int `yaml:"tokens_per_minute,omitempty"`
	// RatePerSecond, when non-zero, is the refill rate in tasks per second;
	// math.Inf(1) means unlimited.
	RatePerSecond float64 `yaml:"rate_per_second,omitempty"`
	// Burst, when non-zero, is the bucket's capacity.
	Burst int `yaml:"burst,omitempty"`
	// MaxWaitSeconds is the longest a task of this tier may be held
	// waiting for a token when the bucket is empty: a task whose token
	// comes within it is reserved that token and forwarded when it comes;
	// one whose token comes later is dead-lettered at once as
	// rate_limited, as every task over the limit is when MaxWaitSeconds
	// is zero (the default, the Python router's behaviour). See Router
	// for how held tasks are bounded and answered at shutdown.
	MaxWaitSeconds float64 `yaml:"max_wait_seconds,omitempty"`
}

// maxMaxWaitSeconds is the largest MaxWaitSeconds a time.Duration holds.
const maxMaxWaitSeconds = float64(math.MaxInt64 / int64(time.Second))

// MaxWait returns MaxWaitSeconds as a time.Duration.
func (l TierRateLimit) MaxWait() time.Duration {
	if !(l.MaxWaitSeconds > 0) || l.MaxWaitSeconds > maxMaxWaitSeconds {
		return 0 // refused by Validate
	}
	return time.Duration(l.MaxWaitSeconds * float64(time.Second))
}

// Limit returns the token bucket l describes.
func (l TierRateLimit) Limit() ratelimit.Limit {
	lim := ratelimit.FromMaxConcurrent(l.MaxConcurrent)
	if l.RatePerSecond > 0 {
		lim.RatePerSecond = l.RatePerSecond
	}
	if l.Burst > 0 {
		lim.Burst = l.Burst
	}
	return lim
}

// Limits returns the token bucket of every tier in r.RateLimits, in the
// form ratelimit.TierLimiter takes.
func (r Rules) Limits() map[string]ratelimit.Limit {
	out := make(map[string]ratelimit.Limit, len(r.RateLimits))
	for tier, l := range r.RateLimits {
		out[tier] = l.Limit()
	}
	return out
}

// Clone returns a deep copy of r.
func (r Rules) Clone() Rules {
	return Rules{
		TierOverrides: maps.Clone(r.TierOverrides),
		RateLimits:    maps.Clone(r.RateLimits),
		warnings:      slices.Clone(r.warnings),
	}
}

// Validate reports every invalid entry of r in one *RulesError: a
// worker_type that cannot appear in a subject, a negative or NaN number,
// a max_wait_seconds that is infinite or beyond a time.Duration, an empty
// tier name, or a rate_per_second without burst (or the reverse)
// where no max_concurrent supplies the missing half. Overrides and limits
// naming unknown tiers are not errors; see Warnings.
func (r Rules) Validate() error {
	var p rulesProblems
	r.validate(&p)
	return p.err("")
}

func (r Rules) validate(p *rulesProblems) {
	for _, wt := range slices.Sorted(maps.Keys(r.TierOverrides)) {
		if wt == "" {
			p.add("tier_overrides", 0, "a worker_type key is empty")
		} else if bus.ValidatePublishSubject(heddle.WorkerSubject(wt, heddle.TierStandard)) != nil {
			p.add("tier_overrides."+wt, 0, "worker_type %q cannot be used in a subject (no whitespace, wildcards or empty tokens)", wt)
		}
	}
	for _, tier := range slices.Sorted(maps.Keys(r.RateLimits)) {
		if tier == "" {
			p.add("rate_limits", 0, "a tier key is empty")
			continue
		}
		l, path := r.RateLimits[tier], "rate_limits."+tier
		if l.MaxConcurrent < 0 {
			p.add(path+".max_concurrent", 0, "must be >= 0, got %d", l.MaxConcurrent)
		}
		if l.TokensPerMinute < 0 {
			p.add(path+".tokens_per_minute", 0, "must be >= 0, got %d", l.TokensPerMinute)
		}
		if math.IsNaN(l.RatePerSecond) || l.RatePerSecond < 0 {
			p.add(path+".rate_per_second", 0, "must be >= 0, got %v", l.RatePerSecond)
		}
		if l.Burst < 0 {
			p.add(path+".burst", 0, "must be >= 0, got %d", l.Burst)
		}
		if w := l.MaxWaitSeconds; math.IsNaN(w) || w < 0 || w > maxMaxWaitSeconds {
			p.add(path+".max_wait_seconds", 0, "must be a number of seconds from 0 to %.0f, got %v", maxMaxWaitSeconds, w)
		}
		if l.MaxConcurrent == 0 && (l.RatePerSecond > 0) != (l.Burst > 0) {
			p.add(path, 0, "rate_per_second and burst must be given together when max_concurrent is 0 or absent")
		}
	}
}

// Warnings lists what r accepts but probably does not mean: overrides and
// limits naming a tier that is not a ModelTier, and (for parsed rules)
// keys that were ignored. The Router logs each as router.rules_warning
// when it loads r.
func (r Rules) Warnings() []string {
	out := slices.Clone(r.warnings)
	for _, wt := range slices.Sorted(maps.Keys(r.TierOverrides)) {
		if tier := r.TierOverrides[wt]; !heddle.ModelTier(tier).Valid() {
			out = append(out, fmt.Sprintf("tier_overrides.%s: %q is not a model tier (%s): tasks of worker_type %q will be dead-lettered with unknown_tier",
				wt, tier, tierNames, wt))
		}
	}
	for _, tier := range slices.Sorted(maps.Keys(r.RateLimits)) {
		if !heddle.ModelTier(tier).Valid() {
			out = append(out, fmt.Sprintf("rate_limits.%s: %q is not a model tier (%s): no task is routed to it, so this limit never applies",
				tier, tier, tierNames))
		}
	}
	return out
}

var tierNames = func() string {
	names := make([]string, 0, 3)
	for _, t := range heddle.ModelTiers() {
		names = append(names, string(t))
	}
	return strings.Join(names, ", ")
}()

// RulesError lists every problem found in one rules document or
// value. Its text is, for example:
//
//	heddle: invalid router rules in configs/router_rules.yaml: rate_limits.local.max_concurrent: must be >= 0, got -1 (line 9)
type RulesError struct {
	// Source is the file the rules came from; empty for rules parsed from
	// bytes or built in Go.
	Source string
	// Problems names each bad entry by its dotted path
	// (rate_limits.local.max_concurrent); Field is empty for a problem
	// with the whole document.
	Problems []heddle.FieldError
}

func (e *RulesError) Error() string {
	var b strings.Builder
	b.WriteString("heddle: invalid router rules")
	if e.Source != "" {
		b.WriteString(" in ")
		b.WriteString(e.Source)
	}
	for i, f := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.String())
	}
	return b.String()
}

// Is reports whether target is ErrInvalidRules or heddle.ErrConfig.
func (e *RulesError) Is(target error) bool {
	return target == ErrInvalidRules || target == heddle.ErrConfig
}

// rulesProblems accumulates the problems of one rules document.
type rulesProblems struct {
	fields []heddle.FieldError
}

func (p *rulesProblems) add(path string, line int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		msg += fmt.Sprintf(" (line %d)", line)
	}
	p.fields = append(p.fields, heddle.FieldError{Field: path, Problem: msg})
}

func (p *rulesProblems) err(source string) error {
	if len(p.fields) == 0 {
		return nil
	}
	return &RulesError{Source: source, Problems: p.fields}
}

// ParseRules reads rules in the configs/router_rules.yaml format. It
// is strict about what it reads and lenient about what it does not know,
// so a Python deployment's file works unchanged:
//
//   - the document must be one YAML mapping (an empty document is an
//     error, so a truncated file is not taken for "no rules");
//   - tier_overrides maps worker_type strings to tier strings; rate_limits
//     maps tier strings to mappings of max_concurrent and
//     tokens_per_minute (integers >= 0) and, optionally, rate_per_second
//     (a number >= 0), burst (an integer >= 0) and max_wait_seconds (a
//     number >= 0);
//   - a value of the wrong type, a duplicated key, or a limit without
//     max_concurrent (unless rate_per_second and burst are both given) is
//     an error naming the entry by its dotted path and line;
//   - unknown top-level keys and unknown keys inside a limit are ignored
//     and reported by Warnings; a null section means an empty one;
//   - tiers that are not ModelTiers are accepted and reported by Warnings.
//
// Every problem is reported in one *RulesError.
func ParseRules(data []byte) (Rules, error) {
	return parseRouterRules("", data)
}

// LoadRules reads and parses the rules file at path; see
// ParseRules. A parse error is a *RulesError whose Source is
// path.
func LoadRules(path string) (Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Rules{}, fmt.Errorf("heddle: reading router rules: %w", err)
	}
	return parseRouterRules(path, data)
}

// RulesSource supplies the Router's rules: once when Run starts and again
// at every reload. It should honour ctx, which bounds one load.
type RulesSource func(ctx context.Context) (Rules, error)

// RulesFile is a RulesSource that reads the file at path afresh at every
// load, so editing the file and publishing on SubjectControlReload applies
// the new rules.
func RulesFile(path string) RulesSource {
	return func(ctx context.Context) (Rules, error) {
		if err := ctx.Err(); err != nil {
			return Rules{}, err
		}
		return LoadRules(path)
	}
}

// StaticRules is a RulesSource that always supplies a copy of r, as it was
// when StaticRules was called.
func StaticRules(r Rules) RulesSource {
	r = r.Clone()
	return func(context.Context) (Rules, error) { return r.Clone(), nil }
}

func parseRouterRules(source string, data []byte) (Rules, error) {
	var p rulesProblems
	var rules Rules
	if root := rulesDocument(&p, data); root != nil {
		rules = rulesFromNode(&p, root)
		rules.validate(&p)
	}
	if err := p.err(source); err != nil {
		return Rules{}, err
	}
	return rules, nil
}

// rulesDocument returns the top-level mapping of the one document in data,
// or nil after recording why there is none.
func rulesDocument(p *rulesProblems, data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.add("", 0, "the document is empty (want a mapping with tier_overrides and rate_limits)")
		} else {
			p.add("", 0, "not valid YAML: %v", err)
		}
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			p.add("", 0, "not valid YAML: %v", err)
		} else {
			p.add("", next.Line, "more than one YAML document: the rules must be one document")
		}
		return nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.AliasNode {
		root = root.Alias
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		p.add("", root.Line, "the document is empty (want a mapping with tier_overrides and rate_limits)")
		return nil
	}
	if root.Kind != yaml.MappingNode {
		p.add("", root.Line, "expected a mapping with tier_overrides and rate_limits, got %s", yamlnode.Describe(root))
		return nil
	}
	return root
}

func rulesFromNode(p *rulesProblems, root *yaml.Node) Rules {
	var r Rules
	rulesMapping(p, "", root, func(key string, v *yaml.Node) {
		switch key {
		case "tier_overrides":
			r.TierOverrides = rulesOverrides(p, v)
		case "rate_limits":
			r.RateLimits = rulesLimits(p, &r, v)
		default:
			r.warnings = append(r.warnings, fmt.Sprintf("%s: unknown top-level key ignored (line %d); known keys: tier_overrides, rate_limits", key, v.Line))
		}
	})
	return r
}

func rulesOverrides(p *rulesProblems, n *yaml.Node) map[string]string {
	out := map[string]string{}
	rulesMapping(p, "tier_overrides", n, func(wt string, v *yaml.Node) {
		path := "tier_overrides." + wt
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
			p.add(path, v.Line, "expected a tier name string, got %s", yamlnode.Describe(v))
			return
		}
		out[wt] = v.Value
	})
	return out
}

func rulesLimits(p *rulesProblems, r *Rules, n *yaml.Node) map[string]TierRateLimit {
	out := map[string]TierRateLimit{}
	rulesMapping(p, "rate_limits", n, func(tier string, v *yaml.Node) {
		path := "rate_limits." + tier
		if v.Kind != yaml.MappingNode {
			p.add(path, v.Line, "expected a mapping with max_concurrent and tokens_per_minute, got %s", yamlnode.Describe(v))
			return
		}
		var l TierRateLimit
		seen := map[string]bool{}
		rulesMapping(p, path, v, func(key string, f *yaml.Node) {
			seen[key] = true
			switch key {
			case "max_concurrent":
				l.MaxConcurrent = rulesInt(p, path+"."+key, f)
			case "tokens_per_minute":
				l.TokensPerMinute = rulesInt(p, path+"."+key, f)
			case "burst":
				l.Burst = rulesInt(p, path+"."+key, f)
			case "rate_per_second":
				l.RatePerSecond = rulesFloat(p, path+"."+key, f)
			case "max_wait_seconds":
				l.MaxWaitSeconds = rulesFloat(p, path+"."+key, f)
				if l.MaxWaitSeconds > maxMaxWaitSeconds {
					p.add(path+"."+key, f.Line, "must be a number of seconds from 0 to %.0f, got %s", maxMaxWaitSeconds, f.Value)
					l.MaxWaitSeconds = 0
				}
			default:
				r.warnings = append(r.warnings, fmt.Sprintf("%s.%s: unknown key ignored (line %d); known keys: max_concurrent, tokens_per_minute, rate_per_second, burst, max_wait_seconds", path, key, f.Line))
			}
		})
		if !seen["max_concurrent"] && !(seen["rate_per_second"] && seen["burst"]) {
			p.add(path+".max_concurrent", v.Line, "required (or give both rate_per_second and burst)")
		}
		out[tier] = l
	})
	return out
}

// rulesMapping calls fn for each key of mapping n in document order. A
// null n is an empty mapping. Non-string, merge and duplicated keys are
// recorded as problems and skipped.
func rulesMapping(p *rulesProblems, path string, n *yaml.Node, fn func(key string, v *yaml.Node)) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.add(yamlnode.Label(path), n.Line, "expected a mapping, got %s", yamlnode.Describe(n))
		return
	}
	lines := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" || k.ShortTag() == "!!null" {
			p.add(yamlnode.Label(path), k.Line, "unsupported key %s (keys must be plain names; merge keys are not supported)", yamlnode.Describe(k))
			continue
		}
		if first, dup := lines[k.Value]; dup {
			p.add(yamlnode.Join(path, k.Value), k.Line, "duplicated key (first at line %d)", first)
			continue
		}
		lines[k.Value] = k.Line
		fn(k.Value, v)
	}
}

func rulesInt(p *rulesProblems, path string, n *yaml.Node) int {
	var v int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		p.add(path, n.Line, "expected an integer, got %s", yamlnode.Describe(n))
		return 0
	}
	if err := n.Decode(&v); err != nil {
		p.add(path, n.Line, "integer %s is out of range", n.Value)
		return 0
	}
	if v < 0 {
		p.add(path, n.Line, "must be >= 0, got %d", v)
		return 0
	}
	return v
}

func rulesFloat(p *rulesProblems, path string, n *yaml.Node) float64 {
	var v float64
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || n.Decode(&v) != nil {
		p.add(path, n.Line, "expected a number, got %s", yamlnode.Describe(n))
		return 0
	}
	if math.IsNaN(v) || v < 0 {
		p.add(path, n.Line, "must be >= 0, got %s", n.Value)
		return 0
	}
	return v
}
