package heddle_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// logRecorderWait bounds every wait for a log record; only a broken
// implementation reaches it.
const logRecorderWait = 20 * time.Second

// logRecord is one recorded slog record. Attrs holds every attribute,
// those given to the logger's With included, by key, as its resolved
// Value.Any(); Str gives an attribute as its resolved Value.String().
type logRecord struct {
	Level   slog.Level
	Message string
	Attrs   map[string]any
	values  map[string]slog.Value
}

// Str returns the attribute key as text (Value.String of the resolved
// value), or "" when the record has no such attribute.
func (r logRecord) Str(key string) string {
	v, ok := r.values[key]
	if !ok {
		return ""
	}
	return v.String()
}

// logRecorder keeps every record logged through its loggers, at every
// level, and lets a test wait for records instead of sleeping.
type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
	changed chan struct{} // closed and replaced at every record
}

func newLogRecorder() *logRecorder {
	return &logRecorder{changed: make(chan struct{})}
}

// logger returns a logger recording into r.
func (r *logRecorder) logger() *slog.Logger { return slog.New(&logRecorderHandler{r: r}) }

func (r *logRecorder) add(rec logRecord) {
	r.mu.Lock()
	r.records = append(r.records, rec)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// all returns the records whose message is msg.
func (r *logRecorder) all(msg string) []logRecord { return r.events(msg, "") }

// events returns the records whose message is msg and, when taskID is not
// empty, whose task_id attribute is taskID.
func (r *logRecorder) events(msg, taskID string) []logRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logRecord
	for _, rec := range r.records {
		if rec.Message == msg && (taskID == "" || rec.Attrs["task_id"] == taskID) {
			out = append(out, rec)
		}
	}
	return out
}

// wait returns the records whose message is msg once there are at least n.
func (r *logRecorder) wait(t *testing.T, msg string, n int) []logRecord {
	t.Helper()
	return r.waitFor(t, msg, "", n)
}

// waitFor returns the records whose message is msg (and, when taskID is
// not empty, whose task_id is taskID) once there are at least n, failing
// the test when they are not logged within logRecorderWait.
func (r *logRecorder) waitFor(t *testing.T, msg, taskID string, n int) []logRecord {
	t.Helper()
	timer := time.NewTimer(logRecorderWait)
	defer timer.Stop()
	for {
		r.mu.Lock()
		changed := r.changed
		r.mu.Unlock()
		if recs := r.events(msg, taskID); len(recs) >= n {
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
				logRecorderWait, n, msg, what, len(r.events(msg, taskID)))
		}
	}
}

// logRecorderHandler is the slog.Handler behind logRecorder.logger.
type logRecorderHandler struct {
	r     *logRecorder
	attrs []slog.Attr
}

func (h *logRecorderHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorderHandler) Handle(_ context.Context, rec slog.Record) error {
	out := logRecord{Level: rec.Level, Message: rec.Message, Attrs: map[string]any{}, values: map[string]slog.Value{}}
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

func (h *logRecorderHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorderHandler{r: h.r, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h *logRecorderHandler) WithGroup(string) slog.Handler { return h }
