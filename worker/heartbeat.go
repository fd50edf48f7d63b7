package worker

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/version"
)

// heartbeatLanguage is what a Go worker's heartbeats say in language.
const heartbeatLanguage = "go"

// The worker's heartbeat events; the slog message is the name.
const (
	// eventHeartbeatStarted: the heartbeat loop started, naming the
	// instance id its heartbeats carry (Info).
	eventHeartbeatStarted = event.WorkerHeartbeatStarted
	// eventHeartbeatFailed: a heartbeat could not be published (Warn).
	eventHeartbeatFailed = event.WorkerHeartbeatFailed
)

// maxHeartbeatHost bounds the host name a heartbeat carries, as
// heddle.Heartbeat.Validate bounds every text field.
const maxHeartbeatHost = 256

// heartbeatState is what Config says of a Worker's heartbeats, and the
// loop that sends them once Run has started it. Only Run's goroutine
// touches it (startHeartbeat, then stopHeartbeat from the drain).
type heartbeatState struct {
	// failed counts the heartbeats that could not be published, each
	// reported as worker.heartbeat_failed (Stats.HeartbeatErrors).
	failed   atomic.Uint64
	interval time.Duration
	off      bool
	loop     *heartbeatLoop
}

// heartbeatLoop publishes one Worker's heartbeats on a goroutine of its
// own, so that a slow publish never holds up a task. It ends when
// stopHeartbeat cancels it, which the drain does before Run returns.
type heartbeatLoop struct {
	msg    heddle.Heartbeat // what every heartbeat of this run says, counters aside
	cancel context.CancelFunc
	done   chan struct{}
}

// startHeartbeat starts the heartbeat loop, which publishes the first
// heartbeat at once; Run calls it once the worker serves.
func (w *Worker) startHeartbeat() {
	hb := &w.heartbeat
	if hb.off {
		return
	}
	host, _ := os.Hostname() // a heartbeat without a host is still valid
	if len(host) > maxHeartbeatHost {
		host = ""
	}
	ctx, cancel := context.WithCancel(w.values)
	l := &heartbeatLoop{
		msg: heddle.Heartbeat{
			InstanceID: uuid.NewString(),
			WorkerType: w.workerType,
			Tiers:      slices.Clone(w.tiers),
			QueueGroup: w.queue,
			Language:   heartbeatLanguage,
			SDKVersion: version.SDK,
			Host:       host,
			PID:        os.Getpid(),
			StartedAt:  heartbeatNow(),
			Interval:   hb.interval,
			Capacity:   w.concurrency,
		},
		cancel: cancel,
		done:   make(chan struct{}),
	}
	hb.loop = l
	w.log.Emit(w.values, slog.LevelInfo, event.Event{Name: eventHeartbeatStarted, WorkerType: w.workerType, Subject: l.msg.Subject()},
		slog.String("instance_id", l.msg.InstanceID), slog.String("subject", l.msg.Subject()),
		slog.Duration("interval", hb.interval))
	go w.runHeartbeat(ctx, l)
}

// runHeartbeat sends a heartbeat now and then every interval until ctx
// ends.
func (w *Worker) runHeartbeat(ctx context.Context, l *heartbeatLoop) {
	defer close(l.done)
	tick := time.NewTicker(l.msg.Interval)
	defer tick.Stop()
	for {
		w.sendHeartbeat(ctx, l, false)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// stopHeartbeat ends the heartbeat loop and, unless the worker stops at
// once (its bus is gone, or Run could not start), publishes the last
// heartbeat, marked stopping, so that a registry marks the worker stopped
// without waiting for it to go stale. The drain calls it first; it does
// nothing when no loop runs.
func (w *Worker) stopHeartbeat(now bool) {
	l := w.heartbeat.loop
	if l == nil {
		return
	}
	w.heartbeat.loop = nil
	l.cancel()
	<-l.done // the last heartbeat comes after every other
	if now {
		return
	}
	ctx, cancel := context.WithTimeout(w.values, min(publishTimeout, w.drainTimeout))
	defer cancel()
	w.sendHeartbeat(ctx, l, true)
}

// sendHeartbeat publishes one heartbeat with the worker's counters now.
func (w *Worker) sendHeartbeat(ctx context.Context, l *heartbeatLoop, stopping bool) {
	m := l.msg
	s := w.Stats()
	m.SentAt = heartbeatNow()
	m.Completed = int(s.Completed)
	m.Failed = int(s.Failed)
	// Received and not yet settled: a task is counted in exactly one of
	// Completed, Failed or PublishErrors once it is finished.
	m.InFlight = int(max(int64(s.Received)-int64(s.Completed)-int64(s.Failed)-int64(s.PublishErrors), 0))
	m.Stopping = stopping
	data, err := m.Encode()
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, publishTimeout)
		err = w.bus.Publish(pctx, &bus.Msg{Subject: m.Subject(), Data: data})
		cancel()
	}
	if err != nil {
		if ctx.Err() != nil && !stopping {
			return // the loop was stopped during the publish; the last heartbeat follows
		}
		w.log.CountEvent(w.values, &w.heartbeat.failed, slog.LevelWarn,
			event.Event{Name: eventHeartbeatFailed, WorkerType: w.workerType, Subject: m.Subject(), Reason: event.ReasonPublish, Err: err},
			slog.String("instance_id", m.InstanceID), slog.String("subject", m.Subject()),
			slog.Bool("stopping", stopping), slog.String("error", err.Error()),
			slog.Uint64("heartbeats_failed", w.heartbeat.failed.Load()+1))
	}
}

// heartbeatNow is a heartbeat's timestamp: UTC at microsecond precision,
// as the wire holds it.
func heartbeatNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
