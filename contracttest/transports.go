package contracttest

import (
	"testing"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/membus"
	"github.com/heddle-go/heddle/natsbus"
)

// Transport names one Bus implementation for tests that must pass on every
// transport the SDK ships.
type Transport struct {
	// Name is the subtest name: "membus" or "natsbus".
	Name string
	// Connector returns a function that opens connections for one test.
	// Every connection it opens reaches the same broker (membus) or the
	// same server (natsbus) and is closed when the test ends.
	Connector func(t testing.TB) func() bus.Bus
}

// Transports lists membus and natsbus. natsbus runs against the server
// RunServer gives: an embedded nats-server, or the one named by the
// environment variable EnvNATSURL.
func Transports() []Transport {
	return []Transport{
		{Name: "membus", Connector: memConnector},
		{Name: "natsbus", Connector: natsConnector},
	}
}

// EachBus runs fn as one subtest per transport. connect opens a new
// connection each time it is called; connections of one subtest share one
// broker, so an actor on one connection and a caller on another talk to
// each other as separate processes would. Use it to write actor tests once
// and run them on both transports:
//
//	contracttest.EachBus(t, func(t *testing.T, connect func() bus.Bus) {
//		b := connect()
//		...
//	})
func EachBus(t *testing.T, fn func(t *testing.T, connect func() bus.Bus)) {
	t.Helper()
	for _, tr := range Transports() {
		t.Run(tr.Name, func(t *testing.T) {
			fn(t, tr.Connector(t))
		})
	}
}

func memConnector(t testing.TB) func() bus.Bus {
	first := membus.New()
	t.Cleanup(func() { _ = first.Close() })
	used := false
	return func() bus.Bus {
		var b *membus.Bus
		if !used {
			used, b = true, first
		} else {
			b = first.Connect()
			t.Cleanup(func() { _ = b.Close() })
		}
		return b
	}
}

func natsConnector(t testing.TB) func() bus.Bus {
	url := RunServer(t)
	return func() bus.Bus {
		t.Helper()
		b, err := natsbus.Connect(url)
		if err != nil {
			t.Fatalf("natsbus: %v", err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
}
