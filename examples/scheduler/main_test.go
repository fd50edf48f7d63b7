package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/examples/internal/exampletest"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/natsbus"
	"github.com/heddle-go/heddle/scheduler"
)

func TestMain(m *testing.M) {
	exampletest.RunMain(main)
	slog.SetDefault(slog.New(slog.DiscardHandler))
	goleak.VerifyTestMain(m)
}

// The timetable of schedules.yaml, run in process on membus inside a
// testing/synctest bubble, whose clock starts on Saturday 2000-01-01 at
// 00:00 UTC and moves only when everything waits: two and a half days of
// schedule pass at once. (heddle.Serve is not run in the bubble: it waits
// for signals, which a bubble cannot wait for; TestServeRunsTheSchedulerUntilItsContextEnds
// runs it on the real clock.)
func TestTheExampleTimetableFiresAtItsTimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg, err := loadConfig("schedules.yaml")
		if err != nil {
			t.Fatal(err)
		}
		b := membus.New()
		defer b.Close()
		documents, err := heddle.GoalSubject("documents")
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		count := map[string]int{}
		var digests []string
		for _, subject := range []string{heddle.SubjectTasksIncoming, heddle.SubjectGoalsIncoming, documents} {
			if _, err := b.Subscribe(t.Context(), subject, func(_ context.Context, m *bus.Msg) error {
				mu.Lock()
				defer mu.Unlock()
				count[m.Subject]++
				if m.Subject == documents {
					g, err := heddle.DecodeOrchestratorGoal(m.Data)
					if err != nil {
						t.Error(err)
					}
					digests = append(digests, fmt.Sprintf("%s %s %v", time.Now().UTC().Format(time.DateTime), g.Priority, g.Context["file_ref"]))
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		s, err := scheduler.New(b, cfg)
		if err != nil {
			t.Fatal(err)
		}
		group, err := heddle.Start(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		// To Monday 2000-01-03 09:00 in Paris, 08:00 UTC: 56 hours.
		time.Sleep(56 * time.Hour) // sleep-ok: moves the bubble's clock
		synctest.Wait()
		if err := group.Stop(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		want := map[string]int{
			heddle.SubjectGoalsIncoming: 56,          // hourly_summarize, every hour
			heddle.SubjectTasksIncoming: 56 * 60 / 5, // every_5m_greeting
			documents:                   1,           // morning_digest, Monday only
		}
		for subject, n := range want {
			if count[subject] != n {
				t.Errorf("%d messages on %s, want %d", count[subject], subject, n)
			}
		}
		if len(digests) != 1 || digests[0] != "2000-01-03 08:00:00 high inbox/overnight.txt" {
			t.Errorf("morning digests %q; want one at 09:00 in Paris on Monday, priority high, with its file_ref", digests)
		}
		if st := s.Stats(); st.Fired != 56+672+1 || st.Missed != 0 || st.Late != 0 {
			t.Errorf("Stats() = %+v; want every fire on time", st)
		}
	})
}

// writeConfig writes a config whose one schedule sends a task every 20 ms.
func writeConfig(t *testing.T, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "schedules.yaml")
	doc := `
name: test
schedules:
  - name: fast
    interval_seconds: 0.02
    dispatch_type: task
    task: {worker_type: greeter, payload: {name: Ada}}
` + extra
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServeRunsTheSchedulerUntilItsContextEnds(t *testing.T) {
	cfg, err := loadConfig(writeConfig(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	b := membus.New()
	defer b.Close()
	tasks := make(chan heddle.TaskMessage, 64)
	if _, err := b.Subscribe(t.Context(), heddle.SubjectTasksIncoming, func(_ context.Context, m *bus.Msg) error {
		task, err := heddle.DecodeTaskMessage(m.Data)
		if err != nil {
			t.Error(err)
		}
		select {
		case tasks <- task:
		default:
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serve(ctx, b, cfg) }()
	select {
	case task := <-tasks:
		if task.WorkerType != "greeter" || task.Payload["name"] != "Ada" {
			t.Errorf("task %+v; want the greeter's", task)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no task came from the scheduler")
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("serve = %v, want nil after its context ended", err)
	}
}

func TestTheSchedulerProcessSendsTasksOverNATSUntilSIGTERMThenExitsCleanly(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM cannot be sent to a process on Windows")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// An embedded server even when HEDDLE_TEST_NATS_URL names a shared one:
	// the process publishes on the mesh's own subjects.
	url := natstest.StartServer(t, nil).ClientURL()
	b, err := natsbus.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tasks := make(chan *bus.Msg, 64)
	if _, err := b.Subscribe(ctx, heddle.SubjectTasksIncoming, func(_ context.Context, m *bus.Msg) error {
		select {
		case tasks <- m:
		default:
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	proc := exampletest.Start(t, ctx, "-nats", url, "-config", writeConfig(t, ""))
	select {
	case m := <-tasks:
		if task, err := heddle.DecodeTaskMessage(m.Data); err != nil || task.Metadata[scheduler.MetadataScheduledBy] != "fast" {
			t.Errorf("task %+v, %v; want one scheduled by fast", task, err)
		}
	case <-ctx.Done():
		t.Fatalf("no task came from the scheduler process\nits log:\n%s", proc.Stderr)
	}
	if err := proc.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := proc.Wait(); err != nil {
		t.Fatalf("the scheduler process ended with %v after SIGTERM, want exit status 0\nits log:\n%s", err, proc.Stderr)
	}
}

func TestTheSchedulerProcessRefusesABadConfigNamingEachProblem(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := writeConfig(t, "  - {name: broken, cron: '0 9 * * MON-FRY', dispatch_type: task, task: {worker_type: greeter, model_tier: huge}}\n")
	proc := exampletest.Start(t, ctx, "-config", path)
	if err := proc.Wait(); err == nil {
		t.Fatal("the scheduler process exited with status 0 on a bad config, want 1")
	}
	log := proc.Stderr.String()
	for _, want := range []string{
		"heddle: invalid scheduler config in " + path,
		"schedules[1].cron: invalid cron expression '0 9 * * MON-FRY'",
		"schedules[1].task.model_tier: 'model_tier' must be one of local, standard, frontier, got 'huge' (line 8)",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("its log lacks %q:\n%s", want, log)
		}
	}
}
