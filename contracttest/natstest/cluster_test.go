package natstest_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle/contracttest/natstest"
)

// clusterWait bounds each wait for a message or a connection event; only
// a broken cluster reaches it.
const clusterWait = 10 * time.Second

// connectCluster connects plain nats.go to url, reconnecting quickly and
// forever, and closes the connection when the test ends.
func connectCluster(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.ReconnectWait(20 * time.Millisecond), nats.MaxReconnects(-1)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// offer sends v on ch unless ch is full: nats.go runs connection callbacks
// on one goroutine, which a blocked send would stall past Close.
func offer[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}

// checkEveryPairDelivers connects a client to each node of c, subscribes
// on each, and checks that a message published on every node reaches the
// subscriber on every other node.
func checkEveryPairDelivers(t *testing.T, c *natstest.Cluster, round string) {
	t.Helper()
	n := c.Size()
	conns := make([]*nats.Conn, n)
	subs := make([]*nats.Subscription, n)
	for j := range n {
		conns[j] = connectCluster(t, c.ClientURL(j), nats.IgnoreDiscoveredServers())
		if got := conns[j].ConnectedUrl(); got != c.ClientURL(j) {
			t.Fatalf("client for node %d connected to %s, want %s", j, got, c.ClientURL(j))
		}
		sub, err := conns[j].SubscribeSync(fmt.Sprintf("cluster.%s.to.%d", round, j))
		if err != nil {
			t.Fatal(err)
		}
		if err := conns[j].Flush(); err != nil {
			t.Fatal(err)
		}
		subs[j] = sub
	}
	for i := range n {
		for j := range n {
			if i == j {
				continue
			}
			subject := fmt.Sprintf("cluster.%s.to.%d", round, j)
			c.WaitForInterest(i, subject)
			if err := conns[i].Publish(subject, fmt.Appendf(nil, "from %d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for j := range n {
		got := map[string]bool{}
		for range n - 1 {
			m, err := subs[j].NextMsg(clusterWait)
			if err != nil {
				t.Fatalf("%s: node %d received %v, then: %v", round, j, got, err)
			}
			got[string(m.Data)] = true
		}
		for i := range n {
			if i != j && !got[fmt.Sprintf("from %d", i)] {
				t.Errorf("%s: node %d got nothing from node %d (got %v)", round, j, i, got)
			}
		}
	}
}

func TestStartClusterFormsOneMeshOfNodesOnLoopback(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	if c.Size() != 3 {
		t.Fatalf("Size = %d, want 3", c.Size())
	}
	seen := map[string]bool{}
	for i := range c.Size() {
		s := c.Server(i)
		if !c.Running(i) || !s.Running() {
			t.Fatalf("node %d is not running", i)
		}
		if host, _, err := net.SplitHostPort(s.Addr().String()); err != nil || host != "127.0.0.1" {
			t.Errorf("node %d listens on %s, want 127.0.0.1", i, s.Addr())
		}
		if got := s.ClusterAddr().IP.String(); got != "127.0.0.1" {
			t.Errorf("node %d routes on %s, want 127.0.0.1", i, got)
		}
		if seen[c.ClientURL(i)] {
			t.Errorf("two nodes share the URL %s", c.ClientURL(i))
		}
		seen[c.ClientURL(i)] = true
		if got := s.NumRemotes(); got != 2 {
			t.Errorf("node %d has routes to %d nodes, want 2", i, got)
		}
	}
	if want := c.ClientURL(1) + "," + c.ClientURL(2) + "," + c.ClientURL(0); c.URL(1) != want {
		t.Errorf("URL(1) = %q, want %q", c.URL(1), want)
	}
	checkEveryPairDelivers(t, c, "start")
}

func TestClusterRestartBringsANodeBackOnItsClientPort(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	disconnected := make(chan struct{}, 1)
	reconnected := make(chan string, 1)
	// Only node 1's URL, discovered ones ignored: the client can come
	// back to nowhere else.
	nc := connectCluster(t, c.ClientURL(1), nats.IgnoreDiscoveredServers(),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { offer(disconnected, struct{}{}) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { offer(reconnected, nc.ConnectedUrl()) }))
	sub, err := nc.SubscribeSync("cluster.restart")
	if err != nil {
		t.Fatal(err)
	}
	old := c.Server(1)

	c.Kill(1)
	if c.Running(1) || old.Running() {
		t.Fatal("node 1 still running after Kill")
	}
	select {
	case <-disconnected:
	case <-time.After(clusterWait):
		t.Fatal("the client did not see node 1 go")
	}
	c.Kill(1) // killing a stopped node does nothing

	c.Restart(1)
	if !c.Running(1) || c.Server(1) == old || !c.Server(1).Running() {
		t.Fatal("node 1 not running again after Restart")
	}
	select {
	case url := <-reconnected:
		if url != c.ClientURL(1) {
			t.Fatalf("reconnected to %s, want node 1 at %s", url, c.ClientURL(1))
		}
	case <-time.After(clusterWait):
		t.Fatal("the client did not reconnect to the restarted node 1")
	}
	// The restarted node is in the mesh again: a message published on
	// node 0 reaches the subscription the client restored on node 1.
	c.WaitForInterest(0, "cluster.restart")
	pub := connectCluster(t, c.ClientURL(0), nats.IgnoreDiscoveredServers())
	if err := pub.Publish("cluster.restart", []byte("after restart")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(clusterWait)
	if err != nil {
		t.Fatalf("no message across the restarted node: %v", err)
	}
	if string(m.Data) != "after restart" {
		t.Fatalf("got %q, want %q", m.Data, "after restart")
	}
}

func TestClusterClientWithTheFullListFailsOverToAnotherNode(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	reconnected := make(chan string, 1)
	nc := connectCluster(t, c.URL(2), nats.DontRandomize(),
		nats.ReconnectHandler(func(nc *nats.Conn) { offer(reconnected, nc.ConnectedUrl()) }))
	if got := nc.ConnectedUrl(); got != c.ClientURL(2) {
		t.Fatalf("connected to %s, want node 2 first in the list, %s", got, c.ClientURL(2))
	}
	c.Kill(2)
	select {
	case url := <-reconnected:
		if url == c.ClientURL(2) {
			t.Fatalf("reconnected to the killed node 2 at %s", url)
		}
	case <-time.After(clusterWait):
		t.Fatal("the client did not fail over to a running node")
	}
}

func TestClusterRollingRestartKeepsOneMesh(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	for i := range c.Size() {
		c.Restart(i)
		checkEveryPairDelivers(t, c, fmt.Sprintf("after-restart-%d", i))
	}
}
