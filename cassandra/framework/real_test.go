package framework_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gocql/gocql"
	mastercalls "github.com/mesos/mesos-go/api/v1/lib/master"

	"github.com/agora-cluster/agora/cassandra/cassandratest"
	"github.com/agora-cluster/agora/cassandra/cql"
	"github.com/agora-cluster/agora/cassandra/framework"
	"github.com/agora-cluster/agora/cassandra/local"
	"github.com/agora-cluster/agora/cassandra/plan"
	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/frameworks/state"
)

// agentMem is each test agent's memory: room for one node, not two.
const agentMem = 2000

// ring is a real agora cluster of agents on hosts 127.0.0.1, .2, ... with
// the Cassandra home for the framework.
type ring struct {
	agora *clustertest.Cluster
	home  string
	state string // the framework's state directory
	// extraPorts are ports an agent added later (addAgent) offers beside
	// its own range.
	extraPorts string
	// agoraBin, if set, is the agora binary that runs the nodes' health
	// checks (checked every 2 s).
	agoraBin string
}

// agoraBinary builds the agora command, for the nodes' health checks
// (`agora cassandra probe`).
func agoraBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "agora")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/agora-cluster/agora/cmd/agora").CombinedOutput(); err != nil {
		t.Fatalf("build agora: %v\n%s", err, out)
	}
	return bin
}

func newRing(t *testing.T, agents int, masterCfg func(*master.Config)) *ring {
	t.Helper()
	r := &ring{home: cassandratest.Home(t), state: t.TempDir()}
	r.agora = clustertest.Start(t, clustertest.Options{Verbose: os.Getenv("CASSANDRA_TEST_VERBOSE") != "",
		Agents: agents,
		Master: masterCfg,
		Agent: func(i int, cfg *agent.Config) {
			first, last := clustertest.PortRange(20)
			cfg.Hostname = fmt.Sprintf("127.0.0.%d", i+1)
			cfg.Resources = fmt.Sprintf("cpus:1.5;mem:%d;disk:4000;ports:[%d-%d%s]", agentMem, first, last, r.extraPorts)
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
			for _, pid := range local.DaemonPIDs(a.Config.WorkDir) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return r
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
	spec.HealthCheck.Interval = plan.Duration(2 * time.Second)
	fw, err := framework.New(framework.Config{Masters: []string{r.agora.MasterAddr}, Spec: spec, Home: r.home,
		StateDir: r.state, Teardown: teardown, Probe: time.Second, Logger: logger, Agora: r.agoraBin})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// ended yields Run's error once, then (closed) nil to every later
	// receive.
	ended := make(chan error, 1)
	go func() { ended <- fw.Run(ctx); close(ended) }()
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
			logJVMStacks(t, ns)
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

// taskHealth is a task's state at the master and whether any of its
// statuses said it was unhealthy.
func (r *ring) taskHealth(t *testing.T, id string) (state string, unhealthy bool) {
	t.Helper()
	var doc struct {
		Tasks []struct {
			ID       string `json:"id"`
			State    string `json:"state"`
			Statuses []struct {
				Healthy *bool `json:"healthy"`
			} `json:"statuses"`
		} `json:"tasks"`
	}
	if err := getJSON(r.agora.MasterURL+"/master/tasks", &doc); err != nil {
		t.Fatal(err)
	}
	for _, task := range doc.Tasks {
		if task.ID != id {
			continue
		}
		for _, s := range task.Statuses {
			if s.Healthy != nil && !*s.Healthy {
				unhealthy = true
			}
		}
		return task.State, unhealthy
	}
	return "", false
}

// checkReserved checks that exactly one node's memory is reserved on the
// agent of each node, and nothing elsewhere: no second reservation; and
// that the only persistent volumes are the nodes' own: none orphaned.
func (r *ring) checkReserved(t *testing.T, spec plan.Spec, ns []framework.Node) {
	t.Helper()
	got := r.reservedMem(t, spec.Role)
	want := map[string]float64{}
	volumes := map[string][]string{}
	for _, n := range ns {
		want[n.Host] += spec.Mem
		volumes[n.Host] = append(volumes[n.Host], n.VolumeID)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("reserved mem by host %v; want %v (one node's on each node's agent)", got, want)
	}
	if got := r.volumes(t); fmt.Sprint(got) != fmt.Sprint(volumes) {
		t.Errorf("persistent volumes by host %v; want %v (each node's own, no other)", got, volumes)
	}
}

// volumes are the persistent volumes on the registered agents, by host
// (the master's GET_AGENTS).
func (r *ring) volumes(t *testing.T) map[string][]string {
	t.Helper()
	resp, err := http.Post(r.agora.MasterURL+"/api/v1", "application/json", strings.NewReader(`{"type":"GET_AGENTS"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res mastercalls.Response
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatalf("GET_AGENTS: %v", err)
	}
	out := map[string][]string{}
	for _, a := range res.GetGetAgents().GetAgents() {
		for _, x := range a.TotalResources {
			if id := x.GetDisk().GetPersistence().GetID(); id != "" {
				out[a.AgentInfo.Hostname] = append(out[a.AgentInfo.Hostname], id)
			}
		}
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out
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
	pid := findCassandraPID(jmx)
	if pid == 0 {
		t.Fatalf("no Cassandra process with JMX port %d", jmx)
	}
	return pid
}

// findCassandraPID is the pid of the Cassandra JVM with JMX port jmx, 0
// if there is none.
func findCassandraPID(jmx uint64) int {
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
	return 0
}

// logJVMStacks logs, for a wait that timed out, the stacks of the
// threads of each node's JVM that are in the ring's start-up, bootstrap
// or streaming code (jcmd Thread.print): where a node that never came up
// waits.
func logJVMStacks(t *testing.T, ns []framework.Node) {
	t.Helper()
	interesting := regexp.MustCompile(`StorageService|BootStrapper|RangeStreamer|StreamSession|StreamResultFuture|PendingRange|Gossiper|CassandraDaemon\.`)
	for _, n := range ns {
		pid := findCassandraPID(n.JMXPort)
		if pid == 0 {
			t.Logf("%s: no JVM with JMX port %d", n.Name, n.JMXPort)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, "jcmd", strconv.Itoa(pid), "Thread.print").Output()
		cancel()
		if err != nil {
			t.Logf("%s: jcmd %d Thread.print: %v", n.Name, pid, err)
			continue
		}
		var keep []string
		for _, th := range strings.Split(string(out), "\n\n") {
			if strings.HasPrefix(th, "\"main\"") || interesting.MatchString(th) {
				keep = append(keep, th)
			}
		}
		t.Logf("%s (pid %d, %s): %d threads in start-up, bootstrap or streaming:\n%s", n.Name, pid, n.Host, len(keep), strings.Join(keep, "\n\n"))
	}
}

// The framework brings a 3-node ring up on three agents from a spec, one
// reservation and volume per node; the ring takes QUORUM writes with RF 3;
// a node killed with SIGKILL comes back on its own volume (same host ID)
// with the data; a rolling configuration change restarts one node at a
// time; a restarted scheduler adopts the running nodes without reserving
// again, also one restarted in the middle of placing a node, of adding
// one (a scale-out) or of a cleanup, which it finishes; a spec the cluster cannot hold is refused with
// nothing reserved.
func TestCassandraOnAgora(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three Cassandra JVMs; not in -short")
	}
	r := newRing(t, 3, nil)
	r.agoraBin = agoraBinary(t)

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

	// Two nodes from the spec, the third added through the API (a
	// scale-out, `agora cassandra nodes add 1`).
	spec := testSpec(t, "")
	spec.Nodes = 2
	top := t // the frameworks live across the subtests
	fw, ended, stop := r.run(top, spec, false)
	var ns []framework.Node
	t.Run("three nodes come up and take QUORUM writes", func(t *testing.T) {
		// Stop the scheduler while it places node-1 (placed, not yet in
		// the ring), and again while it adds node-2 (its reservation,
		// volume and task taken by the master, not yet in the ring): each
		// time the next scheduler finishes the job on the same
		// reservation and volume.
		midway := func(i int) framework.Node {
			t.Helper()
			deadline := time.Now().Add(3 * time.Minute)
			for {
				ns := fw.Nodes()
				if len(ns) > i && ns[i].AgentID != "" && ns[i].State != "" {
					if ns[i].Up {
						t.Fatalf("node-%d up before its placement was seen: %+v", i, ns[i])
					}
					return ns[i]
				}
				if time.Now().After(deadline) {
					t.Fatalf("node-%d not placed within 3 minutes: %+v", i, ns)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		midway(1)
		stop()
		fw, ended, stop = r.run(top, spec, false)
		waitUp(t, fw, ended, 4*time.Minute, "two nodes up", nil)
		api := httptest.NewServer(fw.Handler())
		resp, err := http.Post(api.URL+"/v1/nodes/add?count=1", "", nil)
		api.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /v1/nodes/add?count=1: %v, %v", resp.Status, err)
		}
		adding := midway(2)
		stop()
		// The placement is saved before its ACCEPT is sent: stopped in
		// between, the master never took the reservation, and the next
		// scheduler places the node again on the same agent (a volume
		// and ports of its own). Once the master has the task, the next
		// scheduler keeps its reservation and volume.
		taken, _ := r.taskHealth(t, adding.TaskID)
		// The spec still says two nodes: the state keeps the third.
		fw, ended, stop = r.run(top, spec, false)
		ns = waitUp(t, fw, ended, 4*time.Minute, "three nodes up", nil)
		if len(ns) != 3 || ns[2].AgentID != adding.AgentID ||
			(taken != "" && (ns[2].VolumeID != adding.VolumeID || ns[2].StoragePort != adding.StoragePort)) {
			t.Fatalf("after the restart in the middle of adding node-2 (its task at the master: %q): %+v; want 3 nodes, node-2 on its agent and, once the master had its task, on its volume (%+v)", taken, ns, adding)
		}
		t.Logf("restarted in the middle of adding node-2; its task at the master then: %q", taken)
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
		// Each node's task is reported healthy by the health check its
		// agent runs (agora cassandra probe on the node's address).
		waitUp(t, fw, ended, 2*time.Minute, "every node's task reported healthy by its health check", func(ns []framework.Node) bool {
			for _, n := range ns {
				if n.Healthy == nil || !*n.Healthy {
					return false
				}
			}
			return true
		})
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

	t.Run("a node that stops answering is killed by its health check and relaunched", func(t *testing.T) {
		victim := fw.Nodes()[2]
		pid := cassandraPID(t, victim.JMXPort)
		t.Logf("stopping %s (task %s): pid %d", victim.Name, victim.TaskID, pid)
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		// Its process stays, silent: only the health check can end it.
		sawUnhealthy := false
		after := waitUp(t, fw, ended, 5*time.Minute, "the silenced node killed and back", func(ns []framework.Node) bool {
			if ns[2].TaskID == victim.TaskID && ns[2].Healthy != nil && !*ns[2].Healthy {
				sawUnhealthy = true
			}
			return ns[2].TaskID != victim.TaskID
		})
		state, unhealthy := r.taskHealth(t, victim.TaskID)
		if state != "TASK_KILLED" || !unhealthy {
			t.Errorf("the silenced node's task %s ended %s, healthy=false reported %v (framework saw it: %v); want TASK_KILLED by its health check",
				victim.TaskID, state, unhealthy, sawUnhealthy)
		}
		n := after[2]
		if n.HostID != victim.HostID || n.VolumeID != victim.VolumeID || n.AgentID != victim.AgentID || n.NativePort != victim.NativePort {
			t.Errorf("the node came back as %+v; want its host ID, volume, agent and ports of before (%+v)", n, victim)
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("the silenced Cassandra process %d is still there (%v)", pid, err)
		}
		r.checkReserved(t, spec, after)
		checkRows(t, session(t, after), 100)
	})
	if t.Failed() {
		return
	}

	t.Run("rolling configuration change, one node down at a time", func(t *testing.T) {
		before := fw.Nodes()
		// Each node's Cassandra process before the restart: each is to be
		// replaced (its task's launches count once more, below).
		procs := make([]string, len(before))
		for i, n := range before {
			procs[i] = cassandraProc(t, n.JMXPort)
		}
		if err := fw.RollingRestart(map[string]json.RawMessage{"concurrent_reads": json.RawMessage("16")}); err != nil {
			t.Fatal(err)
		}
		if err := fw.RollingRestart(nil); err == nil {
			t.Error("a second rolling restart was accepted while one is under way")
		}
		// Asked of the ring itself, not of the framework: at most one
		// node is down at any time by the nodes' own evidence (a refused
		// native port, or a node answering over CQL that it has not
		// joined). A node slow to answer on a loaded machine is not
		// counted; the next round asks it again.
		seenDown := map[string]int{}
		deadline := time.Now().Add(3 * time.Minute)
		for {
			st, _ := fw.RollingStatus()
			if st.Done() {
				break
			}
			down, why := ringDown(before)
			for _, name := range down {
				seenDown[name]++
			}
			if len(down) > 1 {
				t.Fatalf("nodes %v down at once during the rolling restart, by their own answers (%s); the framework's view: %+v", down, why, fw.Nodes())
			}
			if time.Now().After(deadline) {
				t.Fatalf("the rolling restart did not finish within 3 minutes: %+v", st)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// A restart quicker than a round is not seen down; each node's
		// replaced process (below) is the evidence of its restart.
		t.Logf("rounds that saw each node down during the rolling restart: %v", seenDown)
		after := waitUp(t, fw, ended, time.Minute, "all up after the rolling restart", nil)
		for i, n := range after {
			if n.Launches != before[i].Launches+1 || n.TaskID == before[i].TaskID || n.HostID != before[i].HostID {
				t.Errorf("%s: launches %d → %d, task %s → %s, host ID %s → %s; want one restart on its volume", n.Name, before[i].Launches, n.Launches, before[i].TaskID, n.TaskID, before[i].HostID, n.HostID)
			}
			if p := cassandraProc(t, n.JMXPort); p == procs[i] {
				t.Errorf("%s: Cassandra process %s before and after the rolling restart; want it restarted", n.Name, p)
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

	t.Run("a restarted scheduler adopts the nodes and goes on with the job", func(t *testing.T) {
		before := fw.Nodes()
		// The scheduler stops in the middle of a cleanup, once node-0's
		// nodetool task is under way; the next one finishes the job.
		if _, err := fw.StartJob(framework.JobCleanup, "kv"); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
			if j, _ := fw.JobStatus(); j.TaskID != "" || len(j.Done) > 0 {
				break
			}
			if time.Now().After(deadline) {
				j, _ := fw.JobStatus()
				t.Fatalf("the cleanup's first task not launched within a minute: %+v", j)
			}
		}
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
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
			j, ok := fw2.JobStatus()
			if ok && j.Ended() {
				if j.Kind != framework.JobCleanup || j.Failed != "" || !slices.Equal(j.Done, []string{"node-0", "node-1", "node-2"}) {
					t.Errorf("the cleanup after the restart: %+v; want the 3 nodes done", j)
				}
				t.Logf("cleanup done across the restart (%d tasks run again)", j.Reruns)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the cleanup not done within 2 minutes of the restart: %+v (known: %v)", j, ok)
			}
		}
	})
}

// ringDown are the nodes of ns that are down by evidence, asked all at
// once: a node whose native port refuses connections, or that answers
// over CQL that it has not joined the ring. A node that does not answer in
// time (a loaded machine), or whose connection drops, is not counted: no
// evidence either way. why says what each down node showed.
func ringDown(ns []framework.Node) (down []string, why string) {
	evidence := make([]string, len(ns))
	var wg sync.WaitGroup
	for i, n := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", n.NativeAddr(), 10*time.Second)
			if err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) {
					evidence[i] = "native port refused"
				}
				return
			}
			c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if l, err := cql.QueryLocal(ctx, n.NativeAddr(), 10*time.Second); err == nil && !l.Joined() {
				evidence[i] = fmt.Sprintf("not joined: bootstrapped %q, host ID %q", l.Bootstrapped, l.HostID)
			}
		}()
	}
	wg.Wait()
	var whys []string
	for i, e := range evidence {
		if e != "" {
			down = append(down, ns[i].Name)
			whys = append(whys, ns[i].Name+": "+e)
		}
	}
	return down, strings.Join(whys, "; ")
}

// cassandraProc names the Cassandra process with JMX port jmx by its pid
// and start time (so a reused pid is a different process).
func cassandraProc(t *testing.T, jmx uint64) string {
	t.Helper()
	pid := cassandraPID(t, jmx)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("the Cassandra process with JMX port %d: %v", jmx, err)
	}
	// The fields after the command (which may hold spaces) in its
	// parentheses; the start time is field 22 of stat, 20th after it.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 20 {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return fmt.Sprintf("pid %d started at tick %s", pid, f[19])
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
			if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), ".sandbox-pool") {
				return fs.SkipDir // sandboxes made ahead or recycled: no node's
			}
			if err != nil || d.IsDir() || d.Name() != "stderr" {
				return nil
			}
			data, _ := os.ReadFile(p)
			// A node stuck before the tail began (a replacement waiting
			// in its bootstrap) says why in its warnings and its join
			// steps, earlier in the log.
			fmt.Fprintf(&b, "== %s: warnings and join steps\n%s", p, keyLines(data, 60))
			if len(data) > n {
				data = data[len(data)-n:]
			}
			fmt.Fprintf(&b, "== %s: last %d bytes\n%s\n", p, n, data)
			return nil
		})
	}
	return b.String()
}

// keyLines is at most max lines of a Cassandra log that are warnings,
// errors or steps of a node's join (bootstrap, replacement, streaming),
// the last ones if there are more; connection retries are left out.
func keyLines(log []byte, max int) string {
	var keep []string
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, "failed to connect") || !(strings.HasPrefix(l, "WARN") || strings.HasPrefix(l, "ERROR") ||
			strings.Contains(l, "JOINING") || strings.Contains(l, "replac") || strings.Contains(l, "Bootstrap") ||
			strings.Contains(l, "Stream") || strings.Contains(l, "Exception") || strings.Contains(l, "state jump")) {
			continue
		}
		keep = append(keep, l)
	}
	if len(keep) > max {
		keep = keep[len(keep)-max:]
	}
	if len(keep) == 0 {
		return ""
	}
	return strings.Join(keep, "\n") + "\n"
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// writer writes rows k = 0, 1, ... at QUORUM, paced, until stopped, and
// records every write Cassandra acknowledged.
type writer struct {
	mu    sync.Mutex
	acked []int
	stop  chan struct{}
	done  chan struct{}
}

func startWriter(s *gocql.Session) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for k := 0; ; k++ {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			if s.Query(`INSERT INTO kv.t (k, v) VALUES (?, ?)`, k, fmt.Sprintf("v%d", k)).Consistency(gocql.Quorum).Exec() == nil {
				w.mu.Lock()
				w.acked = append(w.acked, k)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// count is how many writes were acknowledged so far.
func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// end stops the writer and returns the acknowledged keys.
func (w *writer) end(t *testing.T) []int {
	t.Helper()
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	clustertest.AwaitStop(t, "the writer", w.done)
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked)
}

// waitWrites waits until the writer has n acknowledged writes.
func (w *writer) waitWrites(t *testing.T, n int, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); w.count() < n; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes acknowledged within %v; want %d", w.count(), limit, n)
		}
	}
}

// ringStatus is `nodetool status` of the node whose JMX port is jmx: the
// state (UN, DN, UJ...) of each address in the ring.
func (r *ring) ringStatus(t *testing.T, jmx uint64) (map[string]string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(r.home, "bin", "nodetool"), "-h", "127.0.0.1", "-p", strconv.FormatUint(jmx, 10), "status")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nodetool status: %v\n%s", err, out)
	}
	st := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) > 2 && len(f[0]) == 2 && strings.ContainsAny(f[0][:1], "UD") && strings.ContainsAny(f[0][1:], "NLJM") {
			st[f[1]] = f[0]
		}
	}
	return st, string(out)
}

// The agent of a seed node goes away for good (stopped, its Cassandra
// killed with it) while a client writes at QUORUM: the master finds the
// agent unreachable, and after replace_timeout the framework places the
// node on the spare agent with replace_address_first_boot, and repairs it
// before calling it done. Every write acknowledged before, during and
// after is read back at QUORUM right then, and the ring is three UN nodes
// without the old address. When the old agent comes back, the old node's
// reservation and volume are released.
func TestReplaceNodeOfGoneAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four Cassandra JVMs; not in -short")
	}
	// A stopped agent is found unreachable after five missed pings of a
	// second: long enough for a busy machine, short for the test.
	r := newRing(t, 3, func(c *master.Config) { c.AgentPingTimeout = time.Second; c.MaxAgentPingTimeouts = 5 })
	// The spec's ring delay is the quick start's second: the framework
	// gives the replacement joinRingDelay (task.go).
	spec := testSpec(t, `,"replace_timeout":"5s"`)
	start := time.Now()
	fw, ended, _ := r.run(t, spec, true)
	ns := waitUp(t, fw, ended, 4*time.Minute, "three nodes up", nil)
	t.Logf("three nodes up in %v", time.Since(start).Round(time.Second))
	s := session(t, ns)
	for _, q := range []string{
		`CREATE KEYSPACE IF NOT EXISTS kv WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}`,
		`CREATE TABLE IF NOT EXISTS kv.t (k int PRIMARY KEY, v text)`,
	} {
		if err := s.Query(q).Exec(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	w := startWriter(s)
	defer w.end(t)
	w.waitWrites(t, 200, 2*time.Minute)

	victim := ns[0]
	if !victim.Seed {
		t.Fatalf("node-0 is not a seed: %+v", victim)
	}
	agent := slices.IndexFunc(r.agora.Agents, func(a *clustertest.RunningAgent) bool { return a.Config.Hostname == victim.Host })
	// The spare agent: room for one node, on the victim's storage port
	// (a replacement takes it) and ports of its own. Agents that share a
	// port range, as Mesos agents usually do, have it free.
	r.extraPorts = fmt.Sprintf(",%d-%d", victim.StoragePort, victim.StoragePort)
	r.agora.StartAgent(len(r.agora.Agents), "")
	r.agora.WaitFor("the spare agent registered", func(s *clustertest.State) bool { return len(s.Slaves) == 4 })
	pid := cassandraPID(t, victim.JMXPort)
	t.Logf("stopping the agent of %s (%s) and killing its Cassandra (pid %d) after %d writes", victim.Name, victim.Host, pid, w.count())
	stopped := time.Now()
	r.agora.Agents[agent].Stop()
	// The stopped agent kills its tasks; if it left the JVM, kill it.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		t.Fatal(err)
	}
	// Two minutes at a load average of 40; the bound is generous.
	// Done means joined and repaired: a replacement streams each range
	// from one replica, and a write that reached the dead node and one
	// other replica only (the third dropped it, its hint lost with the
	// dead coordinator) can be missing from both replicas a QUORUM read
	// asks until the framework's full repair of the replacement.
	after := waitUp(t, fw, ended, 5*time.Minute, "node-0 replaced, up and repaired", func(ns []framework.Node) bool {
		return ns[0].Replacements == 1 && ns[0].ReplaceAddress == "" && !ns[0].RepairPending
	})
	if j, ok := fw.JobStatus(); !ok || !j.Replacement || !j.Full || j.Failed != "" || !slices.Equal(j.Done, []string{"node-0"}) {
		t.Errorf("the replacement's repair: %+v; want node-0's full repair done", j)
	} else {
		t.Logf("the replacement's full repair took %v", j.Finished.Sub(j.Started).Round(time.Second))
	}
	t.Logf("replacement joined and repaired %v after the agent stopped (replace_timeout 5s, agent unreachable after 5 missed pings of 1s)", time.Since(stopped).Round(time.Second))
	before := w.count()
	w.waitWrites(t, before+100, time.Minute)
	acked := w.end(t)
	n := after[0]
	if n.Host == victim.Host || n.VolumeID == victim.VolumeID || n.AgentID == victim.AgentID {
		t.Errorf("the replacement %+v is on the old node's agent or volume (%+v)", n, victim)
	}
	t.Logf("%d writes acknowledged, %d of them after the replacement was done", len(acked), len(acked)-before)

	check := session(t, after)
	// Every acknowledged write reads back at QUORUM as soon as the
	// replacement is done.
	for _, k := range acked {
		var v string
		if err := check.Query(`SELECT v FROM kv.t WHERE k = ?`, k).Consistency(gocql.Quorum).Scan(&v); err != nil || v != fmt.Sprintf("v%d", k) {
			t.Fatalf("acknowledged write %d read back at QUORUM once the replacement was done: %q, %v", k, v, err)
		}
	}
	want := map[string]string{}
	for _, n := range after {
		want[n.Host] = "UN"
	}
	for _, n := range after {
		if st, out := r.ringStatus(t, n.JMXPort); !maps.Equal(st, want) {
			t.Errorf("nodetool status on %s: %v; want %v\n%s", n.Name, st, want, out)
		}
	}
	// Every node drops the old address from its peers once gossip tells
	// it the replacement took the tokens over: wait for that, bounded.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		var peers []string
		iter := check.Query(`SELECT peer FROM system.peers_v2`).Consistency(gocql.One).Iter()
		var peer string
		for iter.Scan(&peer) {
			peers = append(peers, peer)
		}
		err := iter.Close()
		if err == nil && !slices.Contains(peers, victim.Host) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("system.peers_v2 two minutes after the replacement: %v, %v; want no %s", peers, err, victim.Host)
			break
		}
	}

	// Repair, then cleanup, one node at a time, as nodetool tasks beside
	// the nodes.
	for _, kind := range []string{framework.JobRepair, framework.JobCleanup} {
		began := time.Now()
		if _, err := fw.StartJob(kind, "kv"); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
			j, _ := fw.JobStatus()
			if j.Ended() {
				if j.Failed != "" || len(j.Done) != 3 {
					t.Fatalf("%s: %+v; want the 3 nodes done", kind, j)
				}
				t.Logf("%s of 3 nodes in %v", kind, time.Since(began).Round(time.Second))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not done within two minutes: %+v", kind, j)
			}
		}
	}
	var repairs int
	if err := check.Query(`SELECT count(*) FROM system_distributed.parent_repair_history`).Consistency(gocql.One).Scan(&repairs); err != nil || repairs < 4 {
		t.Errorf("parent_repair_history: %d repairs, %v; want the replacement's and one for each node", repairs, err)
	}

	// The old agent returns: the old node's reservation and volume go.
	r.agora.StartAgent(agent, "")
	r.agora.WaitFor("the old agent back", func(s *clustertest.State) bool {
		return slices.ContainsFunc(s.Slaves, func(a state.Agent) bool { return a.ID == victim.AgentID && a.Active })
	})
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		got := r.reservedMem(t, spec.Role)
		if _, left := got[victim.Host]; !left && len(got) == 3 && fw.Status().Retired == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reserved mem by host %v two minutes after the old agent came back; want none on %s", got, victim.Host)
		}
	}
	r.checkReserved(t, spec, fw.Nodes())

	// Destroy, through the API: the nodes are killed, the volumes
	// destroyed, the resources unreserved, and the framework ends.
	srv := httptest.NewServer(fw.Handler())
	defer srv.Close()
	if resp, err := http.Post(srv.URL+"/v1/destroy?cluster=other", "", nil); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("destroy naming another ring: %v, %v; want 400", resp.Status, err)
	}
	resp, err := http.Post(srv.URL+"/v1/destroy?cluster=ring", "", nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("destroy: %v, %v; want 202", resp.Status, err)
	}
	select {
	case err := <-ended:
		if err != nil {
			t.Fatalf("the framework ended the destruction with %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("the framework did not end within two minutes of destroy: %+v", fw.Status())
	}
	st, err := r.agora.State()
	if err != nil {
		t.Fatal(err)
	}
	if left := reservedOf(t, r, spec.Role); len(left) > 0 {
		t.Errorf("reserved for %s after destroy: %v", spec.Role, left)
	}
	for _, f := range st.Frameworks {
		if f.ID == fw.FrameworkID() {
			t.Errorf("framework %s still registered (active %v) after destroy", f.ID, f.Active)
		}
	}
	for _, a := range r.agora.Agents {
		if pids := local.DaemonPIDs(a.Config.WorkDir); len(pids) > 0 {
			t.Errorf("Cassandra processes %v left under agent %s after destroy", pids, a.Config.Hostname)
		}
	}
	if _, err := os.Stat(filepath.Join(r.state, framework.StateFile)); !os.IsNotExist(err) {
		t.Errorf("the destroyed ring's state file: %v; want it removed", err)
	}
}

// reservedOf is every resource reserved for role, volumes included, by
// agent host.
func reservedOf(t *testing.T, r *ring, role string) map[string]map[string]any {
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
			Full     map[string][]any          `json:"reserved_resources_full"`
		} `json:"slaves"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, a := range st.Slaves {
		got := map[string]any{}
		for k, v := range a.Reserved[role] {
			if x, ok := v.(float64); !ok || x > 0 {
				got[k] = v
			}
		}
		if len(a.Full[role]) > 0 {
			got["full"] = a.Full[role]
		}
		if len(got) > 0 {
			out[a.Hostname] = got
		}
	}
	return out
}
