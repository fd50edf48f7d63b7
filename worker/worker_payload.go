package worker

import (
	"encoding/json"

	"github.com/heddle-go/heddle"
)

// rawPayload returns the payload's bytes for a handler that reads
// them: raw, the payload as it came on the wire (see
// internal/codec's DecodeTaskPayload), so that a typed worker decodes In from what the
// caller sent and the exec worker passes it on without re-encoding the
// decoded map; or, when raw is nil, the decoded payload encoded.
func rawPayload(task *heddle.TaskMessage, raw []byte) ([]byte, error) {
	if raw != nil {
		return raw, nil
	}
	return json.Marshal(task.Payload)
}
