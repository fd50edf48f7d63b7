package scheduler

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// cronParser reads the standard five fields and the descriptors
// (@hourly, ...); parseCron refuses @every and time zone prefixes first.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// cronHorizon is how far ahead cron.Schedule.Next looks for a time: an
// expression with no time within it (February 30th) never fires.
const cronHorizon = "five years"

// parseCron parses expr as Schedule.Cron documents. The schedule's time
// zone is applied by the caller, which hands Next its times in that zone.
func parseCron(expr string) (sched cron.Schedule, err error) {
	spec := strings.TrimSpace(expr)
	switch {
	case spec == "":
		return nil, errors.New("empty expression")
	case strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ="):
		return nil, errors.New("a time zone prefix is not accepted; name the zone in the 'timezone' key")
	case strings.HasPrefix(spec, "@every"):
		return nil, errors.New("@every is not accepted; use 'interval_seconds' instead of 'cron'")
	}
	defer func() {
		// The parser is third-party code reading user input: whatever it
		// does with odd input, the answer is an error, not a crash.
		if v := recover(); v != nil {
			sched, err = nil, fmt.Errorf("unreadable expression (%v)", v)
		}
	}()
	sched, err = cronParser.Parse(spec)
	if err != nil {
		return nil, err
	}
	// A fixed reference, so that validation does not depend on the day it
	// runs: an expression that fires once in five years from it fires
	// again within the following five.
	if sched.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("it matches no time within %s", cronHorizon)
	}
	return sched, nil
}

// timer is a schedule's sequence of fire times.
type timer interface {
	// first returns the first fire time after Run started at start.
	first(start time.Time) time.Time
	// catchUp is called when the scheduler wakes at now, not before the
	// pending fire time next. It returns how many fire times have passed
	// (next and those after it up to now, at least one), the latest of
	// them, and the first fire time after now.
	catchUp(next, now time.Time) (due uint64, latest, following time.Time)
	// wait caps one sleep: a timer whose times are read on the wall
	// clock wakes now and then to notice a clock that jumped.
	wait(d time.Duration) time.Duration
}

// every fires every d from the start, on the monotonic clock: a change of
// the wall clock moves none of its fires.
type every struct{ d time.Duration }

func (e every) first(start time.Time) time.Time { return start.Add(e.d) }

func (e every) catchUp(next, now time.Time) (uint64, time.Time, time.Time) {
	k := now.Sub(next) / e.d // fire times after next up to now
	latest := next.Add(k * e.d)
	return uint64(k) + 1, latest, latest.Add(e.d)
}

func (e every) wait(d time.Duration) time.Duration { return d }

// wallCheck bounds each sleep of a cron schedule: a cron time is a time
// on the wall clock, while timers run on the monotonic clock, which does
// not follow a clock set forward (nor, on some systems, a suspended
// machine's sleep). Waking once a minute notices the change within a
// minute, however far ahead the next time is.
const wallCheck = time.Minute

// maxCatchUp bounds the fire times counted after a long pause; beyond it
// the count of missed fires stops growing (a cron expression fires at
// most once a minute, so it is reached after two years of pause).
const maxCatchUp = 1 << 20

// crontab fires at the times of sched read in loc, on the wall clock.
type crontab struct {
	sched cron.Schedule
	loc   *time.Location
}

func (c crontab) next(t time.Time) time.Time {
	// Round(0) drops the monotonic reading: the comparisons that follow
	// are of wall clock times.
	return c.sched.Next(t.Round(0).In(c.loc))
}

func (c crontab) first(start time.Time) time.Time { return c.next(start) }

func (c crontab) catchUp(next, now time.Time) (uint64, time.Time, time.Time) {
	now = now.Round(0)
	due, latest := uint64(1), next
	for due < maxCatchUp {
		n := c.next(latest)
		if n.IsZero() || n.After(now) {
			break
		}
		due, latest = due+1, n
	}
	return due, latest, c.next(now)
}

func (c crontab) wait(d time.Duration) time.Duration { return min(d, wallCheck) }
