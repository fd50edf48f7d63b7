package heddle

import (
	"bytes"
	"encoding/json"
	"strings"
)

// workerRawPayload returns the bytes of the payload of data, the message
// task was decoded from, so that a typed worker decodes In from what the
// caller sent (and the exec worker passes it on) without re-encoding the
// decoded map.
func workerRawPayload(task *TaskMessage, data []byte) ([]byte, error) {
	if raw, ok := workerFindPayload(data); ok {
		return raw, nil
	}
	// Not expected for a message DecodeTaskMessage accepted; the decoded
	// payload is the reference.
	return json.Marshal(task.Payload)
}

// workerFindPayload returns the value of the top-level key "payload" of
// data, which must be a valid JSON object (DecodeTaskMessage has checked
// it). Keys match exactly, after unescaping, as DecodeTaskMessage matches
// them; a repeated key yields its last value, as encoding/json keeps. The
// result shares data's memory.
func workerFindPayload(data []byte) ([]byte, bool) {
	i := workerSkipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}
	i++
	var found []byte
	for {
		i = workerSkipSpace(data, i)
		if i >= len(data) {
			return nil, false
		}
		switch data[i] {
		case '}':
			return found, found != nil
		case ',':
			i++
			continue
		case '"':
		default:
			return nil, false
		}
		keyEnd := workerSkipString(data, i)
		if keyEnd < 0 {
			return nil, false
		}
		key := data[i+1 : keyEnd-1]
		i = workerSkipSpace(data, keyEnd)
		if i >= len(data) || data[i] != ':' {
			return nil, false
		}
		i = workerSkipSpace(data, i+1)
		valueEnd := workerSkipValue(data, i)
		if valueEnd < 0 {
			return nil, false
		}
		if workerKeyIs(key, "payload") {
			found = data[i:valueEnd]
		}
		i = valueEnd
	}
}

// workerKeyIs compares a key as written (between its quotes) with name.
func workerKeyIs(key []byte, name string) bool {
	if bytes.IndexByte(key, '\\') < 0 {
		return string(key) == name
	}
	var s string
	if err := json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &s); err != nil {
		return false
	}
	return s == name
}

func workerSkipSpace(data []byte, i int) int {
	for i < len(data) && strings.IndexByte(" \t\r\n", data[i]) >= 0 {
		i++
	}
	return i
}

// workerSkipString returns the index after the string starting at i, or
// -1.
func workerSkipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// workerSkipValue returns the index after the value starting at i, or -1.
func workerSkipValue(data []byte, i int) int {
	if i >= len(data) {
		return -1
	}
	switch data[i] {
	case '"':
		return workerSkipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				if i = workerSkipString(data, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	// A number or a literal ends at the next delimiter.
	for i < len(data) && strings.IndexByte(",}] \t\r\n", data[i]) < 0 {
		i++
	}
	return i
}
