package natstest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
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
	// same server and subject namespace (natsbus) and is closed when the
	// test ends.
	Connector func(t testing.TB) func() bus.Bus
}

// Transports lists membus and natsbus. natsbus runs against the server
// RunServer gives: an embedded nats-server of the test's own, or the one
// named by the environment variable EnvNATSURL (HEDDLE_TEST_NATS_URL).
//
// On that external server every test shares the subjects of every other
// test, in this package and in others running at the same time, so the
// natsbus connector gives each test a subject namespace of its own: all the
// connections one Connector call opens use the same random prefix
// ("t" and 16 hex digits, then '.', see natsbus.WithSubjectPrefix), which
// no other call uses. Tests see only their logical subjects
// (heddle.tasks.incoming, ...) and never each other's messages. On the
// embedded server no prefix is set: the server is the test's alone.
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
//	EachBus(t, func(t *testing.T, connect func() bus.Bus) {
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
	var opts []natsbus.Option
	if os.Getenv(EnvNATSURL) != "" {
		opts = append(opts, natsbus.WithSubjectPrefix(testSubjectPrefix()))
	}
	return func() bus.Bus {
		t.Helper()
		b, err := natsbus.Connect(url, opts...)
		if err != nil {
			t.Fatalf("natsbus: %v", err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
}

// testSubjectPrefix returns a subject namespace for one test on a shared
// server. 64 random bits make a collision between tests that run at the
// same time negligible.
func testSubjectPrefix() string {
	var b [8]byte
	rand.Read(b[:]) // crypto/rand.Read never returns an error
	return "t" + hex.EncodeToString(b[:]) + "."
}
