//go:build membus_slicequeue

package membus

// keepIdle is the largest capacity an idle queue keeps in each of its two
// slices (18 KiB each), so that a burst's memory goes back once it has been
// delivered while ordinary traffic reuses its slices.
const keepIdle = 256

// pendingQueue is a subscription's pending queue: a slice publishers append
// to under the subscription's lock, which the delivery goroutine takes
// whole (pendingReader.Sync) and hands back, emptied, once it has read it.
// The two slices take turns, so a steady stream allocates nothing.
type pendingQueue struct {
	buf   []envelope // publishers append here
	spare []envelope // the slice the reader finished, to append to next
}

// Push appends e. Called with the subscription's lock held.
func (q *pendingQueue) Push(e envelope) { q.buf = append(q.buf, e) }

// Shrink lets go of large empty slices; called, with the lock held, when
// the reader is about to wait for messages.
func (q *pendingQueue) Shrink() {
	if cap(q.spare) > keepIdle {
		q.spare = nil
	}
	if len(q.buf) == 0 && cap(q.buf) > keepIdle {
		q.buf = nil
	}
}

// Reset lets go of everything pending. The reader must not be used
// afterwards.
func (q *pendingQueue) Reset() { *q = pendingQueue{} }

// pendingReader is the delivery goroutine's side of a pendingQueue.
type pendingReader struct {
	batch []envelope // taken from the queue by the last Sync
	next  int        // batch[:next] is read (and cleared)
}

// Sync returns how many messages Next may return. Once the reader has read
// its batch, Sync hands it back to q and takes what publishers appended
// since. Called with the subscription's lock held.
func (r *pendingReader) Sync(q *pendingQueue) int {
	if r.next < len(r.batch) {
		return len(r.batch) - r.next
	}
	if r.batch != nil && q.spare == nil {
		q.spare = r.batch[:0]
	}
	r.batch, r.next = nil, 0
	if len(q.buf) == 0 {
		return 0
	}
	r.batch, q.buf, q.spare = q.buf, q.spare, nil
	return len(r.batch)
}

// Next removes and returns the oldest message of the batch, leaving no
// reference to it behind. Called without the lock.
func (r *pendingReader) Next() envelope {
	e := r.batch[r.next]
	r.batch[r.next] = envelope{}
	r.next++
	return e
}
