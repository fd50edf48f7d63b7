package membus

// keepIdle is the largest capacity an idle queue keeps in each of its two
// slices (256 envelopes, 18 KiB), so that ordinary traffic reuses its
// slices while a burst's memory goes back once the burst is delivered.
const keepIdle = 256

// pendingQueue is a subscription's pending queue: a slice publishers append
// to under the subscription's lock, which the delivery goroutine takes whole
// (pendingReader.take) and hands back, emptied, once it has read it. The two
// slices take turns, so a steady stream allocates nothing.
//
// Its memory follows the pending limits: enqueue never holds more than the
// limit of messages, between the slice being appended to and the one being
// read, and an idle queue keeps at most keepIdle slots in each slice.
//
// The queue is plain standard code on purpose. internal/blockqueue, a queue
// of reusable blocks, was measured against it on BenchmarkTaskPath and
// BenchmarkDispatchRequest (membus) and gained nothing there (BENCHMARKS.md,
// "membus: payload copies and pending queue"), so it was removed.
type pendingQueue struct {
	buf   []envelope // publishers append here
	spare []envelope // the slice the reader finished, to append to next
}

// push appends e. Called with the subscription's lock held.
func (q *pendingQueue) push(e envelope) { q.buf = append(q.buf, e) }

// shrink lets go of large empty slices. Called, with the lock held, when the
// reader is about to wait for messages.
func (q *pendingQueue) shrink() {
	if cap(q.spare) > keepIdle {
		q.spare = nil
	}
	if len(q.buf) == 0 && cap(q.buf) > keepIdle {
		q.buf = nil
	}
}

// reset lets go of everything pending. The reader must not be used
// afterwards.
func (q *pendingQueue) reset() { *q = pendingQueue{} }

// pendingReader is the delivery goroutine's side of a pendingQueue.
type pendingReader struct {
	batch []envelope // taken from the queue by the last take
	read  int        // batch[:read] is read (and cleared)
}

// take returns how many messages next may return. Once the reader has read
// its batch, take hands it back to q and takes what publishers appended
// since. Called with the subscription's lock held.
func (r *pendingReader) take(q *pendingQueue) int {
	if r.read < len(r.batch) {
		return len(r.batch) - r.read
	}
	if r.batch != nil && q.spare == nil {
		q.spare = r.batch[:0]
	}
	r.batch, r.read = nil, 0
	if len(q.buf) == 0 {
		return 0
	}
	r.batch, q.buf, q.spare = q.buf, q.spare, nil
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
