package dispatch

import (
	"bytes"
	"context"
	"log/slog"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/wire"
)

// Every message on a result subject is classified exactly once, by
// classify, as collected, ignored, duplicate, parse_error or late; the
// verdict is counted and reported as one result_stream.* event. A Stream
// and a Caller differ only in the state they keep about the task_ids
// they wait for, which each exposes as a tracker.

// verdict is what became of one message.
type verdict int

const (
	verdictIgnored verdict = iota
	verdictDuplicate
	verdictLate
	verdictParseError
	verdictCollected
)

// outcome is a tracker's decision about one decoded result.
type outcome struct {
	verdict verdict
	log     emitter // where the event goes
	reason  string  // why it was ignored or late
	err     error   // why it is a parse_error
	// A collected result is handed over after it is counted and reported,
	// so a consumer holding it sees both: given to a Caller's waiter, to,
	// or announced to a Stream's readers.
	to     *callerWait
	stream *Stream
}

// handOver gives a collected result to whoever waits for it.
func (o *outcome) handOver(res *heddle.TaskResult) {
	if o.to != nil {
		o.to.res = *res
		o.to.done <- struct{}{}
	}
	if o.stream != nil {
		o.stream.notify()
	}
}

// tracker is the state of a Stream or a Caller.
type tracker interface {
	// expects reports, for a task_id read without decoding the message,
	// whether its result may matter (relevant: worth decoding) and
	// whether someone waits for it now (waiting: a malformed message
	// naming it is that waiter's parse_error), with the emitter for the
	// event.
	// id is read where it lies in the message, not copied.
	expects(id []byte) (relevant, waiting bool, log emitter)
	// take decides about a decoded result, whose message is raw, and
	// updates the state. raw is the bus's: a tracker keeping it copies it.
	take(res *heddle.TaskResult, raw []byte) outcome
	// reject records that a result for id, a task someone may wait for,
	// arrived at at and was rejected for err (a parse_error): the wait
	// goes on, and its timeout will name the result.
	reject(id string, at time.Time, err error)
}

// counters are the verdicts counted.
type counters struct {
	collected, ignored, duplicates, parseErrors, late, timeouts atomic.Uint64
}

// classify classifies msg, a message on subject, for t.
func classify(ctx context.Context, subject string, msg *bus.Msg, t tracker, n *counters) {
	if raw, ok := fastTaskID(msg.Data); ok {
		// Other tasks' results on a shared subject (a goal's subtasks seen
		// by the goal's submitter, other callers' results) are ignored
		// without decoding them.
		if relevant, _, log := t.expects(raw); !relevant {
			if !log.enabled(ctx, slog.LevelDebug, event.ResultStreamIgnored) {
				n.ignored.Add(1)
				return
			}
			id := string(raw)
			log.countEvent(ctx, &n.ignored, slog.LevelDebug, event.Event{Name: event.ResultStreamIgnored, Subject: subject, TaskID: id,
				Detail: "unknown task_id"}, slog.String("subject", subject), slog.String("task_id", id), slog.String("reason", "unknown task_id"))
			return
		}
	}
	res, err := heddle.DecodeTaskResult(msg.Data)
	if err != nil {
		id := peekTaskID(msg.Data)
		_, waiting, log := t.expects([]byte(id))
		if id != "" && !waiting {
			log.countEvent(ctx, &n.ignored, slog.LevelDebug, event.Event{Name: event.ResultStreamIgnored, Subject: subject, TaskID: id,
				Detail: "unknown task_id", Err: err}, slog.String("subject", subject), slog.String("task_id", id),
				slog.String("reason", "unknown task_id"), slog.String("error", err.Error()))
			return
		}
		if id != "" {
			t.reject(id, time.Now(), err)
		}
		log.countEvent(ctx, &n.parseErrors, slog.LevelWarn, event.Event{Name: event.ResultStreamParseError, Subject: subject, TaskID: id,
			Reason: event.ReasonDecode, Err: err}, slog.String("subject", subject), slog.String("task_id", id), slog.String("error", err.Error()))
		return
	}
	o := t.take(&res, msg.Data)
	switch o.verdict {
	case verdictIgnored:
		logResult(ctx, o.log, &n.ignored, slog.LevelDebug, "result_stream.ignored", subject, &res, "reason", o.reason)
	case verdictDuplicate:
		logResult(ctx, o.log, &n.duplicates, slog.LevelInfo, "result_stream.duplicate", subject, &res, "", "")
	case verdictLate:
		logResult(ctx, o.log, &n.late, slog.LevelWarn, "result_stream.late", subject, &res, "reason", o.reason)
	case verdictParseError:
		t.reject(res.TaskID, time.Now(), o.err)
		logResult(ctx, o.log, &n.parseErrors, slog.LevelWarn, "result_stream.parse_error", subject, &res, "error", o.err.Error())
	case verdictCollected:
		// Deferred, so that the result is handed over even if emitting its
		// event never returns (a runtime.Goexit in the logger's handler):
		// the call waiting for it must not wait out its timeout.
		defer o.handOver(&res)
		// A Stream's collected results are INFO, as the Python
		// ResultStream logs them; a single-result wait (Request, Call, a
		// Caller) returns its result, which says as much, and logs it at
		// DEBUG, so that a task costs one INFO line (the worker's).
		level := slog.LevelInfo
		if o.to != nil {
			level = slog.LevelDebug
		}
		logResult(ctx, o.log, &n.collected, level, "result_stream.collected", subject, &res, "status", string(res.Status))
	}
}

// logResult counts and reports event about res, a result on subject, in
// one call (one count, one event), building the attributes only when
// someone listens. A non-empty key adds the attribute key=value.
func logResult(ctx context.Context, log emitter, count *atomic.Uint64, level slog.Level, name, subject string, res *heddle.TaskResult, key, value string) {
	if !log.enabled(ctx, level, name) {
		count.Add(1)
		return
	}
	attrs := []slog.Attr{slog.String("subject", subject), slog.String("task_id", res.TaskID),
		slog.String("parent_task_id", res.ParentTaskID), slog.String("worker_type", res.WorkerType)}
	ev := event.Event{Name: name, Subject: subject, TaskID: res.TaskID, WorkerType: res.WorkerType, Status: string(res.Status)}
	switch key {
	case "":
	case "reason":
		ev.Detail = value
	case "error":
		ev.Reason, ev.Detail = event.ReasonDecode, value
	}
	if key != "" {
		attrs = append(attrs, slog.String(key, value))
	}
	log.countEvent(ctx, count, level, ev, attrs...)
}

// fastTaskID reads the task_id of a result written as Go and Python
// Heddle write them, task_id first and without escapes:
// {"task_id":"...", or {"task_id": "...",. It reports false for any other
// shape, which is then decoded in full (as for a task_id holding an escape
// or invalid UTF-8, which the decoder rewrites), and for a document in which a
// later key may be task_id too, since the decoder (as encoding/json) takes
// the last: a key written plainly, or spelled with \u escapes
// ("task\u005fid"). Where it reports true, wire.PeekString reads the same
// task_id from any document that is a JSON object (FuzzFastTaskID).
func fastTaskID(data []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(data, []byte(`{"task_id":`))
	if !ok {
		return nil, false
	}
	rest, _ = bytes.CutPrefix(rest, []byte(" "))
	rest, ok = bytes.CutPrefix(rest, []byte(`"`))
	if !ok {
		return nil, false
	}
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || bytes.IndexByte(rest[:end], '\\') >= 0 || !utf8.Valid(rest[:end]) {
		// An escape, or bytes the decoder would replace with U+FFFD.
		return nil, false
	}
	if tail := rest[end:]; bytes.Contains(tail, []byte(`"task_id"`)) || mayEscapeTaskID(tail) {
		return nil, false
	}
	return rest[:end], true
}

// mayEscapeTaskID reports whether b holds a \u escape that may stand for a
// letter of task_id: all of them (_ a d i k s t) lie between U+0050 and
// U+007F. Other escapes, such as Python's \u00e9 for é, leave the fast
// path open.
func mayEscapeTaskID(b []byte) bool {
	for {
		i := bytes.Index(b, []byte(`\u00`))
		switch {
		case i < 0:
			return false
		case i+4 >= len(b):
			return true // cut short: not a valid document, so not sure
		case b[i+4] >= '5' && b[i+4] <= '7':
			return true
		}
		b = b[i+4:]
	}
}

// peekTaskID reads task_id from a message that failed to decode, if it is
// a JSON object holding one as a string.
func peekTaskID(data []byte) string {
	id, _ := wire.PeekString(data, "task_id")
	return id
}
