package natsbus_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// logRecorder is a slog.Handler that keeps every record's message and
// attributes and lets a test wait for an event.
type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
	changed chan struct{} // closed and replaced on every record
}

type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func newLogRecorder() *logRecorder {
	return &logRecorder{changed: make(chan struct{})}
}

func (r *logRecorder) logger() *slog.Logger { return slog.New(recordingHandler{r}) }

func (r *logRecorder) add(rec logRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	close(r.changed)
	r.changed = make(chan struct{})
}

// wait returns the attributes of the first record whose message is msg.
func (r *logRecorder) wait(t *testing.T, msg string) map[string]string {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		for _, rec := range r.records {
			if rec.msg == msg {
				r.mu.Unlock()
				return rec.attrs
			}
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("timed out waiting for log event %s", msg)
		}
	}
}

// atLeast returns the records logged at level or above.
func (r *logRecorder) atLeast(level slog.Level) []logRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logRecord
	for _, rec := range r.records {
		if rec.level >= level {
			out = append(out, rec)
		}
	}
	return out
}

// find returns the records whose message is msg.
func (r *logRecorder) find(msg string) []logRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logRecord
	for _, rec := range r.records {
		if rec.msg == msg {
			out = append(out, rec)
		}
	}
	return out
}

func (r *logRecorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.records {
		if rec.msg == msg {
			n++
		}
	}
	return n
}

type recordingHandler struct{ r *logRecorder }

func (recordingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h recordingHandler) Handle(_ context.Context, rec slog.Record) error {
	attrs := make(map[string]string)
	rec.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})
	h.r.add(logRecord{level: rec.Level, msg: rec.Message, attrs: attrs})
	return nil
}

func (h recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordingHandler) WithGroup(string) slog.Handler      { return h }
