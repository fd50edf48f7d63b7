package deadletter

import (
	"container/list"
	"crypto/sha256"
	"time"

	"github.com/heddle-go/heddle"
)

// replayMark remembers that a task was replayed, so that the entry the
// router makes of it, should it dead-letter the task again, carries its
// replay count on.
type replayMark struct {
	count int
	at    time.Time
}

// replayKeyOf identifies a task across a replay: a hash, so that a mark
// costs the same few bytes whatever the task's size.
type replayKeyOf [sha256.Size]byte

// replayKey is the hash of the task's task_id when the envelope names one
// (a replayed task keeps its task_id, and a Python router re-encodes the
// original, so its bytes may differ), else of the original bytes.
func replayKey(d heddle.DeadLetter) replayKeyOf {
	h := sha256.New()
	if d.TaskID != "" {
		h.Write([]byte("task_id\x00"))
		h.Write([]byte(d.TaskID))
	} else {
		h.Write([]byte("original\x00"))
		h.Write(d.Original())
	}
	var k replayKeyOf
	h.Sum(k[:0])
	return k
}

// replayMarks holds at most limit marks; beyond it the oldest is
// forgotten (its task, if it ever comes back, then counts from zero). A
// mark is taken when its task comes back. It is guarded by the
// Consumer's mutex.
type replayMarks struct {
	limit int
	order *list.List // of replayKeyOf, oldest at the back
	byKey map[replayKeyOf]replayMarkItem
}

type replayMarkItem struct {
	mark replayMark
	el   *list.Element
}

func newReplayMarks(limit int) replayMarks {
	return replayMarks{limit: limit, order: list.New(), byKey: map[replayKeyOf]replayMarkItem{}}
}

// put sets the mark of k and returns the one it replaced, if any.
func (m *replayMarks) put(k replayKeyOf, mark replayMark) (prev replayMark, ok bool) {
	if it, had := m.byKey[k]; had {
		m.order.MoveToFront(it.el)
		m.byKey[k] = replayMarkItem{mark: mark, el: it.el}
		return it.mark, true
	}
	m.byKey[k] = replayMarkItem{mark: mark, el: m.order.PushFront(k)}
	for m.order.Len() > m.limit {
		delete(m.byKey, m.order.Remove(m.order.Back()).(replayKeyOf))
	}
	return replayMark{}, false
}

// take removes and returns the mark of k.
func (m *replayMarks) take(k replayKeyOf) (replayMark, bool) {
	it, ok := m.byKey[k]
	if !ok {
		return replayMark{}, false
	}
	m.order.Remove(it.el)
	delete(m.byKey, k)
	return it.mark, true
}

// undo reverts a put of mark at k whose replay failed: the previous mark
// comes back, or none. A mark already taken or replaced since is left
// alone.
func (m *replayMarks) undo(k replayKeyOf, mark replayMark, prev replayMark, hadPrev bool) {
	it, ok := m.byKey[k]
	if !ok || it.mark != mark {
		return
	}
	if hadPrev {
		m.byKey[k] = replayMarkItem{mark: prev, el: it.el}
		return
	}
	m.take(k)
}
