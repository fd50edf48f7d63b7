package membus

import "sync/atomic"

// Payload copies are carved out of shared chunks instead of being allocated
// one by one: by default Publish must copy msg.Data (the publisher may
// reuse its buffer), and a make+copy per message costs an allocation, its zeroing and
// its share of garbage collection, which dominated the publish path.
const (
	// slabChunk is the size of one chunk.
	slabChunk = 64 << 10
	// slabMax is the largest payload carved out of a chunk; larger ones get
	// an allocation of their own. It bounds the space lost at the end of a
	// chunk to an eighth of it.
	slabMax = slabChunk / 8
)

// slab hands out payload copies from the chunk in use, bump-allocating with
// an atomic offset so that concurrent publishers on one connection need no
// lock. When the chunk is full the first publisher to notice installs a new
// one; the old chunk is left to the garbage collector, which frees it once
// no message refers to it any more. Connections made with
// WithZeroCopyPublish copy nothing and leave their slab unused.
//
// Retention is bounded but coarser than one allocation per message: a
// message, wherever it is kept (a pending queue, a handler that holds on to
// it), keeps its whole chunk alive, that is at most slabChunk bytes per
// message and never more than one chunk. Consecutive messages of one
// connection share a chunk, so a queue of them pins about their payload
// bytes; the worst case is a subscription that receives only a few small
// messages out of a busy stream, where each pending or kept message can pin
// a chunk of its own (slabChunk/len(Data) times its size).
type slab struct {
	cur atomic.Pointer[chunk]
}

// chunk is one slab chunk. off only grows; offsets past len(buf) mean the
// chunk is full.
type chunk struct {
	buf []byte
	off atomic.Int64
}

// copyOf returns a copy of p that aliases no memory the caller can reach.
// Its capacity equals its length, so appending to it reallocates instead of
// overwriting a neighbouring message in the chunk. It returns nil for nil
// and an empty non-nil slice for an empty one, like a plain copy would.
func (s *slab) copyOf(p []byte) []byte {
	n := len(p)
	if p == nil {
		return nil
	}
	if n == 0 {
		return []byte{}
	}
	if n > slabMax {
		c := make([]byte, n)
		copy(c, p)
		return c
	}
	for {
		c := s.cur.Load()
		if c != nil {
			if end := c.off.Add(int64(n)); end <= int64(len(c.buf)) {
				b := c.buf[end-int64(n) : end : end]
				copy(b, p)
				return b
			}
		}
		nc := &chunk{buf: make([]byte, slabChunk)}
		nc.off.Store(int64(n))
		if s.cur.CompareAndSwap(c, nc) {
			b := nc.buf[:n:n]
			copy(b, p)
			return b
		}
		// Another publisher installed a chunk first; use that one.
	}
}
