package natstest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heddle-go/heddle/contracttest/natstest"
)

func jetStreamOf(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc := connectCluster(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// lastMessage returns the data of the stream's last message on subject.
func lastMessage(t *testing.T, ctx context.Context, js jetstream.JetStream, stream, subject string) string {
	t.Helper()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatalf("last message of %s on %s: %v", stream, subject, err)
	}
	return string(m.Data)
}

func TestJetStreamServerKeepsItsFileStoreAcrossARestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.StartJetStreamServer(t, nil)
	js := jetStreamOf(t, srv.ClientURL())
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEPT", Subjects: []string{"kept.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "kept.one", []byte("before the restart")); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	srv.Start()
	// A new connection: the old one may still be reconnecting.
	js = jetStreamOf(t, srv.ClientURL())
	if got := lastMessage(t, ctx, js, "KEPT", "kept.one"); got != "before the restart" {
		t.Fatalf("after the restart the stream holds %q, want the message stored before it", got)
	}
}

func TestJetStreamClusterKeepsAnR3StreamThroughTheLossOfItsLeader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := natstest.StartJetStreamCluster(t, 3)
	js := jetStreamOf(t, c.URL(0))
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	c.WaitForStreamLeader("R3")
	for i := range 10 {
		if _, err := js.Publish(ctx, "r3.msg", fmt.Appendf(nil, "message %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	leader := c.StreamLeader("R3")
	if leader < 0 {
		t.Fatal("no node leads the stream after WaitForStreamLeader")
	}
	c.Kill(leader)
	c.WaitForStreamLeader("R3")
	if now := c.StreamLeader("R3"); now == leader || now < 0 {
		t.Fatalf("stream leader is node %d after node %d was killed", now, leader)
	}
	js = jetStreamOf(t, c.URL((leader+1)%3))
	if got := lastMessage(t, ctx, js, "R3", "r3.msg"); got != "message 9" {
		t.Fatalf("after losing its leader the stream's last message is %q, want %q", got, "message 9")
	}
	if _, err := js.Publish(ctx, "r3.msg", []byte("after the loss")); err != nil {
		t.Fatalf("publish with two of three nodes: %v", err)
	}
	c.Restart(leader)
	c.WaitForJetStream()
	c.WaitForStreamLeader("R3")
	s, err := js.Stream(ctx, "R3")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 11 {
		t.Fatalf("the stream holds %d messages after the node came back, want 11", info.State.Msgs)
	}
}
