package heddle

import "github.com/heddle-go/heddle/internal/wire"

// Bridges to the task path's fast paths in internal/wire, for the tests in
// package heddle_test (which may import contracttest).
var (
	TaskPathDecodeEnvelope = decodeTaskEnvelope
	TaskPathDecodeObject   = wire.Object
	TaskPathDecodeOutput   = wire.DecodeAny
	TaskPathAppendValue    = func(v any) ([]byte, bool) { return wire.AppendValue(nil, v, 0) }
	TaskPathAppendObject   = func(m map[string]any) ([]byte, error) { return wire.AppendObject(nil, m, false) }
)

// TaskPathValid is the decoder's own JSON validity check.
var TaskPathValid = wire.Valid

// TaskPathMember is one top-level member as the decoder splits it.
type TaskPathMember struct{ Key, Val []byte }

// TaskPathSplitValid is the decoder's one-pass check and split; big
// reports a number that may lie beyond float64.
func TaskPathSplitValid(data []byte) (members []TaskPathMember, big, ok bool) {
	ms, ok := wire.SplitValid(data, nil, &big)
	for _, m := range ms {
		members = append(members, TaskPathMember{m.Key, m.Val})
	}
	return members, big, ok
}

// TaskPathSplitObject is the split made after json.Valid.
func TaskPathSplitObject(obj []byte) (members []TaskPathMember) {
	for _, m := range wire.SplitObject(obj, nil) {
		members = append(members, TaskPathMember{m.Key, m.Val})
	}
	return members
}

// TaskPathNumbersFit is the decoder's check that the numbers of a value
// fit a float64.
var TaskPathNumbersFit = wire.NumbersFit

// TaskPathParseWireTime is the decoder's copy-free timestamp reader.
var TaskPathParseWireTime = wire.ParseTimeFast

// TaskPathSubjectTokensValid is the decoder's check of worker_type and
// parent_task_id.
var TaskPathSubjectTokensValid = subjectTokensValid
