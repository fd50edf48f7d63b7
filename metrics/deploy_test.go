package metrics_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The repository's alert rules and dashboard, built on this package's
// metrics.
var (
	alertsFile    = filepath.Join("..", "deploy", "prometheus", "alerts.yml")
	dashboardFile = filepath.Join("..", "deploy", "grafana", "heddle.json")
)

type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type dashboard struct {
	Title  string `json:"title"`
	UID    string `json:"uid"`
	Panels []struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr  string `json:"expr"`
			RefID string `json:"refId"`
		} `json:"targets"`
	} `json:"panels"`
}

var (
	metricName = regexp.MustCompile(`\bheddle_[a-z0-9_]+`)
	// A selector's label matchers: name{label="v", label=~"v"}.
	selector = regexp.MustCompile(`(heddle_[a-z0-9_]+)\{([^}]*)\}`)
	matcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	// Grouping clauses: by (a, b), on (a).
	grouping = regexp.MustCompile(`\b(?:by|on|without|ignoring)\s*\(([^)]*)\)`)
)

// metricLabels returns each metric of the populated registry with its
// label names; a histogram's series (_bucket, _sum, _count) under its
// own names too, _bucket with le.
func metricLabels(t *testing.T) map[string]map[string]bool {
	t.Helper()
	reg, m := populated(t)
	watchAWorker(t, m)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	for _, f := range families {
		labels := map[string]bool{}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		out[f.GetName()] = labels
		if f.GetType().String() == "HISTOGRAM" {
			out[f.GetName()+"_sum"] = labels
			out[f.GetName()+"_count"] = labels
			bucket := map[string]bool{"le": true}
			for l := range labels {
				bucket[l] = true
			}
			out[f.GetName()+"_bucket"] = bucket
		}
	}
	return out
}

// checkExpr requires every metric expr names to be registered with the
// labels its selectors and groupings use.
func checkExpr(t *testing.T, where, expr string, known map[string]map[string]bool) {
	t.Helper()
	names := metricName.FindAllString(expr, -1)
	if len(names) == 0 {
		t.Errorf("%s: %q names no heddle metric", where, expr)
	}
	used := map[string]bool{}
	for _, name := range names {
		if _, ok := known[name]; !ok {
			t.Errorf("%s: %s is not a metric of package metrics", where, name)
			continue
		}
		for l := range known[name] {
			used[l] = true
		}
	}
	for _, sel := range selector.FindAllStringSubmatch(expr, -1) {
		for _, mt := range matcher.FindAllStringSubmatch(sel[2], -1) {
			if labels, ok := known[sel[1]]; ok && !labels[mt[1]] {
				t.Errorf("%s: %s has no label %q", where, sel[1], mt[1])
			}
		}
	}
	for _, g := range grouping.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !used[l] {
				t.Errorf("%s: groups by %q, a label none of its metrics has", where, l)
			}
		}
	}
}

func TestTheAlertRulesUseOnlyMetricsThisPackageRegisters(t *testing.T) {
	data, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	known := metricLabels(t)
	alerts := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			where := alertsFile + ": " + r.Alert
			if r.Alert == "" || r.Expr == "" {
				t.Errorf("%s: a rule without alert or expr: %+v", alertsFile, r)
			}
			if _, dup := alerts[r.Alert]; dup {
				t.Errorf("%s: alert %s defined twice", alertsFile, r.Alert)
			}
			alerts[r.Alert] = r.Expr
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: want a severity label, a summary and a description", where)
			}
			checkExpr(t, where, r.Expr, known)
		}
	}
	// The alerts the operators asked for, each on the metric that says it.
	for alert, metric := range map[string]string{
		"HeddleDeadLettersSustained": "heddle_router_dead_lettered_total",
		"HeddleResultWaitsTimingOut": `heddle_result_stream_events_total{event="timeout"}`,
		"HeddleWorkerSlowConsumer":   "heddle_worker_dropped_tasks_total",
		"HeddleBusSlowConsumer":      "heddle_bus_dropped_messages_total",
		"HeddleNoLiveWorkers":        `heddle_registry_workers{state="active"}`,
	} {
		if expr, ok := alerts[alert]; !ok || !strings.Contains(expr, metric) {
			t.Errorf("alert %s: %q, want it on %s", alert, expr, metric)
		}
	}
	if expr := alerts["HeddleDeadLettersSustained"]; !strings.Contains(expr, "by (reason)") {
		t.Errorf("HeddleDeadLettersSustained: %q, want the rate by reason kind", expr)
	}
}

func TestTheDashboardUsesOnlyMetricsThisPackageRegisters(t *testing.T) {
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("%s: title %q, uid %q; want both", dashboardFile, d.Title, d.UID)
	}
	known := metricLabels(t)
	shown := map[string]bool{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", dashboardFile, p.Title)
		}
		for _, q := range p.Targets {
			checkExpr(t, dashboardFile+": "+p.Title+" "+q.RefID, q.Expr, known)
			for _, name := range metricName.FindAllString(q.Expr, -1) {
				shown[strings.TrimSuffix(name, "_bucket")] = true
			}
		}
	}
	// Every metric of the package is on the dashboard.
	for name := range known {
		if strings.HasSuffix(name, "_bucket") || strings.HasSuffix(name, "_sum") || strings.HasSuffix(name, "_count") {
			continue
		}
		if !shown[name] {
			t.Errorf("%s shows nothing of %s", dashboardFile, name)
		}
	}
}
