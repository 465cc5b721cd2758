package state

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/zk"
	"github.com/agora-cluster/agora/cluster/zk/zktest"
)

// A client given zk://... reads from the master ZooKeeper names as the
// leader; with none it reports the master unreachable, saying why.
func TestGetFollowsZooKeeper(t *testing.T) {
	e := zktest.Start(t, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"hostname":"the-leader"}`))
	}))
	defer srv.Close()
	host, p, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	port, _ := strconv.Atoi(p)
	data, _ := json.Marshal(map[string]any{"id": "m1", "port": port, "address": map[string]any{"ip": host, "port": port}})
	u, _ := zk.ParseURL(e.URL("/agora"))
	g := zk.NewGroup(u, zk.Options{SessionTimeout: 4 * time.Second})
	g.Contend(data)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var got struct{ Hostname string }
	if err := (Client{}).Get(context.Background(), e.URL("/agora"), "/master/state", &got); err != nil || got.Hostname != "the-leader" {
		t.Fatalf("Get through zk:// = %+v, %v; want the leader's answer", got, err)
	}
	err := (Client{}).Get(context.Background(), e.URL("/nobody"), "/master/state", &got)
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "no leading master") {
		t.Fatalf("Get with no leader = %v; want UnreachableError saying no master leads", err)
	}
}
