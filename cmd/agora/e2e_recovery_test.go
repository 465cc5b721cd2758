package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// TestAgentKill9KeepsCheckpointedTasks: 50 checkpointed `sleep` tasks run
// on a real agent process; the agent is killed with SIGKILL and started
// again on its work_dir: every task stays running, then finishes — half of
// them while no agent runs — and the framework sees every task's
// TASK_FINISHED (no status update is lost).
func TestAgentKill9KeepsCheckpointedTasks(t *testing.T) {
	const n = 50
	dir := t.TempDir()
	_, master := startBound(t, "master", "--work_dir="+filepath.Join(dir, "master"), "--port=0",
		"--agent_ping_timeout=1s", "--max_agent_ping_timeouts=30", "--allocation_interval=100ms")
	agentArgs := []string{"agent", "--master=" + master, "--work_dir=" + filepath.Join(dir, "agent"),
		"--port=0", "--resources=cpus:4;mem:4096;disk:1024", "--switch_user=false"}
	agent, agentAddr := startBound(t, agentArgs...)
	waitState(t, "http://"+master, "agent registered", func(s *masterState) bool { return len(s.Slaves) == 1 })

	// The tasks outlive the agent's restart: they sleep until a marker
	// file appears, then exit 0. (Not under /tmp: tasks get their own.)
	markerDir, err := os.MkdirTemp("/var/tmp", "agora-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(markerDir)
	// Half the tasks end while the agent is down (their marker is written
	// then), half after it is back.
	early, late := filepath.Join(markerDir, "early"), filepath.Join(markerDir, "late")
	var (
		mu       sync.Mutex
		launched bool
		running  = map[string]bool{}
		finished = map[string]bool{}
		others   []string
	)
	checkpoint := true
	failover := 3600.0
	var d *scheduler.Driver
	d, err = scheduler.New(scheduler.Config{
		Masters: []string{master}, Codec: api.JSON,
		Framework: mesos.FrameworkInfo{User: "root", Name: "checkpointed", Checkpoint: &checkpoint, FailoverTimeout: &failover},
	}, scheduler.Funcs{
		OnOffers: func(ctx context.Context, offers []mesos.Offer) {
			mu.Lock()
			defer mu.Unlock()
			for _, o := range offers {
				if launched {
					d.Decline(ctx, []mesos.OfferID{o.ID}, time.Hour)
					continue
				}
				launched = true
				var tasks []mesos.TaskInfo
				for i := 0; i < n; i++ {
					res, _ := api.ParseResources("cpus:0.01;mem:16")
					marker := early
					if i%2 == 1 {
						marker = late
					}
					tasks = append(tasks, mesos.TaskInfo{Name: "s", TaskID: mesos.TaskID{Value: fmt.Sprintf("sleep-%d", i)}, AgentID: o.AgentID,
						Command:   &mesos.CommandInfo{Value: strp("while [ ! -e " + marker + " ]; do sleep 0.2; done")},
						Resources: res})
				}
				d.Launch(ctx, []mesos.OfferID{o.ID}, tasks, scheduler.RefuseFor(time.Hour))
			}
		},
		OnUpdate: func(ctx context.Context, st mesos.TaskStatus) {
			mu.Lock()
			defer mu.Unlock()
			id := st.TaskID.Value
			switch st.GetState() {
			case mesos.TASK_RUNNING:
				running[id] = true
			case mesos.TASK_FINISHED:
				finished[id] = true
			case mesos.TASK_STARTING:
			default:
				others = append(others, id+" "+st.GetState().String()+" "+st.GetMessage())
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			ok := cond()
			mu.Unlock()
			if ok {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("timed out waiting for %s: %d running, %d finished, others %v", what, len(running), len(finished), others)
	}
	waitFor("all tasks running", func() bool { return len(running) == n })

	agent.kill9(t)
	if err := writeFile(early); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the early half ends with no agent watching
	// Its executors reconnect to the port they know: the same one.
	restartOn(t, agentAddr, agentArgs...)
	// The master still lists the killed agent; wait for the new process
	// itself to say it has registered.
	agentState := "http://" + agentAddr + "/state"
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var st struct {
			Registered bool `json:"registered"`
		}
		if resp, err := http.Get(agentState); err == nil {
			json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		if st.Registered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the restarted agent did not register")
		}
	}
	if err := writeFile(late); err != nil {
		t.Fatal(err)
	}
	waitFor("every task finished", func() bool { return len(finished) == n })
	mu.Lock()
	defer mu.Unlock()
	if len(others) > 0 {
		t.Fatalf("unexpected updates: %v", others)
	}
}

func strp(s string) *string { return &s }

func writeFile(path string) error { return os.WriteFile(path, []byte("go"), 0o644) }
