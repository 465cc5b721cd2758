package scheduler

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/frameworks/offers"
)

// runDriver runs a driver until stop is called (as if its process were
// killed: the event stream just goes away, nothing is torn down) or the
// test ends. stop waits for Run to return and gives its result.
func runDriver(t *testing.T, cfg Config, h Handler) (d *Driver, stop func() error) {
	t.Helper()
	d, err := New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	var result error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case result = <-errc:
			case <-time.After(clustertest.StopTimeout):
				result = fmt.Errorf("Run did not return within %v of its cancel", clustertest.StopTimeout)
				t.Error(result)
			}
		}
		return result
	}
	t.Cleanup(func() { stop() })
	return d, stop
}

// TestClusterFailoverKeepsTasksUntilTimeout is the SDK's view of framework
// failover: a scheduler with a failover_timeout launches long tasks and is
// killed; a new driver with the same framework ID re-subscribes within the
// timeout, reconciles and finds its tasks still running. Killed again and
// left alone past the timeout, the framework is removed and its tasks are
// killed, processes included.
func TestClusterFailoverKeepsTasksUntilTimeout(t *testing.T) {
	const (
		tasks    = 4
		failover = 3.0 // seconds: room for a loaded machine to re-subscribe in time
		cmd      = "sleep 100"
	)
	c := clustertest.Start(t, clustertest.Options{Agents: 2})

	// The first scheduler: launch the tasks, see them all RUNNING.
	p := newProbe(t)
	d, stop := runDriver(t, Config{Masters: []string{c.MasterAddr}, Framework: framework("failover-sdk", failover)}, p)
	recv(t, p.subscribed, "SUBSCRIBED")
	fid := d.FrameworkID()
	launched := map[string]string{} // task ID → agent ID
	for len(launched) < tasks {
		batch := recv(t, p.offers, "offers")
		for i := range batch {
			o := &batch[i]
			pool := offers.NewPool(o)
			var ts []mesos.TaskInfo
			// Two tasks per agent, so both agents run some.
			for j := 0; j < 2 && len(launched)+len(ts) < tasks; j++ {
				rs, ok := pool.Take(offers.Need{CPUs: 0.1, Mem: 32, Role: "*"})
				if !ok {
					t.Fatalf("offer %v does not fit a small task", o.Resources)
				}
				id := fmt.Sprintf("sleeper-%d", len(launched)+len(ts))
				ts = append(ts, commandTask(id, o, rs, cmd))
			}
			if len(ts) == 0 {
				continue
			}
			if err := d.Launch(context.Background(), []mesos.OfferID{o.ID}, ts, nil); err != nil {
				t.Fatalf("launch on %s: %v", o.AgentID.Value, err)
			}
			for _, ti := range ts {
				launched[ti.TaskID.Value] = o.AgentID.Value
			}
		}
	}
	running := map[string]bool{}
	for len(running) < tasks {
		s := recv(t, p.updates, "the sleepers running")
		switch {
		case s.GetState() == mesos.TASK_RUNNING:
			running[s.TaskID.Value] = true
		case IsTerminal(s.GetState()):
			t.Fatalf("%s ended %s: %s", s.TaskID.Value, s.GetState(), s.GetMessage())
		}
	}
	if pids := taskProcesses(t, c, fid); len(pids) < tasks {
		t.Fatalf("found %d processes of the framework's tasks (%v), want at least %d", len(pids), pids, tasks)
	}

	// Kill the scheduler: its stream goes away without a TEARDOWN.
	if err := stop(); err != context.Canceled {
		t.Fatalf("Run of the stopped driver = %v, want context.Canceled", err)
	}
	c.WaitFor("the framework disconnected but kept", func(s *clustertest.State) bool {
		for _, f := range s.Frameworks {
			if f.ID == fid {
				return !f.Connected && len(f.Tasks) == tasks
			}
		}
		return false
	})

	// A new scheduler process with the same framework ID, within the
	// failover timeout: it reconciles and finds every task RUNNING.
	info := framework("failover-sdk", failover)
	info.ID = &mesos.FrameworkID{Value: fid}
	p2 := newProbe(t)
	d2, stop2 := runDriver(t, Config{Masters: []string{c.MasterAddr}, Framework: info}, p2)
	sub := recv(t, p2.subscribed, "SUBSCRIBED after failover")
	if got := sub.GetFrameworkID().GetValue(); got != fid || d2.FrameworkID() != fid {
		t.Fatalf("failed over as %s (driver says %s), want %s", got, d2.FrameworkID(), fid)
	}
	known := map[string]string{}
	for id, agent := range launched {
		known[id] = agent
	}
	rec := NewReconciler(known, time.Now(), Backoff{Min: 500 * time.Millisecond, Max: 2 * time.Second})
	states := map[string]mesos.TaskStatus{}
	giveUp := time.Now().Add(wait)
	for !rec.Done() {
		if time.Now().After(giveUp) {
			t.Fatalf("reconciliation: no answer for some of %v (have %d)", launched, len(states))
		}
		due, next := rec.Due(time.Now())
		if len(due) > 0 {
			if err := d2.Reconcile(context.Background(), due); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
		}
		select {
		case s := <-p2.updates:
			rec.Observe(s)
			if _, ours := launched[s.TaskID.Value]; ours {
				states[s.TaskID.Value] = s
			}
		case <-time.After(time.Until(next)):
		}
	}
	for id, agent := range launched {
		s := states[id]
		if s.GetState() != mesos.TASK_RUNNING {
			t.Errorf("after failover %s is %s (%s %s), want TASK_RUNNING", id, s.GetState(), s.GetReason(), s.GetMessage())
		}
		if s.GetAgentID().GetValue() != agent {
			t.Errorf("%s reconciled on agent %q, want %s", id, s.GetAgentID().GetValue(), agent)
		}
	}
	if pids := taskProcesses(t, c, fid); len(pids) < tasks {
		t.Fatalf("after failover found %d task processes (%v), want at least %d: tasks were killed", len(pids), pids, tasks)
	}

	// Kill the scheduler again and stay away past the timeout.
	stop2()
	s := c.WaitFor("the framework removed after its failover timeout", func(s *clustertest.State) bool {
		for _, f := range s.CompletedFrameworks {
			if f.ID == fid {
				return true
			}
		}
		return false
	})
	for _, f := range s.Frameworks {
		if f.ID == fid {
			t.Errorf("framework %s is both active and completed", fid)
		}
	}
	for _, f := range s.CompletedFrameworks {
		if f.ID != fid {
			continue
		}
		killed := map[string]bool{}
		for _, task := range f.CompletedTasks {
			if task.State != "TASK_KILLED" {
				t.Errorf("completed task %s of the removed framework is %s, want TASK_KILLED", task.ID, task.State)
			}
			killed[task.ID] = true
		}
		for id := range launched {
			if !killed[id] {
				t.Errorf("task %s is not among the removed framework's completed tasks %+v", id, f.CompletedTasks)
			}
		}
	}
	// The agents kill the processes once the master tells them; allow them
	// time to (functional, not a timing assertion).
	deadline := time.Now().Add(wait)
	for {
		left := taskProcesses(t, c, fid)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of the removed framework's tasks still alive: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// taskProcesses scans /proc for live processes of framework fid's tasks on
// the cluster's agents: those whose working directory is a sandbox under an
// agent's work directory, or whose environment names the framework. It
// returns "pid: cmdline" entries.
func taskProcesses(t *testing.T, c *clustertest.Cluster, fid string) []string {
	t.Helper()
	var roots []string
	for _, a := range c.Agents {
		if a != nil {
			roots = append(roots, filepath.Clean(a.Config.WorkDir)+string(filepath.Separator))
		}
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("scan /proc: %v", err)
	}
	self := os.Getpid()
	var found []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil || zombie(stat) {
			continue // gone meanwhile, or dead and waiting to be reaped
		}
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		ours := false
		if cwd, err := os.Readlink(filepath.Join(dir, "cwd")); err == nil && strings.Contains(cwd, "/frameworks/"+fid+"/") {
			for _, r := range roots {
				ours = ours || strings.HasPrefix(cwd, r)
			}
		}
		if env, err := os.ReadFile(filepath.Join(dir, "environ")); err == nil {
			for _, kv := range bytes.Split(env, []byte{0}) {
				ours = ours || string(kv) == "MESOS_FRAMEWORK_ID="+fid
			}
		}
		if ours {
			found = append(found, fmt.Sprintf("%d: %s", pid, bytes.ReplaceAll(bytes.TrimRight(cmdline, "\x00"), []byte{0}, []byte{' '})))
		}
	}
	return found
}

// zombie reports whether a /proc/PID/stat line is of a zombie process.
func zombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}
