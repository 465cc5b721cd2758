// Package cassandratest gives tests the real Cassandra: the home of
// `agora dist install cassandra`, and a node started by hand from it (as a
// user would, without agora) on a loopback address.
package cassandratest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cassandra/cql"
	"github.com/agora-cluster/agora/cassandra/plan"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/dist/disttest"
)

// FastStart are JVM options that let a test node start in seconds rather
// than a minute: no 30 s ring delay, no wait for gossip to settle (a test
// ring is small and on one machine).
var FastStart = []string{"-Dcassandra.ring_delay_ms=1000", "-Dcassandra.skip_wait_for_gossip_to_settle=0"}

// Home is the installed Cassandra's home (installed on first use).
func Home(t testing.TB) string {
	t.Helper()
	return disttest.Home(t, "cassandra")
}

// Node is a Cassandra node started by hand.
type Node struct {
	Addr string // host:native_port
	Node plan.Node
	Dir  string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// StartNode starts a one-node cluster from home on host (a loopback
// address) with heapMB of heap, on ports of its own, and waits until it
// answers CQL. It is stopped when the test ends.
func StartNode(t testing.TB, home, host string, heapMB int) *Node {
	t.Helper()
	first, _ := clustertest.PortRange(plan.Ports)
	n := &Node{Dir: t.TempDir(), out: &syncBuffer{}, done: make(chan struct{}),
		Node: plan.Node{Host: host, StoragePort: uint64(first), NativePort: uint64(first + 1), JMXPort: uint64(first + 2)}}
	n.Addr = fmt.Sprintf("%s:%d", host, n.Node.NativePort)
	spec := plan.Spec{Name: "by-hand", Nodes: 1, Mem: float64(heapMB) * 2}.WithDefaults()
	conf := filepath.Join(n.Dir, "conf")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := spec.NodeYAML(n.Node, []string{fmt.Sprintf("%s:%d", host, n.Node.StoragePort)}, filepath.Join(n.Dir, "volume"))
	if err := os.WriteFile(filepath.Join(conf, "cassandra.yaml"), yaml, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "cassandra-rackdc.properties"), plan.RackDC("", ""), 0o644); err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(filepath.Join(home, "bin", "cassandra"), "-f")
	n.cmd.Env = append(os.Environ(), "CASSANDRA_CONF="+conf, "CASSANDRA_DATA="+filepath.Join(n.Dir, "volume"),
		fmt.Sprintf("MAX_HEAP_SIZE=%dM", heapMB), fmt.Sprintf("JMX_PORT=%d", n.Node.JMXPort),
		"JVM_EXTRA_OPTS="+strings.Join(FastStart, " "))
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start cassandra: %v", err)
	}
	go func() { n.cmd.Wait(); close(n.done) }()
	t.Cleanup(n.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := WaitJoined(ctx, n.Addr, n.done); err != nil {
		t.Fatalf("the node by hand: %v\n%s", err, n.out.tail(6000))
	}
	return n
}

// Stop kills the node and waits for it.
func (n *Node) Stop() {
	select {
	case <-n.done:
		return
	default:
	}
	syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
	}
}

// Log is the end of the node's output.
func (n *Node) Log() string { return n.out.tail(8000) }

// WaitJoined polls the node at addr until it has joined the ring and
// answers CQL, ctx ends, or exited (if not nil) closes.
func WaitJoined(ctx context.Context, addr string, exited <-chan struct{}) (cql.Local, error) {
	var last error
	for {
		l, err := cql.QueryLocal(ctx, addr, 5*time.Second)
		if err == nil && l.Joined() {
			return l, nil
		}
		if err == nil {
			err = fmt.Errorf("bootstrapped %q", l.Bootstrapped)
		}
		last = err
		select {
		case <-ctx.Done():
			return cql.Local{}, fmt.Errorf("%s did not join: %v (%w)", addr, last, ctx.Err())
		case <-exited:
			return cql.Local{}, fmt.Errorf("%s exited before joining (last: %v)", addr, last)
		case <-time.After(time.Second):
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.b) > n {
		return string(s.b[len(s.b)-n:])
	}
	return string(s.b)
}
