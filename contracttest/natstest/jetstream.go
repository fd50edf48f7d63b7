package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// JetStream on the embedded servers: durable mode (bus.Durable on
// natsbus) needs it, and its crash tests need it with file storage, so
// that what a server stored survives the server. Every store directory
// is under t.TempDir(), removed once the servers using it have stopped.

// StartJetStreamServer starts an embedded nats-server with JetStream and
// file storage under t.TempDir(), as StartRestartableServer does: Stop
// and Start keep its port and its store, so a stream and the messages it
// held are there again after a restart, as on a server whose process was
// restarted. opts may be nil; JetStream is turned on whatever it says.
// It always starts a server of its own, even when HEDDLE_TEST_NATS_URL
// names a shared one: the test controls it.
func StartJetStreamServer(t testing.TB, opts *server.Options) *RestartableServer {
	t.Helper()
	var o server.Options
	if opts != nil {
		o = *opts
	}
	o.JetStream = true
	return StartRestartableServer(t, &o)
}

// StartJetStreamCluster starts a cluster of n embedded servers as
// StartCluster does, with JetStream on every node (each with a store
// directory of its own under t.TempDir(), kept across Restart), and
// returns once the nodes have elected a JetStream meta leader, so that a
// stream can be created at once, with up to n replicas.
//
// n must be at least 2; for one server use StartJetStreamServer. After
// Kill or Restart, wait with WaitForJetStream before creating
// streams, and with WaitForStreamLeader before counting on a stream.
func StartJetStreamCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 2 {
		t.Fatalf("natstest: StartJetStreamCluster(n=%d): a JetStream cluster needs at least 2 nodes (one server: StartJetStreamServer)", n)
	}
	c := &Cluster{
		t:            t,
		clientURLs:   make([]string, n),
		clusterURLs:  make([]*url.URL, n),
		clientPorts:  make([]int, n),
		clusterPorts: make([]int, n),
		servers:      make([]*server.Server, n),
		down:         make([]bool, n),
		// Made before any server starts, so that the servers' shutdowns,
		// registered later, run before the directories are removed.
		storeDirs: make([]string, n),
	}
	for i := range n {
		c.storeDirs[i] = t.TempDir()
	}
	// After the store directories, so that it runs before they are
	// removed.
	t.Cleanup(c.killAll)
	// A JetStream node refuses to start without routes, so every node is
	// given the route ports of all the others up front: free ports taken
	// from the system and released just before the servers bind them.
	for i, port := range freeLoopbackPorts(t, n) {
		c.clusterPorts[i] = port
		c.clusterURLs[i] = &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	}
	for i := range n {
		routes := make([]*url.URL, 0, n-1)
		for k, u := range c.clusterURLs {
			if k != i {
				routes = append(routes, u)
			}
		}
		o := c.nodeOptions(i, server.RANDOM_PORT, c.clusterPorts[i], routes)
		s := startServer(t, o)
		if i == 0 {
			c.routesPerPeer = 1
			if ps := o.Cluster.PoolSize; ps > 0 {
				c.routesPerPeer = ps + len(o.Cluster.PinnedAccounts)
			}
		}
		ca, ok := s.Addr().(*net.TCPAddr)
		if !ok {
			t.Fatalf("natstest: cluster node %d has no client listener", i)
		}
		c.servers[i] = s
		c.clientURLs[i] = s.ClientURL()
		c.clientPorts[i] = ca.Port
	}
	c.waitForRoutes()
	c.WaitForJetStream()
	return c
}

// freeLoopbackPorts returns n distinct loopback ports that were free a
// moment ago. Another process may take one before a server binds it; the
// server then fails to start and the test says so.
func freeLoopbackPorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	listeners := make([]net.Listener, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("natstest: no free loopback port: %v", err)
		}
		listeners[i] = l
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range listeners {
		_ = l.Close()
	}
	return ports
}

// WaitForJetStream waits until one running node is the JetStream meta
// leader, every running node is current with it and the leader knows
// every running node online (so a stream with as many replicas can be
// placed), failing the test
// after ServerReadyTimeout. It must be called from the test's goroutine,
// on a cluster of StartJetStreamCluster.
func (c *Cluster) WaitForJetStream() {
	c.t.Helper()
	c.requireJetStream("WaitForJetStream")
	c.poll(func() bool {
		_, servers := c.running()
		leaders := 0
		for _, s := range servers {
			if !s.JetStreamIsCurrent() {
				return false
			}
			if s.JetStreamIsLeader() {
				leaders++
				// The leader places new streams on the peers it knows
				// online (with their stats): until it knows every
				// running node, an R3 stream fails with "no suitable
				// peers for placement, peer offline".
				if len(s.JetStreamClusterPeers()) < len(servers) {
					return false
				}
			}
		}
		return leaders == 1
	}, func() string {
		return fmt.Sprintf("no JetStream meta leader, or a running node not current with it, after %v (%s)", ServerReadyTimeout, c.jetStreamState(""))
	})
}

// WaitForStreamLeader waits until a running node leads the stream named
// stream (its name on the server, in the global account) and every
// running node holding a replica of it is current, failing the test
// after ServerReadyTimeout. A test that kills the leader of a replicated
// stream calls it before counting on the stream again. It must be called
// from the test's goroutine, on a cluster of StartJetStreamCluster.
func (c *Cluster) WaitForStreamLeader(stream string) {
	c.t.Helper()
	c.requireJetStream("WaitForStreamLeader")
	c.poll(func() bool {
		_, servers := c.running()
		leaders := 0
		for _, s := range servers {
			acc := s.GlobalAccount()
			if acc == nil {
				return false
			}
			if s.JetStreamIsStreamLeader(acc.Name, stream) {
				leaders++
			}
			if s.JetStreamIsStreamAssigned(acc.Name, stream) && !s.JetStreamIsStreamCurrent(acc.Name, stream) {
				return false
			}
		}
		return leaders == 1
	}, func() string {
		return fmt.Sprintf("stream %q has no leader, or a replica not current, after %v (%s)", stream, ServerReadyTimeout, c.jetStreamState(stream))
	})
}

// StreamLeader returns the running node that leads stream, or -1 when
// none does (yet).
func (c *Cluster) StreamLeader(stream string) int {
	nodes, servers := c.running()
	for k, s := range servers {
		if acc := s.GlobalAccount(); acc != nil && s.JetStreamIsStreamLeader(acc.Name, stream) {
			return nodes[k]
		}
	}
	return -1
}

func (c *Cluster) requireJetStream(what string) {
	c.t.Helper()
	if c.storeDirs == nil {
		c.t.Fatalf("natstest: Cluster.%s on a cluster without JetStream; start it with StartJetStreamCluster", what)
	}
}

// jetStreamState describes each running node's JetStream role, for a
// failure message.
func (c *Cluster) jetStreamState(stream string) string {
	nodes, servers := c.running()
	parts := make([]string, len(servers))
	for k, s := range servers {
		p := fmt.Sprintf("node %d: meta leader %t, current %t", nodes[k], s.JetStreamIsLeader(), s.JetStreamIsCurrent())
		if acc := s.GlobalAccount(); stream != "" && acc != nil {
			p += fmt.Sprintf(", stream leader %t, assigned %t", s.JetStreamIsStreamLeader(acc.Name, stream), s.JetStreamIsStreamAssigned(acc.Name, stream))
		}
		parts[k] = p
	}
	return strings.Join(parts, "; ")
}
