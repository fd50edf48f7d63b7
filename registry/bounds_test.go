package registry_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/registry"
)

func TestTheTableKeepsAtMostMaxWorkers(t *testing.T) {
	eachClock(t, registry.Config{MaxWorkers: 2}, 1, func(t *testing.T, h *harness) {
		h.beat("a", "t", interval, false)
		h.beat("b", "t", interval, false)
		h.beat("c", "t", interval, false) // full of active workers: refused
		if _, ok := h.reg().Worker("c"); ok {
			t.Error("a third worker entered a table of 2")
		}
		if full := h.logs.All("registry.full"); len(full) != 1 || full[0].Str("instance_id") != "c" || full[0].Str("max_workers") != "2" {
			t.Errorf("registry.full records %+v, want one for c", full)
		}
		if err := h.reg().Expect("t", "d"); !errors.Is(err, registry.ErrFull) {
			t.Errorf("Expect into a full table = %v, want ErrFull", err)
		}
		// A stopped worker makes room for the next one.
		h.beat("a", "t", interval, true)
		h.beat("c", "t", interval, false)
		if got := events(h.logs, "worker.forgotten", "reason"); !slices.Equal(got, []string{"a full"}) {
			t.Errorf("worker.forgotten records %q, want a, to make room", got)
		}
		var ids []string
		for _, e := range h.reg().List() {
			ids = append(ids, e.InstanceID)
		}
		if !slices.Equal(ids, []string{"b", "c"}) {
			t.Errorf("table %q, want b and c", ids)
		}
		if s := h.reg().Stats(); s.Refused != 1 || s.Forgotten != 1 || s.Workers != 2 {
			t.Errorf("Stats() = %+v, want 1 refused, 1 forgotten, 2 workers", s)
		}
	})
}

func TestFiveHundredWorkersHeartbeatingAtOnceAreEachKeptOnce(t *testing.T) {
	const workers, rounds, senders = 500, 3, 10
	b := membus.New()
	defer b.Close()
	reg, logs := startRegistry(t, b.Connect(), registry.Config{})
	data := make([][]byte, workers)
	for i := range data {
		hb := heartbeat(fmt.Sprintf("w-%03d", i), fmt.Sprintf("type-%d", i%7), interval)
		var err error
		if data[i], err = hb.Encode(); err != nil {
			t.Fatal(err)
		}
	}
	for range rounds {
		var wg sync.WaitGroup
		for s := range senders {
			conn := b.Connect()
			defer conn.Close()
			wg.Go(func() {
				for i := s; i < workers; i += senders {
					testkit.Publish(t, conn, heddle.HeartbeatSubject(fmt.Sprintf("type-%d", i%7)), data[i], nil)
				}
			})
		}
		wg.Wait()
	}
	logs.Wait(t, "registry.heartbeat", workers*rounds)
	s := reg.Stats()
	if s.Workers != workers || s.Active != workers || s.Heartbeats != workers*rounds || s.Joined != workers || s.Dropped != 0 {
		t.Errorf("Stats() = %+v, want %d active workers, each joined once, %d heartbeats", s, workers, workers*rounds)
	}
	for _, e := range reg.List() {
		if e.Heartbeats != rounds {
			t.Fatalf("%s has %d heartbeats, want %d", e.InstanceID, e.Heartbeats, rounds)
		}
	}
	active := 0
	for _, ts := range reg.Types() {
		active += ts.Active
	}
	if n := len(reg.Types()); n != 7 || active != workers {
		t.Errorf("%d type summaries with %d active workers, want 7 types sharing the %d", n, active, workers)
	}
}

// bloated returns n heartbeats with every text field at its 256-byte
// bound and 8 KiB of unknown fields, which the registry must not keep.
func bloated(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		// The worker type leaves room for its queue group's "processors-".
		hb := heartbeat(fmt.Sprintf("%0256d", i), fmt.Sprintf("t%0244d", i%7), interval)
		hb.Host = strings.Repeat("h", 256)
		hb.Extra = map[string]json.RawMessage{"_padding": json.RawMessage(`"` + strings.Repeat("p", 8<<10) + `"`)}
		data, err := hb.MarshalJSON()
		if err != nil {
			panic(err)
		}
		out[i] = data
	}
	return out
}

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// The table's memory is bounded in bytes: each record holds at most the
// heartbeat's bounded fields, never its unknown ones, and heartbeats
// after the first replace what they update instead of adding to it.
func TestTheTableHoldsABoundedNumberOfBytesPerWorker(t *testing.T) {
	const workers = 500
	const bound = 4 << 10 // bytes per worker, with every text field at its bound
	b := membus.New()
	defer b.Close()
	reg, err := registry.New(b, registry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	data := bloated(workers)
	subject := heddle.HeartbeatSubject("t")
	before := heapInUse()
	for _, d := range data {
		registry.Deliver(reg, subject, d)
	}
	first := heapInUse()
	if s := reg.Stats(); s.Workers != workers || s.Malformed != 0 {
		t.Fatalf("Stats() = %+v, want %d workers", s, workers)
	}
	perWorker := (int64(first) - int64(before)) / workers
	t.Logf("%d bytes per worker after one round", perWorker)
	if perWorker > bound {
		t.Errorf("the table holds %d bytes per worker, want at most %d: it keeps what it should not", perWorker, bound)
	}
	for range 10 {
		for _, d := range data {
			registry.Deliver(reg, subject, d)
		}
	}
	grown := (int64(heapInUse()) - int64(first)) / workers
	if grown > bound/8 {
		t.Errorf("ten more rounds of heartbeats grew the table by %d bytes per worker, want it to stay put", grown)
	}
	if s := reg.Stats(); s.Workers != workers || s.Heartbeats != 11*workers {
		t.Errorf("Stats() = %+v", s)
	}
	runtime.KeepAlive(reg)
}

// BenchmarkSweep500 is one sweep of a table of 500 active workers, the
// monitor's work every SweepInterval; it reports the table's bytes per
// worker too.
func BenchmarkSweep500(b *testing.B) {
	bus := membus.New()
	defer bus.Close()
	reg, err := registry.New(bus, registry.Config{})
	if err != nil {
		b.Fatal(err)
	}
	data := make([][]byte, 500)
	for i := range data {
		data[i], _ = heartbeat(fmt.Sprintf("worker-%03d", i), fmt.Sprintf("type-%d", i%7), interval).Encode()
	}
	before := heapInUse()
	for _, d := range data {
		registry.Deliver(reg, heddle.HeartbeatSubject("t"), d)
	}
	perWorker := float64(int64(heapInUse())-int64(before)) / 500
	for b.Loop() {
		reg.Sweep()
	}
	b.ReportMetric(perWorker, "B/worker")
	if s := reg.Stats(); s.Active != 500 {
		b.Fatalf("Stats() = %+v", s)
	}
}

// BenchmarkHeartbeat500 is one heartbeat handled by a registry holding
// 500 workers: decoding it and updating its record.
func BenchmarkHeartbeat500(b *testing.B) {
	bus := membus.New()
	defer bus.Close()
	reg, err := registry.New(bus, registry.Config{})
	if err != nil {
		b.Fatal(err)
	}
	data := make([][]byte, 500)
	for i := range data {
		data[i], _ = heartbeat(fmt.Sprintf("worker-%03d", i), fmt.Sprintf("type-%d", i%7), interval).Encode()
		registry.Deliver(reg, heddle.HeartbeatSubject("t"), data[i])
	}
	i := 0
	for b.Loop() {
		registry.Deliver(reg, heddle.HeartbeatSubject("t"), data[i%500])
		i++
	}
}
