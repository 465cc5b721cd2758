// Package local starts a Cassandra node by hand from an installed home, as
// a user would without agora: a one-node ring on a loopback address, with
// the cassandra.yaml the plan generates. Tests and `agora bench cassandra`
// use it as the baseline beside the nodes agora runs.
package local

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/cassandra/cql"
	"github.com/agora-cluster/agora/cassandra/plan"
)

// Node is a node started by hand.
type Node struct {
	Addr string // host:native_port
	Node plan.Node
	Dir  string
	cmd  *exec.Cmd
	out  *buffer
	done chan struct{}
}

// Start starts a one-node ring named name from home on n's address and
// ports, its conf and data under dir, with heapMB of heap and the JVM
// options opts, and waits until it answers CQL having joined (or ctx
// ends). On error nothing is left running.
func Start(ctx context.Context, home, dir, name string, n plan.Node, heapMB int, opts []string) (*Node, error) {
	ln := &Node{Dir: dir, Node: n, out: &buffer{}, done: make(chan struct{}),
		Addr: fmt.Sprintf("%s:%d", n.Host, n.NativePort)}
	spec := plan.Spec{Name: name, Nodes: 1, Mem: float64(heapMB) * 2}.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "conf")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		return nil, err
	}
	yaml := spec.NodeYAML(n, []string{fmt.Sprintf("%s:%d", n.Host, n.StoragePort)}, filepath.Join(dir, "volume"))
	if err := os.WriteFile(filepath.Join(conf, "cassandra.yaml"), yaml, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(conf, "cassandra-rackdc.properties"), plan.RackDC("", ""), 0o644); err != nil {
		return nil, err
	}
	ln.cmd = exec.Command(filepath.Join(home, "bin", "cassandra"), "-f")
	ln.cmd.Env = append(os.Environ(), "CASSANDRA_CONF="+conf, "CASSANDRA_DATA="+filepath.Join(dir, "volume"),
		fmt.Sprintf("MAX_HEAP_SIZE=%dM", heapMB), fmt.Sprintf("JMX_PORT=%d", n.JMXPort),
		"JVM_EXTRA_OPTS="+strings.Join(opts, " "))
	ln.cmd.Stdout, ln.cmd.Stderr = ln.out, ln.out
	ln.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := ln.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start cassandra: %w", err)
	}
	go func() { ln.cmd.Wait(); close(ln.done) }()
	if _, err := WaitJoined(ctx, ln.Addr, ln.done); err != nil {
		ln.Stop()
		return nil, fmt.Errorf("the node by hand: %w\n%s", err, ln.Log())
	}
	return ln, nil
}

// Stop kills the node's process group and waits for it (30 s at most).
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

type buffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	if len(s.b) > 1<<20 {
		s.b = append([]byte(nil), s.b[len(s.b)-(512<<10):]...)
	}
	return len(p), nil
}

func (s *buffer) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.b) > n {
		return string(s.b[len(s.b)-n:])
	}
	return string(s.b)
}
