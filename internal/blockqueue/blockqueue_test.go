package blockqueue

import (
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// FuzzQueue runs random sequences of operations on a Queue and on the plain
// slice queue it stands in for, and checks after each one that the two hold
// the same values in the same order, that Sync counts exactly the values not
// yet read, and that no block keeps a value already read (a reused block
// must not hold on to, nor overwrite, anything still in use).
//
// Each operation is two bytes: an opcode and an argument.
func FuzzQueue(f *testing.F) {
	for _, seed := range [][]byte{
		{},
		{0, 1, 2, 0, 3, 1},
		// A burst across growing blocks, read in two steps.
		{0, 255, 1, 200, 2, 0, 3, 100, 2, 0, 3, 255, 3, 255, 3, 255},
		// A steady stream: each block is read, handed back and reused.
		{0, 20, 2, 0, 3, 20, 0, 20, 2, 0, 3, 20, 0, 20, 2, 0, 3, 20, 0, 20, 2, 0, 3, 20},
		// Pushes between Sync and Next are not readable until the next Sync.
		{0, 5, 2, 0, 0, 5, 3, 255, 2, 0, 3, 255},
		// An idle queue after a burst drops its large spare block.
		{0, 255, 1, 255, 2, 0, 3, 255, 3, 255, 2, 0, 3, 255, 3, 255, 2, 0, 4, 0, 0, 10, 2, 0, 3, 10},
		// Reset discards what is pending; a new reader starts afresh.
		{0, 40, 2, 0, 3, 10, 5, 0, 0, 7, 2, 0, 3, 7},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		var (
			q     Queue[*int]
			r     Reader[*int]
			model []int // the plain queue: values pushed and not yet read
			next  int   // the next value to push
			avail int   // values Next may return, as the last Sync said
		)
		for i := 0; i+1 < len(ops); i += 2 {
			arg := int(ops[i+1])
			switch ops[i] % 6 {
			case 0, 1: // push arg values
				for range arg {
					v := next
					next++
					q.Push(&v)
					model = append(model, v)
				}
			case 2:
				got := r.Sync(&q)
				if got != len(model) {
					t.Fatalf("op %d: Sync = %d, want the %d values pushed and not read", i/2, got, len(model))
				}
				avail = got
			case 3: // read up to arg values
				for range min(arg, avail) {
					p := r.Next()
					if p == nil || *p != model[0] {
						t.Fatalf("op %d: Next = %v, want %d", i/2, p, model[0])
					}
					model = model[1:]
					avail--
				}
			case 4:
				q.Shrink()
				if q.spare != nil && len(q.spare.vals) > keepSpare {
					t.Fatalf("op %d: Shrink kept a spare block of %d slots", i/2, len(q.spare.vals))
				}
			case 5:
				q.Reset()
				r = Reader[*int]{}
				model, avail = nil, 0
			}
			checkContents(t, i/2, &q, &r, model)
		}
	})
}

// checkContents checks that the blocks of q and r hold exactly want, in
// order, in their unread slots, and nothing in the slots already read or in
// the spare and finished blocks.
func checkContents(t *testing.T, op int, q *Queue[*int], r *Reader[*int], want []int) {
	t.Helper()
	b, from := r.head, r.headN
	if b == nil {
		b, from = q.first, 0
	}
	for _, dead := range []*block[*int]{q.spare, r.done} {
		if dead == nil {
			continue
		}
		for j, p := range dead.vals {
			if p != nil {
				t.Fatalf("op %d: a spare or finished block keeps a value in slot %d", op, j)
			}
		}
		for c := b; c != nil; c = c.next {
			if c == dead {
				t.Fatalf("op %d: a spare or finished block is still part of the queue", op)
			}
		}
	}
	if r.head != nil {
		for j, p := range r.head.vals[:r.headN] {
			if p != nil {
				t.Fatalf("op %d: slot %d of the block being read keeps a value already read", op, j)
			}
		}
	}
	var got []int
	for ; b != nil; b, from = b.next, 0 {
		end := len(b.vals)
		if b == q.tail {
			end = q.tailN
		}
		for _, p := range b.vals[from:end] {
			if p == nil {
				t.Fatalf("op %d: an unread slot is empty", op)
			}
			got = append(got, *p)
		}
		if b == q.tail {
			break
		}
	}
	if len(got) != len(want) {
		t.Fatalf("op %d: the queue holds %d values, the plain queue %d", op, len(got), len(want))
	}
	for j := range got {
		if got[j] != want[j] {
			t.Fatalf("op %d: value %d is %d, want %d", op, j, got[j], want[j])
		}
	}
}

func TestNextWithoutAvailableValuePanics(t *testing.T) {
	var (
		q Queue[int]
		r Reader[int]
	)
	q.Push(1)
	defer func() {
		if recover() == nil {
			t.Error("Next returned a value pushed after the last Sync")
		}
	}()
	r.Next()
}

// TestConcurrentWriterAndReader pushes from one goroutine and reads from
// another under the locking rules of Queue, so that the race detector
// checks them, and checks that every value arrives once, in order.
func TestConcurrentWriterAndReader(t *testing.T) {
	const total = 20000
	var (
		mu   sync.Mutex
		q    Queue[int]
		wake = make(chan struct{}, 1)
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		for i := range total {
			mu.Lock()
			q.Push(i)
			mu.Unlock()
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
	var r Reader[int]
	for want := 0; want < total; {
		mu.Lock()
		n := r.Sync(&q)
		if n == 0 {
			q.Shrink()
		}
		mu.Unlock()
		if n == 0 {
			<-wake
			continue
		}
		for range n {
			if got := r.Next(); got != want {
				t.Fatalf("Next = %d, want %d", got, want)
			}
			want++
		}
	}
	<-done
}
