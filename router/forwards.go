package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/google/uuid"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
)

// DefaultForwardBudget is the number of bytes a Router keeps, unless
// Config.ForwardBudget says otherwise, for the forwarded tasks whose fate
// it does not know yet: 8 MiB, some 15,000 tasks of 300 bytes or eight at
// NATS's 1 MiB maximum payload. A delivered task is kept for about a round
// trip to the server and markDelay, so the budget binds on delivered tasks
// only beyond several GB/s; a flood of unserved tasks is held back to the
// pace at which their dead letters go out.
const DefaultForwardBudget = 8 << 20

// forwardOverhead is what one remembered task costs beyond its bytes, its
// header and its ids: its slot in the table, and as much again for the
// spare capacity of a table that grows by doubling.
const forwardOverhead = 2 * int(unsafe.Sizeof(forwarded{}))

// markRetry is how long a mark may stay unanswered before another is
// sent: one lost with a broken connection, or dropped by a full status
// subscription, must not keep the tasks before it remembered for ever.
const markRetry = time.Second

// markDelay is how long a forward may wait for a mark, so that one mark
// covers every task forwarded meanwhile: a mark per task would cost a
// message and a wake-up of the status subscription per task, a third of
// the router's time. Only the release of memory and the routed count wait
// for it; a no-responders status comes without it. Under pressure (half
// the budget held) the mark goes at once.
const markDelay = time.Millisecond

// errStopped is why a task waiting for room in the table is given up
// when Run ends first.
var errStopped = errors.New("the router stopped")

// forwarded is one remembered task: its original message and where it
// went.
type forwarded struct {
	header     bus.Header
	data       []byte
	taskID     string
	workerType string
	subject    string
	tier       heddle.ModelTier
	start      time.Time // when its route began; zero when nobody times it
	took       time.Duration
	cost       int
	live       bool // false once its fate is known
}

// forwardTable remembers each task forwarded with a reply subject until
// its fate is known, so that a no-responders status (nothing subscribed to
// its worker subject) dead-letters it with its original bytes and answers
// its caller.
//
// The bus sends such a status at once, and nothing at all when the task
// was delivered, so success is learnt from a mark: a message the router
// publishes to its own status inbox after the forwards it covers. The
// NATS server handles one connection's publishes in order and queues the
// no-responders status of each to that connection while it handles the
// publish (server/client.go, processInboundClientMsg), before it reads
// the next one; membus publishes the status inside Publish. So the
// statuses of the tasks a mark covers reach the status subscription
// before the mark does, and every task the mark finds still remembered
// was delivered. One mark is in flight at a time, sent markDelay after
// the first forward it covers (at once when the budget is half spent),
// and covers every forward published before it: the marks cost one small
// message per round trip and markDelay, not one per task.
//
// What the table keeps is bounded in bytes (Config.ForwardBudget), and a
// task waits for room before it is forwarded: back-pressure on intake.
// The other ways to bound it lose something a dead letter must keep. A
// window of the last N tasks forgets tasks whose status comes after N
// more forwards (half of a 10,000-task burst, before this table); a
// truncated original cannot be replayed. While a task waits, the incoming
// subscription holds the ones behind it, within its pending limits,
// counted by the bus if they overflow, and a mark frees the whole budget
// a round trip later.
//
// Sequence numbers start at 1 and are contiguous; the task with sequence
// s lives in slots[s&(len(slots)-1)] while head <= s < head+n.
type forwardTable struct {
	inbox  string // the reply subjects: inbox + seq
	mark   string // the marks' subject, under inbox
	budget int

	mu        sync.Mutex
	slots     []forwarded // a ring; its length is a power of two
	head      uint64      // the oldest sequence still in the ring
	n         int
	held      int           // the cost of the live tasks
	published uint64        // the newest sequence whose publish returned
	marked    uint64        // the sequence the newest mark in flight covers; 0 when none is
	markTick  uint64        // tick when marked was set
	tick      uint64        // counts markRetry periods
	scheduled bool          // a mark is due markDelay after a kick
	kick      chan struct{} // asks the marker goroutine for a mark in markDelay
	room      chan struct{} // closed when room is made; nil while nobody waits
	onWait    func()        // tests learn here that a task waits for room

	// replies holds the reply subjects of the latest forwards, each one a
	// substring of it, never written again: a string allocated per
	// replyChunk bytes of subjects (some 60 forwards) rather than one per
	// forward. A chunk is collected once no reply subject in it is used.
	replies strings.Builder
}

// replyChunk is the size of the buffers reply subjects are written in.
const replyChunk = 4 << 10

func newForwardTable(budget int) *forwardTable {
	inbox := "_INBOX.heddle.router." + strings.ReplaceAll(uuid.NewString(), "-", "") + "."
	return &forwardTable{inbox: inbox, mark: inbox + "mark", budget: budget, head: 1, kick: make(chan struct{}, 1)}
}

// maxEntries is the most tasks the table can hold at once.
func (f *forwardTable) maxEntries() int { return f.budget/forwardOverhead + 1 }

// add remembers a task about to be forwarded and returns its sequence
// number and the reply subject to forward it with. While the table is
// full it waits for room, until ctx ends or quit is closed; a task larger
// than the whole budget waits for an empty table. A task about to wait
// makes sure a mark is in flight, through send, since only a mark frees
// room for certain.
func (f *forwardTable) add(ctx context.Context, quit <-chan struct{}, e forwarded, send func(uint64)) (uint64, string, error) {
	f.mu.Lock()
	for f.held > 0 && f.held+e.cost > f.budget {
		if f.room == nil {
			f.room = make(chan struct{})
		}
		room, mark := f.room, f.claimMark()
		f.mu.Unlock()
		if mark != 0 {
			send(mark)
		}
		if f.onWait != nil {
			f.onWait()
		}
		select {
		case <-room:
		case <-ctx.Done():
			return 0, "", ctx.Err()
		case <-quit:
			return 0, "", errStopped
		}
		f.mu.Lock()
	}
	if f.n == len(f.slots) {
		f.grow()
	}
	seq := f.head + uint64(f.n)
	e.live = true
	f.slots[seq&uint64(len(f.slots)-1)] = e
	f.n++
	f.held += e.cost
	reply := f.reply(seq)
	f.mu.Unlock()
	return seq, reply, nil
}

// reply returns the reply subject of seq: the inbox, then seq. Called
// with f.mu held.
func (f *forwardTable) reply(seq uint64) string {
	var num [20]byte
	digits := strconv.AppendUint(num[:0], seq, 10)
	need := len(f.inbox) + len(digits)
	if f.replies.Cap()-f.replies.Len() < need {
		// A new chunk: the subjects handed out keep the old one.
		f.replies = strings.Builder{}
		f.replies.Grow(max(replyChunk, need))
	}
	start := f.replies.Len()
	f.replies.WriteString(f.inbox)
	f.replies.Write(digits)
	return f.replies.String()[start:]
}

func (f *forwardTable) grow() {
	slots := make([]forwarded, max(64, 2*len(f.slots)))
	for i := range f.n {
		s := f.head + uint64(i)
		slots[s&uint64(len(slots)-1)] = f.slots[s&uint64(len(f.slots)-1)]
	}
	f.slots = slots
}

// sent records that the publish of seq returned, and returns the sequence
// a mark should cover now, or 0 when none should go yet. start is when the
// task's route began (zero when nobody times it): the time since is its
// route's duration, which its router.routed event carries.
func (f *forwardTable) sent(seq uint64, start time.Time) uint64 {
	f.mu.Lock()
	if !start.IsZero() {
		if s := f.slot(seq); s != nil && s.live {
			s.took = time.Since(start)
		}
	}
	f.published = max(f.published, seq)
	mark := f.next()
	f.mu.Unlock()
	return mark
}

// next returns the sequence a mark should cover now when the budget is
// half spent; otherwise it has one sent markDelay from now and returns 0.
// Called with f.mu held.
func (f *forwardTable) next() uint64 {
	if f.held > f.budget/2 {
		return f.claimMark()
	}
	if !f.scheduled && f.marked == 0 && f.published >= f.head && f.n > 0 {
		f.scheduled = true
		select {
		case f.kick <- struct{}{}:
		default:
		}
	}
	return 0
}

// due is called markDelay after a kick: it returns the sequence a mark
// covers, or 0 when none is needed.
func (f *forwardTable) due() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scheduled = false
	return f.claimMark()
}

// claimMark returns the sequence a new mark covers, or 0 when a mark is
// in flight or every published task's fate is known. Called with f.mu
// held.
func (f *forwardTable) claimMark() uint64 {
	if f.marked != 0 || f.published < f.head || f.n == 0 {
		return 0
	}
	f.marked, f.markTick = f.published, f.tick
	return f.marked
}

// markFailed forgets a mark whose publish failed, so the next forward or
// tick sends another.
func (f *forwardTable) markFailed(seq uint64) {
	f.mu.Lock()
	if f.marked == seq {
		f.marked = 0
	}
	f.mu.Unlock()
}

// stale counts one markRetry period and returns the sequence a new mark
// covers when the one in flight was sent a whole period ago or more. It
// lets go of a large ring found empty: a burst's ring is not kept for
// ever, and one emptied and regrown at every mark would cost more than
// the tasks.
func (f *forwardTable) stale() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 && len(f.slots) > 1024 {
		f.slots = nil
	}
	f.tick++
	if f.marked != 0 && f.tick-f.markTick >= 2 {
		f.marked = 0
	}
	return f.claimMark()
}

// slot returns the slot of seq when it is in the ring. Called with f.mu
// held.
func (f *forwardTable) slot(seq uint64) *forwarded {
	if seq < f.head || seq >= f.head+uint64(f.n) {
		return nil
	}
	return &f.slots[seq&uint64(len(f.slots)-1)]
}

// free forgets a live slot's task and frees its room. Called with f.mu
// held.
func (f *forwardTable) free(s *forwarded) {
	f.held -= s.cost
	*s = forwarded{}
	if f.room != nil {
		close(f.room)
		f.room = nil
	}
}

// trim drops the slots of known fates from the front of the ring. Called
// with f.mu held.
func (f *forwardTable) trim() {
	for f.n > 0 && !f.slots[f.head&uint64(len(f.slots)-1)].live {
		f.head++
		f.n--
	}
}

// drop forgets the task of seq, whose publish failed. It reports false
// when the task was counted already: Run ended, after its drain timeout,
// while the publish was in flight.
func (f *forwardTable) drop(seq uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.slot(seq)
	if s == nil || !s.live {
		return false
	}
	f.free(s)
	f.trim()
	return true
}

// take returns and forgets the task of seq, if its fate is not known yet.
func (f *forwardTable) take(seq uint64) (forwarded, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.slot(seq)
	if s == nil || !s.live {
		return forwarded{}, false
	}
	out := *s
	f.free(s)
	f.trim()
	return out, true
}

// maxStatusBuf bounds the routed tasks' buffer the status handler keeps
// between marks.
const maxStatusBuf = 4096

// routedTask is what the router.routed event of a task names.
type routedTask struct {
	taskID, workerType, subject string
	tier                        heddle.ModelTier
	took                        time.Duration // from its delivery to its forward; 0 when not timed
}

// confirm forgets every task up to seq, whose fate a returning mark made
// known: delivered. It returns how many there were, their events when
// events is true, and the sequence the next mark covers, 0 for none.
//
// done is appended to buf, which the caller may reuse once it has
// reported them.
func (f *forwardTable) confirm(seq uint64, events bool, buf []routedTask) (routed int, done []routedTask, mark uint64) {
	done = buf[:0]
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.n > 0 && f.head <= seq {
		s := &f.slots[f.head&uint64(len(f.slots)-1)]
		if s.live {
			routed++
			if events {
				done = append(done, routedTask{taskID: s.taskID, workerType: s.workerType, subject: s.subject, tier: s.tier, took: s.took})
			}
			f.free(s)
		}
		f.head++
		f.n--
	}
	f.trim()
	if f.marked != 0 && f.marked <= seq {
		f.marked = 0
	}
	return routed, done, f.next()
}

// remember adds the task of msg to the table, before it is forwarded,
// and returns its sequence number. It keeps the delivered message's own
// data and header, read-only, as the bus contract allows a handler to: a
// copy of each task, into memory not touched since the last garbage
// collection, cost more than the rest of the table's work together.
func (r *Router) remember(ctx context.Context, msg *bus.Msg, taskID, workerType, subject string, tier heddle.ModelTier, start time.Time) (uint64, string, error) {
	e := forwarded{
		header:     msg.Header,
		data:       msg.Data,
		taskID:     taskID,
		workerType: workerType,
		subject:    subject,
		tier:       tier,
		start:      start,
	}
	e.cost = forwardOverhead + msg.Size() + len(taskID) + len(workerType) + len(subject)
	return r.forwards.add(ctx, r.quit, e, func(seq uint64) { r.sendMark(ctx, seq) })
}

// maxWorkerSubjects bounds the worker subjects a Router keeps built: a
// mesh has a few worker types, but their names come from the tasks.
const maxWorkerSubjects = 1024

// workerSubjects keeps heddle.WorkerSubject of each worker type and tier
// the Router forwarded to, so that a forward does not build its subject
// each time. It is emptied when it holds maxWorkerSubjects.
type workerSubjects struct {
	mu sync.Mutex
	m  map[workerTier]string
}

type workerTier struct {
	workerType string
	tier       heddle.ModelTier
}

// get returns heddle.WorkerSubject(workerType, tier).
func (w *workerSubjects) get(workerType string, tier heddle.ModelTier) string {
	k := workerTier{workerType, tier}
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := w.m[k]; ok {
		return s
	}
	if w.m == nil || len(w.m) >= maxWorkerSubjects {
		w.m = make(map[workerTier]string)
	}
	s := heddle.WorkerSubject(workerType, tier)
	w.m[k] = s
	return s
}

// sendMark publishes a mark covering every task up to seq.
func (r *Router) sendMark(ctx context.Context, seq uint64) {
	data := strconv.AppendUint(make([]byte, 0, 20), seq, 10)
	if err := r.b.Publish(ctx, &bus.Msg{Subject: r.forwards.mark, Data: data}); err != nil {
		// Not a loss: the tasks stay remembered, and the next forward or
		// tick sends another mark. A bus that fails this publish fails
		// the forwards too, and those are reported.
		r.forwards.markFailed(seq)
	}
}

// marker sends the marks due markDelay after a kick, and sends a mark
// again every markRetry while one stays unanswered, until ctx ends.
func (r *Router) marker(ctx context.Context, retry time.Duration) {
	tick := time.NewTicker(retry)
	defer tick.Stop()
	delay := time.NewTimer(markDelay)
	delay.Stop()
	for {
		var seq uint64
		select {
		case <-ctx.Done():
			return
		case <-r.forwards.kick:
			delay.Reset(markDelay)
			continue
		case <-delay.C:
			seq = r.forwards.due()
		case <-tick.C:
			seq = r.forwards.stale()
		}
		if seq != 0 {
			r.sendMark(ctx, seq)
		}
	}
}

// handleStatus handles the bus's reports about forwarded tasks and the
// router's own marks: a task whose worker subject nobody served is
// dead-lettered as no_worker; a mark confirms the tasks before it as
// routed.
func (r *Router) handleStatus(ctx context.Context, msg *bus.Msg) error {
	if msg.Subject == r.forwards.mark {
		seq, err := strconv.ParseUint(string(msg.Data), 10, 64)
		if err != nil {
			return nil // not the router's: the inbox name is not secret
		}
		// The status subscription delivers one message at a time, so its
		// handler owns statusBuf.
		routed, done, mark := r.forwards.confirm(seq, r.log.Enabled(ctx, slog.LevelDebug, event.RouterRouted), r.statusBuf)
		r.countRouted(ctx, routed, done)
		clear(done)
		if cap(done) <= maxStatusBuf {
			r.statusBuf = done[:0]
		}
		if mark != 0 {
			r.sendMark(ctx, mark)
		}
		return nil
	}
	if !bus.NoResponders(msg) {
		return nil
	}
	seq, err := strconv.ParseUint(strings.TrimPrefix(msg.Subject, r.forwards.inbox), 10, 64)
	t, ok := r.forwards.take(seq)
	if err != nil || !ok {
		// A task whose fate was already known: this cannot happen while the
		// bus keeps the order forwardTable relies on.
		r.log.CountEvent(ctx, &r.stats.noWorkerUnknown, slog.LevelWarn, event.Event{Name: event.RouterNoWorkerUnknown, Subject: msg.Subject},
			slog.String("subject", msg.Subject), slog.String("reason", "a no-responders status for a task no longer remembered"))
		return nil
	}
	original := &bus.Msg{Subject: heddle.SubjectTasksIncoming, Header: t.header, Data: t.data}
	r.deadLetter(ctx, original, t.start, event.ReasonNoWorker,
		fmt.Sprintf("no worker serves '%s' at tier '%s'", t.workerType, t.tier))
	return nil
}

// countRouted counts routed tasks, then reports each (done is empty when
// nobody would see the events).
func (r *Router) countRouted(ctx context.Context, routed int, done []routedTask) {
	r.stats.routed.Add(uint64(routed))
	for _, t := range done {
		r.emitRouted(ctx, t)
	}
}
