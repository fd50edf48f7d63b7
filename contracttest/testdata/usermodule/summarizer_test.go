package summarizer_test

import (
	"testing"

	"example.com/summarizer"
	"github.com/heddle-go/heddle/contracttest/meshtest"
	"github.com/heddle-go/heddle/contracttest/workertest"
	"github.com/heddle-go/heddle/event"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const cases = "testdata/heddle/summarize"

func TestFixtures(t *testing.T) { workertest.Fixtures(t, cases, summarizer.New) }

func TestConformance(t *testing.T) {
	workertest.Conformance(t, summarizer.New, workertest.Load(t, cases))
}

func TestMesh(t *testing.T) {
	cfg := meshtest.Config{Workers: []workertest.Constructor{summarizer.New}}
	meshtest.Each(t, cfg, func(t *testing.T, m *meshtest.Mesh) {
		res, err := m.Request("summarize", map[string]any{"text": "a b c", "max_words": 2})
		if err != nil || res.Output["summary"] != "a b" {
			t.Fatalf("Request = %+v, %v", res, err)
		}
		if _, err := m.Request("summarise", map[string]any{"text": "typo"}); err == nil {
			t.Fatal("a task for a worker type nobody serves succeeded")
		}
		m.WaitDeadLetter(event.ReasonNoWorker)
		m.WaitCount(event.WorkerCompleted, "", 1)
	})
}
