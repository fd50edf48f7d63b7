package scheduler_test

import (
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/scheduler"
)

// These tests run the publishing path on both buses, on the real clock
// (natsbus's server is outside any synctest bubble): short intervals, and
// waits on channels and log records, bounded by testkit.Wait.

func TestTheScheduledGoalsAndTasksReachTheirSubjectsOnEveryBus(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		b, other := connect(), connect()
		docs, err := heddle.GoalSubject("docs")
		if err != nil {
			t.Fatal(err)
		}
		tasks, _ := testkit.Subscribe(t, other, heddle.SubjectTasksIncoming)
		goals, _ := testkit.Subscribe(t, other, heddle.SubjectGoalsIncoming)
		addressed, _ := testkit.Subscribe(t, other, docs)
		cfg := scheduler.Config{Name: "mesh", Schedules: []scheduler.Schedule{
			{Name: "task", IntervalSeconds: 0.02, DispatchType: scheduler.DispatchTask,
				Task: &scheduler.TaskSpec{WorkerType: "summarizer", Payload: map[string]any{"n": 1}, ModelTier: heddle.TierFrontier, Priority: heddle.PriorityCritical}},
			{Name: "goal", IntervalSeconds: 0.02, DispatchType: scheduler.DispatchGoal,
				Goal: &scheduler.GoalSpec{Instruction: "shared", Priority: heddle.PriorityLow}},
			{Name: "addressed", IntervalSeconds: 0.02, DispatchType: scheduler.DispatchGoal,
				Goal: &scheduler.GoalSpec{Instruction: "to docs", To: "docs"}},
		}}
		s, err := scheduler.New(b, cfg)
		if err != nil {
			t.Fatal(err)
		}
		stop := testkit.StartActor(t, s.Run, s.Ready())

		task, err := heddle.DecodeTaskMessage(testkit.Recv(t, tasks, "a scheduled task").Data)
		if err != nil || task.WorkerType != "summarizer" || task.Payload["n"] != 1.0 || task.ModelTier != heddle.TierFrontier ||
			task.Priority != heddle.PriorityCritical || task.Metadata[scheduler.MetadataScheduledBy] != "task" {
			t.Errorf("task %+v, %v; want the configured one, scheduled_by task", task, err)
		}
		for ch, want := range map[<-chan *bus.Msg]string{goals: "shared", addressed: "to docs"} {
			g, err := heddle.DecodeOrchestratorGoal(testkit.Recv(t, ch, "a scheduled goal").Data)
			if err != nil || g.Instruction != want {
				t.Errorf("goal %+v, %v; want instruction %q", g, err, want)
			}
		}
		stop()
		st := s.Stats()
		if st.Schedules["task"].Fired == 0 || st.Schedules["goal"].Fired == 0 || st.Schedules["addressed"].Fired == 0 {
			t.Errorf("Stats() = %+v; want every schedule fired", st)
		}
		if st.Unserved != 0 || st.PublishFailed != 0 {
			t.Errorf("Stats() = %+v; want nothing unserved or failed: every subject had a subscriber", st)
		}
	})
}

func TestAMessageNothingIsSubscribedToIsReportedUnserved(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		logs := testlog.New()
		s, err := scheduler.New(connect(), scheduler.Config{Name: "lonely", Schedules: []scheduler.Schedule{
			{Name: "no_router", IntervalSeconds: 0.02, DispatchType: scheduler.DispatchTask, Task: &scheduler.TaskSpec{WorkerType: "w"}},
			{Name: "no_pipeline", IntervalSeconds: 0.02, DispatchType: scheduler.DispatchGoal, Goal: &scheduler.GoalSpec{Instruction: "x", To: "absent"}},
		}}, heddle.WithLogger(logs.Logger()))
		if err != nil {
			t.Fatal(err)
		}
		stop := testkit.StartActor(t, s.Run, s.Ready())
		recs := logs.Wait(t, scheduler.EventUnserved, 2)
		seen := map[string]testlog.Record{}
		for _, r := range recs {
			seen[r.Str("schedule")] = r
		}
		task, goal := seen["no_router"], seen["no_pipeline"]
		if task.Str("subject") != heddle.SubjectTasksIncoming || task.Str("task_id") == "" {
			t.Errorf("scheduler.unserved for no_router: %+v; want the subject and task_id", task.Attrs)
		}
		if goal.Str("subject") != "heddle.goals.to.absent" || goal.Str("goal_id") == "" {
			t.Errorf("scheduler.unserved for no_pipeline: %+v; want the addressed subject and goal_id", goal.Attrs)
		}
		stop() // once Run has returned, every fire is logged
		fired := map[string]bool{}
		for _, r := range logs.All(scheduler.EventFired) {
			fired[r.Str("task_id")+r.Str("goal_id")] = true
		}
		if !fired[task.Str("task_id")] || !fired[goal.Str("goal_id")] {
			t.Errorf("the unserved messages %s and %s were not reported fired", task.Str("task_id"), goal.Str("goal_id"))
		}
		if st := s.Stats(); st.Unserved < 2 || st.Schedules["no_router"].Unserved == 0 || st.Schedules["no_pipeline"].Unserved == 0 {
			t.Errorf("Stats() = %+v; want the unserved messages of both schedules counted", st)
		}
	})
}
