package execrun

import "bytes"

// boundedBuffer keeps the first limit bytes written to it and discards the
// rest, still reporting every write as complete so the command is never
// blocked or sent SIGPIPE because of the bound.
//
// The buffer is a field, not embedded: an embedded bytes.Buffer would give
// the type a ReadFrom method, which io.Copy prefers over Write, bypassing
// the bound.
type boundedBuffer struct {
	buf       bytes.Buffer
	limit     int
	truncated bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	room := b.limit - b.buf.Len()
	if len(p) > room {
		b.truncated = true
		b.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *boundedBuffer) Bytes() []byte  { return b.buf.Bytes() }
func (b *boundedBuffer) String() string { return b.buf.String() }
