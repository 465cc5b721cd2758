package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/zk"
	"github.com/agora-cluster/agora/cluster/zk/zktest"
)

func zkConn(t testing.TB, e *zktest.Ensemble) *gozk.Conn {
	t.Helper()
	conn, _, err := gozk.Connect(e.Addrs(), 4*time.Second, gozk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}

// The ZooKeeper registry keeps what the bbolt one keeps, one znode per
// agent, and a second master reading the same path sees it all.
func TestZKRegistry(t *testing.T) {
	e := zktest.Start(t, 1)
	conn := zkConn(t, e)
	r, err := OpenZK(conn, "/agora/registry", nil)
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, r)

	ids, _, err := conn.Children("/agora/registry/agents")
	if err != nil || len(ids) != 1 || ids[0] != "a1" {
		t.Fatalf("agents' znodes: %v, %v; want one per agent, [a1]", ids, err)
	}
	if ids, _, err := conn.Children("/agora/registry/frameworks"); err != nil || len(ids) != 1 || ids[0] != "f1" {
		t.Fatalf("frameworks' znodes: %v, %v; want one per framework, [f1]", ids, err)
	}
	other, err := OpenZK(zkConn(t, e), "/agora/registry", nil)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := other.Agents()
	if err != nil || len(recs) != 1 || recs[0].State != AgentUnreachable {
		t.Fatalf("another master reads %+v, %v", recs, err)
	}
	if fs, err := other.Frameworks(); err != nil || len(fs) != 1 || fs[0].ID != "f1" || fs[0].State != FrameworkCompleted {
		t.Fatalf("another master reads frameworks %+v, %v", fs, err)
	}

	// Many agents come back whole and in order.
	for i := 0; i < 300; i++ {
		if err := r.PutAgent(AgentRecord{ID: fmt.Sprintf("b%03d", i), State: AgentAdmitted}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err = other.Agents()
	if err != nil || len(recs) != 301 || recs[0].ID != "a1" || recs[300].ID != "b299" {
		t.Fatalf("301 agents read back as %d (%v)", len(recs), err)
	}

	// A batch larger than one ZooKeeper request is written whole, in
	// order (a delete after a put of the same agent wins).
	var batch []Change
	for i := 0; i < 1500; i++ {
		batch = append(batch, Change{Agent: &AgentRecord{ID: fmt.Sprintf("c%04d", i), State: AgentAdmitted,
			Info: &mesos.AgentInfo{Hostname: strings.Repeat("h", 1000)}}})
	}
	batch = append(batch, Change{DeleteAgent: "c0007"})
	if err := r.Apply(batch); err != nil {
		t.Fatalf("a 1.5 MB batch: %v", err)
	}
	recs, err = other.Agents()
	if err != nil || len(recs) != 301+1499 {
		t.Fatalf("after the big batch: %d agents (%v); want %d", len(recs), err, 301+1499)
	}

	// Bad input changes nothing.
	if err := r.PutAgent(AgentRecord{ID: "../x"}); err == nil || !strings.Contains(err.Error(), "cannot name a znode") {
		t.Fatalf("agent ID with a slash: %v", err)
	}
	big := Policy{Maintenance: json.RawMessage(`"` + strings.Repeat("x", MaxZNode) + `"`), Weights: map[string]float64{"other": 9}}
	if err := r.PutPolicy(big); err == nil || !strings.Contains(err.Error(), "znode limit") {
		t.Fatalf("oversized policy: %v; want the znode limit named", err)
	}
	if p, _ := other.Policy(); p.Weights["eng"] != 2 || p.Weights["other"] != 0 {
		t.Fatalf("a refused policy write changed the policy: %+v", p.Weights)
	}

	// A path that holds something else is not taken for a registry.
	if _, err := conn.Create("/notours", []byte("hello"), 0, gozk.WorldACL(gozk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenZK(conn, "/notours", nil); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("opening a znode that is not a registry: %v", err)
	}
}

// Writes are fenced on the leader's election znode: once the writer is
// no longer the leader, nothing it writes lands.
func TestZKRegistryWritesOnlyAsLeader(t *testing.T) {
	e := zktest.Start(t, 1)
	u, _ := zk.ParseURL(e.URL("/agora"))
	g := zk.NewGroup(u, zk.Options{SessionTimeout: 4 * time.Second})
	g.Contend([]byte(`{"id":"m1"}`))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(time.Minute)
	for !g.Leading() {
		if time.Now().After(deadline) {
			t.Fatal("the only master was not elected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn := zkConn(t, e)
	r, err := OpenZK(conn, "/agora/registry", g.Fence)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.PutAgent(AgentRecord{ID: "a1", State: AgentAdmitted}); err != nil {
		t.Fatalf("the leader's write: %v", err)
	}
	fence, err := g.Fence()
	if err != nil {
		t.Fatal(err)
	}
	// The election znode goes (as when the session expires); a write
	// that got its fence before is refused by ZooKeeper itself.
	if err := conn.Delete(fence.Path, -1); err != nil {
		t.Fatal(err)
	}
	stale := &ZK{conn: conn, root: "/agora/registry", fence: func() (*gozk.CheckVersionRequest, error) { return fence, nil }}
	if err := stale.PutAgent(AgentRecord{ID: "a1", State: AgentGone}); err == nil {
		t.Fatal("a write fenced on a vanished election znode landed")
	}
	if err := stale.PutAgent(AgentRecord{ID: "a2", State: AgentAdmitted}); err == nil {
		t.Fatal("a create fenced on a vanished election znode landed")
	}
	recs, err := r.Agents()
	if err != nil || len(recs) != 1 || recs[0].State != AgentAdmitted {
		t.Fatalf("after fenced writes: %+v, %v; want a1 admitted only", recs, err)
	}
}
