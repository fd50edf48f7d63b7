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
// limit of messages. Up to maxSpare emptied blocks are kept for reuse, so
// that a long burst recycles its blocks, and an idle queue keeps one block
// of at most keepIdle slots.
type pendingQueue struct {
	head, tail *block // the blocks holding pending messages, oldest first
	spare      *block // emptied blocks kept for reuse, linked by next
	spares     int    // how many
}

// maxSpare bounds the emptied blocks a queue keeps while busy.
const maxSpare = 4

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
			q.spare, b.next = b.next, nil
			q.spares--
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
	if q.spare == nil {
		return
	}
	if cap(q.spare.items) > keepIdle {
		q.spare, q.spares = nil, 0
		return
	}
	q.spare.next, q.spares = nil, 1
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
		// Read, so cleared: kept for reuse, the largest first, while
		// there is room.
		b.items = b.items[:0]
		switch {
		case q.spare == nil || cap(b.items) >= cap(q.spare.items):
			b.next, q.spare = q.spare, b
			q.spares++
			if q.spares > maxSpare {
				q.dropLastSpare()
			}
		case q.spares < maxSpare:
			b.next, q.spare.next = q.spare.next, b
			q.spares++
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

// dropLastSpare lets go of the last spare block.
func (q *pendingQueue) dropLastSpare() {
	p := q.spare
	for p.next != nil && p.next.next != nil {
		p = p.next
	}
	if p.next == nil { // one spare
		q.spare, q.spares = nil, 0
		return
	}
	p.next = nil
	q.spares--
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
	for b := q.spare; b != nil; b = b.next {
		capacity += cap(b.items)
	}
	return n, capacity
}
