package wire

import (
	"bytes"
	"unicode/utf8"
)

// ReplaceMember returns obj, a valid JSON object, with the value of its
// top-level member key replaced by val (valid JSON), or with the member
// added at its end when obj has none; the rest of obj is kept byte for
// byte. It reports false, and returns nil, when obj does not start with
// '{', holds key more than once (a decoder keeps the last, which
// replacing one would not change) or key is not valid UTF-8.
func ReplaceMember(obj []byte, key string, val []byte) ([]byte, bool) {
	if len(obj) < 2 || obj[0] != '{' || !utf8.ValidString(key) {
		return nil, false
	}
	var buf [16]Member
	members := SplitObject(obj, buf[:0])
	at := -1
	for i, m := range members {
		if string(m.Key) == key {
			if at >= 0 {
				return nil, false
			}
			at = i
		}
	}
	if at >= 0 {
		v := members[at].Val
		start := cap(obj) - cap(v) // v lies within obj
		end := start + len(v)
		out := make([]byte, 0, len(obj)-len(v)+len(val))
		out = append(out, obj[:start]...)
		out = append(out, val...)
		return append(out, obj[end:]...), true
	}
	closing := bytes.LastIndexByte(obj, '}')
	if closing < 0 {
		return nil, false
	}
	out := make([]byte, 0, len(obj)+len(key)+len(val)+4)
	out = append(out, obj[:closing]...)
	if len(members) > 0 {
		out = append(out, ',')
	}
	out = AppendString(out, key)
	out = append(out, ':')
	out = append(out, val...)
	return append(out, obj[closing:]...), true
}
