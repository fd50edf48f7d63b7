package natstest_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle/contracttest/natstest"
)

func TestRunServerServesCoreNATSAndJetStream(t *testing.T) {
	t.Setenv(natstest.EnvNATSURL, "")
	url := natstest.RunServer(t)

	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	defer nc.Close()

	sub, err := nc.SubscribeSync("contracttest.server.ping")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("contracttest.server.ping", []byte("pong")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no message back from the embedded server: %v", err)
	}
	if string(m.Data) != "pong" {
		t.Fatalf("got %q, want %q", m.Data, "pong")
	}

	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(nats.Context(ctx)); err != nil {
		t.Fatalf("JetStream is not enabled on the embedded server: %v", err)
	}
}

func TestRunServerReturnsTheExternalURLWhenTheEnvironmentNamesOne(t *testing.T) {
	const external = "nats://nats.example.invalid:4222"
	t.Setenv(natstest.EnvNATSURL, external)
	if got := natstest.RunServer(t); got != external {
		t.Fatalf("RunServer = %q, want %q", got, external)
	}
}

func TestStartServerPicksARandomLoopbackPortForEachServer(t *testing.T) {
	a := natstest.StartServer(t, nil)
	b := natstest.StartServer(t, &server.Options{})
	if a.ClientURL() == b.ClientURL() {
		t.Fatalf("two servers share the URL %s", a.ClientURL())
	}
	for _, s := range []*server.Server{a, b} {
		addr := s.Addr().String()
		if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
			t.Fatalf("server listens on %s, want 127.0.0.1", addr)
		}
		if s.JetStreamEnabled() {
			t.Fatalf("JetStream enabled on %s although not asked for", addr)
		}
	}
}

func TestStartServerMayBeShutDownBeforeCleanup(t *testing.T) {
	s := natstest.StartServer(t, &server.Options{JetStream: true})
	s.Shutdown()
	s.WaitForShutdown()
	if s.Running() {
		t.Fatal("server still running after Shutdown")
	}
}

func TestRestartableServerComesBackOnItsPortAndItsClientsReconnect(t *testing.T) {
	s := natstest.StartRestartableServer(t, nil)
	reconnected := make(chan struct{}, 1)
	nc, err := nats.Connect(s.ClientURL(),
		nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond), nats.ReconnectJitter(0, 0),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("contracttest.restart")
	if err != nil {
		t.Fatal(err)
	}

	s.Stop()
	if s.Running() {
		t.Fatal("Running() after Stop")
	}
	if _, err := nats.Connect(s.ClientURL(), nats.NoReconnect()); err == nil {
		t.Fatalf("a new client reached %s after Stop", s.ClientURL())
	}
	s.Start()
	if !s.Running() {
		t.Fatal("not Running() after Start")
	}
	select {
	case <-reconnected:
	case <-time.After(natstest.ServerReadyTimeout):
		t.Fatalf("the client did not reconnect to %s", s.ClientURL())
	}
	if err := nc.Publish("contracttest.restart", []byte("back")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil || string(m.Data) != "back" {
		t.Fatalf("after the restart: %v, %v", m, err)
	}
}
