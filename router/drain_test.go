package router_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/router"
)

// stuckBus holds every publish to a worker subject until release is
// closed or the publish's context ends, as a broker that stopped taking
// messages would.
type stuckBus struct {
	bus.Bus
	entered chan struct{}
	release chan struct{}
}

func (b stuckBus) Publish(ctx context.Context, msg *bus.Msg) error {
	if strings.HasPrefix(msg.Subject, "heddle.tasks.stuck.") {
		b.entered <- struct{}{}
		select {
		case <-b.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return b.Bus.Publish(ctx, msg)
}

func TestRouterDrainIsBoundedByItsTimeout(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		stuck := stuckBus{Bus: connect(), entered: make(chan struct{}, 8), release: make(chan struct{})}
		defer close(stuck.release)
		rt, err := router.New(stuck, router.Config{DrainTimeout: testkit.ShortTimeout})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- rt.Run(ctx) }()
		<-rt.Ready()
		caller := connect()
		for range 2 {
			_, data := testkit.Task(t, "stuck", heddle.TierStandard)
			testkit.Publish(t, caller, heddle.SubjectTasksIncoming, data, nil)
		}
		select {
		case <-stuck.entered:
		case <-time.After(testkit.Wait):
			t.Fatal("the router never tried to forward the task")
		}
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Run = %v, want an error wrapping context.DeadlineExceeded after its drain timeout", err)
			}
		case <-time.After(testkit.Wait):
			t.Fatal("Run did not return within its drain timeout")
		}
	})
}

func TestRouterRefusesANegativeDrainTimeout(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		_, err := router.New(connect(), router.Config{DrainTimeout: -time.Second})
		if !errors.Is(err, heddle.ErrConfig) || !strings.Contains(err.Error(), "DrainTimeout") {
			t.Errorf("New = %v, want heddle.ErrConfig naming DrainTimeout", err)
		}
	})
}

func TestRouterPublishesADeadLetterTooLargeForTheBusTruncated(t *testing.T) {
	natstest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		rt, logs, _ := routerStart(t, connect(), router.Config{})
		caller, watcher := connect(), connect()
		dead, _ := testkit.Subscribe(t, watcher, heddle.SubjectDeadLetter)
		// 700 KB that are not JSON: the envelope would carry them twice
		// (as text and as base64), beyond the 1 MB max payload.
		original := bytes.Repeat([]byte("not json \xff "), 700_000/11)
		testkit.Publish(t, caller, heddle.SubjectTasksIncoming, original, nil)
		env := testkit.Recv(t, dead, "the truncated dead letter")
		d, err := heddle.DecodeDeadLetter(env.Data)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(d.Reason, event.ReasonInvalidTaskMessage+": ") {
			t.Errorf("reason %q, want invalid_task_message", d.Reason)
		}
		var summary struct {
			Truncated struct {
				Size   int    `json:"size"`
				SHA256 string `json:"sha256"`
				Head   string `json:"head"`
			} `json:"_truncated"`
		}
		if err := json.Unmarshal(d.Original(), &summary); err != nil {
			t.Fatalf("original %q: %v", d.Original()[:min(100, len(d.Original()))], err)
		}
		sum := sha256.Sum256(original)
		if s := summary.Truncated; s.Size != len(original) || s.SHA256 != hex.EncodeToString(sum[:]) || !strings.HasPrefix(s.Head, "not json") {
			t.Errorf("truncated original %+v, want size %d and its sha256", s, len(original))
		}
		rec := logs.Wait(t, "router.dead_lettered", 1)[0]
		if rec.Str("truncated") != "true" || rec.Str("original_size") != fmt.Sprint(len(original)) {
			t.Errorf("router.dead_lettered %+v, want truncated=true and original_size", rec)
		}
		if s := rt.Stats(); s.DeadLettered != 1 || s.PublishErrors != 0 {
			t.Errorf("Stats() = %+v, want 1 dead letter and no publish error", s)
		}
	})
}
