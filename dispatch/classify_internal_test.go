package dispatch

import (
	"encoding/json"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/internal/wire"
)

// fastTaskIDSeeds are results as Go and Python write them, and the shapes
// where the fast reader must step aside.
var fastTaskIDSeeds = []string{
	`{"task_id":"t-1","worker_type":"echo","status":"completed","output":{"n":1}}`,
	`{"task_id": "t-1", "worker_type": "echo", "status": "completed", "output": {"text": "caf\u00e9"}}`,
	`{"task_id":"decoy","status":"completed","task\u005fid":"real"}`,
	`{"task_id":"decoy","status":"completed","\u0074ask_id":"real"}`,
	`{"task_id":"decoy","status":"completed","task_id":"real"}`,
	`{"task_id":"decoy","output":{"task_id":"inner"}}`,
	`{"task_id":"a\u0062c"}`,
	"{\"task_id\":\"\xff\"}",
	`{"task_id":"t-1","output":"\u00`,
}

func TestFastTaskIDAgreesWithTheDecoder(t *testing.T) {
	want := map[string]struct {
		id string
		ok bool
	}{
		fastTaskIDSeeds[0]: {"t-1", true},
		fastTaskIDSeeds[1]: {"t-1", true},
		fastTaskIDSeeds[2]: {"", false},
		fastTaskIDSeeds[3]: {"", false},
		fastTaskIDSeeds[4]: {"", false},
		fastTaskIDSeeds[5]: {"", false},
		fastTaskIDSeeds[6]: {"", false},
		fastTaskIDSeeds[7]: {"", false},
		fastTaskIDSeeds[8]: {"", false},
	}
	for data, w := range want {
		if id, ok := fastTaskID([]byte(data)); string(id) != w.id || ok != w.ok {
			t.Errorf("fastTaskID(%s) = %q, %v; want %q, %v", data, id, ok, w.id, w.ok)
		}
		checkFastTaskID(t, []byte(data))
	}
}

// FuzzFastTaskID checks the fast reader against wire.PeekString, the
// reader the decoder agrees with: wherever the fast reader answers and the
// document is a JSON object, both read the same task_id.
func FuzzFastTaskID(f *testing.F) {
	for _, s := range fastTaskIDSeeds {
		f.Add([]byte(s))
	}
	r := heddle.NewTaskResult("order 42", "echo", heddle.StatusCompleted)
	r.Output = map[string]any{"text": "café <b>"}
	if data, err := r.Encode(); err == nil {
		f.Add(data)
	}
	f.Fuzz(checkFastTaskID)
}

func checkFastTaskID(t *testing.T, data []byte) {
	idBytes, ok := fastTaskID(data)
	id := string(idBytes)
	if !ok || !json.Valid(data) {
		return
	}
	var top any
	if json.Unmarshal(data, &top) != nil {
		return
	}
	if _, isObject := top.(map[string]any); !isObject {
		t.Fatalf("fastTaskID(%q) = %q for a document that is not an object", data, id)
	}
	if peek, peekOK := wire.PeekString(data, "task_id"); !peekOK || peek != id {
		t.Fatalf("fastTaskID(%q) = %q; wire.PeekString = %q, %v", data, id, peek, peekOK)
	}
	if res, err := heddle.DecodeTaskResult(data); err == nil && res.TaskID != id {
		t.Fatalf("fastTaskID(%q) = %q; the decoder reads %q", data, id, res.TaskID)
	}
}
