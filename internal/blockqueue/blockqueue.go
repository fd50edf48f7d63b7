// Package blockqueue is the pending queue of a membus subscription: a FIFO
// that publishers append to under their owner's lock and that one reader
// drains without holding it, made of blocks that are handed back for reuse
// once read.
//
// It exists for speed. A plain slice queue (publishers append, the reader
// takes the slice under the lock and hands back the one it finished) copies
// the whole backlog every time a deep queue outgrows its slice, and a
// buffered channel must be allocated at the full pending limit (512 Ki
// messages by default) for Publish never to block. Measured with
// BenchmarkPublishSubscribe/membus_zero_copy (membus/bench_test.go, where
// the queue is most of the cost) on 2 shared cores, 10 interleaved rounds
// of -benchtime=200ms: 152 ns/op with this queue, 288 with the slice queue
// (+89%, benchstat p=0.007; 2.6 times the bytes allocated per message) and
// 253 with a channel (+66%, p=0.002), which besides costs 28 MiB and about
// 6 ms to create for a subscription with the default limits.
//
// FuzzQueue checks Queue against a plain slice queue.
package blockqueue

// Sizes of the blocks a queue is made of. The first block holds firstBlock
// values; each further block allocated is twice the size of the last, up to
// maxBlock, so a queue that sees a few values stays small while a deep one
// costs one allocation per maxBlock values. A block the reader has finished
// is handed back and reused, so a steady stream allocates nothing.
const (
	firstBlock = 8
	maxBlock   = 256
	// keepSpare is the largest spare block Shrink keeps, so that after a
	// burst an idle queue holds one large block (the one in use, emptied),
	// not two.
	keepSpare = 32
)

// block is one segment of a queue. The writer fills vals in order; the
// reader reads and clears the slots below the count it last saw in Sync, so
// the two never touch the same slot at the same time.
type block[T any] struct {
	vals []T
	next *block[T] // set by the writer that fills vals and starts the next block
}

// Queue is the writing side of a queue. The zero value is an empty queue.
//
// Push, Shrink, Reset and Reader.Sync must all be called with one lock held,
// the one that guards the Queue; Reader.Next is called without it. That
// lock is what orders a value's Push before its Next.
type Queue[T any] struct {
	first *block[T] // the first block, until the reader takes it
	tail  *block[T] // the block Push fills
	tailN int       // slots of tail filled
	spare *block[T] // a finished block to reuse
	full  int64     // values pushed into the blocks before tail
}

// Push appends v.
func (q *Queue[T]) Push(v T) {
	if q.tail == nil || q.tailN == len(q.tail.vals) {
		q.addBlock()
	}
	q.tail.vals[q.tailN] = v
	q.tailN++
}

// addBlock starts a new tail block: the spare one if there is one, otherwise
// a new one twice the size of the last.
func (q *Queue[T]) addBlock() {
	nb := q.spare
	q.spare = nil
	if nb == nil {
		n := firstBlock
		if q.tail != nil {
			n = min(2*len(q.tail.vals), maxBlock)
		}
		nb = &block[T]{vals: make([]T, n)}
	}
	nb.next = nil
	q.full += int64(q.tailN)
	if q.tail == nil {
		q.first = nb
	} else {
		q.tail.next = nb
	}
	q.tail, q.tailN = nb, 0
}

// Shrink drops the spare block if it is larger than what an idle queue
// keeps. Call it when the reader is about to wait for values.
func (q *Queue[T]) Shrink() {
	if q.spare != nil && len(q.spare.vals) > keepSpare {
		q.spare = nil
	}
}

// Reset lets go of every block, and with them of the values not yet read.
// The queue's Reader must not be used afterwards; a new Reader may read
// what is pushed next.
func (q *Queue[T]) Reset() {
	*q = Queue[T]{}
}

// Reader is the reading side of a Queue, used by one goroutine. The zero
// value is ready to read a Queue from its start.
type Reader[T any] struct {
	head  *block[T] // the block being read
	headN int       // slots of head already read
	done  *block[T] // a block read to its end, to hand back
	read  int64     // values returned by Next
	avail int64     // values pushed as of the last Sync
}

// Sync hands the last block the reader finished back to q for reuse and
// makes every value pushed so far available to Next. It returns how many
// values Next may return before the next Sync. It must be called with q's
// lock held.
func (r *Reader[T]) Sync(q *Queue[T]) int {
	if r.done != nil {
		if q.spare == nil {
			q.spare = r.done
		}
		r.done = nil
	}
	if r.head == nil {
		r.head, q.first = q.first, nil
	}
	r.avail = q.full + int64(q.tailN)
	return int(r.avail - r.read)
}

// Next removes and returns the oldest value, leaving the queue no reference
// to it. It is called without the queue's lock, and only while the last
// Sync said a value is available; otherwise it panics.
func (r *Reader[T]) Next() T {
	if r.read == r.avail {
		panic("blockqueue: Next called with no value available since the last Sync")
	}
	if r.headN == len(r.head.vals) {
		r.done, r.head, r.headN = r.head, r.head.next, 0
	}
	p := &r.head.vals[r.headN]
	v := *p
	var zero T
	*p = zero
	r.headN++
	r.read++
	return v
}
