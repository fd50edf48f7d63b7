// Package testlog records the slog events of actors under test, so that
// a test waits for an event instead of sleeping. Only tests import it.
package testlog

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// MaxWait bounds every wait for a log record; only a broken
// implementation reaches it.
const MaxWait = 20 * time.Second

// Record is one recorded slog record. Attrs holds every attribute,
// those given to the logger's With included, by key, as its resolved
// Value.Any(); Str gives an attribute as its resolved Value.String().
type Record struct {
	Level   slog.Level
	Message string
	Attrs   map[string]any
	values  map[string]slog.Value
}

// Str returns the attribute key as text (Value.String of the resolved
// value), or "" when the record has no such attribute.
func (r Record) Str(key string) string {
	v, ok := r.values[key]
	if !ok {
		return ""
	}
	return v.String()
}

// Recorder keeps every record logged through its loggers, at every
// level, and lets a test wait for records instead of sleeping.
type Recorder struct {
	mu      sync.Mutex
	records []Record
	changed chan struct{} // closed and replaced at every record
}

func New() *Recorder {
	return &Recorder{changed: make(chan struct{})}
}

// logger returns a logger recording into r.
func (r *Recorder) Logger() *slog.Logger { return slog.New(&handler{r: r}) }

func (r *Recorder) add(rec Record) {
	r.mu.Lock()
	r.records = append(r.records, rec)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// all returns the records whose message is msg.
func (r *Recorder) All(msg string) []Record { return r.Events(msg, "") }

// events returns the records whose message is msg and, when taskID is not
// empty, whose task_id attribute is taskID.
func (r *Recorder) Events(msg, taskID string) []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Record
	for _, rec := range r.records {
		if rec.Message == msg && (taskID == "" || rec.Attrs["task_id"] == taskID) {
			out = append(out, rec)
		}
	}
	return out
}

// wait returns the records whose message is msg once there are at least n.
func (r *Recorder) Wait(t *testing.T, msg string, n int) []Record {
	t.Helper()
	return r.WaitFor(t, msg, "", n)
}

// waitFor returns the records whose message is msg (and, when taskID is
// not empty, whose task_id is taskID) once there are at least n, failing
// the test when they are not logged within MaxWait.
func (r *Recorder) WaitFor(t *testing.T, msg, taskID string, n int) []Record {
	t.Helper()
	timer := time.NewTimer(MaxWait)
	defer timer.Stop()
	for {
		r.mu.Lock()
		changed := r.changed
		r.mu.Unlock()
		if recs := r.Events(msg, taskID); len(recs) >= n {
			return recs
		}
		select {
		case <-changed:
		case <-timer.C:
			what := ""
			if taskID != "" {
				what = " for task_id " + taskID
			}
			t.Fatalf("timed out after %s waiting for %d %q log record(s)%s; got %d",
				MaxWait, n, msg, what, len(r.Events(msg, taskID)))
		}
	}
}

// handler is the slog.Handler behind Recorder.logger.
type handler struct {
	r     *Recorder
	attrs []slog.Attr
}

func (h *handler) Enabled(context.Context, slog.Level) bool { return true }

func (h *handler) Handle(_ context.Context, rec slog.Record) error {
	out := Record{Level: rec.Level, Message: rec.Message, Attrs: map[string]any{}, values: map[string]slog.Value{}}
	set := func(a slog.Attr) bool {
		v := a.Value.Resolve()
		out.Attrs[a.Key] = v.Any()
		out.values[a.Key] = v
		return true
	}
	for _, a := range h.attrs {
		set(a)
	}
	rec.Attrs(set)
	h.r.add(out)
	return nil
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{r: h.r, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h *handler) WithGroup(string) slog.Handler { return h }
