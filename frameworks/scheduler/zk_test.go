package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/zk"
	"github.com/agora-cluster/agora/cluster/zk/zktest"
)

// stand puts a master's MasterInfo into the election group at url, as
// the master would, until the returned function is called.
func stand(t *testing.T, url, addr string) (leave func()) {
	t.Helper()
	host, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	data, _ := json.Marshal(map[string]any{"id": addr, "port": port, "hostname": "localhost",
		"address": map[string]any{"hostname": "localhost", "ip": host, "port": port}})
	u, err := zk.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	g := zk.NewGroup(u, zk.Options{SessionTimeout: 4 * time.Second})
	g.Contend(data)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	deadline := time.Now().Add(wait)
	for g.Node() == "" {
		if time.Now().After(deadline) {
			t.Fatalf("master %s did not join the election at %s", addr, url)
		}
		time.Sleep(10 * time.Millisecond)
	}
	leave = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(wait):
		}
	}
	t.Cleanup(leave)
	return leave
}

// A driver given zk://... subscribes with the master ZooKeeper names as
// the leader, and moves to the next one as soon as ZooKeeper names it,
// keeping its framework ID.
func TestClusterFollowsTheLeaderZooKeeperNames(t *testing.T) {
	e := zktest.Start(t, 1)
	a := clustertest.Start(t, clustertest.Options{})
	b := clustertest.Start(t, clustertest.Options{})
	url := e.URL("/agora")
	leaveA := stand(t, url, a.MasterAddr)
	stand(t, url, b.MasterAddr)

	p := newProbe(t)
	d, _ := start(t, Config{Masters: []string{url}, Framework: framework("follower", 3600),
		Backoff: Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}}, p)
	first := recv(t, p.subscribed, "SUBSCRIBED with the leader ZooKeeper names")
	if got := d.Master().GetAddress(); got == nil || net.JoinHostPort(got.GetIP(), strconv.Itoa(int(got.GetPort()))) != a.MasterAddr {
		t.Fatalf("subscribed with master %v; ZooKeeper names %s", got, a.MasterAddr)
	}

	leaveA()
	recv(t, p.disconnected, "Disconnected from the old leader")
	again := recv(t, p.subscribed, "SUBSCRIBED with the new leader")
	if got := d.Master().GetAddress(); got == nil || net.JoinHostPort(got.GetIP(), strconv.Itoa(int(got.GetPort()))) != b.MasterAddr {
		t.Fatalf("after the leader changed, subscribed with %v; want %s", got, b.MasterAddr)
	}
	if again.GetFrameworkID().GetValue() != first.GetFrameworkID().GetValue() {
		t.Fatalf("re-subscribed as %s, want %s", again.GetFrameworkID().GetValue(), first.GetFrameworkID().GetValue())
	}
	b.WaitFor("the framework active on the new leader", func(s *clustertest.State) bool {
		return len(s.Frameworks) == 1 && s.Frameworks[0].Active && s.Frameworks[0].ID == first.GetFrameworkID().GetValue()
	})
}

// With no master in ZooKeeper the driver keeps waiting and says why;
// MaxConnectFailures still ends it.
func TestZooKeeperWithoutALeader(t *testing.T) {
	e := zktest.Start(t, 1)
	p := newProbe(t)
	_, errc := start(t, Config{Masters: []string{e.URL("/empty")}, Framework: framework("alone", 0),
		ConnectTimeout: 500 * time.Millisecond, MaxConnectFailures: 2,
		Backoff: Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}}, p)
	err := recv(t, errc, "Run to give up")
	var ce *ConnectError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "no leading master") {
		t.Fatalf("Run = %v; want a ConnectError saying ZooKeeper names no leading master", err)
	}
}
