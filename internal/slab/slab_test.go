package slab

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// FuzzCopy copies a random sequence of payloads with one Slab and checks
// each copy against bytes.Clone of its payload: the same bytes, nil for
// nil, capacity equal to length. The payload buffer is overwritten after
// each copy, every copy is kept, and each is appended to once the next one
// exists, so a copy that aliases its source or another copy still in use
// shows as changed.
//
// The input is read two bytes at a time as a little-endian size: 0xffff
// means a nil payload, anything else a payload of size%(2*maxCarved+1)
// bytes, so that sizes above maxCarved and chunk changes are covered.
func FuzzCopy(f *testing.F) {
	size := func(sizes ...uint16) []byte {
		b := make([]byte, 0, 2*len(sizes))
		for _, n := range sizes {
			b = binary.LittleEndian.AppendUint16(b, n)
		}
		return b
	}
	f.Add(size())
	f.Add(size(0, 0xffff, 1, 5))
	f.Add(size(maxCarved, maxCarved+1, maxCarved-1, 1))
	// Eight maximal copies fill a chunk exactly; the ninth starts a new one.
	f.Add(size(maxCarved, maxCarved, maxCarved, maxCarved, maxCarved, maxCarved, maxCarved, maxCarved, maxCarved, 3))
	// A copy that does not fit in what is left of a chunk.
	f.Add(size(7000, 7000, 7000, 7000, 7000, 7000, 7000, 7000, 7000, 7000))
	f.Add(size(1, 2, 3, 100, 1000, 4000, 8000, 2*maxCarved, 0, 0xffff, 33))
	f.Fuzz(func(t *testing.T, sizes []byte) {
		var (
			s      Slab
			copies [][]byte
			want   [][]byte
		)
		buf := make([]byte, 2*maxCarved)
		for i := 0; i+1 < len(sizes); i += 2 {
			code := binary.LittleEndian.Uint16(sizes[i:])
			var p []byte
			if code != 0xffff {
				p = buf[:int(code)%(2*maxCarved+1)]
				for j := range p {
					p[j] = byte(i/2 + j)
				}
			}
			got := s.Copy(p)
			clone := bytes.Clone(p)
			if (got == nil) != (clone == nil) || !bytes.Equal(got, clone) {
				t.Fatalf("copy %d of %d bytes (nil: %v): got %d bytes (nil: %v), want what bytes.Clone gives",
					i/2, len(p), p == nil, len(got), got == nil)
			}
			if cap(got) != len(got) {
				t.Fatalf("copy %d: cap %d, want the length %d", i/2, cap(got), len(got))
			}
			clear(p) // the publisher reuses its buffer
			copies = append(copies, got)
			want = append(want, clone)
			if len(copies) > 1 {
				// The holder of the previous copy appends to it.
				_ = append(copies[len(copies)-2], 0xAA)
			}
			for j := range copies {
				if !bytes.Equal(copies[j], want[j]) {
					t.Fatalf("after copy %d, copy %d changed", i/2, j)
				}
			}
		}
	})
}

func TestConcurrentCopiesDoNotOverlap(t *testing.T) {
	var s Slab
	const workers, perWorker = 4, 2000
	var wg sync.WaitGroup
	out := make([][][]byte, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				p := bytes.Repeat([]byte{byte(w)}, 1+(i*37)%3000)
				out[w] = append(out[w], s.Copy(p))
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
