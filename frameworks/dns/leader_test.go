package dns

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/master"
	"github.com/miekg/dns"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/zk"
	"github.com/agora-cluster/agora/cluster/zk/zktest"
)

// standIn is a master that serves /master/state and, while it leads, the
// operator event stream, for one running task "web" on one port.
type standIn struct {
	srv  *httptest.Server
	port uint64 // the task's port

	mu     sync.Mutex
	leader string // host:port of the leader, as this master believes
}

func newStandIn(t *testing.T, port uint64) *standIn {
	s := &standIn{port: port}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /master/state", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		leader := s.leader
		s.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"leader": "master@" + leader,
			"slaves": []map[string]any{{"id": "a-S0", "pid": "slave(1)@127.0.0.1:5051", "hostname": "127.0.0.1", "port": 5051}},
			"frameworks": []map[string]any{{"id": "f1", "name": "marathon", "tasks": []map[string]any{{
				"id": "web.1", "name": "web", "framework_id": "f1", "slave_id": "a-S0", "state": "TASK_RUNNING",
				"resources": map[string]any{"ports": "[" + itoa(port) + "-" + itoa(port) + "]"}}}}}})
	})
	mux.HandleFunc("POST /api/v1", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		leads := s.leader == s.addr()
		s.mu.Unlock()
		if !leads {
			http.Error(w, "not the leader", http.StatusServiceUnavailable)
			return
		}
		running := mesos.TASK_RUNNING
		ev := &master.Event{Type: master.Event_SUBSCRIBED, Subscribed: &master.Event_Subscribed{GetState: &master.Response_GetState{
			GetAgents: &master.Response_GetAgents{Agents: []master.Response_GetAgents_Agent{{
				AgentInfo: mesos.AgentInfo{ID: &mesos.AgentID{Value: "a-S0"}, Hostname: "127.0.0.1"}, PID: strp("slave(1)@127.0.0.1:5051")}}},
			GetFrameworks: &master.Response_GetFrameworks{Frameworks: []master.Response_GetFrameworks_Framework{{
				FrameworkInfo: mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: "f1"}, Name: "marathon"}}}},
			GetTasks: &master.Response_GetTasks{Tasks: []mesos.Task{{Name: "web", TaskID: mesos.TaskID{Value: "web.1"},
				FrameworkID: mesos.FrameworkID{Value: "f1"}, AgentID: mesos.AgentID{Value: "a-S0"}, State: &running,
				Resources: []mesos.Resource{{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: port, End: port}}}}}}}},
		}}}
		b, _ := api.JSON.Marshal(ev)
		w.Header().Set("Content-Type", api.MediaJSON)
		api.NewRecordWriter(w).WriteRecord(b)
		<-r.Context().Done()
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *standIn) addr() string { return s.srv.Listener.Addr().String() }

func (s *standIn) setLeader(addr string) {
	s.mu.Lock()
	s.leader = addr
	s.mu.Unlock()
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// TestFollowsLeaderChange: with two masters configured, the resolver
// follows the one /master/state names as the leader (the other is asked
// first), and when that leader goes and the other takes over, it follows
// the new one: leader.agora's SRV port and the task's port change.
func TestFollowsLeaderChange(t *testing.T) {
	a, b := newStandIn(t, 31001), newStandIn(t, 31002)
	a.setLeader(b.addr())
	b.setLeader(b.addr())
	r := serve(t, testConfig(a.addr(), b.addr()))
	_, bPort, _ := net.SplitHostPort(b.addr())
	r.waitFor(t, "b as the leader", "_leader._tcp.agora", dns.TypeSRV, func(m *dns.Msg) bool {
		return len(srvPorts(m)) == 1 && itoa(uint64(srvPorts(m)[0])) == bPort
	})
	if got := srvPorts(r.query(t, "udp", "_web._tcp.marathon.agora", dns.TypeSRV)); !reflect.DeepEqual(got, []int{31002}) {
		t.Errorf("web's port %v, want the leader b's 31002", got)
	}
	// b goes; a leads.
	a.setLeader(a.addr())
	b.srv.CloseClientConnections()
	b.srv.Close()
	_, aPort, _ := net.SplitHostPort(a.addr())
	r.waitFor(t, "a as the leader", "_leader._tcp.agora", dns.TypeSRV, func(m *dns.Msg) bool {
		return len(srvPorts(m)) == 1 && itoa(uint64(srvPorts(m)[0])) == aPort
	})
	r.waitFor(t, "web as a says", "_web._tcp.marathon.agora", dns.TypeSRV, func(m *dns.Msg) bool {
		return reflect.DeepEqual(srvPorts(m), []int{31001})
	})
	if got := aIPs(r.query(t, "udp", "master.agora", dns.TypeA)); !reflect.DeepEqual(got, []string{"127.0.0.1"}) {
		t.Errorf("master.agora %v", got)
	}
	if got := r.query(t, "udp", "master1.agora", dns.TypeA); len(got.Answer) != 1 {
		t.Errorf("master1.agora: want one A record for the second configured master:\n%v", got)
	}
}

// TestFollowsZooKeeper: given only zk://, the resolver reads the master
// ZooKeeper names as the leader.
func TestFollowsZooKeeper(t *testing.T) {
	e := zktest.Start(t, 1)
	m := newStandIn(t, 31003)
	m.setLeader(m.addr())
	host, p, _ := net.SplitHostPort(m.addr())
	port, _ := strconv.Atoi(p)
	data, _ := json.Marshal(map[string]any{"id": "m1", "port": port, "address": map[string]any{"ip": host, "port": port}})
	u, err := zk.ParseURL(e.URL("/agora"))
	if err != nil {
		t.Fatal(err)
	}
	g := zk.NewGroup(u, zk.Options{SessionTimeout: 4 * time.Second})
	g.Contend(data)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	t.Cleanup(func() { cancel(); clustertest.AwaitStop(t, "zk group", done) })

	cfg := DefaultConfig()
	cfg.ZK = e.URL("/agora")
	r := serve(t, cfg)
	r.waitFor(t, "web from the master ZooKeeper names", "_web._tcp.marathon.agora", dns.TypeSRV, func(m *dns.Msg) bool {
		return reflect.DeepEqual(srvPorts(m), []int{31003})
	})
	if got := srvPorts(r.query(t, "udp", "_leader._tcp.agora", dns.TypeSRV)); len(got) != 1 || got[0] != port {
		t.Errorf("_leader._tcp ports %v, want %d", got, port)
	}
}

// A master that refuses the resolver's credentials is named as the reason,
// not reported as a master that never answered.
func TestResyncNamesRefusedCredentials(t *testing.T) {
	for _, tc := range []struct {
		code int
		want string
	}{
		{http.StatusUnauthorized, "the master asks for credentials: set mesosAuthentication"},
		{http.StatusForbidden, "the master refused this principal"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no", tc.code)
		}))
		r, err := New(testConfig(srv.Listener.Addr().String()), Options{Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err = r.resync(ctx)
		cancel()
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), strconv.Itoa(tc.code)) {
			t.Errorf("a master answering %d: %v; want %q and the status", tc.code, err, tc.want)
		}
	}
	// Nothing listening is still "no master answered".
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	gone := ln.Addr().String()
	ln.Close()
	r, err := New(testConfig(gone), Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := r.resync(ctx); err == nil || !strings.Contains(err.Error(), "no master answered") {
		t.Errorf("no master listening: %v", err)
	}
}
