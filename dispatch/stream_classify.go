package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
)

// A Stream classifies every message on its subject exactly once:
// collected, ignored, duplicate, parse_error or late (see Stream).

// handle classifies one message; it never blocks on the consumer.
func (s *Stream) handle(_ context.Context, msg *bus.Msg) error {
	if id, ok := streamFastTaskID(msg.Data); ok {
		// Other tasks' results on a shared subject (a goal's subtasks seen
		// by the goal's submitter) are ignored without decoding them.
		s.mu.Lock()
		_, known := s.expected[id]
		s.mu.Unlock()
		if !known {
			s.ignored.Add(1)
			s.log.Debug("result_stream.ignored", "subject", s.subject, "task_id", id, "reason", "unknown task_id")
			return nil
		}
	}
	res, err := heddle.DecodeTaskResult(msg.Data)
	if err != nil {
		id := streamPeekTaskID(msg.Data)
		s.mu.Lock()
		_, known := s.expected[id]
		s.mu.Unlock()
		if id != "" && !known {
			s.ignored.Add(1)
			s.log.Debug("result_stream.ignored", "subject", s.subject, "task_id", id,
				"reason", "unknown task_id", "error", err.Error())
			return nil
		}
		s.parseErrors.Add(1)
		s.log.Warn("result_stream.parse_error", "subject", s.subject, "task_id", id, "error", err.Error())
		return nil
	}
	if s.cfg.OutputContract != nil && res.Status == heddle.StatusCompleted && s.isPending(res.TaskID) {
		if err := s.cfg.OutputContract.ValidateOutput(res.Output); err != nil {
			s.parseErrors.Add(1)
			s.log.Warn("result_stream.parse_error", "subject", s.subject, "task_id", res.TaskID,
				"parent_task_id", res.ParentTaskID, "worker_type", res.WorkerType, "error", err.Error())
			return nil
		}
	}
	s.mu.Lock()
	collected, known := s.expected[res.TaskID]
	end := s.end
	switch {
	case !known:
		s.mu.Unlock()
		s.ignored.Add(1)
		s.log.Debug("result_stream.ignored", "subject", s.subject, "task_id", res.TaskID,
			"parent_task_id", res.ParentTaskID, "worker_type", res.WorkerType, "reason", "unknown task_id")
	case collected:
		s.mu.Unlock()
		s.duplicates.Add(1)
		s.log.Info("result_stream.duplicate", "subject", s.subject, "task_id", res.TaskID,
			"parent_task_id", res.ParentTaskID, "worker_type", res.WorkerType)
	case end != streamOpen || s.closed:
		s.mu.Unlock()
		s.late.Add(1)
		s.log.Warn("result_stream.late", "subject", s.subject, "task_id", res.TaskID,
			"parent_task_id", res.ParentTaskID, "worker_type", res.WorkerType,
			"reason", "collection ended: "+end.String())
	default:
		s.expected[res.TaskID] = true
		s.pending--
		if i := slices.IndexFunc(s.queue, func(q streamQueued) bool { return q.id == res.TaskID }); i >= 0 {
			// Answered before the stream published it (dispatched by
			// other means too): never publish it now.
			s.queue = slices.Delete(s.queue, i, i+1)
		} else {
			s.inFlight--
		}
		s.results = append(s.results, res)
		n := len(s.results)
		if s.cfg.Quorum > 0 && n >= s.cfg.Quorum {
			s.end = streamQuorum
			if s.timer != nil {
				s.timer.Stop()
			}
		}
		s.mu.Unlock()
		s.collected.Add(1)
		s.log.Info("result_stream.collected", "subject", s.subject, "task_id", res.TaskID,
			"parent_task_id", res.ParentTaskID, "worker_type", res.WorkerType, "status", string(res.Status))
		s.notify()
	}
	return nil
}

func (s *Stream) isPending(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	collected, known := s.expected[id]
	return known && !collected
}

// streamFastTaskID reads the task_id of a result written as Go and Python
// Heddle write them, task_id first and without escapes:
// {"task_id":"...", or {"task_id": "...",. It reports false for any other
// shape, which is then decoded in full.
func streamFastTaskID(data []byte) (string, bool) {
	rest, ok := bytes.CutPrefix(data, []byte(`{"task_id":`))
	if !ok {
		return "", false
	}
	rest, _ = bytes.CutPrefix(rest, []byte(" "))
	rest, ok = bytes.CutPrefix(rest, []byte(`"`))
	if !ok {
		return "", false
	}
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return "", false
	}
	if bytes.Contains(rest[end:], []byte(`"task_id"`)) {
		// Perhaps a repeated key: the decoder takes the last one, so the
		// first is not sure to be the task_id.
		return "", false
	}
	return string(rest[:end]), true
}

// streamPeekTaskID reads task_id from a message that failed to decode, if
// it is a JSON object holding one as a string.
func streamPeekTaskID(data []byte) string {
	// A map, not a tagged struct: keys match exactly, and the last of a
	// repeated key counts, as in the decoder.
	var v map[string]json.RawMessage
	if json.Unmarshal(data, &v) != nil {
		return ""
	}
	var id string
	if json.Unmarshal(v["task_id"], &id) != nil {
		return ""
	}
	return id
}
