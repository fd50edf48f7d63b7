package router_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest"
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
	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
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
	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
		_, err := router.New(connect(), router.Config{DrainTimeout: -time.Second})
		if !errors.Is(err, heddle.ErrConfig) || !strings.Contains(err.Error(), "DrainTimeout") {
			t.Errorf("New = %v, want heddle.ErrConfig naming DrainTimeout", err)
		}
	})
}
