package heddle

// Bridges to the task path's unexported fast paths, for the tests in
// package heddle_test (which may import contracttest).
var (
	TaskPathDecodeEnvelope = decodeTaskEnvelope
	TaskPathDecodeObject   = decoderObject
	TaskPathDecodeOutput   = workerDecodeOutput
	TaskPathAppendValue    = func(v any) ([]byte, bool) { return jsonAppendValue(nil, v, 0) }
	TaskPathAppendObject   = func(m map[string]any) ([]byte, error) { return appendObject(nil, m, false) }
)

// TaskPathValid is the decoder's own JSON validity check.
var TaskPathValid = decoderValid

// TaskPathMember is one top-level member as the decoder splits it.
type TaskPathMember struct{ Key, Val []byte }

// TaskPathSplitValid is the decoder's one-pass check and split; big
// reports a number that may lie beyond float64.
func TaskPathSplitValid(data []byte) (members []TaskPathMember, big, ok bool) {
	ms, ok := decoderSplitValid(data, nil, &big)
	for _, m := range ms {
		members = append(members, TaskPathMember{m.key, m.val})
	}
	return members, big, ok
}

// TaskPathSplitObject is the split made after json.Valid.
func TaskPathSplitObject(obj []byte) (members []TaskPathMember) {
	for _, m := range splitObject(obj, nil) {
		members = append(members, TaskPathMember{m.key, m.val})
	}
	return members
}

// TaskPathNumbersFit is the decoder's check that the numbers of a value
// fit a float64.
var TaskPathNumbersFit = decoderNumbersFit

// TaskPathParseWireTime is the decoder's copy-free timestamp reader.
var TaskPathParseWireTime = parseWireTime

// TaskPathSubjectTokensValid is the decoder's check of worker_type and
// parent_task_id.
var TaskPathSubjectTokensValid = subjectTokensValid

// TaskPathIntern is the decoder's string sharing.
var TaskPathIntern = jsonIntern
