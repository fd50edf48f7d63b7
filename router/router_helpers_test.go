package router_test

import (
	"os"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/deadletter"
	"github.com/heddle-go/heddle/internal/testkit"
	"github.com/heddle-go/heddle/internal/testlog"
	"github.com/heddle-go/heddle/router"
)

// routerStart makes a Router on b and runs it.
func routerStart(t *testing.T, b bus.Bus, cfg router.Config) (*router.Router, *testlog.Recorder, func()) {
	t.Helper()
	logs := testlog.New()
	r, err := router.New(b, cfg, heddle.WithLogger(logs.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := testkit.StartActor(t, r.Run, r.Ready())
	return r, logs, stop
}

// routerStartConsumer makes a DeadLetterConsumer on b and runs it.
func routerStartConsumer(t *testing.T, b bus.Bus, cfg deadletter.Config) (*deadletter.Consumer, *testlog.Recorder, func()) {
	t.Helper()
	logs := testlog.New()
	c, err := deadletter.New(b, cfg, heddle.WithLogger(logs.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := testkit.StartActor(t, c.Run, c.Ready())
	return c, logs, stop
}

func routerWriteRules(t *testing.T, path, yaml string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}
