package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/membus"
)

// TestCallerRemembersTheLatestTaskIDs fills a Caller's memory of answered
// task_ids past callerRecentTaskIDs: the oldest are forgotten first, so a
// repeat of a forgotten one is ignored and a repeat of a remembered one is
// a duplicate, and memory stays bounded.
func TestCallerRemembersTheLatestTaskIDs(t *testing.T) {
	b := membus.New()
	defer b.Close()
	c, err := newCaller(context.Background(), b, heddle.SubjectResultsDefault, newEmitter(heddle.WithLogger(slog.New(slog.DiscardHandler))), false, true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	const extra = 10
	id := func(i int) string { return fmt.Sprintf("task-%05d", i) }
	c.mu.Lock()
	for i := range callerRecentTaskIDs + extra {
		c.rememberLocked(id(i), callerRecent{answered: true, log: newEmitter(heddle.WithLogger(slog.New(slog.DiscardHandler)))})
	}
	// Remembering a task_id again changes nothing else.
	c.rememberLocked(id(extra), callerRecent{answered: true, log: newEmitter(heddle.WithLogger(slog.New(slog.DiscardHandler)))})
	remembered, kept := len(c.recent), len(c.order)
	c.mu.Unlock()
	if remembered != callerRecentTaskIDs || kept != callerRecentTaskIDs {
		t.Fatalf("remembers %d task_ids in a ring of %d, want %d in both", remembered, kept, callerRecentTaskIDs)
	}

	repeat := func(i int) {
		t.Helper()
		r := heddle.NewTaskResult(id(i), "echo", heddle.StatusCompleted)
		data, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.handle(context.Background(), &bus.Msg{Subject: heddle.SubjectResultsDefault, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range extra {
		repeat(i)
	}
	repeat(extra)
	repeat(callerRecentTaskIDs + extra - 1)
	if st := c.Stats(); st != (StreamStats{Ignored: extra, Duplicates: 2}) {
		t.Fatalf("stats %+v, want the %d forgotten task_ids ignored and the 2 remembered ones duplicates", st, extra)
	}
}
