package contracttest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/heddle-go/heddle/bus"
)

func busTestOrderConcurrentPublishers(h *busHarness) {
	const (
		publishers = 8
		perPub     = 1250
		total      = publishers * perPub
	)
	sub := h.connect()
	var (
		mu        sync.Mutex
		next      [publishers]uint32
		received  int
		disorder  []string
		inflight  atomic.Int32
		overlaps  atomic.Int32
		delivered = make(chan struct{})
	)
	h.subscribe(sub, h.subject("ordered"), func(_ context.Context, m *bus.Msg) error {
		if inflight.Add(1) > 1 {
			overlaps.Add(1)
		}
		defer inflight.Add(-1)
		if len(m.Data) != 8 {
			return fmt.Errorf("contracttest: unexpected payload %q", m.Data)
		}
		p, seq := binary.BigEndian.Uint32(m.Data[:4]), binary.BigEndian.Uint32(m.Data[4:])
		mu.Lock()
		defer mu.Unlock()
		if p >= publishers {
			return fmt.Errorf("contracttest: unexpected publisher %d", p)
		}
		if seq != next[p] && len(disorder) < 10 {
			disorder = append(disorder, fmt.Sprintf("publisher %d: got message %d, want %d", p, seq, next[p]))
		}
		next[p] = seq + 1
		received++
		if received == total {
			close(delivered)
		}
		return nil
	}, bus.PendingLimits(2*total, bus.DefaultPendingBytes))

	conns := make([]*busConn, publishers)
	for i := range conns {
		conns[i] = h.connect()
	}
	errs := make(chan error, publishers)
	var wg sync.WaitGroup
	for p, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The publishers reuse one buffer, unless the bus takes it.
			buf := make([]byte, 8)
			for seq := range perPub {
				if h.cfg.publishTakesBuffers {
					buf = make([]byte, 8)
				}
				binary.BigEndian.PutUint32(buf[:4], uint32(p))
				binary.BigEndian.PutUint32(buf[4:], uint32(seq))
				if err := c.Publish(h.ctx, &bus.Msg{Subject: h.subject("ordered"), Data: buf}); err != nil {
					errs <- fmt.Errorf("publisher %d, message %d: %w", p, seq, err)
					return
				}
			}
			if err := c.Flush(h.ctx); err != nil {
				errs <- fmt.Errorf("publisher %d: Flush: %w", p, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		h.t.Fatal(err)
	}
	mu.Lock()
	got := received
	mu.Unlock()
	busRecv(h.t, (<-chan struct{})(delivered), fmt.Sprintf("%d messages (had %d)", total, got))
	mu.Lock()
	defer mu.Unlock()
	for _, d := range disorder {
		h.t.Errorf("out of order: %s", d)
	}
	if n := overlaps.Load(); n > 0 {
		h.t.Errorf("the handler ran concurrently with itself %d times", n)
	}
	select {
	case e := <-sub.errs:
		h.t.Errorf("unexpected asynchronous error on %q: %v", e.subject, e.err)
	default:
	}
}

func busTestHeaders(h *busHarness) {
	sub, pub := h.connect(), h.connect()
	subject := h.subject("headers")
	in := newBusInbox(1)
	h.subscribe(sub, subject, in.handler)
	want := bus.Header{
		"X-Trace":      {"one", "two", "three"},
		"x-trace":      {"lower"},
		"Content-Type": {"application/json; charset=utf-8"},
		"Empty":        {""},
		"camelCase":    {"a=b, c=d"},
	}
	sent := want.Clone()
	if err := pub.Publish(h.ctx, &bus.Msg{Subject: subject, Header: sent, Data: []byte("with headers")}); err != nil {
		h.t.Fatalf("Publish: %v", err)
	}
	got := in.recv(h.t, "the message with headers")
	if !reflect.DeepEqual(got.Header, want) {
		h.t.Errorf("headers did not round-trip:\n got  %v\n want %v", got.Header, want)
	}
	if string(got.Data) != "with headers" {
		h.t.Errorf("data: got %q, want %q", got.Data, "with headers")
	}
	if got.Subject != subject {
		h.t.Errorf("subject: got %q, want %q", got.Subject, subject)
	}
}

func busTestBinaryPayload(h *busHarness) {
	sub, pub := h.connect(), h.connect()
	subject := h.subject("binary")
	in := newBusInbox(3)
	h.subscribe(sub, subject, in.handler)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	// Line breaks and a protocol-looking line inside the payload too.
	tricky := []byte("\r\nMSG a 1 5\r\nPUB b 0\r\n\x00")
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"every byte value", all},
		{"an empty payload", nil},
		{"protocol-like bytes", tricky},
	} {
		h.publish(pub, subject, tc.data)
		got := in.recv(h.t, tc.name)
		if !bytes.Equal(got.Data, tc.data) {
			h.t.Errorf("%s: got %q, want %q", tc.name, got.Data, tc.data)
		}
		if len(got.Header) != 0 {
			h.t.Errorf("%s: got headers %v, want none", tc.name, got.Header)
		}
	}
}

func busTestPublisherReusesBuffers(h *busHarness) {
	sub, pub := h.connect(), h.connect()
	subject := h.subject("reuse")
	gate := h.gate()
	in := newBusInbox(1)
	// The handler reads the message only after the publisher has changed
	// its buffers, so a bus that kept them would show the change.
	h.subscribe(sub, subject, func(ctx context.Context, m *bus.Msg) error {
		gate.wait(ctx)
		return in.handler(ctx, m)
	})
	data := []byte("original payload")
	hdr := bus.Header{"Key": {"original"}}
	if err := pub.Publish(h.ctx, &bus.Msg{Subject: subject, Header: hdr, Data: data}); err != nil {
		h.t.Fatalf("Publish: %v", err)
	}
	copy(data, strings.Repeat("X", len(data)))
	hdr["Key"][0] = "changed"
	hdr.Add("Added", "later")
	gate.open()
	got := in.recv(h.t, "the message")
	if string(got.Data) != "original payload" {
		h.t.Errorf("data: got %q, want %q", got.Data, "original payload")
	}
	if want := (bus.Header{"Key": {"original"}}); !reflect.DeepEqual(got.Header, want) {
		h.t.Errorf("headers: got %v, want %v", got.Header, want)
	}
}

func busTestMaxPayload(h *busHarness) {
	sub, pub := h.connect(), h.connect()
	subject := h.subject("big")
	in := newBusInbox(1)
	h.subscribe(sub, subject, in.handler)
	atMax := make([]byte, bus.DefaultMaxPayload)
	for i := range atMax {
		atMax[i] = byte(i * 7)
	}
	h.publish(pub, subject, atMax)
	got := in.recv(h.t, "the message of exactly the maximum payload")
	if !bytes.Equal(got.Data, atMax) {
		h.t.Errorf("the %d-byte payload did not round-trip (got %d bytes)", len(atMax), len(got.Data))
	}
	over := make([]byte, bus.DefaultMaxPayload+1)
	err := pub.Publish(h.ctx, &bus.Msg{Subject: subject, Data: over})
	if !errors.Is(err, bus.ErrMaxPayload) {
		h.t.Fatalf("Publish of %d bytes: got %v, want an error wrapping bus.ErrMaxPayload", len(over), err)
	}
}

func busTestSlowConsumer(h *busHarness) {
	const (
		limit = 10
		total = 100
	)
	sub, pub := h.connect(), h.connect()
	subject := h.subject("slow")
	gate := h.gate()
	started := make(chan struct{}, 1)
	got := make(chan int, total+1)
	s := h.subscribe(sub, subject, func(ctx context.Context, m *bus.Msg) error {
		id, err := strconv.Atoi(string(m.Data))
		if err != nil {
			return err
		}
		if id == 0 {
			started <- struct{}{}
			gate.wait(ctx)
		}
		got <- id
		return nil
	}, bus.PendingLimits(limit, bus.DefaultPendingBytes))

	// Message 0 blocks the handler; the rest pile up behind it.
	h.publish(pub, subject, []byte("0"))
	busRecv(h.t, started, "the handler to start on message 0")
	h.publishIDsFrom(pub, subject, 1, total)

	e := h.waitErr(sub, "a slow-consumer error", func(e busAsyncError) bool { return errors.Is(e.err, bus.ErrSlowConsumer) })
	if e.subject != subject {
		h.t.Errorf("slow-consumer error reported for subject %q, want %q", e.subject, subject)
	}
	if !strings.Contains(e.err.Error(), subject) {
		h.t.Errorf("slow-consumer error %q does not name the subject %q", e.err, subject)
	}
	busEventually(h.t, fmt.Sprintf("at least %d drops while the handler is blocked", total-limit-1), func() bool {
		return s.Dropped() >= total-limit-1
	})
	gate.open()

	var ids []int
	busEventually(h.t, fmt.Sprintf("each of the %d messages delivered or dropped", total), func() bool {
		for {
			select {
			case id := <-got:
				ids = append(ids, id)
			default:
				return len(ids)+s.Dropped() >= total
			}
		}
	})
	// A sentinel, accepted now that the queue is empty, proves that nothing
	// else is on its way.
	h.publish(pub, subject, []byte(strconv.Itoa(total)))
	if id := busRecv(h.t, got, "the sentinel after the slow-consumer episode"); id != total {
		h.t.Errorf("got message %d after every message was delivered or dropped, want the sentinel %d", id, total)
	}

	if len(ids)+s.Dropped() != total {
		h.t.Errorf("delivered %d and dropped %d, want them to add up to %d", len(ids), s.Dropped(), total)
	}
	if len(ids) > limit+1 {
		h.t.Errorf("delivered %d messages past a blocked handler with a pending limit of %d, want at most %d", len(ids), limit, limit+1)
	}
	if len(ids) == 0 || ids[0] != 0 {
		h.t.Errorf("delivered %v, want message 0 first", ids)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			h.t.Errorf("delivered out of order: %v", ids)
			break
		}
	}
}

// publishIDsFrom publishes the payloads "from".."to-1", then flushes.
func (h *busHarness) publishIDsFrom(c *busConn, subject string, from, to int) {
	h.t.Helper()
	for i := from; i < to; i++ {
		h.publish(c, subject, []byte(strconv.Itoa(i)))
	}
	h.flush(c)
}
