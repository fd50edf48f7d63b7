package scheduler

import (
	"testing"
	"time"
	_ "time/tzdata"
)

func mustCron(t *testing.T, expr, zone string) crontab {
	t.Helper()
	sched, err := parseCron(expr)
	if err != nil {
		t.Fatal(err)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	return crontab{sched: sched, loc: loc}
}

func TestACronCatchUpCountsTheFireTimesPassedOnTheWallClock(t *testing.T) {
	hourly := mustCron(t, "0 * * * *", "UTC")
	at := func(h, m int) time.Time { return time.Date(2026, 3, 2, h, m, 0, 0, time.UTC) }
	for _, c := range []struct {
		name              string
		now               time.Time
		due               uint64
		latest, following time.Time
	}{
		{"on time", at(9, 0), 1, at(9, 0), at(10, 0)},
		{"a little late", at(9, 0).Add(300 * time.Millisecond), 1, at(9, 0), at(10, 0)},
		{"just before the next", at(9, 59), 1, at(9, 0), at(10, 0)},
		// A machine that slept, or a clock set forward, from 9:00 to 12:30.
		{"three hours and a half late", at(12, 30), 4, at(12, 0), at(13, 0)},
		{"exactly on a later time", at(12, 0), 4, at(12, 0), at(13, 0)},
	} {
		due, latest, following := hourly.catchUp(at(9, 0), c.now)
		if due != c.due || !latest.Equal(c.latest) || !following.Equal(c.following) {
			t.Errorf("%s: catchUp(9:00, %s) = %d, %s, %s; want %d, %s, %s", c.name, c.now.Format(time.Kitchen),
				due, latest.Format(time.Kitchen), following.Format(time.Kitchen), c.due, c.latest.Format(time.Kitchen), c.following.Format(time.Kitchen))
		}
	}
}

func TestACronScheduleReadsItsTimesInItsZoneAcrossADaylightSavingChange(t *testing.T) {
	paris := mustCron(t, "0 9 * * *", "Europe/Paris")
	// Paris moves from UTC+1 to UTC+2 on 2026-03-29.
	start := time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC)
	first := paris.first(start)
	second := paris.next(first)
	if want := time.Date(2026, 3, 28, 8, 0, 0, 0, time.UTC); !first.Equal(want) {
		t.Errorf("first fire %s, want %s (09:00 CET)", first.UTC(), want)
	}
	if want := time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC); !second.Equal(want) {
		t.Errorf("second fire %s, want %s (09:00 CEST)", second.UTC(), want)
	}
}

func TestAnIntervalCatchUpIsArithmeticHoweverLongThePause(t *testing.T) {
	e := every{d: time.Millisecond}
	next := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	due, latest, following := e.catchUp(next, next.Add(24*time.Hour+time.Microsecond))
	if want := uint64(24*time.Hour/time.Millisecond) + 1; due != want {
		t.Errorf("due = %d, want %d", due, want)
	}
	if !latest.Equal(next.Add(24*time.Hour)) || !following.Equal(next.Add(24*time.Hour+time.Millisecond)) {
		t.Errorf("latest %s, following %s; want a day and a day and a millisecond after next", latest, following)
	}
}

func TestACronSleepIsCappedToNoticeAWallClockChange(t *testing.T) {
	c := mustCron(t, "0 0 1 1 *", "UTC")
	if got := c.wait(300 * 24 * time.Hour); got != wallCheck {
		t.Errorf("wait(300 days) = %v, want %v", got, wallCheck)
	}
	if got := c.wait(time.Second); got != time.Second {
		t.Errorf("wait(1s) = %v, want 1s", got)
	}
	if got := (every{d: time.Hour}).wait(2 * time.Hour); got != 2*time.Hour {
		t.Errorf("an interval's wait(2h) = %v, want 2h: it runs on the monotonic clock", got)
	}
}
