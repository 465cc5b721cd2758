package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/frameworks/offers"
)

// packer is a small SDK framework for the scale test: it packs as many of
// its pending command tasks into every offer as fit and records every
// update it is handed.
type packer struct {
	d    *Driver
	need offers.Need
	cmd  string

	mu         sync.Mutex
	pending    []string
	launched   map[string]string // task ID → agent ID
	states     map[string]mesos.TaskState
	finished   int
	failed     []string // "task: state (message)"
	withUUID   int      // updates carrying a uuid: each must be acknowledged
	acceptErrs []error
	suppressed bool
	done       chan struct{}
}

func newPacker(n int, prefix, cmd string, need offers.Need) *packer {
	p := &packer{need: need, cmd: cmd, launched: map[string]string{}, states: map[string]mesos.TaskState{}, done: make(chan struct{})}
	for i := 0; i < n; i++ {
		p.pending = append(p.pending, fmt.Sprintf("%s-%04d", prefix, i))
	}
	return p
}

func (p *packer) handler() Handler {
	return Funcs{OnOffers: p.offers, OnUpdate: p.update}
}

func (p *packer) offers(ctx context.Context, os []mesos.Offer) {
	var decline []mesos.OfferID
	for i := range os {
		o := &os[i]
		pool := offers.NewPool(o)
		var tasks []mesos.TaskInfo
		p.mu.Lock()
		for len(p.pending) > 0 {
			rs, ok := pool.Take(p.need)
			if !ok {
				break
			}
			id := p.pending[0]
			p.pending = p.pending[1:]
			tasks = append(tasks, commandTask(id, o, rs, p.cmd))
			p.launched[id] = o.AgentID.Value
		}
		p.mu.Unlock()
		if len(tasks) == 0 {
			decline = append(decline, o.ID)
			continue
		}
		if err := p.d.Launch(ctx, []mesos.OfferID{o.ID}, tasks, RefuseFor(0)); err != nil {
			p.mu.Lock()
			p.acceptErrs = append(p.acceptErrs, err)
			for _, t := range tasks {
				delete(p.launched, t.TaskID.Value)
				p.pending = append(p.pending, t.TaskID.Value)
			}
			p.mu.Unlock()
		}
	}
	p.mu.Lock()
	all := len(p.pending) == 0
	suppress := all && !p.suppressed
	p.suppressed = p.suppressed || suppress
	p.mu.Unlock()
	if suppress {
		_ = p.d.Suppress(ctx)
	}
	if len(decline) > 0 {
		_ = p.d.Decline(ctx, decline, time.Hour)
	}
}

func (p *packer) update(_ context.Context, s mesos.TaskStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := s.TaskID.Value
	if len(s.UUID) > 0 {
		p.withUUID++
	}
	if _, ours := p.launched[id]; !ours || IsTerminal(p.states[id]) {
		return
	}
	p.states[id] = s.GetState()
	switch {
	case s.GetState() == mesos.TASK_FINISHED:
		p.finished++
	case IsTerminal(s.GetState()):
		p.failed = append(p.failed, fmt.Sprintf("%s: %s (%s)", id, s.GetState(), s.GetMessage()))
	}
	if p.finished+len(p.failed) == len(p.launched) && len(p.pending) == 0 {
		select {
		case <-p.done:
		default:
			close(p.done)
		}
	}
}

// masterMetric reads one value of the master's /metrics/snapshot.
func masterMetric(t *testing.T, c *clustertest.Cluster, name string) float64 {
	t.Helper()
	resp, err := http.Get(c.MasterURL + "/metrics/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var snap map[string]float64
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatalf("decode /metrics/snapshot: %v", err)
	}
	v, ok := snap[name]
	if !ok {
		t.Fatalf("/metrics/snapshot has no %q", name)
	}
	return v
}

// TestClusterScaleThousandTasks launches 1,000 `true` tasks through the SDK
// on two agents whose offers hold 256 such tasks each, so it takes several
// rounds of offers, resources freed by finished tasks and re-offered, and
// thousands of acknowledgements sent by the driver.
func TestClusterScaleThousandTasks(t *testing.T) {
	if testing.Short() {
		t.Skip("launches 1,000 processes")
	}
	const n = 1000
	c := clustertest.Start(t, clustertest.Options{Agents: 2,
		AgentResources: "cpus:4;mem:4096;disk:1000;ports:[31000-32000]",
		Master: func(mc *master.Config) {
			mc.MaxCompletedTasksPerFramework = 2 * n // keep every task in /master/state
		},
	})
	p := newPacker(n, "scale", "true", offers.Need{CPUs: 0.01, Mem: 16, Role: "*"})
	d, err := New(Config{Masters: []string{c.MasterAddr}, Framework: framework("scale", 0)}, p.handler())
	if err != nil {
		t.Fatal(err)
	}
	p.d = d
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	ran := make(chan struct{}) // closed when Run returns: errc may have been read by then
	go func() { errc <- d.Run(ctx); close(ran) }()
	t.Cleanup(func() { cancel(); clustertest.AwaitStop(t, "the driver", ran) })

	select {
	case <-p.done:
	case err := <-errc:
		t.Fatalf("Run ended before the tasks did: %v", err)
	case <-time.After(3 * wait):
		// The handlers take p.mu on the driver's loop: release it before
		// failing, or the cleanup's wait for Run would wait forever.
		p.mu.Lock()
		launched, finished, failed, pending := len(p.launched), p.finished, len(p.failed), len(p.pending)
		p.mu.Unlock()
		t.Fatalf("timed out: %d launched, %d finished, %d failed, %d pending", launched, finished, failed, pending)
	}

	p.mu.Lock()
	if len(p.failed) > 0 {
		t.Errorf("%d tasks did not finish, e.g. %s", len(p.failed), p.failed[0])
	}
	if p.finished != n {
		t.Errorf("%d tasks reached TASK_FINISHED, want %d", p.finished, n)
	}
	if len(p.acceptErrs) > 0 {
		t.Logf("%d ACCEPTs failed (tasks retried), first: %v", len(p.acceptErrs), p.acceptErrs[0])
	}
	agents := map[string]int{}
	for _, a := range p.launched {
		agents[a]++
	}
	withUUID := p.withUUID
	p.mu.Unlock()
	if len(agents) != 2 {
		t.Errorf("tasks ran on %d agents (%v), want both", len(agents), agents)
	}

	// The master completes a task only when its terminal update has been
	// acknowledged; the framework stays subscribed, so its tasks are in
	// frameworks[0].completed_tasks.
	fid := d.FrameworkID()
	st := c.WaitFor("all tasks acknowledged and completed", func(s *clustertest.State) bool {
		for _, f := range s.Frameworks {
			if f.ID == fid {
				return len(f.Tasks) == 0 && len(f.CompletedTasks) >= n
			}
		}
		return false
	})
	for _, f := range st.Frameworks {
		if f.ID != fid {
			continue
		}
		seen := map[string]bool{}
		slaves := map[string]int{}
		for _, task := range f.CompletedTasks {
			if task.State != "TASK_FINISHED" {
				t.Errorf("completed task %s is %s, want TASK_FINISHED", task.ID, task.State)
			}
			seen[task.ID] = true
			slaves[task.SlaveID]++
		}
		if len(seen) != n || len(f.CompletedTasks) != n {
			t.Errorf("completed_tasks holds %d entries for %d distinct tasks, want %d", len(f.CompletedTasks), len(seen), n)
		}
		if len(slaves) != 2 {
			t.Errorf("completed tasks ran on agents %v, want both", slaves)
		}
		t.Logf("tasks per agent: %v", slaves)
	}

	// Every update with a uuid was acknowledged: STARTING, RUNNING and
	// FINISHED for each task (retried duplicates are acknowledged too).
	acks := masterMetric(t, c, "master/valid_status_update_acknowledgements")
	if acks < 3*n {
		t.Errorf("master/valid_status_update_acknowledgements = %v, want >= %d", acks, 3*n)
	}
	if withUUID < 3*n {
		t.Errorf("the framework was handed %d updates with a uuid, want >= %d", withUUID, 3*n)
	}
	t.Logf("updates with uuid handed to the framework: %d; acknowledgements counted by the master: %v", withUUID, acks)
}
