package natsbus_test

import (
	"testing"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/natsbus"
)

// TestBus runs the shared Bus conformance suite against natsbus, every
// connection of the run going to one server.
func TestBus(t *testing.T) {
	url := natstest.RunServer(t)
	contracttest.TestBus(t, func(t *testing.T, errs bus.ErrorHandler) bus.Bus {
		b, err := natsbus.Connect(url, natsbus.WithErrorHandler(errs))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	})
}
