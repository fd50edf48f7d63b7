package router

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/heddle-go/heddle"
)

// TestReplySubjectsStayWhatTheyWereWhenLaterOnesAreWritten hands out
// reply subjects across several buffers: each must be the inbox and its
// sequence, unchanged by the subjects written after it.
func TestReplySubjectsStayWhatTheyWereWhenLaterOnesAreWritten(t *testing.T) {
	f := newForwardTable(DefaultForwardBudget)
	n := 3 * replyChunk / len(f.inbox) // three buffers and more
	replies := make([]string, 0, n)
	for seq := uint64(1); seq <= uint64(n); seq++ {
		f.mu.Lock()
		replies = append(replies, f.reply(seq*999_999_937)) // numbers of every width
		f.mu.Unlock()
	}
	for i, got := range replies {
		want := f.inbox + strconv.FormatUint(uint64(i+1)*999_999_937, 10)
		if got != want {
			t.Fatalf("reply %d = %q, want %q", i, got, want)
		}
	}
}

// TestWorkerSubjectsAreBuiltOnceAndBounded checks the cache of worker
// subjects against heddle.WorkerSubject, for more worker types than it
// keeps.
func TestWorkerSubjectsAreBuiltOnceAndBounded(t *testing.T) {
	var w workerSubjects
	tiers := []heddle.ModelTier{heddle.TierLocal, heddle.TierStandard, heddle.TierFrontier}
	for round := range 2 {
		for i := range maxWorkerSubjects + 10 {
			wt := fmt.Sprintf("type-%d", i)
			for _, tier := range tiers {
				if got, want := w.get(wt, tier), heddle.WorkerSubject(wt, tier); got != want {
					t.Fatalf("round %d: subject of %s at %s = %q, want %q", round, wt, tier, got, want)
				}
				if len(w.m) > maxWorkerSubjects {
					t.Fatalf("the cache holds %d subjects, more than %d", len(w.m), maxWorkerSubjects)
				}
			}
		}
	}
	first := w.get("echo", heddle.TierLocal)
	if allocs := testing.AllocsPerRun(100, func() {
		if w.get("echo", heddle.TierLocal) != first {
			t.Fatal("a cached subject changed")
		}
	}); allocs != 0 {
		t.Errorf("a cached subject costs %v allocations, want 0", allocs)
	}
}
