// Package scheduler is the Heddle scheduler: an actor that publishes an
// OrchestratorGoal or a TaskMessage whenever one of its timers fires, on
// a cron expression or a fixed interval. It reads the Python Heddle's
// scheduler config (configs/schedulers/*.yaml; see Config and
// ParseConfig) and sends what the Python scheduler sends: goals on
// heddle.SubjectGoalsIncoming, for the pipelines and orchestrators, and
// tasks on heddle.SubjectTasksIncoming, for the router, each task with
// metadata {"scheduled_by": <schedule name>}.
//
// Where it departs from the Python scheduler, it says so: time zones
// (the Python scheduler reads cron in UTC only; here UTC is the default
// and Config.Timezone or Schedule.Timezone name another), addressed goals
// (GoalSpec.To), a stricter config (ParseConfig), fire times kept to the
// schedule rather than drifting by the time each publish takes, missed
// and late fires reported (Scheduler), and the Python scheduler's
// expand_from, which names a Python function, refused. The Python
// scheduler also subscribes to heddle.scheduler.{name} and ignores what
// arrives there; this one does not.
//
// Events are logged and observed through the heddle.Option given to New
// (EventFired, EventMissed, EventLate, EventPublishFailed,
// EventUnserved, ...) and counted in Stats.
package scheduler
