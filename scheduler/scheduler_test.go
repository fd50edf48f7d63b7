package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/scheduler"
)

// The tests with a fake clock run the scheduler on membus inside a
// testing/synctest bubble: time stands still while anything in the bubble
// can run and moves when everything waits, so an hour of schedule passes
// at once in real time, and every fire comes exactly at its time. A
// "paused process" is a publish held by holdBus while the clock moves on.
// natsbus talks to a server outside any bubble, which a bubble cannot
// wait for: the tests on both buses (publish_test.go) run the publishing
// path on the real clock, with short intervals.

// arrival is one message the test's subscriber got, and when.
type arrival struct {
	subject string
	at      time.Duration // since Run started
	wall    time.Time     // UTC
	data    []byte
}

// mesh is a scheduler on a bus in a bubble, a subscriber recording what
// it publishes, and the scheduler's log.
type mesh struct {
	t     *testing.T
	b     bus.Bus
	s     *scheduler.Scheduler
	logs  *testlog.Recorder
	start time.Time

	cancel context.CancelFunc
	done   chan error

	mu  sync.Mutex
	got []arrival
}

// startMesh runs a scheduler for cfg on b, recording the messages on
// subjects. Call it inside a bubble.
func startMesh(t *testing.T, b bus.Bus, cfg scheduler.Config, subjects ...string) *mesh {
	t.Helper()
	return startMeshWith(t, b, cfg, nil, subjects...)
}

// startMeshWith is startMesh with options for the scheduler.
func startMeshWith(t *testing.T, b bus.Bus, cfg scheduler.Config, opts []heddle.Option, subjects ...string) *mesh {
	t.Helper()
	m := &mesh{t: t, b: b, logs: testlog.New(), done: make(chan error, 1)}
	if len(subjects) == 0 {
		subjects = []string{heddle.SubjectTasksIncoming, heddle.SubjectGoalsIncoming}
	}
	for _, subject := range subjects {
		if _, err := b.Subscribe(t.Context(), subject, func(_ context.Context, msg *bus.Msg) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.got = append(m.got, arrival{subject: msg.Subject, at: time.Since(m.start), wall: time.Now().UTC(), data: msg.Data})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := scheduler.New(b, cfg, append([]heddle.Option{heddle.WithLogger(m.logs.Logger())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.s = s
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.start = time.Now()
	go func() { m.done <- s.Run(ctx) }()
	<-s.Ready()
	return m
}

// stop ends Run and returns what it returned.
func (m *mesh) stop() error {
	m.cancel()
	return <-m.done
}

// arrivals returns what arrived so far, once everything in the bubble
// that can run has run.
func (m *mesh) arrivals() []arrival {
	synctest.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]arrival(nil), m.got...)
}

// times lists when each message arrived, as "subject@offset".
func times(as []arrival) string {
	var out []string
	for _, a := range as {
		out = append(out, fmt.Sprintf("%s@%v", a.subject, a.at))
	}
	return strings.Join(out, " ")
}

func taskSchedule(name string, seconds float64) scheduler.Schedule {
	return scheduler.Schedule{Name: name, IntervalSeconds: seconds, DispatchType: scheduler.DispatchTask,
		Task: &scheduler.TaskSpec{WorkerType: "health_checker", Payload: map[string]any{"check": "system_status"}}}
}

func TestAnIntervalScheduleFiresOneIntervalAfterRunStartsThenEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := membus.New()
		defer b.Close()
		m := startMesh(t, b, scheduler.Config{Name: "s", Schedules: []scheduler.Schedule{taskSchedule("every_10s", 10)}})

		time.Sleep(10*time.Second - time.Nanosecond) // sleep-ok: moves the bubble's clock
		if got := m.arrivals(); len(got) != 0 {
			t.Fatalf("before the first interval ended, got %s; want nothing (the first fire comes after one interval)", times(got))
		}
		time.Sleep(25*time.Second + time.Nanosecond) // sleep-ok: to 35 s
		got := m.arrivals()
		want := "heddle.tasks.incoming@10s heddle.tasks.incoming@20s heddle.tasks.incoming@30s"
		if times(got) != want {
			t.Fatalf("got %s\nwant %s", times(got), want)
		}
		ids := map[string]bool{}
		for _, a := range got {
			task, err := heddle.DecodeTaskMessage(a.data)
			if err != nil {
				t.Fatalf("the scheduler published an invalid task: %v", err)
			}
			if task.WorkerType != "health_checker" || task.Payload["check"] != "system_status" ||
				task.ModelTier != heddle.TierLocal || task.Priority != heddle.PriorityNormal ||
				task.MaxRetries != heddle.DefaultMaxRetries || task.Metadata[scheduler.MetadataScheduledBy] != "every_10s" ||
				!task.CreatedAt.Equal(a.wall.Truncate(time.Microsecond)) {
				t.Errorf("task %+v; want health_checker's payload at tier local, priority normal, scheduled_by every_10s, made when sent", task)
			}
			ids[task.TaskID] = true
		}
		if len(ids) != 3 {
			t.Errorf("the three fires sent %d distinct task_ids, want 3", len(ids))
		}
		if err := m.stop(); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		st := m.s.Stats()
		if st.Fired != 3 || st.Missed != 0 || st.Late != 0 || st.PublishFailed != 0 || st.Schedules["every_10s"].Fired != 3 {
			t.Errorf("Stats() = %+v; want 3 fires of every_10s and nothing else", st)
		}
		fired := m.logs.All(scheduler.EventFired)
		if len(fired) != 3 || fired[0].Str("schedule") != "every_10s" || fired[0].Str("scheduler") != "s" ||
			fired[0].Str("subject") != heddle.SubjectTasksIncoming || fired[0].Str("worker_type") != "health_checker" {
			t.Errorf("scheduler.fired records %+v; want 3, naming the scheduler, schedule, subject and worker type", fired)
		}
		if init := m.logs.All(scheduler.EventScheduleInitialized); len(init) != 1 || init[0].Str("next_fire_in_seconds") != "10" {
			t.Errorf("scheduler.schedule_initialized records %+v; want one saying the first fire is in 10 seconds", init)
		}
	})
}

func TestACronScheduleFiresAtItsTimesInItsTimeZone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bubble's clock starts at 2000-01-01 00:00 UTC, a Saturday.
		b := membus.New()
		defer b.Close()
		docs, err := heddle.GoalSubject("docs")
		if err != nil {
			t.Fatal(err)
		}
		cfg := scheduler.Config{Name: "s", Timezone: "America/New_York", Schedules: []scheduler.Schedule{
			{Name: "ny_morning", Cron: "30 9 * * *", DispatchType: scheduler.DispatchGoal,
				Goal: &scheduler.GoalSpec{Instruction: "Summarize the night", Context: map[string]any{"source": "inbox"}, Priority: heddle.PriorityHigh, To: "docs"}},
			{Name: "utc_weekdays", Cron: "0 9 * * MON-FRI", Timezone: "UTC", DispatchType: scheduler.DispatchGoal,
				Goal: &scheduler.GoalSpec{Instruction: "Weekday report"}},
		}}
		m := startMesh(t, b, cfg, heddle.SubjectGoalsIncoming, docs)
		time.Sleep(3 * 24 * time.Hour) // sleep-ok: to Tuesday 00:00 UTC
		got := m.arrivals()
		var when []string
		for _, a := range got {
			g, err := heddle.DecodeOrchestratorGoal(a.data)
			if err != nil {
				t.Fatalf("the scheduler published an invalid goal: %v", err)
			}
			when = append(when, a.subject+" "+a.wall.Format(time.DateTime)+" "+g.Instruction+" "+string(g.Priority))
			if a.subject == docs && g.Context["source"] != "inbox" {
				t.Errorf("goal context %v; want the configured one", g.Context)
			}
		}
		want := []string{
			"heddle.goals.to.docs 2000-01-01 14:30:00 Summarize the night high", // 09:30 EST
			"heddle.goals.to.docs 2000-01-02 14:30:00 Summarize the night high",
			"heddle.goals.incoming 2000-01-03 09:00:00 Weekday report normal", // Monday
			"heddle.goals.to.docs 2000-01-03 14:30:00 Summarize the night high",
		}
		if strings.Join(when, "\n") != strings.Join(want, "\n") {
			t.Errorf("goals sent:\n%s\nwant:\n%s", strings.Join(when, "\n"), strings.Join(want, "\n"))
		}
		if err := m.stop(); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		if st := m.s.Stats(); st.Fired != 4 || st.Schedules["ny_morning"].Fired != 3 || st.Schedules["utc_weekdays"].Fired != 1 {
			t.Errorf("Stats() = %+v; want 3 fires of ny_morning and 1 of utc_weekdays", st)
		}
	})
}

// observed keeps the events an observer got.
type observed struct {
	mu     sync.Mutex
	events []event.Event
}

func (o *observed) Observe(_ context.Context, e event.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e.Attrs = nil // the caller's, for the call only
	o.events = append(o.events, e)
}

func (o *observed) named(name string) []event.Event {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []event.Event
	for _, e := range o.events {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// holdBus holds publishes to heddle's subjects, as a paused process or a
// stalled connection would: the next Hold of them wait until Release
// receives, or their context ends.
type holdBus struct {
	bus.Bus
	hold    atomic.Int64
	release chan struct{}
}

func newHoldBus(b bus.Bus) *holdBus { return &holdBus{Bus: b, release: make(chan struct{})} }

func (h *holdBus) Publish(ctx context.Context, msg *bus.Msg) error {
	if strings.HasPrefix(msg.Subject, "heddle.") && h.hold.Add(-1) >= 0 {
		select {
		case <-h.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return h.Bus.Publish(ctx, msg)
}

// Done and Err forward to the wrapped bus, so that the scheduler sees it
// close (bus.Closer).
func (h *holdBus) Done() <-chan struct{} { return bus.Done(h.Bus) }
func (h *holdBus) Err() error            { return bus.Err(h.Bus) }

func TestAPausedSchedulerFiresOnceForTheMissedTimesAndReportsThem(t *testing.T) {
	cases := []struct {
		name     string
		schedule scheduler.Schedule
		hold     time.Duration // of the first fire's publish
		until    time.Duration
		want     string
		missed   uint64
		first    time.Duration // first missed fire time
		latest   time.Duration // the fire time the catch-up fire stands for
	}{
		{
			name: "interval", schedule: taskSchedule("every_10s", 10), hold: 35 * time.Second, until: 50 * time.Second,
			// The fire of 10 s is held until 45 s; 20 s and 30 s are missed;
			// one fire at 45 s stands for 40 s; 50 s is on time.
			want:   "heddle.tasks.incoming@45s heddle.tasks.incoming@45s heddle.tasks.incoming@50s",
			missed: 2, first: 20 * time.Second, latest: 40 * time.Second,
		},
		{
			name: "cron", hold: 210 * time.Second, until: 5 * time.Minute,
			schedule: scheduler.Schedule{Name: "every_minute", Cron: "* * * * *", DispatchType: scheduler.DispatchTask,
				Task: &scheduler.TaskSpec{WorkerType: "w"}},
			want:   "heddle.tasks.incoming@4m30s heddle.tasks.incoming@4m30s heddle.tasks.incoming@5m0s",
			missed: 2, first: 2 * time.Minute, latest: 4 * time.Minute,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mb := membus.New()
				defer mb.Close()
				b := newHoldBus(mb)
				b.hold.Store(1)
				var obs observed
				m := startMeshWith(t, b, scheduler.Config{Name: "s", Schedules: []scheduler.Schedule{c.schedule}},
					[]heddle.Option{heddle.WithObserver(&obs)})
				firstFire := c.schedule.IntervalSeconds
				if firstFire == 0 {
					firstFire = 60
				}
				time.Sleep(time.Duration(firstFire*float64(time.Second)) + c.hold) // sleep-ok: the publish is held meanwhile
				b.release <- struct{}{}
				time.Sleep(c.until - time.Since(m.start)) // sleep-ok
				if got := times(m.arrivals()); got != c.want {
					t.Errorf("got %s\nwant %s", got, c.want)
				}
				if err := m.stop(); err != nil {
					t.Fatalf("Run = %v, want nil", err)
				}
				missed := m.logs.All(scheduler.EventMissed)
				if len(missed) != 1 {
					t.Fatalf("%d scheduler.missed records, want 1", len(missed))
				}
				rec := missed[0]
				if rec.Attrs["missed"] != c.missed || rec.Str("schedule") != c.schedule.Name ||
					!rec.Attrs["first_missed"].(time.Time).Equal(m.start.Add(c.first)) ||
					!rec.Attrs["scheduled_at"].(time.Time).Equal(m.start.Add(c.latest)) {
					t.Errorf("scheduler.missed %+v; want %d missed from %v, standing for %v", rec.Attrs, c.missed, c.first, c.latest)
				}
				late := m.logs.All(scheduler.EventLate)
				if len(late) != 1 || late[0].Attrs["late"] != 5*time.Second && late[0].Attrs["late"] != 30*time.Second {
					t.Errorf("scheduler.late records %+v; want one for the catch-up fire", late)
				}
				st := m.s.Stats()
				if st.Fired != 3 || st.Missed != c.missed || st.Late != 1 || st.Schedules[c.schedule.Name].Missed != c.missed {
					t.Errorf("Stats() = %+v; want 3 fired, %d missed, 1 late", st, c.missed)
				}
				if got := obs.named(scheduler.EventMissed); len(got) != 1 || got[0].Count != c.missed || got[0].Actor != "scheduler" {
					t.Errorf("observed scheduler.missed %+v; want one from actor scheduler with Count %d", got, c.missed)
				}
				fired := obs.named(scheduler.EventFired)
				if len(fired) != 3 {
					t.Fatalf("observed %d scheduler.fired events, want 3", len(fired))
				}
				for _, e := range fired {
					if e.TaskID == "" || e.WorkerType != c.schedule.Task.WorkerType || e.Tier != "local" ||
						e.Subject != heddle.SubjectTasksIncoming || e.Status != "fired" {
						t.Errorf("observed scheduler.fired %+v; want the task's id, worker type, tier and subject", e)
					}
				}
				if late := obs.named(scheduler.EventLate); len(late) != 1 || late[0].Duration != 5*time.Second && late[0].Duration != 30*time.Second {
					t.Errorf("observed scheduler.late %+v; want one, with how late as its Duration", late)
				}
			})
		})
	}
}

func TestAFireLaterThanTheToleranceIsReportedLate(t *testing.T) {
	for _, c := range []struct {
		tolerance time.Duration
		wantLate  int
	}{
		{0, 1}, // the default, a second
		{4 * time.Second, 1},
		{5 * time.Second, 0},
		{time.Minute, 0},
	} {
		t.Run(fmt.Sprint(c.tolerance), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mb := membus.New()
				defer mb.Close()
				b := newHoldBus(mb)
				b.hold.Store(1)
				m := startMesh(t, b, scheduler.Config{Name: "s", LateTolerance: c.tolerance,
					Schedules: []scheduler.Schedule{taskSchedule("every_minute", 60)}})
				// The fire of 60 s is held until 125 s: the fire of 120 s
				// comes 5 s late, and none is missed.
				time.Sleep(125 * time.Second) // sleep-ok
				b.release <- struct{}{}
				if got, want := times(m.arrivals()), "heddle.tasks.incoming@2m5s heddle.tasks.incoming@2m5s"; got != want {
					t.Errorf("got %s\nwant %s", got, want)
				}
				if err := m.stop(); err != nil {
					t.Fatalf("Run = %v, want nil", err)
				}
				late := m.logs.All(scheduler.EventLate)
				if len(late) != c.wantLate || m.s.Stats().Late != uint64(c.wantLate) {
					t.Fatalf("%d scheduler.late records, Stats().Late %d; want %d", len(late), m.s.Stats().Late, c.wantLate)
				}
				if c.wantLate == 1 && (late[0].Attrs["late"] != 5*time.Second || !late[0].Attrs["scheduled_at"].(time.Time).Equal(m.start.Add(2*time.Minute))) {
					t.Errorf("scheduler.late %+v; want the fire of 2m0s, 5s late", late[0].Attrs)
				}
				if n := len(m.logs.All(scheduler.EventMissed)); n != 0 {
					t.Errorf("%d scheduler.missed records, want none: every fire time had its fire", n)
				}
			})
		})
	}
}

func TestRunStopsTheTimersAndDrainsAPublishUnderWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mb := membus.New()
		defer mb.Close()
		b := newHoldBus(mb)
		b.hold.Store(1)
		m := startMesh(t, b, scheduler.Config{Name: "s", Schedules: []scheduler.Schedule{taskSchedule("every_10s", 10)}})
		time.Sleep(15 * time.Second) // sleep-ok: the fire of 10 s is under way
		m.cancel()
		synctest.Wait()
		select {
		case err := <-m.done:
			t.Fatalf("Run returned %v while a publish was under way; want it to wait for it", err)
		default:
		}
		b.release <- struct{}{}
		if err := <-m.done; err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		time.Sleep(time.Minute) // sleep-ok: no timer outlives Run
		if got := times(m.arrivals()); got != "heddle.tasks.incoming@15s" {
			t.Errorf("got %s; want only the fire under way, published when it was let go", got)
		}
		if err := m.s.Run(context.Background()); !errors.Is(err, heddle.ErrStarted) {
			t.Errorf("a second Run = %v, want heddle.ErrStarted", err)
		}
	})
}

func TestRunCancelsAPublishStillUnderWayAfterTheDrainTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mb := membus.New()
		defer mb.Close()
		b := newHoldBus(mb)
		b.hold.Store(1)
		m := startMesh(t, b, scheduler.Config{Name: "s", DrainTimeout: 5 * time.Second,
			Schedules: []scheduler.Schedule{taskSchedule("every_10s", 10)}})
		time.Sleep(15 * time.Second) // sleep-ok: the fire of 10 s is under way, and stays so
		stopped := time.Now()
		err := m.stop()
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "Config.DrainTimeout") {
			t.Fatalf("Run = %v; want an error wrapping context.DeadlineExceeded naming the drain timeout", err)
		}
		if waited := time.Since(stopped); waited != 5*time.Second {
			t.Errorf("Run returned %v after its context ended, want the drain timeout, 5s", waited)
		}
		failed := m.logs.All(scheduler.EventPublishFailed)
		if len(failed) != 1 || !strings.Contains(failed[0].Str("error"), "context canceled") || m.s.Stats().PublishFailed != 1 {
			t.Errorf("scheduler.publish_failed %+v, Stats %+v; want the cancelled publish reported and counted", failed, m.s.Stats())
		}
		if got := m.arrivals(); len(got) != 0 {
			t.Errorf("got %s; want nothing", times(got))
		}
	})
}

func TestAFailedPublishIsReportedAndTheScheduleGoesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mb := membus.New()
		defer mb.Close()
		b := testkit.FailingBus{Bus: mb, Fail: []string{heddle.SubjectTasksIncoming}}
		m := startMesh(t, b, scheduler.Config{Name: "s", Schedules: []scheduler.Schedule{
			taskSchedule("refused", 10),
			{Name: "goals", IntervalSeconds: 10, DispatchType: scheduler.DispatchGoal, Goal: &scheduler.GoalSpec{Instruction: "x"}},
		}})
		time.Sleep(25 * time.Second) // sleep-ok
		if got, want := times(m.arrivals()), "heddle.goals.incoming@10s heddle.goals.incoming@20s"; got != want {
			t.Errorf("got %s; want the goals only", got)
		}
		if err := m.stop(); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		failed := m.logs.All(scheduler.EventPublishFailed)
		if len(failed) != 2 || failed[0].Str("schedule") != "refused" || failed[0].Str("subject") != heddle.SubjectTasksIncoming ||
			!strings.Contains(failed[0].Str("error"), "test bus refuses") || failed[0].Str("task_id") == "" {
			t.Errorf("scheduler.publish_failed records %+v; want two for schedule refused, naming the subject, task and error", failed)
		}
		st := m.s.Stats()
		if st.PublishFailed != 2 || st.Fired != 2 || st.Schedules["refused"].PublishFailed != 2 || st.Schedules["goals"].Fired != 2 {
			t.Errorf("Stats() = %+v; want refused failed twice and goals fired twice", st)
		}
	})
}

func TestRunReturnsWhenItsBusCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := membus.New()
		m := startMesh(t, b, scheduler.Config{Name: "s", Schedules: []scheduler.Schedule{taskSchedule("every_10s", 10)}})
		time.Sleep(15 * time.Second) // sleep-ok
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		err := <-m.done
		if !errors.Is(err, bus.ErrClosed) {
			t.Fatalf("Run = %v, want an error wrapping bus.ErrClosed", err)
		}
		m.cancel()
	})
}

func TestASchedulerWithNoSchedulesWaitsForItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := membus.New()
		defer b.Close()
		m := startMesh(t, b, scheduler.Config{Name: "idle", Schedules: []scheduler.Schedule{}})
		time.Sleep(time.Hour) // sleep-ok
		if err := m.stop(); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		if st := m.s.Stats(); st.Fired != 0 || len(st.Schedules) != 0 {
			t.Errorf("Stats() = %+v, want nothing", st)
		}
	})
}

func TestChangingTheConfigAfterNewChangesNothingSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := membus.New()
		defer b.Close()
		payload := map[string]any{"check": "disk"}
		cfg := scheduler.Config{Name: "s", Schedules: []scheduler.Schedule{{Name: "a", IntervalSeconds: 1, DispatchType: scheduler.DispatchTask,
			Task: &scheduler.TaskSpec{WorkerType: "w", Payload: payload}}}}
		m := startMesh(t, b, cfg)
		payload["check"] = "changed"
		cfg.Schedules[0].Task.WorkerType = "other"
		time.Sleep(time.Second) // sleep-ok
		got := m.arrivals()
		if len(got) != 1 {
			t.Fatalf("got %s, want one task", times(got))
		}
		task, err := heddle.DecodeTaskMessage(got[0].data)
		if err != nil || task.WorkerType != "w" || task.Payload["check"] != "disk" {
			t.Errorf("task %+v, %v; want worker w with the payload as it was at New", task, err)
		}
		if err := m.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAPanickingObserverDoesNotStopTheSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := membus.New()
		defer b.Close()
		broken := event.ObserverFunc(func(context.Context, event.Event) { panic("observer bug") })
		m := startMeshWith(t, b, scheduler.Config{Name: "s", Schedules: []scheduler.Schedule{taskSchedule("every_10s", 10)}},
			[]heddle.Option{heddle.WithObserver(broken)})
		time.Sleep(30 * time.Second) // sleep-ok
		if got, want := times(m.arrivals()), "heddle.tasks.incoming@10s heddle.tasks.incoming@20s heddle.tasks.incoming@30s"; got != want {
			t.Errorf("got %s\nwant %s", got, want)
		}
		if err := m.stop(); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		if st := m.s.Stats(); st.Fired != 3 {
			t.Errorf("Stats() = %+v, want 3 fires", st)
		}
	})
}
