package contracttest_test

import (
	"testing"

	"github.com/heddle-go/heddle/contracttest"
)

func TestEveryWireFixtureDecodesOrFailsAsItsManifestSays(t *testing.T) {
	contracttest.WireFixtures(t)
}

func TestWireFixtureFilesCoverEveryTypeAndOutcome(t *testing.T) {
	seen := map[string]map[bool]int{}
	for _, f := range contracttest.WireFixtureFiles() {
		if seen[f.Type] == nil {
			seen[f.Type] = map[bool]int{}
		}
		seen[f.Type][f.Valid]++
		if len(f.Data) == 0 && f.Valid {
			t.Errorf("%s: a valid fixture is empty", f.Name)
		}
		if !f.Valid && len(f.Fields) == 0 {
			t.Errorf("%s: an invalid fixture names no field", f.Name)
		}
		if f.Note == "" {
			t.Errorf("%s: no note", f.Name)
		}
	}
	for _, typ := range []string{"TaskMessage", "TaskResult", "OrchestratorGoal", "DeadLetter"} {
		if seen[typ][true] == 0 || seen[typ][false] == 0 {
			t.Errorf("%s: %d valid and %d invalid fixtures; want some of each", typ, seen[typ][true], seen[typ][false])
		}
	}
}
