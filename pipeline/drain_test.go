package pipeline_test

import (
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/dispatch"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/pipeline"
)

func TestAPipelineDrainIsBoundedAndTheCutGoalStillGetsItsResult(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		seen := make(chan heddle.TaskMessage, 1)
		// A worker that takes the stage's task and never answers.
		testkit.Responder(t, connect(), "held", "", func(task heddle.TaskMessage) [][]byte {
			seen <- task
			return nil
		})
		p, err := pipeline.New(connect(), pipeline.Config{Name: "held", Direct: true, DrainTimeout: testkit.ShortTimeout,
			Stages: []pipeline.Stage{{Name: "wait", WorkerType: "held", Timeout: time.Minute}}})
		if err != nil {
			t.Fatal(err)
		}
		stop := testkit.StartActor(t, p.Run, p.Ready())
		caller := connect()
		goal := heddle.NewOrchestratorGoal("hold it", nil)
		done := make(chan *heddle.TaskResult, 1)
		go func() {
			res, err := dispatch.SubmitGoal(testkit.Context(t), caller, goal, dispatch.Timeout(testkit.Wait))
			if err != nil {
				t.Error(err)
			}
			done <- res
		}()
		select {
		case <-seen:
		case <-time.After(testkit.Wait):
			t.Fatal("the stage's task never reached the worker")
		}
		stop() // returns once Run has: within the drain timeout, not the stage's minute
		select {
		case res := <-done:
			if res == nil || res.Status != heddle.StatusFailed || !strings.Contains(res.Error, "shut down") {
				t.Errorf("final result %+v, want failed naming the shutdown", res)
			}
		case <-time.After(testkit.Wait):
			t.Fatal("the goal cut short by the drain got no final result")
		}
		if s := p.Stats(); s.GoalsFailed != 1 || s.PublishErrors != 0 {
			t.Errorf("Stats() = %+v, want 1 failed goal, published", s)
		}
	})
}
