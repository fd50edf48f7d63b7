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
