package registry

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/agora-cluster/agora/cluster/zk/zktest"
)

func putAgents(t *testing.T, r *ZK, from, to int, state AgentState) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := r.PutAgent(AgentRecord{ID: fmt.Sprintf("a%05d", i), State: state}); err != nil {
			t.Fatal(err)
		}
	}
}

func (c *ZKCache) wholeReads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

func (c *ZKCache) decodedAgents() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k := range c.decoded {
		if strings.HasPrefix(k, "agents/") {
			n++
		}
	}
	return n
}

// agentsVia reads the agents through a registry that uses the copy.
func agentsVia(t *testing.T, conn *gozk.Conn, c *ZKCache) []AgentRecord {
	t.Helper()
	r, err := OpenZK(conn, "/agora/registry", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.UseCache(c)
	recs, err := r.Agents()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// A standby's copy follows the registry through the change log: after
// one whole read it reads only what each write changed, and a registry
// read through it equals one read from ZooKeeper itself.
func TestZKCacheFollowsTheChangeLog(t *testing.T) {
	e := zktest.Start(t, 1)
	conn := zkConn(t, e)
	w, err := OpenZK(conn, "/agora/registry", nil)
	if err != nil {
		t.Fatal(err)
	}
	putAgents(t, w, 0, 50, AgentAdmitted)
	if err := w.PutPolicy(Policy{Weights: map[string]float64{"eng": 2}}); err != nil {
		t.Fatal(err)
	}

	standby := zkConn(t, e)
	c := NewZKCache(func() *gozk.Conn { return standby }, "/agora/registry", nil)
	if _, err := c.Sync(false); err != nil || c.wholeReads() != 1 {
		t.Fatalf("first sync: %v, %d whole reads", err, c.wholeReads())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the copy did not stop")
		}
	})

	// Changes after the first read: new agents, a state change, a
	// deletion, the policy.
	putAgents(t, w, 50, 80, AgentAdmitted)
	putAgents(t, w, 0, 10, AgentUnreachable)
	if err := w.DeleteAgent("a00020"); err != nil {
		t.Fatal(err)
	}
	if err := w.PutPolicy(Policy{Weights: map[string]float64{"eng": 3}}); err != nil {
		t.Fatal(err)
	}

	// Run follows the log on its own.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c.mu.Lock()
		_, gone := c.nodes["agents/a00020"]
		w3 := string(c.nodes["policy/weights"])
		c.mu.Unlock()
		if !gone && w3 == `{"eng":3}` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the copy did not follow the writes (a00020 still there: %v, weights %s)", gone, w3)
		}
	}
	want, err := w.Agents()
	if err != nil || len(want) != 79 {
		t.Fatalf("the writer reads %d agents (%v), want 79", len(want), err)
	}
	// The copy decoded the agents as they came, and hands them over.
	if n := c.decodedAgents(); n != 79 {
		t.Fatalf("the copy holds %d decoded agents; want all 79", n)
	}
	got := agentsVia(t, zkConn(t, e), c)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("through the copy: %d agents %v\nfrom ZooKeeper: %d agents %v", len(got), got, len(want), want)
	}
	if n := c.decodedAgents(); n != 0 {
		t.Fatalf("the copy kept %d decoded agents it handed over; want none (the reader may change them)", n)
	}
	// Changed since: those are decoded again, the rest read from the
	// copy's bytes; together they still agree with ZooKeeper.
	putAgents(t, w, 30, 35, AgentUnreachable)
	for deadline := time.Now().Add(30 * time.Second); c.decodedAgents() != 5; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the copy decoded %d of the 5 agents changed since; want 5", c.decodedAgents())
		}
	}
	if want, err = w.Agents(); err != nil {
		t.Fatal(err)
	}
	// The reader takes the decoded records, not the bytes: bytes that no
	// longer decode behind a decoded record go unread.
	c.mu.Lock()
	c.nodes["agents/a00030"] = []byte("not a record")
	c.mu.Unlock()
	if got := agentsVia(t, zkConn(t, e), c); !reflect.DeepEqual(got, want) {
		t.Fatalf("through the copy after more changes: %d agents %v\nfrom ZooKeeper: %d agents %v", len(got), got, len(want), want)
	}
	r, _ := OpenZK(zkConn(t, e), "/agora/registry", nil)
	r.UseCache(c)
	if p, err := r.Policy(); err != nil || p.Weights["eng"] != 3 {
		t.Fatalf("policy through the copy: %+v, %v; want eng weight 3", p, err)
	}
	if n := c.wholeReads(); n != 1 {
		t.Fatalf("the copy read the registry whole %d times; want once, then only the changes", n)
	}
}

// A copy that fell behind the log's trimmed start, or of a registry in
// the format that does not log, is not trusted: it is read whole again.
func TestZKCacheReadsWholeWhenItCannotBeTrusted(t *testing.T) {
	e := zktest.Start(t, 1)
	conn := zkConn(t, e)

	// A registry written by a master of format 1, which does not log.
	for _, p := range []string{"/agora", "/agora/registry"} {
		if _, err := conn.Create(p, nil, 0, gozk.WorldACL(gozk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Set("/agora/registry", []byte(zkFormatV1), -1); err != nil {
		t.Fatal(err)
	}
	c := NewZKCache(func() *gozk.Conn { return conn }, "/agora/registry", nil)
	if _, err := c.Sync(false); err == nil {
		t.Fatal("a copy of a format-1 registry was trusted")
	}
	w, err := OpenZK(conn, "/agora/registry", nil) // upgrades it
	if err != nil {
		t.Fatal(err)
	}
	if b, _, _ := conn.Get("/agora/registry"); string(b) != ZKFormat {
		t.Fatalf("opening a format-1 registry left it as %q; want %s", b, ZKFormat)
	}
	putAgents(t, w, 0, 5, AgentAdmitted)
	if _, err := c.Sync(false); err != nil {
		t.Fatal(err)
	}
	if n := c.wholeReads(); n != 1 {
		t.Fatalf("whole reads %d, want 1", n)
	}

	// The copy stops following while the writer writes more entries than
	// the log keeps: those after its cursor are trimmed.
	putAgents(t, w, 5, 5+LogKeep+logTrimEvery+1, AgentAdmitted)
	names, _, err := conn.Children("/agora/registry/log")
	if err != nil || len(names) > LogKeep+logTrimEvery {
		t.Fatalf("the log holds %d entries (%v); the writer keeps %d and trims every %d writes", len(names), err, LogKeep, logTrimEvery)
	}
	got := agentsVia(t, conn, c)
	if len(got) != 5+LogKeep+logTrimEvery+1 {
		t.Fatalf("through the copy: %d agents, want %d", len(got), 5+LogKeep+logTrimEvery+1)
	}
	if n := c.wholeReads(); n != 2 {
		t.Fatalf("whole reads %d, want 2: the copy missed trimmed entries and must be read again", n)
	}
}
