package cowmap_test

import (
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/heddle-go/heddle/internal/cowmap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAValueIsComputedOnceAndKeptOnlyWhenAsked(t *testing.T) {
	var m cowmap.Map[string, int]
	if _, ok := m.Load("a"); ok {
		t.Fatal("an empty Map holds a")
	}
	calls := 0
	for range 3 {
		if v := m.LoadOrCompute("a", func() (int, bool) { calls++; return 1, true }); v != 1 {
			t.Fatalf("LoadOrCompute(a) = %d, want 1", v)
		}
	}
	if v := m.LoadOrCompute("b", func() (int, bool) { return 2, false }); v != 2 {
		t.Fatalf("LoadOrCompute(b) = %d, want 2", v)
	}
	if _, ok := m.Load("b"); ok || calls != 1 || m.Len() != 1 {
		t.Errorf("b kept %v, a computed %d times, Len %d; want b not kept, a computed once, Len 1", ok, calls, m.Len())
	}
}

func TestConcurrentReadersAndWritersAgree(t *testing.T) {
	var m cowmap.Map[int, int]
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := (i + g) % 50
				if v := m.LoadOrCompute(k, func() (int, bool) { return k * 2, true }); v != k*2 {
					t.Errorf("LoadOrCompute(%d) = %d, want %d", k, v, k*2)
				}
			}
		})
	}
	wg.Wait()
	if m.Len() != 50 {
		t.Errorf("Len = %d, want 50", m.Len())
	}
}

func TestASnapshotHoldsWhatWasKept(t *testing.T) {
	var m cowmap.Map[string, int]
	if m.Snapshot() != nil {
		t.Fatal("an empty Map's snapshot is not nil")
	}
	m.LoadOrCompute("a", func() (int, bool) { return 1, true })
	before := m.Snapshot()
	m.LoadOrCompute("b", func() (int, bool) { return 2, true })
	if len(before) != 1 || before["a"] != 1 || len(m.Snapshot()) != 2 {
		t.Errorf("snapshots %v then %v, want {a:1} unchanged by the later addition, then two values", before, m.Snapshot())
	}
}
