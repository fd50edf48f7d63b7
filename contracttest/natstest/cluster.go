package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// clusterName is the cluster name StartCluster gives its servers.
const clusterName = "contracttest"

// clusterPoll is the pause between two looks at route counts or interest:
// nats-server reports neither as an event.
const clusterPoll = 10 * time.Millisecond

// Cluster is a cluster of embedded nats-servers on loopback, started by
// StartCluster, for tests of a mesh whose actors sit on different nodes
// and of what happens when a node goes away. Its nodes are numbered from
// 0; every node keeps its client and cluster ports for the life of the
// test, across Kill and Restart, so a client given the full server list
// (URL) finds a restarted node where it was.
//
// Core NATS only: JetStream is not enabled on the nodes.
//
// Size, Server, Running, ClientURL and URL may be called from any
// goroutine while the test kills and restarts nodes. StartCluster, Restart
// and WaitForInterest fail the test with t.Fatalf and so must be called
// from the test's goroutine; so must Kill, so that a node is killed and
// restarted by one caller at a time.
type Cluster struct {
	t testing.TB
	// routesPerPeer is how many route connections a node keeps to each
	// other node: nats-server's route pool plus its pinned accounts (the
	// system account), or 1 when pooling is off.
	routesPerPeer int
	clientURLs    []string
	clusterURLs   []*url.URL
	// The ports each node listens on, kept across restarts.
	clientPorts, clusterPorts []int

	// storeDirs are the nodes' JetStream store directories, kept across
	// restarts; nil when JetStream is off (see StartJetStreamCluster).
	storeDirs []string

	mu      sync.Mutex
	servers []*server.Server
	down    []bool
}

// StartCluster starts a cluster of n embedded nats-servers on 127.0.0.1,
// each on a random client port and a random cluster port, nodes 1 to n-1
// routing to node 0, and returns once every node accepts connections and
// every node has its full set of routes to every other (the route pool
// included), so the cluster is one mesh when it returns. Every server is
// shut down, and waited for, when the test ends; nats-server's goroutines
// end with it.
//
// Subscribe-before-publish holds per server only: interest registered on
// one node reaches the others asynchronously over the routes. A test that
// publishes on another node than the subscriber's must wait for it with
// WaitForInterest, or account for early messages being dropped.
//
// It must be called from the test's goroutine: it fails the test with
// t.Fatalf when n < 1 or the cluster does not form within
// ServerReadyTimeout.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: StartCluster(n=%d): a cluster needs at least 1 node", n)
	}
	c := &Cluster{
		t:            t,
		clientURLs:   make([]string, n),
		clusterURLs:  make([]*url.URL, n),
		clientPorts:  make([]int, n),
		clusterPorts: make([]int, n),
		servers:      make([]*server.Server, n),
		down:         make([]bool, n),
	}
	t.Cleanup(c.killAll)
	for i := range n {
		var routes []*url.URL
		if i > 0 {
			routes = []*url.URL{c.clusterURLs[0]}
		}
		o := c.nodeOptions(i, server.RANDOM_PORT, server.RANDOM_PORT, routes)
		s := startServer(t, o)
		if i == 0 {
			// The options are completed by the server (the pool size, the
			// system account pinned to a route of its own); every node has
			// the same, so node 0's say what each pair of nodes keeps.
			c.routesPerPeer = 1
			if ps := o.Cluster.PoolSize; ps > 0 {
				c.routesPerPeer = ps + len(o.Cluster.PinnedAccounts)
			}
		}
		ca, ok := s.Addr().(*net.TCPAddr)
		ra := s.ClusterAddr()
		if !ok || ra == nil {
			t.Fatalf("natstest: cluster node %d has no client or route listener", i)
		}
		c.servers[i] = s
		c.clientURLs[i] = s.ClientURL()
		c.clientPorts[i], c.clusterPorts[i] = ca.Port, ra.Port
		c.clusterURLs[i] = &url.URL{Scheme: "nats-route", Host: ra.String()}
	}
	c.waitForRoutes()
	return c
}

// nodeOptions returns the options of node i on the given ports
// (server.RANDOM_PORT for any free one), routing to routes.
func (c *Cluster) nodeOptions(i, clientPort, clusterPort int, routes []*url.URL) *server.Options {
	o := &server.Options{
		ServerName: fmt.Sprintf("%s-%d", clusterName, i),
		Host:       "127.0.0.1",
		Port:       clientPort,
		NoLog:      true,
		NoSigs:     true,
		Cluster: server.ClusterOpts{
			Name: clusterName,
			Host: "127.0.0.1",
			Port: clusterPort,
		},
		Routes: routes,
	}
	if c.storeDirs != nil {
		o.JetStream, o.StoreDir = true, c.storeDirs[i]
	}
	return o
}

// Size returns the number of nodes, running or not.
func (c *Cluster) Size() int { return len(c.clientURLs) }

// Server returns node i's server: the one running, or the last one to have
// run when the node is killed. Restart replaces it.
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i]
}

// Running reports whether node i is running: it was not killed, or was
// restarted since.
func (c *Cluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.down[i]
}

// ClientURL returns the client URL of node i, such as
// nats://127.0.0.1:40321. It does not change when the node restarts.
func (c *Cluster) ClientURL(i int) string { return c.clientURLs[i] }

// URL returns the client URLs of every node, comma-separated, starting
// with node first and going on in node order, wrapping around: the form
// natsbus.Connect and nats.Connect take for a cluster. nats.go shuffles
// the list unless told not to (nats.DontRandomize, passed to natsbus with
// WithNATSOptions); with the order kept, a client connects to node first
// and, when that node goes, fails over to the next one that answers.
func (c *Cluster) URL(first int) string {
	n := len(c.clientURLs)
	urls := make([]string, 0, n)
	for k := range n {
		urls = append(urls, c.clientURLs[(first+k)%n])
	}
	return strings.Join(urls, ",")
}

// Kill shuts node i down and returns once its server has stopped: its
// clients lose their connections (they see the server close them, as when
// a process is killed) and the other nodes lose their routes to it. Killing
// a node that is not running does nothing.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	c.mu.Lock()
	s, down := c.servers[i], c.down[i]
	c.down[i] = true
	c.mu.Unlock()
	if down {
		return
	}
	s.Shutdown()
	s.WaitForShutdown()
}

// killAll kills every node still running when the test ends, a node
// restarted mid-test included.
func (c *Cluster) killAll() {
	for i := range c.servers {
		if c.servers[i] != nil {
			c.Kill(i)
		}
	}
}

// Restart kills node i if it is running, starts a new server in its place
// on the same client and cluster ports, routing to every other node, and
// returns once it accepts connections and every running node has its full
// set of routes to every other. Clients that were connected to the node
// reconnect wherever their server list and reconnect settings take them;
// those given the node's URL may come back to it.
//
// Each port was free when the node first started, and another process on
// the machine could take it while the node is down; Restart then fails the
// test. It also fails the test when the cluster does not form again within
// ServerReadyTimeout.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.Kill(i)
	routes := make([]*url.URL, 0, len(c.clusterURLs)-1)
	for k, u := range c.clusterURLs {
		if k != i {
			routes = append(routes, u)
		}
	}
	o := c.nodeOptions(i, c.clientPorts[i], c.clusterPorts[i], routes)
	// No cleanup of its own (see launch): the cluster's stops every
	// running node when the test ends.
	s := launch(c.t, o, false)
	c.mu.Lock()
	c.servers[i] = s
	c.down[i] = false
	c.mu.Unlock()
	c.waitForRoutes()
}

// running returns the servers of the running nodes with their numbers.
func (c *Cluster) running() (nodes []int, servers []*server.Server) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.servers {
		if !c.down[i] {
			nodes = append(nodes, i)
			servers = append(servers, s)
		}
	}
	return nodes, servers
}

// waitForRoutes waits until every running node has routesPerPeer route
// connections to each other running node, failing the test after
// ServerReadyTimeout.
func (c *Cluster) waitForRoutes() {
	c.t.Helper()
	nodes, servers := c.running()
	want := (len(servers) - 1) * c.routesPerPeer
	c.poll(func() bool {
		for _, s := range servers {
			if s.NumRoutes() != want {
				return false
			}
		}
		return true
	}, func() string {
		got := make([]string, len(servers))
		for k, s := range servers {
			got[k] = fmt.Sprintf("node %d has %d", nodes[k], s.NumRoutes())
		}
		return fmt.Sprintf("routes not formed after %v: want %d on each running node (%d per peer), %s",
			ServerReadyTimeout, want, c.routesPerPeer, strings.Join(got, ", "))
	})
}

// WaitForInterest returns once node i, which must be running, knows of a
// subscription matching subject, made on it or on another node and carried
// over the routes, so that a message published to node i on subject is
// delivered. It fails the test when none is known within
// ServerReadyTimeout.
func (c *Cluster) WaitForInterest(i int, subject string) {
	c.t.Helper()
	c.poll(func() bool {
		acc := c.Server(i).GlobalAccount()
		return acc != nil && acc.SubscriptionInterest(subject)
	}, func() string {
		return fmt.Sprintf("node %d knows of no subscription to %q after %v", i, subject, ServerReadyTimeout)
	})
}

// poll calls done until it reports true, failing the test with failure's
// message when ServerReadyTimeout passes first.
func (c *Cluster) poll(done func() bool, failure func() string) {
	c.t.Helper()
	deadline := time.NewTimer(ServerReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(clusterPoll)
	defer tick.Stop()
	for !done() {
		select {
		case <-tick.C:
		case <-deadline.C:
			if !done() {
				c.t.Fatalf("natstest: cluster: %s", failure())
			}
			return
		}
	}
}
