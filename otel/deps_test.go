package otel_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOnlyThisPackageBuildsOpenTelemetry holds the promise that a program
// that does not import package otel builds no OpenTelemetry: none of the
// packages a mesh is made of depends on it.
func TestOnlyThisPackageBuildsOpenTelemetry(t *testing.T) {
	const module = "github.com/heddle-go/heddle"
	pkgs := []string{module, module + "/bus", module + "/event", module + "/membus", module + "/natsbus",
		module + "/worker", module + "/router", module + "/dispatch", module + "/orchestrator", module + "/pipeline",
		module + "/deadletter", module + "/contracts", module + "/ratelimit"}
	out, err := exec.Command("go", append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, pkgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < len(pkgs) {
		t.Fatalf("go list named %d packages, want at least the %d asked for", len(deps), len(pkgs))
	}
	for _, dep := range deps {
		if strings.HasPrefix(dep, "go.opentelemetry.io/") || dep == module+"/otel" {
			t.Errorf("the mesh's packages depend on %s", dep)
		}
	}
	// The check can see OpenTelemetry where it is.
	out, err = exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", module+"/otel").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "go.opentelemetry.io/otel/trace\n") {
		t.Errorf("go list -deps of package otel does not name go.opentelemetry.io/otel/trace: %v\n%s", err, out)
	}
}
