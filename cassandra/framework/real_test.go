package framework_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/agora-cluster/agora/cassandra/cassandratest"
	"github.com/agora-cluster/agora/cassandra/cql"
	"github.com/agora-cluster/agora/cassandra/framework"
	"github.com/agora-cluster/agora/cassandra/plan"
	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

// agentMem is each test agent's memory: room for one node, not two.
const agentMem = 2000

// ring is a real agora cluster of three agents (hosts 127.0.0.1-3) with
// the Cassandra home for the framework.
type ring struct {
	agora *clustertest.Cluster
	home  string
	state string // the framework's state directory
}

func newRing(t *testing.T) *ring {
	t.Helper()
	r := &ring{home: cassandratest.Home(t), state: t.TempDir()}
	hosts := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	var ranges [][2]int
	for range hosts {
		first, last := clustertest.PortRange(20)
		ranges = append(ranges, [2]int{first, last})
	}
	r.agora = clustertest.Start(t, clustertest.Options{Verbose: os.Getenv("CASSANDRA_TEST_VERBOSE") != "",
		Agents: len(hosts),
		Agent: func(i int, cfg *agent.Config) {
			cfg.Hostname = hosts[i]
			cfg.Resources = fmt.Sprintf("cpus:1.5;mem:%d;disk:4000;ports:[%d-%d]", agentMem, ranges[i][0], ranges[i][1])
		},
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node logs:\n%s", r.logs(3000))
		}
		// A test that failed with the framework's nodes left for a next
		// scheduler: end the JVMs it started (their sandboxes are under
		// the agents' work directories).
		for _, a := range r.agora.Agents {
			for _, pid := range pidsWith(a.Config.WorkDir) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return r
}

// pidsWith are the Cassandra JVMs whose command line holds s.
func pidsWith(s string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(s)) && bytes.Contains(b, []byte("CassandraDaemon")) {
			out = append(out, pid)
		}
	}
	return out
}

// spec is the test cluster: three nodes with 640 MB heaps (auto, from
// 1280 MB), two seeds, started fast.
func testSpec(t *testing.T, extra string) plan.Spec {
	t.Helper()
	opts, _ := json.Marshal(cassandratest.FastStart)
	s, err := plan.Parse([]byte(`{"name":"ring","nodes":3,"seeds":2,"cpus":0.5,"mem":1280,"disk":500,"heap":"auto",` +
		`"yaml":{"concurrent_reads":8},"jvm_options":` + string(opts) + extra + `}`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs a framework of spec until the returned stop is called or the
// test ends.
func (r *ring) run(t *testing.T, spec plan.Spec, teardown bool) (*framework.Framework, <-chan error, func()) {
	t.Helper()
	var logger *slog.Logger
	if os.Getenv("CASSANDRA_TEST_VERBOSE") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	fw, err := framework.New(framework.Config{Masters: []string{r.agora.MasterAddr}, Spec: spec, Home: r.home,
		StateDir: r.state, Teardown: teardown, Probe: time.Second, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() { ended <- fw.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-ended:
			if err != nil {
				t.Errorf("framework: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("the framework did not stop")
		}
	}
	t.Cleanup(stop)
	return fw, ended, stop
}

// waitUp polls the framework until every node is up (joined, answering
// CQL) and cond holds for the nodes, failing after limit.
func waitUp(t *testing.T, fw *framework.Framework, ended <-chan error, limit time.Duration, what string, cond func([]framework.Node) bool) []framework.Node {
	t.Helper()
	deadline := time.After(limit)
	for {
		ns := fw.Nodes()
		all := true
		for _, n := range ns {
			all = all && n.Up
		}
		if all && (cond == nil || cond(ns)) {
			return ns
		}
		select {
		case err := <-ended:
			t.Fatalf("framework ended: %v", err)
		case <-deadline:
			b, _ := json.MarshalIndent(ns, "", "  ")
			t.Fatalf("%s: not within %v; nodes:\n%s", what, limit, b)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// reservedMem is the memory reserved for role on each agent, by host.
func (r *ring) reservedMem(t *testing.T, role string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(r.agora.MasterURL + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Slaves []struct {
			Hostname string                    `json:"hostname"`
			Reserved map[string]map[string]any `json:"reserved_resources"`
		} `json:"slaves"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, a := range st.Slaves {
		if m, ok := a.Reserved[role]["mem"].(float64); ok && m > 0 {
			out[a.Hostname] = m
		}
	}
	return out
}

// checkReserved checks that exactly one node's memory is reserved on the
// agent of each node, and nothing elsewhere: no second reservation.
func (r *ring) checkReserved(t *testing.T, spec plan.Spec, ns []framework.Node) {
	t.Helper()
	got := r.reservedMem(t, spec.Role)
	want := map[string]float64{}
	for _, n := range ns {
		want[n.Host] += spec.Mem
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("reserved mem by host %v; want %v (one node's on each node's agent)", got, want)
	}
}

// session is a gocql session on the ring, from its native addresses.
func session(t *testing.T, ns []framework.Node) *gocql.Session {
	t.Helper()
	var addrs []string
	for _, n := range ns {
		addrs = append(addrs, n.NativeAddr())
	}
	c, err := cql.Cluster(addrs, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Consistency = gocql.Quorum
	c.RetryPolicy = &gocql.SimpleRetryPolicy{NumRetries: 3}
	s, err := c.CreateSession()
	if err != nil {
		t.Fatalf("gocql session on %v: %v", addrs, err)
	}
	t.Cleanup(s.Close)
	return s
}

// cassandraPID finds the JVM of the node whose JMX port is jmx.
func cassandraPID(t *testing.T, jmx uint64) int {
	t.Helper()
	want := []byte("-Dcassandra.jmx.local.port=" + strconv.FormatUint(jmx, 10) + "\x00")
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, want) && bytes.Contains(b, []byte("CassandraDaemon")) {
			return pid
		}
	}
	t.Fatalf("no Cassandra process with JMX port %d", jmx)
	return 0
}

// The framework brings a 3-node ring up on three agents from a spec, one
// reservation and volume per node; the ring takes QUORUM writes with RF 3;
// a node killed with SIGKILL comes back on its own volume (same host ID)
// with the data; a rolling configuration change restarts one node at a
// time; a restarted scheduler adopts the running nodes without reserving
// again; a spec the cluster cannot hold is refused with nothing reserved.
// (Scaling out takes the same path as placing the first nodes; TestAddNodes
// covers its bookkeeping without a fourth JVM.)
func TestCassandraOnAgora(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three Cassandra JVMs; not in -short")
	}
	r := newRing(t)

	t.Run("bad spec refused, nothing reserved", func(t *testing.T) {
		big := testSpec(t, "")
		big.Mem = agentMem + 1000
		fw, err := framework.New(framework.Config{Masters: []string{r.agora.MasterAddr}, Spec: big, Home: r.home})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err = fw.Run(ctx)
		if err == nil || !strings.Contains(err.Error(), "more memory than any agent has") {
			t.Fatalf("a node larger than every agent: %v", err)
		}
		if got := r.reservedMem(t, big.Role); len(got) != 0 {
			t.Fatalf("reserved after a refused spec: %v", got)
		}
		if _, err := plan.Parse([]byte(`{"yaml":{"concurrent_readz":8}}`)); err == nil || !strings.Contains(err.Error(), `unknown cassandra.yaml key "concurrent_readz"`) {
			t.Errorf("an unknown cassandra.yaml key: %v", err)
		}
		s := testSpec(t, "")
		s.Heap = 2000
		if _, err := framework.New(framework.Config{Masters: []string{r.agora.MasterAddr}, Spec: s, Home: r.home}); err == nil ||
			!strings.Contains(err.Error(), "larger than the task's memory") {
			t.Fatalf("a heap larger than the task: %v", err)
		}
	})
	if t.Failed() {
		return
	}

	spec := testSpec(t, "")
	top := t // the frameworks live across the subtests
	fw, ended, stop := r.run(top, spec, false)
	var ns []framework.Node
	t.Run("three nodes come up and take QUORUM writes", func(t *testing.T) {
		// Stop the scheduler while it adds node-1 (placed, not yet in the
		// ring); the next one finishes the job on the same reservation.
		deadline := time.Now().Add(3 * time.Minute)
		for fw.Nodes()[1].AgentID == "" {
			if time.Now().After(deadline) {
				t.Fatalf("node-1 not placed within 3 minutes: %+v", fw.Nodes())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if fw.Nodes()[1].Up {
			t.Fatalf("node-1 up before its placement was seen: %+v", fw.Nodes()[1])
		}
		stop()
		fw, ended, stop = r.run(top, spec, false)
		ns = waitUp(t, fw, ended, 4*time.Minute, "three nodes up", nil)
		hosts := map[string]bool{}
		for _, n := range ns {
			hosts[n.Host] = true
			if n.HostID == "" || n.VolumeID == "" || !n.Reserved {
				t.Errorf("node %s: host ID %q, volume %q, reserved %v", n.Name, n.HostID, n.VolumeID, n.Reserved)
			}
		}
		if len(hosts) != 3 {
			t.Errorf("nodes on hosts %v; want one per agent", hosts)
		}
		r.checkReserved(t, spec, ns)
		s := session(t, ns)
		for _, q := range []string{
			`CREATE KEYSPACE IF NOT EXISTS kv WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}`,
			`CREATE TABLE IF NOT EXISTS kv.t (k int PRIMARY KEY, v text)`,
		} {
			if err := s.Query(q).Exec(); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		for i := range 100 {
			if err := s.Query(`INSERT INTO kv.t (k, v) VALUES (?, ?)`, i, fmt.Sprintf("v%d", i)).Exec(); err != nil {
				t.Fatalf("write %d at QUORUM: %v", i, err)
			}
		}
		checkRows(t, s, 100)
		local, err := cql.QueryLocal(context.Background(), ns[0].NativeAddr(), 10*time.Second)
		if err != nil || local.Peers != 2 || local.ClusterName != "ring" {
			t.Errorf("node-0's view: %+v, %v; want cluster ring with 2 peers", local, err)
		}
		srv := httptest.NewServer(fw.Handler())
		defer srv.Close()
		var e framework.Endpoints
		if err := getJSON(srv.URL+"/v1/endpoints", &e); err != nil || len(e.Native) != 3 || e.Native[2] != ns[2].NativeAddr() {
			t.Errorf("GET /v1/endpoints: %+v, %v; want the 3 nodes' native addresses", e, err)
		}

		// A second ring of the same name is refused, with nothing reserved.
		dup, err := framework.New(framework.Config{Masters: []string{r.agora.MasterAddr}, Spec: spec, Home: r.home, StateDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := dup.Run(ctx); err == nil || !strings.Contains(err.Error(), `a cluster named "ring" is already running`) {
			t.Errorf("a second ring named ring: %v", err)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("kill -9 of a node: relaunched on its volume with its data", func(t *testing.T) {
		victim := ns[1]
		pid := cassandraPID(t, victim.JMXPort)
		t.Logf("killing %s (task %s): pid %d", victim.Name, victim.TaskID, pid)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		after := waitUp(t, fw, ended, 3*time.Minute, "the killed node back", func(ns []framework.Node) bool {
			return ns[1].TaskID != victim.TaskID
		})
		n := after[1]
		if n.HostID != victim.HostID || n.VolumeID != victim.VolumeID || n.AgentID != victim.AgentID || n.NativePort != victim.NativePort {
			t.Errorf("the node came back as %+v; want its host ID, volume, agent and ports of before (%+v)", n, victim)
		}
		r.checkReserved(t, spec, after)
		checkRows(t, session(t, after), 100)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(r.home, "bin", "nodetool"), "-h", "127.0.0.1", "-p", strconv.FormatUint(after[0].JMXPort, 10), "status")
		cmd.WaitDelay = 10 * time.Second
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Count(string(out), "\nUN ") != 3 {
			t.Errorf("nodetool status: %v; want 3 nodes UN:\n%s", err, out)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("rolling configuration change, one node down at a time", func(t *testing.T) {
		before := fw.Nodes()
		if err := fw.RollingRestart(map[string]json.RawMessage{"concurrent_reads": json.RawMessage("16")}); err != nil {
			t.Fatal(err)
		}
		if err := fw.RollingRestart(nil); err == nil {
			t.Error("a second rolling restart was accepted while one is under way")
		}
		deadline := time.Now().Add(3 * time.Minute)
		for {
			st, _ := fw.RollingStatus()
			if st.Done() {
				break
			}
			down := 0
			for _, n := range fw.Nodes() {
				if !n.Up {
					down++
				}
			}
			if down > 1 {
				t.Fatalf("%d nodes down at once during the rolling restart: %+v", down, fw.Nodes())
			}
			if time.Now().After(deadline) {
				t.Fatalf("the rolling restart did not finish within 3 minutes: %+v", st)
			}
			time.Sleep(100 * time.Millisecond)
		}
		after := waitUp(t, fw, ended, time.Minute, "all up after the rolling restart", nil)
		for i, n := range after {
			if n.Launches != before[i].Launches+1 || n.HostID != before[i].HostID {
				t.Errorf("%s: launches %d → %d, host ID %s → %s; want one restart on its volume", n.Name, before[i].Launches, n.Launches, before[i].HostID, n.HostID)
			}
			s := session(t, []framework.Node{n})
			var v string
			if err := s.Query(`SELECT value FROM system_views.settings WHERE name = 'concurrent_reads'`).
				Consistency(gocql.One).Scan(&v); err != nil || v != "16" {
				t.Errorf("%s: concurrent_reads %q, %v; want 16", n.Name, v, err)
			}
		}
		checkRows(t, session(t, after), 100)
	})
	if t.Failed() {
		return
	}

	t.Run("a restarted scheduler adopts the nodes", func(t *testing.T) {
		before := fw.Nodes()
		stop()
		fw2, ended2, _ := r.run(t, spec, true)
		after := waitUp(t, fw2, ended2, 2*time.Minute, "the nodes adopted", nil)
		for i := range after {
			if after[i].TaskID != before[i].TaskID || after[i].VolumeID != before[i].VolumeID || after[i].HostID != before[i].HostID {
				t.Errorf("%s: after the restart %+v; before %+v", after[i].Name, after[i], before[i])
			}
		}
		if fw2.FrameworkID() != fw.FrameworkID() {
			t.Errorf("framework ID %q after the restart, %q before", fw2.FrameworkID(), fw.FrameworkID())
		}
		r.checkReserved(t, spec, after)
	})
}

// checkRows reads rows 0..n-1 back at QUORUM.
func checkRows(t *testing.T, s *gocql.Session, n int) {
	t.Helper()
	for i := range n {
		var v string
		if err := s.Query(`SELECT v FROM kv.t WHERE k = ?`, i).Consistency(gocql.Quorum).Scan(&v); err != nil || v != fmt.Sprintf("v%d", i) {
			t.Fatalf("read %d at QUORUM: %q, %v", i, v, err)
		}
	}
}

// logs is the end of every node's stderr under the agents' sandboxes.
func (r *ring) logs(n int) string {
	var b strings.Builder
	for _, a := range r.agora.Agents {
		filepath.WalkDir(a.Config.WorkDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "stderr" {
				return nil
			}
			data, _ := os.ReadFile(p)
			if len(data) > n {
				data = data[len(data)-n:]
			}
			fmt.Fprintf(&b, "== %s\n%s\n", p, data)
			return nil
		})
	}
	return b.String()
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
