// Package cassandratest gives tests the real Cassandra: the home of
// `agora dist install cassandra`, and a node started by hand from it (as a
// user would, without agora) on a loopback address.
package cassandratest

import (
	"context"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cassandra/local"
	"github.com/agora-cluster/agora/cassandra/plan"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/dist/disttest"
)

// FastStart are JVM options that let a test node start in seconds rather
// than a minute: no 30 s ring delay, no wait for gossip to settle (a test
// ring is small and on one machine), and a load broadcast every second,
// which is also how long a replacement waits to be sure that the node it
// replaces is silent (a minute by default).
var FastStart = []string{"-Dcassandra.ring_delay_ms=1000", "-Dcassandra.skip_wait_for_gossip_to_settle=0", "-Dcassandra.broadcast_interval_ms=1000"}

// Home is the installed Cassandra's home (installed on first use).
func Home(t testing.TB) string {
	t.Helper()
	return disttest.Home(t, "cassandra")
}

// StartNode starts a one-node ring named by-hand from home on host (a
// loopback address) with heapMB of heap, on ports of its own, and waits
// until it answers CQL. It is stopped when the test ends.
func StartNode(t testing.TB, home, host string, heapMB int) *local.Node {
	t.Helper()
	first, _ := clustertest.PortRange(plan.Ports)
	n := plan.Node{Host: host, StoragePort: uint64(first), NativePort: uint64(first + 1), JMXPort: uint64(first + 2)}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ln, err := local.Start(ctx, home, t.TempDir(), "by-hand", n, heapMB, FastStart)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ln.Stop)
	return ln
}
