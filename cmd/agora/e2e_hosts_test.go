package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	schedcall "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest/hosts"
	"github.com/agora-cluster/agora/cluster/zk/zktest"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// startOn runs agora with args on host h until the test ends.
func startOn(t *testing.T, h *hosts.Host, args ...string) *proc {
	t.Helper()
	return startCmd(t, h.Command(agoraBin, args...), "agora "+args[0]+" on "+h.Name)
}

// multiHost is a cluster on separate network-namespace hosts: ZooKeeper
// and a master on each of h1..h3, an agent on each of h4..h6.
type multiHost struct {
	net     *hosts.Net
	zkURL   string
	masters map[string]*proc // by address
	agents  []*hosts.Host
}

func startMultiHost(t *testing.T) *multiHost {
	nt := hosts.New(t, 6)
	zktest.StartOn(t, nt.Hosts[:3])
	mh := &multiHost{net: nt, masters: map[string]*proc{}, agents: nt.Hosts[3:]}
	var servers []string
	for _, h := range nt.Hosts[:3] {
		servers = append(servers, h.IP+":2181")
	}
	mh.zkURL = "zk://" + strings.Join(servers, ",") + "/agora"
	for _, h := range nt.Hosts[:3] {
		addr := h.IP + ":5050"
		mh.masters[addr] = startOn(t, h, "master", "--zk="+mh.zkURL, "--quorum=2", "--ip="+h.IP, "--port=5050", "--hostname="+h.Name,
			"--zk_session_timeout=4s", "--agent_ping_timeout=1s", "--max_agent_ping_timeouts=5", "--allocation_interval=100ms")
	}
	dir := t.TempDir()
	for _, h := range mh.agents {
		startOn(t, h, "agent", "--master="+mh.zkURL, "--ip="+h.IP, "--port=5051", "--hostname="+h.Name,
			"--work_dir="+filepath.Join(dir, h.Name), "--cgroups_root=agora-test-"+h.Name+"-"+filepath.Base(dir),
			"--resources=cpus:2;mem:2048;disk:1024", "--switch_user=false")
	}
	return mh
}

func (mh *multiHost) addrs() []string {
	var out []string
	for a := range mh.masters {
		out = append(out, a)
	}
	return out
}

// runsOf counts how many times each task ran: every run appends a line
// to its file in dir.
func runsOf(t *testing.T, dir string) map[string]int {
	t.Helper()
	out := map[string]int{}
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name()] = bytes.Count(b, []byte("\n"))
	}
	return out
}

// Three ZooKeeper servers, three masters and three agents, each on a host
// of its own: a 1,000-task workload runs through a kill -9 of the leading
// master. Another master is elected; the workload completes; no task is
// lost or run twice, and every task's updates arrive in order.
func TestMultiHostFailoverUnderLoad(t *testing.T) {
	mh := startMultiHost(t)
	var leader string
	waitUntil(t, "a leading master", 2*time.Minute, func() bool {
		leader = leaderOf(mh.addrs())
		return leader != ""
	})
	waitUntil(t, "three agents registered", 2*time.Minute, func() bool {
		s, err := getState("http://" + leader)
		return err == nil && len(s.Slaves) == 3
	})

	const n = 1000
	runDir, err := os.MkdirTemp("/var/tmp", "agora-runs-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(runDir)
	w := newWorkload(n, runDir)
	d, err := scheduler.New(scheduler.Config{
		Masters: []string{mh.zkURL}, Codec: api.JSON,
		Framework: mesos.FrameworkInfo{User: "root", Name: "multi-host", Checkpoint: ptr(true), FailoverTimeout: ptr(3600.0),
			Capabilities: scheduler.Capabilities(mesos.FrameworkInfo_Capability_PARTITION_AWARE)},
		Backoff: scheduler.Backoff{Min: 50 * time.Millisecond, Max: time.Second},
	}, w.funcs())
	if err != nil {
		t.Fatal(err)
	}
	w.d = d
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- d.Run(ctx) }()
	go w.reconcile(ctx)
	defer func() {
		cancel()
		select {
		case <-runDone:
		case <-time.After(30 * time.Second):
		}
	}()

	waitUntil(t, "a third of the tasks finished", 5*time.Minute, func() bool { return w.finished() >= n/3 })
	old := mh.masters[leader]
	old.kill9(t)
	t.Logf("killed the leader %s after %d tasks finished", leader, w.finished())
	waitUntil(t, "another master to lead", 2*time.Minute, func() bool {
		l := leaderOf(mh.addrs())
		return l != "" && l != leader
	})
	waitUntil(t, "every task finished", 10*time.Minute, func() bool { return w.finished() == n })

	w.mu.Lock()
	defer w.mu.Unlock()
	for id, ss := range w.states {
		if err := inOrder(ss); err != nil {
			t.Errorf("task %s: %v (updates %v)", id, err, ss)
		}
	}
	runs := runsOf(t, runDir)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("t%04d", i)
		if runs[id] != 1 {
			t.Errorf("task %s ran %d times; want exactly once", id, runs[id])
		}
	}
	if w.relaunched > 0 {
		t.Logf("%d tasks were launched again after the master answered that they never reached an agent", w.relaunched)
	}
}

// inOrder checks a task's states only move forward and end in FINISHED
// (repeated, at most: updates are delivered at least once).
func inOrder(ss []mesos.TaskState) error {
	rank := map[mesos.TaskState]int{mesos.TASK_STAGING: 0, mesos.TASK_STARTING: 1, mesos.TASK_RUNNING: 2, mesos.TASK_FINISHED: 3}
	last := -1
	for i, s := range ss {
		r, ok := rank[s]
		if !ok {
			return fmt.Errorf("state %s", s)
		}
		if r < last {
			return fmt.Errorf("%s after a later state", s)
		}
		if i > 0 && ss[i-1] == mesos.TASK_FINISHED && s != mesos.TASK_FINISHED {
			// Delivery is at least once: a FINISHED whose acknowledgement
			// died with the leader comes again, but nothing else may.
			return fmt.Errorf("%s after FINISHED", s)
		}
		last = r
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// workload launches n tasks t0000..t(n-1), each appending a line to its
// file in runDir and exiting 0, at most 16 per offer and 48 in flight, and
// records every update. It reconciles the tasks it has launched and not
// heard from for a while; a task the master then reports never reached an
// agent (LOST, DROPPED, GONE, UNKNOWN) is launched again — runsOf tells
// whether such a task had run after all.
type workload struct {
	d      *scheduler.Driver
	n      int
	runDir string

	mu         sync.Mutex
	next       int
	pending    []int             // to launch again
	active     map[string]string // task → agent
	heard      map[string]time.Time
	states     map[string][]mesos.TaskState
	done       map[string]bool
	relaunched int
}

func newWorkload(n int, runDir string) *workload {
	return &workload{n: n, runDir: runDir, active: map[string]string{}, heard: map[string]time.Time{},
		states: map[string][]mesos.TaskState{}, done: map[string]bool{}}
}

func (w *workload) finished() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.done)
}

func (w *workload) funcs() scheduler.Funcs {
	return scheduler.Funcs{OnOffers: w.offers, OnUpdate: w.update}
}

func (w *workload) offers(ctx context.Context, offers []mesos.Offer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range offers {
		var tasks []mesos.TaskInfo
		for len(tasks) < 16 && len(w.active) < 48 {
			i := -1
			if len(w.pending) > 0 {
				i, w.pending = w.pending[0], w.pending[1:]
			} else if w.next < w.n {
				i = w.next
				w.next++
			}
			if i < 0 {
				break
			}
			id := fmt.Sprintf("t%04d", i)
			res, _ := api.ParseResources("cpus:0.01;mem:8")
			tasks = append(tasks, mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: o.AgentID, Resources: res,
				Command: &mesos.CommandInfo{Value: ptr("echo ran >> " + filepath.Join(w.runDir, id))}})
			w.active[id] = o.AgentID.Value
			w.heard[id] = time.Now()
		}
		if len(tasks) == 0 {
			w.d.Decline(ctx, []mesos.OfferID{o.ID}, time.Second)
			continue
		}
		w.d.Launch(ctx, []mesos.OfferID{o.ID}, tasks, scheduler.RefuseFor(100*time.Millisecond))
	}
}

func (w *workload) update(ctx context.Context, st mesos.TaskStatus) {
	w.mu.Lock()
	defer w.mu.Unlock()
	id := st.TaskID.Value
	w.heard[id] = time.Now()
	s := st.GetState()
	switch s {
	case mesos.TASK_FINISHED:
		if _, ok := w.active[id]; ok {
			w.done[id] = true
			delete(w.active, id)
		}
	case mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_UNKNOWN, mesos.TASK_ERROR:
		if _, ok := w.active[id]; ok && !w.done[id] {
			delete(w.active, id)
			var i int
			fmt.Sscanf(id, "t%d", &i)
			w.pending = append(w.pending, i)
			w.relaunched++
		}
		return
	}
	w.states[id] = append(w.states[id], s)
}

// reconcile asks, every few seconds until ctx ends, for the tasks not
// heard from in that time.
func (w *workload) reconcile(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(3 * time.Second):
		}
		w.mu.Lock()
		var tasks []schedcall.Call_Reconcile_Task
		for id, agent := range w.active {
			if time.Since(w.heard[id]) > 3*time.Second {
				tasks = append(tasks, schedcall.Call_Reconcile_Task{TaskID: mesos.TaskID{Value: id}, AgentID: &mesos.AgentID{Value: agent}})
			}
		}
		w.mu.Unlock()
		if len(tasks) > 0 {
			w.d.Reconcile(ctx, tasks)
		}
	}
}

// sleeper is a framework that launches one long task on the agent of
// host, and records the task's states.
type sleeper struct {
	d     *scheduler.Driver
	host  string
	task  string
	mu    sync.Mutex
	sent  bool
	seen  []mesos.TaskState
	cause []string
}

func startSleeper(t *testing.T, zkURL, name, host string, partitionAware bool) *sleeper {
	t.Helper()
	s := &sleeper{host: host, task: name + "-task"}
	fw := mesos.FrameworkInfo{User: "root", Name: name, Checkpoint: ptr(true), FailoverTimeout: ptr(3600.0)}
	if partitionAware {
		fw.Capabilities = scheduler.Capabilities(mesos.FrameworkInfo_Capability_PARTITION_AWARE)
	}
	d, err := scheduler.New(scheduler.Config{Masters: []string{zkURL}, Codec: api.JSON, Framework: fw,
		Backoff: scheduler.Backoff{Min: 50 * time.Millisecond, Max: time.Second}}, scheduler.Funcs{
		OnOffers: func(ctx context.Context, offers []mesos.Offer) {
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, o := range offers {
				if s.sent || o.GetHostname() != s.host {
					s.d.Decline(ctx, []mesos.OfferID{o.ID}, time.Hour)
					continue
				}
				s.sent = true
				res, _ := api.ParseResources("cpus:0.1;mem:16")
				s.d.Launch(ctx, []mesos.OfferID{o.ID}, []mesos.TaskInfo{{Name: s.task, TaskID: mesos.TaskID{Value: s.task}, AgentID: o.AgentID,
					Resources: res, Command: &mesos.CommandInfo{Value: ptr("sleep 600")}}}, scheduler.RefuseFor(time.Hour))
			}
		},
		OnUpdate: func(ctx context.Context, st mesos.TaskStatus) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.seen = append(s.seen, st.GetState())
			s.cause = append(s.cause, st.GetState().String()+"/"+st.GetReason().String())
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.d = d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
	})
	return s
}

// last is the newest state the framework heard, and all of them.
func (s *sleeper) last() (mesos.TaskState, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) == 0 {
		return -1, nil
	}
	return s.seen[len(s.seen)-1], append([]string(nil), s.cause...)
}

func (s *sleeper) waitState(t *testing.T, want mesos.TaskState, what string) {
	t.Helper()
	waitUntil(t, what, 2*time.Minute, func() bool { st, _ := s.last(); return st == want })
}

// A partition cutting one agent's host off: its tasks go TASK_UNREACHABLE
// for a partition-aware framework and TASK_LOST for another; when the
// link heals the agent re-registers with its ID, the partition-aware
// framework's task is RUNNING again, and the other framework's task,
// reported lost, is killed (agora's rule for non-partition-aware tasks
// that come back).
func TestMultiHostPartitionedAgent(t *testing.T) {
	mh := startMultiHost(t)
	var leader string
	waitUntil(t, "a leading master", 2*time.Minute, func() bool {
		leader = leaderOf(mh.addrs())
		return leader != ""
	})
	var agentID string
	cut := mh.agents[0]
	waitUntil(t, "three agents registered", 2*time.Minute, func() bool {
		s, err := getState("http://" + leader)
		return err == nil && len(s.Slaves) == 3
	})
	pa := startSleeper(t, mh.zkURL, "aware", cut.Name, true)
	legacy := startSleeper(t, mh.zkURL, "legacy", cut.Name, false)
	pa.waitState(t, mesos.TASK_RUNNING, "the partition-aware task running")
	legacy.waitState(t, mesos.TASK_RUNNING, "the other task running")
	var st struct {
		Slaves []struct{ ID, Hostname string }
	}
	if err := fetchJSON("http://"+leader+"/master/state", &st); err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Slaves {
		if s.Hostname == cut.Name {
			agentID = s.ID
		}
	}

	if err := mh.net.Cut(cut); err != nil {
		t.Fatal(err)
	}
	pa.waitState(t, mesos.TASK_UNREACHABLE, "TASK_UNREACHABLE for the partition-aware framework")
	legacy.waitState(t, mesos.TASK_LOST, "TASK_LOST for the other framework")
	if err := mh.net.Heal(cut); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the agent to re-register with its ID", 2*time.Minute, func() bool {
		var st struct {
			Slaves []struct{ ID, Hostname string }
		}
		if fetchJSON("http://"+leaderOf(mh.addrs())+"/master/state", &st) != nil {
			return false
		}
		for _, s := range st.Slaves {
			if s.Hostname == cut.Name {
				return s.ID == agentID
			}
		}
		return false
	})
	pa.waitState(t, mesos.TASK_RUNNING, "the partition-aware task RUNNING again")
	legacy.waitState(t, mesos.TASK_KILLED, "the other framework's task killed")
	if _, all := pa.last(); len(all) < 3 {
		t.Fatalf("partition-aware updates %v", all)
	}
}

func fetchJSON(url string, v any) error {
	resp, err := noRedirect.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
