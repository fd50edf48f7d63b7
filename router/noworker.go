package router

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
)

// forwardWindow is how many forwarded tasks a router remembers, so that
// the bus's no-responders status for one (nothing subscribed to its
// worker subject) can dead-letter it with its original bytes. The status
// comes back within a round trip to the server, so the window needs to
// hold only the tasks forwarded meanwhile.
const forwardWindow = 4096

// forwarded is one remembered task: its original message and where it
// went.
type forwarded struct {
	seq        uint64
	header     bus.Header
	data       []byte // reused from one task to the next in its slot
	taskID     string
	workerType string
	tier       heddle.ModelTier
	overridden bool
}

// forwardRing remembers the last forwardWindow forwarded tasks by
// sequence number, in slots whose buffers are reused, so that it
// allocates nothing once warm.
type forwardRing struct {
	inbox string // the status subject prefix: inbox + seq
	mu    sync.Mutex
	next  uint64
	slots []forwarded
}

func newForwardRing() *forwardRing {
	return &forwardRing{inbox: "_INBOX.heddle.router." + strings.ReplaceAll(uuid.NewString(), "-", "") + ".",
		slots: make([]forwarded, forwardWindow)}
}

// add remembers a task about to be forwarded and returns its reply
// subject.
func (f *forwardRing) add(msg *bus.Msg, taskID, workerType string, tier heddle.ModelTier, overridden bool) string {
	f.mu.Lock()
	f.next++
	seq := f.next
	s := &f.slots[seq%forwardWindow]
	s.seq, s.header = seq, msg.Header.Clone() // the bus's, like msg.Data
	s.data = append(s.data[:0], msg.Data...)
	s.taskID, s.workerType, s.tier, s.overridden = taskID, workerType, tier, overridden
	f.mu.Unlock()
	return f.inbox + strconv.FormatUint(seq, 10)
}

// take returns and forgets the task of a status subject, if still
// remembered.
func (f *forwardRing) take(subject string) (forwarded, bool) {
	seq, err := strconv.ParseUint(strings.TrimPrefix(subject, f.inbox), 10, 64)
	if err != nil {
		return forwarded{}, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &f.slots[seq%forwardWindow]
	if s.seq != seq {
		return forwarded{}, false
	}
	out := *s
	out.data = bytes.Clone(s.data)
	s.seq = 0
	return out, true
}

// handleStatus handles the bus's reports about forwarded tasks: a task
// whose worker subject nobody served is dead-lettered as no_worker.
func (r *Router) handleStatus(ctx context.Context, msg *bus.Msg) error {
	if !bus.NoResponders(msg) {
		return nil
	}
	t, ok := r.forwards.take(msg.Subject)
	if !ok {
		// Beyond the window: the task was lost unseen, as any task
		// published to a subject nobody serves.
		r.log.Count(ctx, &r.stats.noWorkerUnknown, slog.LevelWarn, "router.no_worker_unknown", "subject", msg.Subject,
			"reason", "a no-responders status for a task no longer remembered")
		return nil
	}
	// It was counted as routed; it is a dead letter instead.
	r.stats.routed.Add(^uint64(0))
	if t.overridden {
		r.stats.overridden.Add(^uint64(0))
	}
	original := &bus.Msg{Subject: heddle.SubjectTasksIncoming, Header: t.header, Data: t.data}
	r.deadLetter(ctx, original, heddle.ReasonNoWorker,
		fmt.Sprintf("no worker serves '%s' at tier '%s'", t.workerType, t.tier))
	return nil
}
