package zk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/agora-cluster/agora/cluster/zk"
	"github.com/agora-cluster/agora/cluster/zk/zktest"
)

// The session timeout the tests ask for: 8 ticks of zktest's servers.
const session = 4 * time.Second

func masterInfo(name string, port int) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": name, "ip": 16777343, "port": port, "pid": fmt.Sprintf("master@127.0.0.1:%d", port),
		"hostname": name, "address": map[string]any{"hostname": name, "ip": "127.0.0.1", "port": port},
	})
	return b
}

type member struct {
	name   string
	g      *zk.Group
	cancel context.CancelFunc
	done   chan struct{}
}

func join(t *testing.T, url, name string, port int) *member {
	t.Helper()
	u, err := zk.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	g := zk.NewGroup(u, zk.Options{SessionTimeout: session})
	if name != "" {
		g.Contend(masterInfo(name, port))
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{name: name, g: g, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(m.done); g.Run(ctx) }()
	t.Cleanup(m.leave)
	return m
}

func (m *member) leave() {
	m.cancel()
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
	}
}

// waitFor polls cond until it holds, for at most a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func leaderName(g *zk.Group) string {
	l, ok := g.Leader()
	if !ok {
		return ""
	}
	var mi struct{ Hostname string }
	json.Unmarshal(l.Data, &mi)
	return mi.Hostname
}

var memberName = regexp.MustCompile(`^/agora/json\.info_[0-9]{10}$`)

// Three masters contend: the oldest leads, the others and a plain
// follower see it, and the znodes are in Mesos's format (json.info_ and
// ten digits, MasterInfo JSON), as Mesos-aware tools read them. When the
// leader leaves, the next oldest takes over.
func TestElectionInMesosFormat(t *testing.T) {
	e := zktest.Start(t, 1)
	url := e.URL("/agora")
	a := join(t, url, "m1", 5050)
	waitFor(t, "m1 to lead", a.g.Leading)
	b := join(t, url, "m2", 5051)
	waitFor(t, "m2 to join", func() bool { return b.g.Node() != "" })
	c := join(t, url, "m3", 5052) // after m2, so m2 is next in line
	waitFor(t, "m3 to join", func() bool { return c.g.Node() != "" })
	follower := join(t, url, "", 0)
	waitFor(t, "everyone to see m1 lead", func() bool {
		return leaderName(b.g) == "m1" && leaderName(c.g) == "m1" && leaderName(follower.g) == "m1"
	})
	if b.g.Leading() || c.g.Leading() || follower.g.Leading() {
		t.Fatal("a member other than the oldest says it leads")
	}
	for _, m := range []*member{a, b, c} {
		if !memberName.MatchString(m.g.Node()) {
			t.Fatalf("%s's znode %q is not in Mesos's json.info_NNNNNNNNNN format", m.name, m.g.Node())
		}
	}
	if follower.g.Node() != "" {
		t.Fatalf("a follower that does not contend made a znode %q", follower.g.Node())
	}

	// What a Mesos tool reads: the smallest sequence's data is MasterInfo JSON.
	conn, _, err := gozk.Connect(e.Addrs(), session, gozk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	children, _, err := conn.Children("/agora")
	if err != nil || len(children) != 3 {
		t.Fatalf("children of /agora: %v, %v; want the three masters", children, err)
	}
	data, _, err := conn.Get(a.g.Node())
	if err != nil {
		t.Fatal(err)
	}
	var mi struct {
		ID      string
		IP      uint32
		Port    int
		Address struct{ IP string }
	}
	if err := json.Unmarshal(data, &mi); err != nil || mi.ID != "m1" || mi.Port != 5050 || mi.IP != 16777343 || mi.Address.IP != "127.0.0.1" {
		t.Fatalf("leader znode holds %s (%v); want m1's MasterInfo JSON", data, err)
	}

	changed := follower.g.Changed()
	a.leave()
	waitFor(t, "m2 to lead after m1 left", b.g.Leading)
	select {
	case <-changed:
	default:
		t.Fatal("the follower's Changed channel was not closed when the leader changed")
	}
	waitFor(t, "the follower to see m2", func() bool { return leaderName(follower.g) == "m2" })
	if c.g.Leading() {
		t.Fatal("m3 leads beside m2")
	}
}

// A leader cut off from ZooKeeper (its link frozen, as when it is
// paused or partitioned) stops leading by itself within its lease —
// before its session expires and another master is elected; when the
// link comes back it finds its session gone and stands again as a
// candidate behind the new leader. A registry write fenced on its old
// znode fails.
func TestCutOffLeaderStopsBeforeANewOneIsElected(t *testing.T) {
	e := zktest.Start(t, 1)
	proxy := zktest.NewProxy(t, e.Addrs()[0])
	viaProxy := "zk://" + proxy.Addr + "/agora"
	a := join(t, viaProxy, "m1", 5050)
	waitFor(t, "m1 to lead", a.g.Leading)
	fence, err := a.g.Fence()
	if err != nil {
		t.Fatalf("Fence while leading: %v", err)
	}
	oldNode := a.g.Node()
	b := join(t, e.URL("/agora"), "m2", 5051)
	waitFor(t, "m2 to join", func() bool { return b.g.Node() != "" })

	proxy.Freeze()
	// Poll both: m1 must have stopped leading before m2 starts.
	var aStopped time.Time
	waitFor(t, "m2 to lead after m1's session expired", func() bool {
		if aStopped.IsZero() && !a.g.Leading() {
			aStopped = time.Now()
		}
		if b.g.Leading() {
			if aStopped.IsZero() && a.g.Leading() {
				t.Fatal("two leaders: m2 was elected while m1 still held its lease")
			}
			return true
		}
		return false
	})
	if _, err := a.g.Fence(); err == nil {
		t.Fatal("a cut-off master can still get a fence")
	}

	proxy.Thaw()
	waitFor(t, "m1 to stand again with a new znode", func() bool {
		n := a.g.Node()
		return n != "" && n != oldNode
	})
	waitFor(t, "m1 to see m2 lead", func() bool { return leaderName(a.g) == "m2" })
	if a.g.Leading() || !b.g.Leading() {
		t.Fatalf("after the link healed: m1 leading=%v, m2 leading=%v; want m2 alone", a.g.Leading(), b.g.Leading())
	}

	// A write the old leader had fenced on its old znode cannot land.
	conn := a.g.Conn()
	_, err = conn.Multi(fence, &gozk.CreateRequest{Path: "/agora-stale-write", Data: []byte("x"), Acl: gozk.WorldACL(gozk.PermAll)})
	if err == nil {
		t.Fatal("a write fenced on the expired leader's znode succeeded")
	}
	if ok, _, _ := conn.Exists("/agora-stale-write"); ok {
		t.Fatal("the fenced write left its znode behind")
	}
}

// With three ZooKeeper servers, losing the one a master is connected to
// (or any one) keeps the election going: a leader is there again and no
// two masters lead at once.
func TestElectionSurvivesAZooKeeperServer(t *testing.T) {
	e := zktest.Start(t, 3)
	url := e.URL("/agora")
	a := join(t, url, "m1", 5050)
	b := join(t, url, "m2", 5051)
	waitFor(t, "a leader", func() bool { return a.g.Leading() || b.g.Leading() })

	var zkLeader *zktest.Server
	for _, s := range e.Servers {
		if s.Mode() == "leader" {
			zkLeader = s
		}
	}
	if zkLeader == nil {
		t.Fatal("no ZooKeeper server says it is the ensemble's leader")
	}
	zkLeader.Stop()
	// Watch for two leaders for a while after the loss, and for a
	// leader at all for at most a minute.
	watchUntil := time.Now().Add(5 * time.Second)
	deadline := time.Now().Add(time.Minute)
	for {
		la, lb := a.g.Leading(), b.g.Leading()
		if la && lb {
			t.Fatal("both masters lead at once")
		}
		if (la || lb) && time.Now().After(watchUntil) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no master leads a minute after a ZooKeeper server died (m1: %v, m2: %v)", a.g.Err(), b.g.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An unreachable ensemble is retried with backoff and reported, not a
// crash; Run ends when asked.
func TestUnreachableZooKeeperIsRetried(t *testing.T) {
	u, err := zk.ParseURL("zk://127.0.0.1:1/agora")
	if err != nil {
		t.Fatal(err)
	}
	g := zk.NewGroup(u, zk.Options{SessionTimeout: session})
	g.Contend(masterInfo("m1", 5050))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	waitFor(t, "the group to report the missing session", func() bool {
		return g.Err() != nil && strings.Contains(g.Err().Error(), "session")
	})
	if g.Leading() {
		t.Fatal("leading without ZooKeeper")
	}
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("Run returned %v; want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// A ZooKeeper server restarted under a leader (a blip shorter than the
// session) does not cost it the election: the session and its znode
// survive, and once a round trip through the quorum renews the lease it
// leads again with the same znode — a rolling restart of the ensemble is
// not a failover of the masters.
func TestLeaderKeepsItsZnodeAcrossAZooKeeperRestart(t *testing.T) {
	e := zktest.Start(t, 1)
	a := join(t, e.URL("/agora"), "m1", 5050)
	waitFor(t, "m1 to lead", a.g.Leading)
	node := a.g.Node()
	s := e.Servers[0]
	s.Stop()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "m1 to lead again after the restart", func() bool { return a.g.Leading() && a.g.Node() != "" })
	if got := a.g.Node(); got != node {
		t.Fatalf("after a ZooKeeper restart m1's znode is %s, was %s: the blip cost it its session", got, node)
	}
}

// With credentials in the URL, as Mesos does: the znodes are the creator's
// to change and everyone's to read, so a tool without them still finds
// the leader but cannot remove it.
func TestCredentialsProtectTheElection(t *testing.T) {
	e := zktest.Start(t, 1)
	a := join(t, "zk://agora:secret@"+e.Addrs()[0]+"/agora", "m1", 5050)
	waitFor(t, "m1 to lead", a.g.Leading)
	conn, _, err := gozk.Connect(e.Addrs(), session, gozk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, _, err := conn.Get(a.g.Node()); err != nil {
		t.Fatalf("reading the leader's znode without credentials: %v", err)
	}
	if err := conn.Delete(a.g.Node(), -1); !errors.Is(err, gozk.ErrNoAuth) {
		t.Fatalf("deleting the leader's znode without credentials: %v, want ErrNoAuth", err)
	}
	if _, err := conn.Create("/agora/json.info_", []byte("{}"), gozk.FlagEphemeral|gozk.FlagSequence, gozk.WorldACL(gozk.PermAll)); !errors.Is(err, gozk.ErrNoAuth) {
		t.Fatalf("standing for election without credentials: %v, want ErrNoAuth", err)
	}
}
