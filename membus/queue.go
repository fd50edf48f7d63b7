package membus

// keepIdle is the largest block an idle queue keeps for reuse (256
// envelopes, 18 KiB), so that ordinary traffic reuses its blocks while a
// burst's memory goes back once the burst is delivered.
const keepIdle = 256

// Block sizes: a queue's first block holds minBlock messages, each next
// block twice the last, up to maxBlock.
const (
	minBlock = 8
	maxBlock = 1024
)

// pendingQueue is a subscription's pending queue: a list of blocks that
// publishers append to under the subscription's lock, and that the
// delivery goroutine takes one at a time (pendingReader.take) and hands
// back, emptied, once it has read it. A steady stream therefore
// allocates nothing (two blocks take turns), and a burst larger than any
// block costs one block per maxBlock messages: no message is ever copied
// into a larger slice, and the garbage collector scans only the blocks
// still queued.
//
// Its memory follows the pending limits: enqueue never holds more than the
// limit of messages, and an idle queue keeps one block of at most keepIdle
// slots for reuse.
type pendingQueue struct {
	head, tail *block // the blocks holding pending messages, oldest first
	spare      *block // an emptied block kept for reuse
}

// block is a run of pending messages: items[:len] written, cap its size.
type block struct {
	items []envelope
	next  *block
}

// push appends e. Called with the subscription's lock held.
func (q *pendingQueue) push(e envelope) {
	t := q.tail
	if t == nil || len(t.items) == cap(t.items) {
		size := minBlock
		if t != nil {
			size = min(2*cap(t.items), maxBlock)
		}
		b := q.spare
		if b != nil && cap(b.items) >= size {
			q.spare = nil
		} else {
			b = &block{items: make([]envelope, 0, size)}
		}
		if t == nil {
			q.head = b
		} else {
			t.next = b
		}
		q.tail, t = b, b
	}
	t.items = append(t.items, e)
}

// shrink lets go of a large spare block. Called, with the lock held, when
// the reader is about to wait for messages.
func (q *pendingQueue) shrink() {
	if q.spare != nil && cap(q.spare.items) > keepIdle {
		q.spare = nil
	}
}

// reset lets go of everything pending. The reader must not be used
// afterwards.
func (q *pendingQueue) reset() { *q = pendingQueue{} }

// pendingReader is the delivery goroutine's side of a pendingQueue.
type pendingReader struct {
	blk   *block     // the block being read, detached from the queue
	batch []envelope // blk's messages
	read  int        // batch[:read] is read (and cleared)
}

// take returns how many messages next may return. Once the reader has read
// its block, take hands it back to q and takes the queue's oldest. Called
// with the subscription's lock held.
func (r *pendingReader) take(q *pendingQueue) int {
	if r.read < len(r.batch) {
		return len(r.batch) - r.read
	}
	if b := r.blk; b != nil {
		// Read, so cleared: kept for reuse if it is the larger.
		b.items = b.items[:0]
		if q.spare == nil || cap(b.items) > cap(q.spare.items) {
			q.spare = b
		}
	}
	r.blk, r.batch, r.read = nil, nil, 0
	h := q.head
	if h == nil {
		return 0
	}
	if q.head = h.next; q.head == nil {
		q.tail = nil
	}
	h.next = nil
	r.blk, r.batch = h, h.items
	return len(r.batch)
}

// next removes and returns the oldest message of the batch, leaving no
// reference to it behind. Called without the lock, only after take said a
// message is available.
func (r *pendingReader) next() envelope {
	e := r.batch[r.read]
	r.batch[r.read] = envelope{}
	r.read++
	return e
}

// queued returns how many messages q holds, and how many its blocks have
// room for, the spare's included. For tests. Called with the lock held.
func (q *pendingQueue) queued() (n, capacity int) {
	for b := q.head; b != nil; b = b.next {
		n += len(b.items)
		capacity += cap(b.items)
	}
	if q.spare != nil {
		capacity += cap(q.spare.items)
	}
	return n, capacity
}
