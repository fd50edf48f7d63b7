package registry_test

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/registry"
)

const (
	interval = heddle.DefaultHeartbeatInterval
	second   = time.Second
)

func TestASilentWorkerIsInactiveWithinOneSweepAfterNinetySecondsAndNotBefore(t *testing.T) {
	eachClock(t, registry.Config{}, 1, func(t *testing.T, h *harness) {
		h.beat("w-1", "summarizer", interval, false)
		h.at(30 * second)
		h.beat("w-1", "summarizer", interval, false) // its last heartbeat, at 30 s

		// The sweep at 120 s finds it silent for exactly 90 s: not stale.
		h.at(120 * second)
		if got := h.status("w-1"); got != registry.StatusActive {
			t.Errorf("at 120 s, silent for 90 s, the worker is %q, want active", got)
		}
		h.at(179 * second)
		if got := h.status("w-1"); got != registry.StatusActive {
			t.Errorf("at 179 s, before the next sweep, the worker is %q, want active", got)
		}
		// The sweep at 180 s, the first after it became stale.
		h.at(180 * second)
		if got := h.status("w-1"); got != registry.StatusInactive {
			t.Errorf("at 180 s the worker is %q, want inactive", got)
		}
		stale := h.logs.All("worker.heartbeat_stale")
		if len(stale) != 1 || stale[0].Str("reason") != "no_heartbeat" || stale[0].Str("silent_for") != "2m30s" ||
			stale[0].Str("stale_after") != "1m30s" || stale[0].Str("worker_type") != "summarizer" {
			t.Fatalf("worker.heartbeat_stale records %+v, want one, reason no_heartbeat, silent for 2m30s, stale after 1m30s", stale)
		}
		if got := h.reg().TypeState("summarizer"); got != registry.TypeDown {
			t.Errorf("TypeState = %q with its only worker inactive, want down", got)
		}

		h.at(300 * second)
		if n := len(h.logs.All("worker.heartbeat_stale")); n != 1 {
			t.Errorf("%d worker.heartbeat_stale records after two more sweeps, want the one", n)
		}
		// Its next heartbeat reactivates it at once, without a sweep.
		h.beat("w-1", "summarizer", interval, false)
		if got := h.status("w-1"); got != registry.StatusActive {
			t.Errorf("after a heartbeat the worker is %q, want active again", got)
		}
		if got := events(h.logs, "worker.reactivated", "previous_status"); !slices.Equal(got, []string{"w-1 inactive"}) {
			t.Errorf("worker.reactivated records %q, want one, from inactive", got)
		}
		h.at(360 * second)
		s := h.reg().Stats()
		if h.status("w-1") != registry.StatusActive || s.MarkedStale != 1 || s.Reactivated != 1 || s.Heartbeats != 3 || s.Joined != 1 ||
			s.Active != 1 || s.Workers != 1 || s.Sweeps != 6 {
			t.Errorf("at 360 s: status %q, Stats() = %+v; want active, 1 marked stale, 1 reactivated, 3 heartbeats, 6 sweeps",
				h.status("w-1"), s)
		}
	})
}

func TestAGracefullyStoppedWorkerIsStoppedAtOnce(t *testing.T) {
	eachClock(t, registry.Config{}, 1, func(t *testing.T, h *harness) {
		h.beat("w-1", "summarizer", interval, false)
		h.at(10 * second)
		h.beat("w-1", "summarizer", interval, true)
		if got := h.status("w-1"); got != registry.StatusStopped {
			t.Errorf("after its stopping heartbeat, before any sweep, the worker is %q, want stopped", got)
		}
		if got := events(h.logs, "worker.stopped", "status"); !slices.Equal(got, []string{"w-1 stopped"}) {
			t.Errorf("worker.stopped records %q, want one", got)
		}
		if got := h.reg().TypeState("summarizer"); got != registry.TypeDown {
			t.Errorf("TypeState = %q, want down", got)
		}
		h.at(10 * time.Minute)
		if got, stale := h.status("w-1"), h.logs.All("worker.heartbeat_stale"); got != registry.StatusStopped || len(stale) != 0 {
			t.Errorf("ten minutes later the worker is %q with %d stale records, want stopped and none", got, len(stale))
		}
		if s := h.reg().Stats(); s.MarkedStopped != 1 || s.Stopped != 1 || s.Active != 0 {
			t.Errorf("Stats() = %+v, want 1 marked stopped and 1 stopped", s)
		}
	})
}

func TestAnExpectedWorkerThatNeverHeartbeatsGoesInactive(t *testing.T) {
	eachClock(t, registry.Config{}, 1, func(t *testing.T, h *harness) {
		if err := h.reg().Expect("ingest", "ingest-0"); err != nil {
			t.Fatal(err)
		}
		if got := h.reg().TypeState("ingest"); got != registry.TypeUp {
			t.Errorf("TypeState of an expected type = %q, want up until it goes stale", got)
		}
		if got := h.reg().TypeState("python_llm"); got != registry.TypeUnknown {
			t.Errorf("TypeState of a type nothing ever heartbeated = %q, want unknown (not down)", got)
		}
		h.at(119 * second)
		if got := h.status("ingest-0"); got != registry.StatusActive {
			t.Errorf("at 119 s the expected worker is %q, want active", got)
		}
		h.at(120 * second)
		if got := h.status("ingest-0"); got != registry.StatusInactive {
			t.Errorf("at 120 s, silent since it was expected 120 s ago, the worker is %q, want inactive", got)
		}
		if got := events(h.logs, "worker.heartbeat_stale", "reason"); !slices.Equal(got, []string{"ingest-0 never_heartbeated"}) {
			t.Errorf("worker.heartbeat_stale records %q, want one with reason never_heartbeated", got)
		}
		e, _ := h.reg().Worker("ingest-0")
		if e.Heartbeat != nil || !e.FirstHeartbeat.IsZero() || e.Heartbeats != 0 || e.StaleAfter != 90*second {
			t.Errorf("entry %+v, want no heartbeat and a 90 s threshold", e)
		}
		if got := h.reg().TypeState("ingest"); got != registry.TypeDown {
			t.Errorf("TypeState = %q, want down", got)
		}
		// Expecting it again changes nothing; its first heartbeat brings
		// it back.
		if err := h.reg().Expect("ingest", "ingest-0"); err != nil || h.status("ingest-0") != registry.StatusInactive {
			t.Errorf("Expect again = %v, status %q; want nil and no change", err, h.status("ingest-0"))
		}
		h.beat("ingest-0", "ingest", interval, false)
		if got := h.status("ingest-0"); got != registry.StatusActive || len(h.logs.All("worker.joined")) != 1 ||
			len(h.logs.All("worker.reactivated")) != 1 {
			t.Errorf("after its first heartbeat the worker is %q; want active, joined and reactivated", got)
		}
	})
}

func TestAWorkerIsJudgedByTheIntervalItAnnounces(t *testing.T) {
	eachClock(t, registry.Config{}, 1, func(t *testing.T, h *harness) {
		h.beat("fast", "a", 10*second, false) // stale after 30 s
		h.beat("slow", "b", 2*time.Minute, false)
		h.at(60 * second)
		if got := []registry.Status{h.status("fast"), h.status("slow")}; !slices.Equal(got, []registry.Status{registry.StatusInactive, registry.StatusActive}) {
			t.Errorf("at 60 s the 10 s and 2 min workers are %q, want inactive and active", got)
		}
		h.at(360 * second)
		if got := h.status("slow"); got != registry.StatusActive {
			t.Errorf("at 360 s, silent for exactly 3 × 2 min, the slow worker is %q, want active", got)
		}
		h.at(420 * second)
		if got := h.status("slow"); got != registry.StatusInactive {
			t.Errorf("at 420 s the slow worker is %q, want inactive", got)
		}
	})
}

func TestRegistriesFedTheSameHeartbeatsAgree(t *testing.T) {
	eachClock(t, registry.Config{}, 2, func(t *testing.T, h *harness) {
		h.beat("a-1", "a", interval, false)
		h.beat("a-2", "a", interval, false)
		h.beat("b-1", "b", interval, false)
		if err := h.regs[0].Expect("c", "c-1"); err != nil {
			t.Fatal(err)
		}
		if err := h.regs[1].Expect("c", "c-1"); err != nil {
			t.Fatal(err)
		}
		h.at(30 * second)
		h.beat("a-1", "a", interval, false)
		h.beat("b-1", "b", interval, true)
		h.at(180 * second)
		first, second := h.regs[0].List(), h.regs[1].List()
		if !reflect.DeepEqual(first, second) {
			t.Errorf("the registries disagree:\n%+v\n%+v", first, second)
		}
		var got []string
		for _, e := range first {
			got = append(got, e.InstanceID+" "+string(e.Status))
		}
		if want := []string{"a-1 inactive", "a-2 inactive", "b-1 stopped", "c-1 inactive"}; !slices.Equal(got, want) {
			t.Errorf("table %q, want %q", got, want)
		}
		if t0, t1 := h.regs[0].Types(), h.regs[1].Types(); !reflect.DeepEqual(t0, t1) || len(t0) != 3 {
			t.Errorf("type summaries differ or miss a type:\n%+v\n%+v", t0, t1)
		}
	})
}

func TestRetentionForgetsWorkersLongInactiveOrStopped(t *testing.T) {
	eachClock(t, registry.Config{Retention: 10 * time.Minute}, 1, func(t *testing.T, h *harness) {
		h.beat("gone", "a", interval, true)
		h.beat("silent", "b", interval, false)
		h.beat("alive", "c", interval, false)
		for d := 30 * second; d <= 15*time.Minute; d += 30 * second {
			h.at(d)
			h.beat("alive", "c", interval, false)
		}
		// "gone" stopped at 0 and is forgotten at the first sweep after
		// 10 min (11 min); "silent" went inactive at 120 s and is
		// forgotten at 13 min.
		if got := events(h.logs, "worker.forgotten", "reason"); !slices.Equal(got, []string{"gone retention", "silent retention"}) {
			t.Errorf("worker.forgotten records %q, want gone then silent, for retention", got)
		}
		if _, ok := h.reg().Worker("gone"); ok {
			t.Error("the stopped worker is still in the table")
		}
		if got := []registry.TypeState{h.reg().TypeState("a"), h.reg().TypeState("b"), h.reg().TypeState("c")}; !slices.Equal(got,
			[]registry.TypeState{registry.TypeUnknown, registry.TypeUnknown, registry.TypeUp}) {
			t.Errorf("type states %q, want the forgotten types unknown again and c up", got)
		}
		if s := h.reg().Stats(); s.Forgotten != 2 || s.Workers != 1 {
			t.Errorf("Stats() = %+v, want 2 forgotten and 1 worker left", s)
		}
	})
}
