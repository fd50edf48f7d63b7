package main

import (
	"strings"
	"testing"
)

func TestValidateNamesEveryProblemWithFileLineAndField(t *testing.T) {
	code, stdout, stderr := execute(t, env{},
		"validate", rulesFile, pipelineFile, wordCounterFile, echoFile,
		"testdata/invalid/rules.yaml", "testdata/invalid/pipeline.yaml", "testdata/invalid/processor.yaml",
		"testdata/invalid/syntax.yaml", "testdata/nope.yaml")
	if code != exitFailed {
		t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitFailed, stderr)
	}
	for _, want := range []string{
		"✓ [rules] testdata/router_rules.yaml\n",
		"testdata/router_rules.yaml: warning: tier_overrides.lost_worker: \"gpu\" is not a model tier",
		"✓ [pipeline] testdata/count_pipeline.yaml\n",
		"✓ [processor] testdata/word_counter.yaml\n",
		"✓ [processor] testdata/echo.yaml\n",
		"✗ [rules] testdata/invalid/rules.yaml\n    testdata/invalid/rules.yaml:5: rate_limits.local.max_concurrent: must be >= 0, got -1\n",
		"    testdata/invalid/pipeline.yaml:8: pipeline_stages[summarize].input_mapping.text: path \"extrat.output.text\": unknown stage \"extrat\"",
		"    testdata/invalid/processor.yaml:5: backend_config.command[2]: contains a shell metacharacter",
		"    testdata/invalid/processor.yaml:6: backend_config.io_mode: unknown io_mode \"socket\"",
		"    testdata/invalid/processor.yaml:7: input_schema_ref: a Pydantic model reference",
		"    testdata/invalid/processor.yaml:8: reset_after_task: must be true",
		"✗ [unknown] testdata/invalid/syntax.yaml\n    testdata/invalid/syntax.yaml:2: invalid YAML: mapping values are not allowed in this context\n",
		"✗ [unknown] testdata/nope.yaml\n    testdata/nope.yaml: open testdata/nope.yaml: no such file or directory\n",
		"5 invalid, 4 valid\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}

func TestValidatePassesValidFilesAndTakesAKind(t *testing.T) {
	code, stdout, _ := execute(t, env{}, "validate", rulesFile, wordCounterFile)
	if code != exitOK || !strings.HasSuffix(stdout, "2 config(s) valid\n") {
		t.Errorf("exit code %d:\n%s", code, stdout)
	}
	// Read as the wrong kind, a file has problems.
	code, stdout, _ = execute(t, env{}, "validate", "--kind", "pipeline", rulesFile)
	if code != exitFailed || !strings.Contains(stdout, "✗ [pipeline]") {
		t.Errorf("--kind pipeline on rules: exit code %d:\n%s", code, stdout)
	}
	if code, _, stderr := execute(t, env{}, "validate", "--kind", "llm", rulesFile); code != exitUsage || !strings.Contains(stderr, `--kind "llm"`) {
		t.Errorf("a bad --kind: exit code %d:\n%s", code, stderr)
	}
}

func TestValidateReadsMCPGatewayConfigsWithFileAndLine(t *testing.T) {
	code, stdout, _ := execute(t, env{}, "validate", mcpGatewayFile, "testdata/invalid/mcp.yaml", "testdata/invalid/mcp_keys.yaml")
	if code != exitFailed {
		t.Errorf("exit code %d, want %d", code, exitFailed)
	}
	for _, want := range []string{
		"✓ [mcp] testdata/mcp_gateway.yaml\n",
		"✗ [mcp] testdata/invalid/mcp.yaml\n",
		"    testdata/invalid/mcp.yaml:2: transport: unknown transport \"carrier-pigeon\"",
		"    testdata/invalid/mcp.yaml:6: tools.workers[0].tier: ",
		// A missing key is placed on its entry's line.
		"    testdata/invalid/mcp.yaml:7: tools.workers[1].config: open testdata/invalid/missing_worker.yaml: no such file or directory\n",
		"    testdata/invalid/mcp.yaml:9: tools.pipelines[0].pipeline: required",
		// A message holding "; " stays one problem.
		"    testdata/invalid/mcp.yaml:10: tools.queries: served by the Python gateway only; a Go gateway offers worker and pipeline tools: remove the section\n",
		"    testdata/invalid/mcp_keys.yaml:5: unknown key \"timeout\"",
		"2 invalid, 1 valid\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	// Forced, the kind is mcp whatever the keys say.
	if code, stdout, _ := execute(t, env{}, "validate", "--kind", "mcp", rulesFile); code != exitFailed || !strings.Contains(stdout, "✗ [mcp] "+rulesFile) {
		t.Errorf("--kind mcp on rules: exit code %d:\n%s", code, stdout)
	}
}
