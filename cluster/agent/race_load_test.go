package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	agentpb "github.com/mesos/mesos-go/api/v1/lib/agent"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

// TestAgentUnderConcurrentLoad drives one real agent with everything at
// once, for a bounded number of rounds: launches of short and long
// command tasks and of task groups, kills of the long ones (some while they start, the rest
// once they run), and, all the while, readers of /state, of the operator
// API's GET_STATE, of /monitor/statistics and of /files/browse on the
// sandboxes /state names. Every task must end (the short ones finished,
// every killed one killed), and every answer must be well formed and
// consistent: in /state and GET_STATE no task is both live and completed,
// nor listed twice. Run it with -race: that is what it is for.
func TestAgentUnderConcurrentLoad(t *testing.T) {
	c := startCluster(t, clustertest.Options{Agent: func(_ int, cfg *agent.Config) {
		cfg.KillGracePeriod = time.Second
	}})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"load","checkpoint":true}`)
	base := "http://" + c.Agents[0].Addr()

	ctx, stop := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	t.Cleanup(func() { stop(); readers.Wait() }) // before the cluster stops, also on a failure
	answers := map[string]*atomic.Int64{"/state": {}, "GET_STATE": {}, "/monitor/statistics": {}, "/files/browse": {}}
	var sandboxes sync.Map // directory → true, from /state
	client := &http.Client{Timeout: wait}
	poll := func(name string, once func() error) {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for ctx.Err() == nil {
				if err := once(); err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				answers[name].Add(1)
			}
		}()
	}
	for range 2 {
		poll("/state", func() error { return checkState(client, base, &sandboxes) })
	}
	poll("GET_STATE", func() error { return checkGetState(client, base) })
	poll("/monitor/statistics", func() error {
		var stats []map[string]any
		return getJSONFrom(client, base+"/monitor/statistics", &stats)
	})
	poll("/files/browse", func() error {
		browsed := false
		var err error
		sandboxes.Range(func(dir, _ any) bool {
			var listing []map[string]any
			err = getJSONFrom(client, base+"/files/browse?path="+url.QueryEscape(dir.(string)), &listing)
			var nf *notFound
			if errors.As(err, &nf) {
				err = nil // listed before its runner made it, or killed first
			}
			browsed = true
			return err == nil && ctx.Err() == nil
		})
		if !browsed {
			time.Sleep(10 * time.Millisecond) // no sandbox listed yet
		}
		return err
	})

	const rounds, perRound = 10, 8
	var short, killedEarly, killedRunning []string
	var running []string // long tasks of the last round, to kill once running
	for r := range rounds {
		offer := offerOf(s, perRound*0.05+0.15, perRound*8+32)
		var tasks []mesos.TaskInfo
		var long []string
		for i := range perRound {
			id := fmt.Sprintf("r%d-t%d", r, i)
			script := "true"
			switch i % 4 {
			case 1:
				script = "sleep 0.2"
			case 2, 3:
				script = "exec sleep 600"
				long = append(long, id)
			}
			if script != "exec sleep 600" {
				short = append(short, id)
			}
			tasks = append(tasks, shellTask(t, id, offer.AgentID, script, "cpus:0.05;mem:8"))
		}
		// And a task group on the built-in default executor, which
		// finishes.
		pod := mesos.ExecutorInfo{Type: mesos.ExecutorInfo_DEFAULT, ExecutorID: mesos.ExecutorID{Value: fmt.Sprintf("pod-%d", r)},
			Resources: resources(t, "cpus:0.05;mem:16")}
		var group []mesos.TaskInfo
		for i := range 2 {
			id := fmt.Sprintf("r%d-g%d", r, i)
			group = append(group, shellTask(t, id, offer.AgentID, "sleep 0.1", "cpus:0.05;mem:8"))
			short = append(short, id)
		}
		s.mustCall(&scheduler.Call{Type: scheduler.Call_ACCEPT, Accept: &scheduler.Call_Accept{OfferIDs: []mesos.OfferID{offer.ID}, Filters: noFilter(),
			Operations: []mesos.Offer_Operation{
				{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{TaskInfos: tasks}},
				{Type: mesos.Offer_Operation_LAUNCH_GROUP, LaunchGroup: &mesos.Offer_Operation_LaunchGroup{
					Executor: pod, TaskGroup: mesos.TaskGroupInfo{Tasks: group}}},
			}}})
		// Half the long tasks are killed at once, while they start; the
		// others once they run, during the next round's launch.
		for i, id := range long {
			if i%2 == 0 {
				killTask(s, offer.AgentID, id)
				killedEarly = append(killedEarly, id)
			}
		}
		for _, id := range running {
			s.waitState(id, mesos.TASK_RUNNING)
			killTask(s, offer.AgentID, id)
			killedRunning = append(killedRunning, id)
		}
		running = running[:0]
		for i, id := range long {
			if i%2 == 1 {
				running = append(running, id)
			}
		}
	}
	agentID := mesos.AgentID{Value: c.Agents[0].ID()}
	for _, id := range running {
		s.waitState(id, mesos.TASK_RUNNING)
		killTask(s, agentID, id)
		killedRunning = append(killedRunning, id)
	}

	for _, id := range short {
		if st := s.waitTerminal(id); st.GetState() != mesos.TASK_FINISHED {
			t.Errorf("task %s: %s, want TASK_FINISHED", id, describe(s.statuses(id)))
		}
	}
	for _, id := range append(killedEarly, killedRunning...) {
		if st := s.waitTerminal(id); st.GetState() != mesos.TASK_KILLED {
			t.Errorf("killed task %s: %s, want TASK_KILLED", id, describe(s.statuses(id)))
		}
	}
	stop()
	readers.Wait()
	for name, n := range answers {
		if n.Load() == 0 {
			t.Errorf("no answer from %s during the load", name)
		}
	}
	t.Logf("tasks: %d short, %d killed while starting, %d killed while running; answers: /state %d, GET_STATE %d, /monitor/statistics %d, /files/browse %d",
		len(short), len(killedEarly), len(killedRunning), answers["/state"].Load(), answers["GET_STATE"].Load(),
		answers["/monitor/statistics"].Load(), answers["/files/browse"].Load())
}

// offerOf waits for an offer of at least cpus and mem, declining smaller
// ones (resources freed by ended tasks come back in offers of their own).
func offerOf(s *sched, cpus, mem float64) mesos.Offer {
	s.t.Helper()
	for {
		offer := s.offer()
		if api.ScalarSum(offer.Resources, "cpus") >= cpus && api.ScalarSum(offer.Resources, "mem") >= mem {
			return offer
		}
		s.mustCall(&scheduler.Call{Type: scheduler.Call_DECLINE, Decline: &scheduler.Call_Decline{
			OfferIDs: []mesos.OfferID{offer.ID}, Filters: noFilter()}})
	}
}

func killTask(s *sched, agentID mesos.AgentID, id string) {
	s.t.Helper()
	s.mustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: id}, AgentID: &agentID}})
}

// getJSONFrom GETs url and decodes its JSON answer into v.
func getJSONFrom(client *http.Client, url string, v any) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusNotFound {
		return &notFound{fmt.Sprintf("%s: %s", resp.Status, b)}
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("not JSON (%v): %.200s", err, b)
	}
	return nil
}

type notFound struct{ msg string }

func (e *notFound) Error() string { return e.msg }

// stateTask is what /state says of one task.
type stateTask struct {
	ID          string `json:"id"`
	FrameworkID string `json:"framework_id"`
	State       string `json:"state"`
}

type stateExecutor struct {
	Directory      string      `json:"directory"`
	Tasks          []stateTask `json:"tasks"`
	QueuedTasks    []stateTask `json:"queued_tasks"`
	CompletedTasks []stateTask `json:"completed_tasks"`
}

type stateFramework struct {
	Executors          []stateExecutor `json:"executors"`
	CompletedExecutors []stateExecutor `json:"completed_executors"`
}

// checkState reads /state once and checks that every task is listed once,
// live with a live state or completed with a terminal one. It notes the
// sandboxes for /files/browse.
func checkState(client *http.Client, base string, sandboxes *sync.Map) error {
	var st struct {
		ID                  string           `json:"id"`
		Frameworks          []stateFramework `json:"frameworks"`
		CompletedFrameworks []stateFramework `json:"completed_frameworks"`
	}
	if err := getJSONFrom(client, base+"/state", &st); err != nil {
		return err
	}
	if st.ID == "" {
		return fmt.Errorf("/state has no agent ID")
	}
	where := map[string]string{}
	note := func(list string, live bool, ts []stateTask) error {
		for _, task := range ts {
			key := task.FrameworkID + "/" + task.ID
			if prev, dup := where[key]; dup {
				return fmt.Errorf("task %s is listed in %s and in %s", key, prev, list)
			}
			where[key] = list
			if terminal(mesos.TaskState(mesos.TaskState_value[task.State])) == live {
				return fmt.Errorf("task %s is in %s in state %s", key, list, task.State)
			}
		}
		return nil
	}
	for _, fws := range [][]stateFramework{st.Frameworks, st.CompletedFrameworks} {
		for _, fw := range fws {
			for _, es := range [][]stateExecutor{fw.Executors, fw.CompletedExecutors} {
				for _, e := range es {
					if e.Directory != "" {
						sandboxes.Store(e.Directory, true)
					}
					if err := note("tasks", true, e.Tasks); err != nil {
						return err
					}
					if err := note("queued_tasks", true, e.QueuedTasks); err != nil {
						return err
					}
					if err := note("completed_tasks", false, e.CompletedTasks); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// checkGetState asks the operator API for GET_STATE (protobuf) and checks
// that no task is both launched and terminated or completed.
func checkGetState(client *http.Client, base string) error {
	body, err := (&agentpb.Call{Type: agentpb.Call_GET_STATE}).Marshal()
	if err != nil {
		return err
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1", bytes.NewReader(body))
	req.Header.Set("Content-Type", api.MediaProtobuf)
	req.Header.Set("Accept", api.MediaProtobuf)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	var r agentpb.Response
	if err := r.Unmarshal(b); err != nil {
		return fmt.Errorf("decode: %v", err)
	}
	tasks := r.GetGetState().GetGetTasks()
	if tasks == nil {
		return fmt.Errorf("no tasks in %+v", r)
	}
	where := map[string]string{}
	for list, ts := range map[string][]mesos.Task{"launched": tasks.LaunchedTasks, "terminated": tasks.TerminatedTasks, "completed": tasks.CompletedTasks} {
		for _, task := range ts {
			key := task.FrameworkID.Value + "/" + task.TaskID.Value
			if prev, dup := where[key]; dup {
				return fmt.Errorf("task %s is both %s and %s", key, prev, list)
			}
			where[key] = list
			if terminal(task.GetState()) == (list == "launched") {
				return fmt.Errorf("task %s is %s in state %s", key, list, task.GetState())
			}
		}
	}
	return nil
}
