package membus

import (
	"bytes"
	"sync"
	"testing"
)

func TestSlabCopies(t *testing.T) {
	var s slab
	if got := s.copyOf(nil); got != nil {
		t.Errorf("copyOf(nil) = %v, want nil", got)
	}
	if got := s.copyOf([]byte{}); got == nil || len(got) != 0 {
		t.Errorf("copyOf(empty) = %#v, want an empty non-nil slice", got)
	}
	src := []byte("first")
	a := s.copyOf(src)
	b := s.copyOf([]byte("second"))
	if &a[0] == &src[0] {
		t.Fatal("the copy aliases its source")
	}
	if cap(a) != len(a) {
		t.Errorf("cap = %d, want the length %d so that append cannot reach a neighbour", cap(a), len(a))
	}
	src[0] = 'X'
	_ = append(a, "-appended"...)
	if string(a) != "first" || string(b) != "second" {
		t.Errorf("copies changed to %q and %q", a, b)
	}
	big := make([]byte, slabMax+1)
	if c := s.copyOf(big); len(c) != len(big) || cap(c) != len(big) || &c[0] == &big[0] {
		t.Error("a payload larger than slabMax was not copied into an allocation of its own")
	}
}

func TestSlabConcurrentCopiesDoNotOverlap(t *testing.T) {
	var s slab
	const workers, perWorker = 4, 2000
	var wg sync.WaitGroup
	out := make([][][]byte, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				p := bytes.Repeat([]byte{byte(w)}, 1+(i*37)%3000)
				out[w] = append(out[w], s.copyOf(p))
			}
		})
	}
	wg.Wait()
	for w := range workers {
		for i, c := range out[w] {
			if want := bytes.Repeat([]byte{byte(w)}, 1+(i*37)%3000); !bytes.Equal(c, want) {
				t.Fatalf("worker %d copy %d was overwritten", w, i)
			}
		}
	}
}
