package framework_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/cluster/zk/zktest"
	"github.com/agora-cluster/agora/dist/disttest"
	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/frameworks/state"
	"github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/framework"
	"github.com/agora-cluster/agora/storm/plan"
	"github.com/agora-cluster/agora/storm/stormtest"
)

// stormCluster is a real agora cluster (a master and two agents, hosts
// 127.0.0.1 and 127.0.0.2, each with 1.5 cpus) and a real ZooKeeper, with
// the Storm framework running on it and launching Nimbus itself.
type stormCluster struct {
	agora  *clustertest.Cluster
	fw     *framework.Framework
	home   string
	ports  [][2]uint64 // each agent's offered port range
	nimbus *client.Client
	// nimbusUp gets the address of each Nimbus the framework launched
	// once it answers.
	nimbusUp chan string
}

// The sizes: a supervisor's own 0.2 cpus and 300 MB, 0.8 cpus and 400 MB
// per worker slot, Nimbus 0.5 cpus and 700 MB. A 1.5-cpu agent then
// holds one supervisor with one slot, next to Nimbus or not.
var sizes = map[string]string{
	plan.KeyExecutorCPU: "0.2", plan.KeyExecutorMem: "300",
	plan.KeyWorkerCPU: "0.8", plan.KeyWorkerMem: "400",
	plan.KeyNimbusCPU: "0.5", plan.KeyNimbusMem: "700",
	plan.KeySuicideTimeout: "20",
	// Storm's own: a dead worker is noticed sooner than in 30 s.
	"nimbus.task.timeout.secs": "20", "nimbus.supervisor.timeout.secs": "30",
}

// newAgora is a real agora cluster of one agent per host, each offering
// 1.5 cpus, 3000 MB and 50 ports, with the Storm home for the framework.
func newAgora(t *testing.T, hosts ...string) *stormCluster {
	t.Helper()
	tier.Need(t, tier.Python, tier.PythonErr())
	zktest.Need(t)
	sc := &stormCluster{home: disttest.Home(t, "storm")}
	for range hosts {
		first, last := clustertest.PortRange(50)
		sc.ports = append(sc.ports, [2]uint64{uint64(first), uint64(last)})
	}
	sc.agora = clustertest.Start(t, clustertest.Options{
		Agents: len(hosts),
		Agent: func(i int, cfg *agent.Config) {
			cfg.Hostname = hosts[i]
			cfg.Resources = fmt.Sprintf("cpus:1.5;mem:3000;disk:10000;ports:[%d-%d]", sc.ports[i][0], sc.ports[i][1])
		},
	})
	// Last of the cleanups: show the logs of a failed test.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon logs:\n%s", sc.logs(4000))
		}
	})
	return sc
}

// run runs a framework of cfg (with the test's sizes) on the cluster until
// the returned stop is called or the test ends. A framework that is torn
// down has its tasks killed: stop waits for that, so that no Storm JVM
// outlives the test.
func (sc *stormCluster) run(t *testing.T, cfg framework.Config) (fw *framework.Framework, done <-chan error, stop func()) {
	t.Helper()
	settings, err := plan.From(sizes)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Masters, cfg.Settings, cfg.Home, cfg.Watch = []string{sc.agora.MasterAddr}, settings, sc.home, time.Second
	fw, err = framework.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() { ended <- fw.Run(ctx) }()
	stopped := false
	stop = func() {
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
		if cfg.StateDir != "" && !cfg.Teardown {
			return // its tasks stay for the next life
		}
		sc.agora.WaitFor("the framework's tasks gone", func(s *clustertest.State) bool {
			for _, f := range s.Frameworks {
				if len(f.Tasks) > 0 {
					return false
				}
			}
			return true
		})
	}
	t.Cleanup(stop)
	return fw, ended, stop
}

// startStorm runs the framework on two agents (hosts 127.0.0.1 and
// 127.0.0.2) with a real ZooKeeper, launching Nimbus itself, and waits
// for Nimbus to answer.
func startStorm(t *testing.T) *stormCluster {
	t.Helper()
	sc := newAgora(t, "127.0.0.1", "127.0.0.2")
	zk := zktest.Start(t, 1)
	sc.nimbusUp = make(chan string, 4)
	var done <-chan error
	sc.fw, done, _ = sc.run(t, framework.Config{
		ZooKeeper: zk.Addrs(),
		OnNimbus: func(addr string) {
			select {
			case sc.nimbusUp <- addr:
			default:
			}
		},
	})
	var addr string
	select {
	case addr = <-sc.nimbusUp:
	case err := <-done:
		t.Fatalf("framework: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatal("Nimbus did not answer within 3 minutes")
	}
	var err error
	if sc.nimbus, err = client.New(addr, client.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.nimbus.Close() })
	return sc
}

// logs is the end of every daemon's and worker's log under the agents'
// sandboxes, for failure messages.
func (sc *stormCluster) logs(n int) string {
	var b strings.Builder
	for _, a := range sc.agora.Agents {
		filepath.WalkDir(a.Config.WorkDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || (d.Name() != "stderr" && d.Name() != "worker.log") {
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

// supervisorTasks are the framework's running supervisor tasks as the
// master lists them.
func (sc *stormCluster) supervisorTasks(s *clustertest.State) []state.Task {
	var out []state.Task
	for _, f := range s.Frameworks {
		for _, t := range f.Tasks {
			if strings.Contains(t.Name, "| supervisor |") && t.State == "TASK_RUNNING" {
				out = append(out, t)
			}
		}
	}
	return out
}

// The framework launches Nimbus as a task, then no supervisor while no
// topology asks for workers (and suppresses its offers); a topology of
// two workers gets two supervisors, one per agent, each a task of one
// slot sized from mesos/storm's keys with its ports from its agent's
// offer; the multilang word topology runs on them (every sentence acked,
// executed counts in getTopologyInfo); the supervisor JVM running the
// spout killed with SIGKILL is replaced on its agent and the topology
// runs again there (the restarted spout's sentences all acked anew);
// once the topology is killed, the idle supervisors are released after
// the suicide timeout and offers are suppressed again; and Nimbus killed
// with SIGKILL is launched again.
func TestSupervisorsFromDemandOnRealStorm(t *testing.T) {
	sc := startStorm(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()

	// Nothing to run: no supervisor, offers suppressed.
	waitFor(t, time.Minute, sc, "offers suppressed with Nimbus up and no topology", func() (bool, string) {
		return sc.fw.Suppressed(), fmt.Sprint(sc.fw.Supervisors())
	})
	if sups := sc.fw.Supervisors(); len(sups) != 0 {
		t.Fatalf("supervisors launched with no topology: %+v", sups)
	}
	if cs, err := sc.nimbus.ClusterInfo(ctx); err != nil || len(cs.Supervisors) != 0 {
		t.Fatalf("Nimbus lists supervisors %+v (%v); want none", cs.Supervisors, err)
	}

	jar, err := sc.nimbus.UploadJar(ctx, bytes.NewReader(stormtest.Jar(t)))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	sentences := []string{"the quick brown fox", "jumps over the lazy dog", "storm runs python", "on agora"}
	conf, _ := json.Marshal(map[string]any{
		"agora.test.dir": out, "agora.test.sentences": sentences,
		"topology.workers": 2, "topology.stats.sample.rate": 1.0,
		"topology.component.resources.onheap.memory.mb": 64,
	})
	if err := sc.nimbus.Submit(ctx, "words", jar, string(conf), stormtest.WordTopology()); err != nil {
		t.Fatal(err)
	}

	// Two supervisors, one per agent, sized from the keys.
	var sups []framework.Task
	waitFor(t, 3*time.Minute, sc, "two supervisors registered with Nimbus", func() (bool, string) {
		sups = sc.fw.Supervisors()
		cs, err := sc.nimbus.ClusterInfo(ctx)
		if err != nil {
			return false, err.Error()
		}
		return len(sups) == 2 && len(cs.Supervisors) == 2, fmt.Sprintf("%+v %+v", sups, cs.Supervisors)
	})
	if sups[0].AgentID == sups[1].AgentID {
		t.Fatalf("both supervisors on agent %s", sups[0].AgentID)
	}
	for _, s := range sups {
		i := sc.agentIndex(t, s.AgentID)
		r := sc.ports[i]
		if len(s.SlotPorts) != 1 || s.Port < r[0] || s.Port > r[1] || s.SlotPorts[0] < r[0] || s.SlotPorts[0] > r[1] {
			t.Errorf("supervisor %+v: want one slot, its ports in the offered %d-%d", s, r[0], r[1])
		}
	}
	st := sc.agora.WaitFor("the supervisors' tasks running", func(s *clustertest.State) bool {
		return len(sc.supervisorTasks(s)) == 2
	})
	for _, task := range sc.supervisorTasks(st) {
		// 0.2 + 0.8 cpus, 300 + 400 MB, two ports (Thrift and the slot).
		if task.Resources.CPUs != 1.0 || task.Resources.Mem != 700 || countPorts(task.Resources.Ports) != 2 {
			t.Errorf("supervisor task %s has %+v; want cpus 1, mem 700 and two ports", task.ID, task.Resources)
		}
	}

	var want []string
	for _, s := range sentences {
		want = append(want, strings.Fields(s)...)
	}
	waitFor(t, 4*time.Minute, sc, "every sentence acked and its words recorded", func() (bool, string) {
		acked := lines(filepath.Join(out, "acked-*.txt"))
		words := lines(filepath.Join(out, "words-*.txt"))
		ids := map[string]bool{}
		for _, a := range acked {
			ids[a] = true
		}
		return len(ids) == len(sentences) && containsAll(words, want), strings.Join(acked, ",") + " | " + strings.Join(words, " ")
	})
	top, ok, err := sc.nimbus.TopologyByName(ctx, "words")
	if err != nil || !ok {
		t.Fatalf("the topology is not listed: %v", err)
	}
	var spout client.ExecutorSummary
	waitFor(t, 2*time.Minute, sc, "getTopologyInfo counting the record bolt's executed tuples on the two slots", func() (bool, string) {
		info, err := sc.nimbus.TopologyInfo(ctx, top.ID)
		if err != nil {
			return false, err.Error()
		}
		var executed int64
		slots := map[string]bool{}
		for _, e := range info.Executors {
			slots[fmt.Sprintf("%s:%d", e.Host, e.Port)] = true
			if e.ComponentID == "record" && e.Stats != nil {
				executed += client.Total(e.Stats.Executed, client.AllTime)
			}
			if e.ComponentID == "sentences" {
				spout = e
			}
		}
		return executed >= int64(len(want)) && len(slots) == 2, fmt.Sprintf("executed %d on %v", executed, slots)
	})

	// Kill -9 the supervisor JVM of the spout's slot.
	var victim framework.Task
	for _, s := range sups {
		if s.Host == spout.Host && s.SlotPorts[0] == uint64(spout.Port) {
			victim = s
		}
	}
	if victim.TaskID == "" {
		t.Fatalf("no supervisor of the framework has the spout's slot %s:%d: %+v", spout.Host, spout.Port, sups)
	}
	i := sc.agentIndex(t, victim.AgentID)
	pids := pidsOf(sc.agora.Agents[i].Config.WorkDir, "org.apache.storm.daemon.supervisor.Supervisor")
	if len(pids) != 1 {
		t.Fatalf("%d supervisor JVMs under agent %d's directory, want 1", len(pids), i)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed supervisor %s (pid %d) with SIGKILL", victim.TaskID, pids[0])
	waitFor(t, 3*time.Minute, sc, "a new supervisor on the victim's agent", func() (bool, string) {
		now := sc.fw.Supervisors()
		for _, s := range now {
			if s.AgentID == victim.AgentID && s.TaskID != victim.TaskID && s.State == "TASK_RUNNING" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", now)
	})
	// The spout's executor restarts in a new worker and sends its
	// sentences again: each is acked a second time.
	waitFor(t, 5*time.Minute, sc, "the restarted spout's sentences acked again", func() (bool, string) {
		acked := lines(filepath.Join(out, "acked-*.txt"))
		n := map[string]int{}
		for _, a := range acked {
			n[a]++
		}
		for i := range sentences {
			if n[strconv.Itoa(i)] < 2 {
				return false, strings.Join(acked, ",")
			}
		}
		return true, ""
	})

	// Killed topology: the supervisors go after the suicide timeout.
	if err := sc.nimbus.Kill(ctx, "words", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Minute, sc, "the idle supervisors released", func() (bool, string) {
		return len(sc.fw.Supervisors()) == 0 && sc.fw.Suppressed(), fmt.Sprintf("%+v", sc.fw.Supervisors())
	})
	sc.agora.WaitFor("no supervisor task running", func(s *clustertest.State) bool {
		return len(sc.supervisorTasks(s)) == 0
	})

	// Nimbus killed with SIGKILL: the framework launches another, which
	// answers.
	var nimbusPids []int
	for _, a := range sc.agora.Agents {
		nimbusPids = append(nimbusPids, pidsOf(a.Config.WorkDir, "org.apache.storm.daemon.nimbus.Nimbus")...)
	}
	if len(nimbusPids) != 1 {
		t.Fatalf("%d Nimbus JVMs under the agents' directories, want 1", len(nimbusPids))
	}
	if err := syscall.Kill(nimbusPids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var again string
	select {
	case again = <-sc.nimbusUp:
	case <-time.After(3 * time.Minute):
		t.Fatal("no new Nimbus answered within 3 minutes of the first one's SIGKILL")
	}
	c, err := client.New(again, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if cs, err := c.ClusterInfo(ctx); err != nil || len(cs.Nimbuses) == 0 {
		t.Fatalf("the new Nimbus at %s: %+v, %v", again, cs, err)
	}
}

// Against the user's own Nimbus (stormtest's, with its ZooKeeper learned
// from getNimbusConf) and with a state directory: a topology's supervisor
// is launched; the scheduler stops, leaving it running; a new scheduler
// with the same directory re-subscribes as the same framework and adopts
// it (no second supervisor), and releases it once the topology is killed.
// While the topology runs, another framework is offered what the
// supervisor leaves of the agent.
func TestRestartedSchedulerAdoptsSupervisors(t *testing.T) {
	sc := newAgora(t, "127.0.0.1")
	storm := stormtest.Start(t, 0, 0)
	nimbus, err := client.New(storm.Nimbus, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer nimbus.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()
	fw1, _, stop1 := sc.run(t, framework.Config{Nimbus: storm.Nimbus, StateDir: dir})
	waitFor(t, time.Minute, sc, "offers suppressed with no topology", func() (bool, string) {
		return fw1.Suppressed(), ""
	})

	jar, err := nimbus.UploadJar(ctx, bytes.NewReader(stormtest.Jar(t)))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	sentences := []string{"one sentence", "and another"}
	conf, _ := json.Marshal(map[string]any{
		"agora.test.dir": out, "agora.test.sentences": sentences, "topology.workers": 1,
		"topology.component.resources.onheap.memory.mb": 64,
	})
	if err := nimbus.Submit(ctx, "words", jar, string(conf), stormtest.WordTopology()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 4*time.Minute, sc, "every sentence acked on the launched supervisor", func() (bool, string) {
		acked := lines(filepath.Join(out, "acked-*.txt"))
		return len(acked) >= len(sentences), fmt.Sprintf("%v %+v", acked, fw1.Supervisors())
	})
	before := fw1.Supervisors()
	if len(before) != 1 {
		t.Fatalf("supervisors %+v; want one", before)
	}
	// It holds no offer it does not use: another framework is offered
	// all that is left of the agent (1.5 cpus less the supervisor's 1).
	other := sc.agora.Subscribe(`{"user":"root","name":"another framework"}`)
	if o := other.Offer(); offers.Sum(o.Resources, "")["cpus"] != 0.5 {
		t.Errorf("another framework was offered %v; want the 0.5 cpus left", o.Resources)
	}
	other.Close()
	stop1()
	st, err := sc.agora.State()
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.supervisorTasks(st); len(got) != 1 || got[0].ID != before[0].TaskID {
		t.Fatalf("after the scheduler stopped the master lists %+v; want %s still running", got, before[0].TaskID)
	}
	frameworkID := frameworkOf(t, st, before[0].TaskID)

	fw2, _, _ := sc.run(t, framework.Config{Nimbus: storm.Nimbus, StateDir: dir, Teardown: true})
	waitFor(t, 2*time.Minute, sc, "the supervisor adopted and offers suppressed", func() (bool, string) {
		now := fw2.Supervisors()
		return len(now) == 1 && now[0].TaskID == before[0].TaskID && now[0].State == "TASK_RUNNING" && fw2.Suppressed(),
			fmt.Sprintf("%+v suppressed=%v", now, fw2.Suppressed())
	})
	st = sc.agora.WaitFor("the framework active again", func(s *clustertest.State) bool {
		for _, f := range s.Frameworks {
			if f.ID == frameworkID && f.Active {
				return true
			}
		}
		return false
	})
	if n := len(sc.supervisorTasks(st)); n != 1 {
		t.Fatalf("%d supervisor tasks after the restart, want the adopted one", n)
	}

	if err := nimbus.Kill(ctx, "words", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Minute, sc, "the adopted supervisor released", func() (bool, string) {
		return len(fw2.Supervisors()) == 0, fmt.Sprintf("%+v", fw2.Supervisors())
	})
}

// frameworkOf is the ID of the framework running task.
func frameworkOf(t *testing.T, s *clustertest.State, task string) string {
	t.Helper()
	for _, f := range s.Frameworks {
		for _, x := range f.Tasks {
			if x.ID == task {
				return f.ID
			}
		}
	}
	t.Fatalf("no framework runs %s", task)
	return ""
}

func (sc *stormCluster) agentIndex(t *testing.T, id string) int {
	t.Helper()
	for i, a := range sc.agora.Agents {
		if a.ID() == id {
			return i
		}
	}
	t.Fatalf("no agent %s", id)
	return -1
}

// waitFor polls cond until it holds or limit passes; on failure it shows
// cond's last detail and the daemons' logs.
func waitFor(t *testing.T, limit time.Duration, sc *stormCluster, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var detail string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, detail = cond(); ok {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("no %s within %s (last: %.3000s)", what, limit, detail)
}

func lines(glob string) []string {
	files, _ := filepath.Glob(glob)
	var out []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, l := range strings.Split(string(b), "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

// containsAll reports whether got holds every element of want as often.
func containsAll(got, want []string) bool {
	n := map[string]int{}
	for _, g := range got {
		n[g]++
	}
	for _, w := range want {
		if n[w] == 0 {
			return false
		}
		n[w]--
	}
	return true
}

// countPorts counts the ports of "[a-b, c-d]".
func countPorts(ranges string) int {
	n := 0
	for _, r := range strings.Split(strings.Trim(ranges, "[]"), ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(r), "-")
		lo, err1 := strconv.Atoi(a)
		hi, err2 := strconv.Atoi(b)
		if ok && err1 == nil && err2 == nil && hi >= lo {
			n += hi - lo + 1
		}
	}
	return n
}

// pidsOf lists the processes whose command line holds both dir and what.
func pidsOf(dir, what string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if cmdline := string(b); strings.Contains(cmdline, dir) && strings.Contains(cmdline, what) {
			pids = append(pids, pid)
		}
	}
	return pids
}
