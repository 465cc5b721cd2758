package agent_test

import (
	// mesos-go's example-executor, built by TestMesosGoExampleExecutorBinary,
	// needs this module; importing it keeps it in go.mod.
	_ "github.com/pborman/uuid"

	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

// rawExecutor plays an executor over the JSON executor API by hand, so
// tests can send exactly the calls they are about. The agent launches a
// stand-in process for it (one that never subscribes by itself).
type rawExecutor struct {
	t      *testing.T
	url    string
	fw, id string
	events chan *executor.Event
}

func executorURL(ra *clustertest.RunningAgent) string {
	return "http://" + ra.Addr() + agent.ExecutorAPIPath
}

// post sends an executor call as JSON and returns the status code and body.
func post(t *testing.T, url, contentType, accept string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (x *rawExecutor) call(c *executor.Call) (int, string) {
	x.t.Helper()
	c.FrameworkID = mesos.FrameworkID{Value: x.fw}
	c.ExecutorID = mesos.ExecutorID{Value: x.id}
	b, err := json.Marshal(c)
	if err != nil {
		x.t.Fatal(err)
	}
	return post(x.t, x.url, api.MediaJSON, "", b)
}

// subscribeRaw subscribes as executor id of framework fw.
func subscribeRaw(t *testing.T, url, fw, id string) *rawExecutor {
	t.Helper()
	x := &rawExecutor{t: t, url: url, fw: fw, id: id, events: make(chan *executor.Event, 1024)}
	b, _ := json.Marshal(&executor.Call{Type: executor.Call_SUBSCRIBE, FrameworkID: mesos.FrameworkID{Value: fw},
		ExecutorID: mesos.ExecutorID{Value: id}, Subscribe: &executor.Call_Subscribe{}})
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", api.MediaJSON)
	req.Header.Set("Accept", api.MediaJSON)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("executor SUBSCRIBE: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != api.MediaJSON {
		t.Fatalf("executor SUBSCRIBE: Content-Type %q", ct)
	}
	if resp.ContentLength != -1 {
		t.Fatalf("executor SUBSCRIBE: not streamed (Content-Length %d)", resp.ContentLength)
	}
	// The reader stops at cleanup even when the test no longer takes
	// events and x.events is full.
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); resp.Body.Close() })
	rr := api.NewRecordReader(resp.Body)
	go func() {
		defer close(x.events)
		for {
			b, err := rr.ReadRecord()
			if err != nil {
				return
			}
			var ev executor.Event
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Errorf("decode executor event %s: %v", b, err)
				return
			}
			select {
			case x.events <- &ev:
			case <-stop:
				return
			}
		}
	}()
	return x
}

func (x *rawExecutor) next(typ executor.Event_Type) *executor.Event {
	x.t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev, ok := <-x.events:
			if !ok {
				x.t.Fatalf("executor stream closed while waiting for %v", typ)
			}
			if ev.GetType() == typ {
				return ev
			}
		case <-timeout:
			x.t.Fatalf("no %v event on the executor stream", typ)
		}
	}
}

func update(taskID string, state mesos.TaskState, uuid []byte, source mesos.TaskStatus_Source) *executor.Call {
	return &executor.Call{Type: executor.Call_UPDATE, Update: &executor.Call_Update{Status: mesos.TaskStatus{
		TaskID: mesos.TaskID{Value: taskID}, State: state.Enum(), Source: source.Enum(), UUID: uuid}}}
}

func uuid16(b byte) []byte { return bytes.Repeat([]byte{b}, 16) }

// standIn is an ExecutorInfo whose process never subscribes: the test
// speaks for it.
func standIn(t *testing.T, id, script string) *mesos.ExecutorInfo {
	return &mesos.ExecutorInfo{Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: id},
		Command: &mesos.CommandInfo{Value: &script}, Resources: resources(t, "cpus:0.1;mem:32")}
}

func execTask(t *testing.T, id string, agentID mesos.AgentID, exec *mesos.ExecutorInfo, res string) mesos.TaskInfo {
	return mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: agentID, Executor: exec, Resources: resources(t, res)}
}

func quickShutdown(_ int, c *agent.Config) { c.ExecutorShutdownGracePeriod = time.Second }

// TestExecutorAPI goes through the executor API call by call: media types,
// calls before SUBSCRIBE, the SUBSCRIBED event, the agent's checks on
// UPDATE, acknowledgements, KILL with a kill policy, MESSAGE both ways and
// SHUTDOWN with the grace period.
func TestExecutorAPI(t *testing.T) {
	c := startCluster(t, clustertest.Options{Agent: quickShutdown})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"executor-api","checkpoint":true}`)
	offer := s.offer()
	exec := standIn(t, "raw", "sleep 600")
	s.launch(offer, execTask(t, "t1", offer.AgentID, exec, "cpus:0.1;mem:16"))
	url := executorURL(c.Agents[0])

	call := func(typ executor.Call_Type, fw, id string) []byte {
		b, _ := json.Marshal(&executor.Call{Type: typ, FrameworkID: mesos.FrameworkID{Value: fw}, ExecutorID: mesos.ExecutorID{Value: id},
			Subscribe: &executor.Call_Subscribe{}, Message: &executor.Call_Message{Data: []byte("x")}})
		return b
	}
	expect := func(what string, code int, body string, wantCode int, wantText string) {
		t.Helper()
		if code != wantCode || !strings.Contains(body, wantText) {
			t.Errorf("%s: %d %q, want %d with %q", what, code, body, wantCode, wantText)
		}
	}
	// The executor is launched (its task queued) but has not subscribed.
	waitFor(t, "the executor to be launched", func() bool {
		code, _ := post(t, url, api.MediaJSON, "", call(executor.Call_MESSAGE, s.id, "raw"))
		return code == http.StatusForbidden
	})
	code, body := post(t, url, api.MediaJSON, "", call(executor.Call_MESSAGE, s.id, "raw"))
	expect("MESSAGE before SUBSCRIBE", code, body, http.StatusForbidden, "not subscribed")
	code, body = post(t, url, api.MediaJSON, "", call(executor.Call_MESSAGE, s.id, "nobody"))
	expect("unknown executor", code, body, http.StatusBadRequest, "Executor cannot be found")
	code, body = post(t, url, api.MediaJSON, "", call(executor.Call_MESSAGE, "no-such-framework", "raw"))
	expect("unknown framework", code, body, http.StatusBadRequest, "Framework cannot be found")
	code, body = post(t, url, "text/plain", "", call(executor.Call_SUBSCRIBE, s.id, "raw"))
	expect("text/plain body", code, body, http.StatusUnsupportedMediaType, "Content-Type")
	code, body = post(t, url, "", "", call(executor.Call_SUBSCRIBE, s.id, "raw"))
	expect("no Content-Type", code, body, http.StatusBadRequest, "Content-Type")
	code, body = post(t, url, api.MediaJSON, "text/html", call(executor.Call_SUBSCRIBE, s.id, "raw"))
	expect("Accept: text/html", code, body, http.StatusNotAcceptable, "Accept")
	code, body = post(t, url, api.MediaJSON, "", []byte(`{"type":"SUBSCRIBE"`))
	expect("malformed JSON", code, body, http.StatusBadRequest, "parse")
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
		t.Errorf("GET: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}

	x := subscribeRaw(t, url, s.id, "raw")
	sub := x.next(executor.Event_SUBSCRIBED).Subscribed
	if sub.ExecutorInfo.ExecutorID.Value != "raw" || sub.FrameworkInfo.GetID().GetValue() != s.id || sub.FrameworkInfo.Name != "executor-api" ||
		sub.AgentInfo.GetID().GetValue() != offer.AgentID.Value || sub.AgentInfo.GetPort() == 0 || sub.ContainerID.GetValue() == "" {
		t.Errorf("SUBSCRIBED: %+v", sub)
	}
	launch := x.next(executor.Event_LAUNCH).Launch
	if launch.Task.TaskID.Value != "t1" {
		t.Fatalf("LAUNCH of %s, want t1", launch.Task.TaskID.Value)
	}

	// The agent's checks on UPDATE.
	for _, tc := range []struct {
		what string
		call *executor.Call
		want string
	}{
		{"missing uuid", update("t1", mesos.TASK_RUNNING, nil, mesos.SOURCE_EXECUTOR), "uuid"},
		{"short uuid", update("t1", mesos.TASK_RUNNING, []byte("12345"), mesos.SOURCE_EXECUTOR), "16"},
		{"wrong source", update("t1", mesos.TASK_RUNNING, uuid16(1), mesos.SOURCE_AGENT), "SOURCE_EXECUTOR"},
		{"TASK_STAGING", update("t1", mesos.TASK_STAGING, uuid16(2), mesos.SOURCE_EXECUTOR), "TASK_STAGING"},
		{"no update", &executor.Call{Type: executor.Call_UPDATE}, "'update'"},
	} {
		code, body := x.call(tc.call)
		expect("UPDATE with "+tc.what, code, body, http.StatusBadRequest, tc.want)
	}
	other := update("t1", mesos.TASK_RUNNING, uuid16(3), mesos.SOURCE_EXECUTOR)
	other.Update.Status.ExecutorID = &mesos.ExecutorID{Value: "someone-else"}
	code, body = x.call(other)
	expect("UPDATE naming another executor", code, body, http.StatusBadRequest, "does not match")

	// A valid update: 202, then ACKNOWLEDGED, and the scheduler sees it
	// with what the agent fills in.
	running := uuid16(4)
	code, body = x.call(update("t1", mesos.TASK_RUNNING, running, mesos.SOURCE_EXECUTOR))
	expect("valid UPDATE", code, body, http.StatusAccepted, "")
	ack := x.next(executor.Event_ACKNOWLEDGED).Acknowledged
	if ack.TaskID.Value != "t1" || !bytes.Equal(ack.UUID, running) {
		t.Errorf("ACKNOWLEDGED %s %x, want t1 %x", ack.TaskID.Value, ack.UUID, running)
	}
	st := s.waitState("t1", mesos.TASK_RUNNING)
	if st.GetSource() != mesos.SOURCE_EXECUTOR || st.GetAgentID().GetValue() != offer.AgentID.Value || st.Timestamp == nil ||
		st.GetExecutorID().GetValue() != "raw" || st.GetContainerStatus().GetContainerID().GetValue() != sub.ContainerID.GetValue() {
		t.Errorf("RUNNING as the scheduler sees it: %+v", st)
	}
	// A duplicate is acknowledged again.
	if code, _ := x.call(update("t1", mesos.TASK_RUNNING, running, mesos.SOURCE_EXECUTOR)); code != http.StatusAccepted {
		t.Errorf("duplicate UPDATE: %d", code)
	}
	if ack := x.next(executor.Event_ACKNOWLEDGED).Acknowledged; !bytes.Equal(ack.UUID, running) {
		t.Errorf("duplicate acknowledged with %x", ack.UUID)
	}

	// MESSAGE both ways.
	if code, body := x.call(&executor.Call{Type: executor.Call_MESSAGE, Message: &executor.Call_Message{Data: []byte("from executor")}}); code != http.StatusAccepted {
		t.Fatalf("MESSAGE: %d %s", code, body)
	}
	if m := s.next(scheduler.Event_MESSAGE).Message; string(m.Data) != "from executor" || m.ExecutorID.Value != "raw" || m.AgentID.Value != offer.AgentID.Value {
		t.Errorf("scheduler MESSAGE: %+v", m)
	}
	s.mustCall(&scheduler.Call{Type: scheduler.Call_MESSAGE, Message: &scheduler.Call_Message{AgentID: offer.AgentID,
		ExecutorID: mesos.ExecutorID{Value: "raw"}, Data: []byte("from scheduler")}})
	if m := x.next(executor.Event_MESSAGE).Message; string(m.Data) != "from scheduler" {
		t.Errorf("executor MESSAGE: %q", m.Data)
	}
	if code, _ := x.call(&executor.Call{Type: executor.Call_HEARTBEAT}); code != http.StatusAccepted {
		t.Errorf("HEARTBEAT: %d", code)
	}

	// KILL carries the scheduler's kill policy.
	s.mustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: "t1"}, AgentID: &offer.AgentID,
		KillPolicy: &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(2 * time.Second)}}}})
	kill := x.next(executor.Event_KILL).Kill
	if kill.TaskID.Value != "t1" || kill.KillPolicy.GetGracePeriod().GetNanoseconds() != int64(2*time.Second) {
		t.Errorf("KILL: %+v", kill)
	}
	if code, body := x.call(update("t1", mesos.TASK_KILLED, uuid16(5), mesos.SOURCE_EXECUTOR)); code != http.StatusAccepted {
		t.Fatalf("UPDATE TASK_KILLED: %d %s", code, body)
	}
	s.waitState("t1", mesos.TASK_KILLED)

	// SHUTDOWN: the stand-in ignores it, so its container is destroyed
	// after the grace period and the scheduler hears the executor failed.
	s.mustCall(&scheduler.Call{Type: scheduler.Call_SHUTDOWN, Shutdown: &scheduler.Call_Shutdown{ExecutorID: mesos.ExecutorID{Value: "raw"}, AgentID: offer.AgentID}})
	x.next(executor.Event_SHUTDOWN)
	f := s.next(scheduler.Event_FAILURE).Failure
	if f.GetExecutorID().GetValue() != "raw" || f.GetAgentID().GetValue() != offer.AgentID.Value || f.GetStatus() != 9 {
		t.Errorf("FAILURE: %+v, want executor raw destroyed with SIGKILL (status 9)", f)
	}
	// It is gone for the API too.
	if code, body := x.call(&executor.Call{Type: executor.Call_HEARTBEAT}); code != http.StatusBadRequest || !strings.Contains(body, "cannot be found") {
		t.Errorf("call of a terminated executor: %d %q", code, body)
	}
}

// TestExecutorEnvironment: a custom executor gets the environment a v1
// executor needs, durations in Mesos units, in its own sandbox.
func TestExecutorEnvironment(t *testing.T) {
	c := startCluster(t, clustertest.Options{Agent: quickShutdown})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"executor-env","checkpoint":true}`)
	offer := s.offer()
	out := filepath.Join(t.TempDir(), "env")
	exec := standIn(t, "env", `env > "$OUT.tmp" && mv "$OUT.tmp" "$OUT" && exec sleep 600`)
	exec.Command.Environment = &mesos.Environment{Variables: []mesos.Environment_Variable{{Name: "OUT", Value: &out}}}
	exec.ShutdownGracePeriod = &mesos.DurationInfo{Nanoseconds: int64(3 * time.Second)}
	s.launch(offer, execTask(t, "t", offer.AgentID, exec, "cpus:0.1;mem:16"))
	waitFor(t, "the executor's environment", func() bool { _, err := os.Stat(out); return err == nil })
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	sandbox := env["MESOS_DIRECTORY"]
	if ok, _ := filepath.Match(filepath.Join(c.Agents[0].WorkDir(), "slaves", offer.AgentID.Value, "frameworks", s.id, "executors", "env", "runs", "*"), sandbox); !ok {
		t.Errorf("MESOS_DIRECTORY %q is not the executor's sandbox", sandbox)
	}
	for name, want := range map[string]string{
		"MESOS_FRAMEWORK_ID": s.id, "MESOS_EXECUTOR_ID": "env", "MESOS_SANDBOX": sandbox, "MESOS_AGENT_ENDPOINT": c.Agents[0].Addr(),
		"MESOS_SLAVE_ID": offer.AgentID.Value, "MESOS_SLAVE_PID": "slave(1)@" + c.Agents[0].Addr(), "MESOS_CHECKPOINT": "1",
		"MESOS_HTTP_COMMAND_EXECUTOR": "0", "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "3secs",
		"MESOS_RECOVERY_TIMEOUT": "15mins", "MESOS_SUBSCRIPTION_BACKOFF_MAX": "2secs",
	} {
		if env[name] != want {
			t.Errorf("%s=%q, want %q", name, env[name], want)
		}
	}
}

// TestExecutorRegistrationTimeout: an executor that never subscribes is
// destroyed and its tasks fail with REASON_EXECUTOR_REGISTRATION_TIMEOUT.
func TestExecutorRegistrationTimeout(t *testing.T) {
	c := startCluster(t, clustertest.Options{Agent: func(_ int, c *agent.Config) {
		c.ExecutorRegistrationTimeout = 500 * time.Millisecond
	}})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"registration-timeout"}`)
	offer := s.offer()
	exec := standIn(t, "mute", "sleep 600")
	s.launch(offer, execTask(t, "a", offer.AgentID, exec, "cpus:0.1;mem:16"), execTask(t, "b", offer.AgentID, exec, "cpus:0.1;mem:16"))
	for _, id := range []string{"a", "b"} {
		st := s.waitTerminal(id)
		if st.GetState() != mesos.TASK_FAILED || st.GetReason() != mesos.REASON_EXECUTOR_REGISTRATION_TIMEOUT || st.GetSource() != mesos.SOURCE_AGENT {
			t.Errorf("task %s: %s", id, describe([]mesos.TaskStatus{st}))
		}
	}
	if f := s.next(scheduler.Event_FAILURE).Failure; f.GetExecutorID().GetValue() != "mute" {
		t.Errorf("FAILURE: %+v", f)
	}
}

// TestExecutorExitFailsItsTasks: when an executor exits, its unfinished
// tasks fail with REASON_EXECUTOR_TERMINATED and the scheduler gets a
// FAILURE with the exit status.
func TestExecutorExitFailsItsTasks(t *testing.T) {
	c := startCluster(t, clustertest.Options{})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"executor-exit"}`)
	offer := s.offer()
	stop := filepath.Join(t.TempDir(), "stop")
	exec := standIn(t, "quitter", `while [ ! -f "`+stop+`" ]; do sleep 0.05; done; exit 3`)
	s.launch(offer, execTask(t, "done", offer.AgentID, exec, "cpus:0.1;mem:16"), execTask(t, "running", offer.AgentID, exec, "cpus:0.1;mem:16"))
	url := executorURL(c.Agents[0])
	awaitExecutor(t, url, s.id, "quitter")
	x := subscribeRaw(t, url, s.id, "quitter")
	x.next(executor.Event_LAUNCH)
	x.next(executor.Event_LAUNCH)
	x.call(update("done", mesos.TASK_FINISHED, uuid16(1), mesos.SOURCE_EXECUTOR))
	x.call(update("running", mesos.TASK_RUNNING, uuid16(2), mesos.SOURCE_EXECUTOR))
	s.waitState("done", mesos.TASK_FINISHED)
	s.waitState("running", mesos.TASK_RUNNING)
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st := s.waitTerminal("running")
	if st.GetState() != mesos.TASK_FAILED || st.GetReason() != mesos.REASON_EXECUTOR_TERMINATED {
		t.Errorf("running task after its executor exited: %s", describe([]mesos.TaskStatus{st}))
	}
	if f := s.next(scheduler.Event_FAILURE).Failure; f.GetExecutorID().GetValue() != "quitter" || f.GetStatus() != 3<<8 {
		t.Errorf("FAILURE: %+v, want executor quitter with wait status %d", f, 3<<8)
	}
	if n := len(s.statuses("done")); n != 1 {
		t.Errorf("finished task got %d updates: %s", n, describe(s.statuses("done")))
	}
}

// TestExecutorResourcesCountOnce: the second launch on a running executor
// takes only its task's resources, and offers list the executor.
func TestExecutorResourcesCountOnce(t *testing.T) {
	c := startCluster(t, clustertest.Options{AgentResources: "cpus:1;mem:1024;disk:100;ports:[31000-31010]", Agent: quickShutdown})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"executor-resources"}`)
	offer := s.offer()
	exec := standIn(t, "shared", "sleep 600")
	exec.Resources = resources(t, "cpus:0.5;mem:32")
	s.launch(offer, execTask(t, "first", offer.AgentID, exec, "cpus:0.25;mem:16"))
	second := s.offer()
	if len(second.ExecutorIDs) != 1 || second.ExecutorIDs[0].Value != "shared" {
		t.Fatalf("offer after the launch lists executors %v, want [shared]", second.ExecutorIDs)
	}
	if cpus := api.ScalarSum(second.Resources, "cpus"); cpus > 0.25+1e-9 {
		t.Fatalf("offer after the launch has %.2f cpus, want 0.25 (the executor's 0.5 and the task's 0.25 in use)", cpus)
	}
	// 0.25 cpus fit only if the executor is not counted again.
	s.launch(second, execTask(t, "second", offer.AgentID, exec, "cpus:0.25;mem:16"))
	awaitExecutor(t, executorURL(c.Agents[0]), s.id, "shared")
	x := subscribeRaw(t, executorURL(c.Agents[0]), s.id, "shared")
	got := map[string]bool{}
	for len(got) < 2 {
		got[x.next(executor.Event_LAUNCH).Launch.Task.TaskID.Value] = true
	}
	if !got["first"] || !got["second"] {
		t.Errorf("LAUNCH events for %v", got)
	}
	if sts := s.statuses("second"); len(sts) > 0 {
		t.Errorf("second task: %s", describe(sts))
	}
}

// TestIncompatibleExecutorInfoIsRefused: a task cannot name a running
// executor's ID with a different command.
func TestIncompatibleExecutorInfoIsRefused(t *testing.T) {
	c := startCluster(t, clustertest.Options{Agent: quickShutdown})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"executor-compat"}`)
	offer := s.offer()
	s.launch(offer, execTask(t, "first", offer.AgentID, standIn(t, "e", "sleep 600"), "cpus:0.1;mem:16"))
	second := s.offer()
	s.launch(second, execTask(t, "second", offer.AgentID, standIn(t, "e", "sleep 601"), "cpus:0.1;mem:16"))
	st := s.waitTerminal("second")
	if st.GetState() != mesos.TASK_ERROR || !strings.Contains(st.GetMessage(), "not compatible") {
		t.Errorf("second: %s", describe([]mesos.TaskStatus{st}))
	}
}

// TestMesosGoExecutorRunsTasks runs an executor written against mesos-go's
// executor library (protobuf, config from the MESOS_* environment) on the
// agent: it subscribes, runs tasks delivered at launch and later, relays
// messages, and exits on SHUTDOWN.
func TestMesosGoExecutorRunsTasks(t *testing.T) {
	c := startCluster(t, clustertest.Options{})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"mesos-go","checkpoint":true}`)
	offer := s.offer()
	self := testBinary(t)
	exec := &mesos.ExecutorInfo{Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: "mesos-go"}, Name: strp("mesos-go example"),
		Command: &mesos.CommandInfo{Value: &self, Shell: new(bool), Arguments: []string{self, "-test.run=^$"},
			Environment: &mesos.Environment{Variables: []mesos.Environment_Variable{{Name: "AGORA_TEST_ROLE", Value: strp("mesos-go-executor")}}}},
		Resources: resources(t, "cpus:0.1;mem:32")}
	var first []mesos.TaskInfo
	for _, id := range []string{"m1", "m2", "m3"} {
		first = append(first, execTask(t, id, offer.AgentID, exec, "cpus:0.1;mem:16"))
	}
	s.launch(offer, first...)
	var pid uint32
	for _, id := range []string{"m1", "m2", "m3"} {
		st := s.waitTerminal(id)
		if st.GetState() != mesos.TASK_FINISHED || st.GetSource() != mesos.SOURCE_EXECUTOR || st.GetExecutorID().GetValue() != "mesos-go" ||
			st.Timestamp == nil || st.GetAgentID().GetValue() != offer.AgentID.Value {
			t.Fatalf("task %s: %+v", id, st)
		}
		if p := st.GetContainerStatus().GetExecutorPID(); pid == 0 {
			pid = p
		} else if p != pid {
			t.Errorf("task %s ran in executor pid %d, others in %d", id, p, pid)
		}
	}
	// Later tasks go to the running executor.
	second := s.offer()
	if len(second.ExecutorIDs) == 0 || second.ExecutorIDs[0].Value != "mesos-go" {
		t.Errorf("offer lists executors %v, want mesos-go", second.ExecutorIDs)
	}
	s.launch(second, execTask(t, "m4", offer.AgentID, exec, "cpus:0.1;mem:16"))
	if st := s.waitTerminal("m4"); st.GetState() != mesos.TASK_FINISHED || st.GetContainerStatus().GetExecutorPID() != pid {
		t.Errorf("m4: %+v", st)
	}
	s.mustCall(&scheduler.Call{Type: scheduler.Call_MESSAGE, Message: &scheduler.Call_Message{AgentID: offer.AgentID,
		ExecutorID: mesos.ExecutorID{Value: "mesos-go"}, Data: []byte("ping")}})
	if m := s.next(scheduler.Event_MESSAGE).Message; string(m.Data) != "mesos-go: ping" {
		t.Errorf("message from the executor: %q", m.Data)
	}
	s.mustCall(&scheduler.Call{Type: scheduler.Call_SHUTDOWN, Shutdown: &scheduler.Call_Shutdown{ExecutorID: mesos.ExecutorID{Value: "mesos-go"}, AgentID: offer.AgentID}})
	if f := s.next(scheduler.Event_FAILURE).Failure; f.GetExecutorID().GetValue() != "mesos-go" || f.GetStatus() != 0 {
		t.Errorf("FAILURE after SHUTDOWN: %+v, want a clean exit", f)
	}
	// Its sandbox follows Mesos's layout and holds its output.
	logs, _ := filepath.Glob(filepath.Join(c.Agents[0].WorkDir(), "slaves", offer.AgentID.Value, "frameworks", s.id, "executors", "mesos-go", "runs", "*-*", "stderr"))
	if len(logs) != 1 {
		t.Fatalf("executor sandboxes: %v", logs)
	}
	if b, _ := os.ReadFile(logs[0]); !strings.Contains(string(b), "SUBSCRIBED to agent "+offer.AgentID.Value) || !strings.Contains(string(b), "SHUTDOWN") {
		t.Errorf("executor log:\n%s", b)
	}
}

// TestTaskGroupOneFailureKillsTheOthers: a group of three on the default
// executor where one task exits 1: it fails, the other two are killed.
func TestTaskGroupOneFailureKillsTheOthers(t *testing.T) {
	c := startCluster(t, clustertest.Options{})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"group"}`)
	offer := s.offer()
	started := t.TempDir()
	exec := mesos.ExecutorInfo{Type: mesos.ExecutorInfo_DEFAULT, ExecutorID: mesos.ExecutorID{Value: "pod"},
		Resources: resources(t, "cpus:0.1;mem:32;disk:5")}
	// The failing task waits until its siblings run, so the group's kill
	// is what ends them.
	fail := `touch "` + started + `/$MESOS_TASK_ID"; while [ ! -f "` + started + `/g1" ] || [ ! -f "` + started + `/g2" ]; do sleep 0.05; done; exit 1`
	sleeper := `touch "` + started + `/$MESOS_TASK_ID"; exec sleep 600`
	s.launchGroup(offer, exec,
		shellTask(t, "g1", offer.AgentID, sleeper, "cpus:0.1;mem:16"),
		shellTask(t, "g2", offer.AgentID, sleeper, "cpus:0.1;mem:16"),
		shellTask(t, "g3", offer.AgentID, fail, "cpus:0.1;mem:16"))
	for _, id := range []string{"g1", "g2", "g3"} {
		st := s.waitTerminal(id)
		want := mesos.TASK_KILLED
		if id == "g3" {
			want = mesos.TASK_FAILED
		}
		if st.GetState() != want {
			t.Errorf("%s ended %s, want %s", id, describe([]mesos.TaskStatus{st}), want)
		}
		var states []mesos.TaskState
		for _, st := range s.statuses(id) {
			states = append(states, st.GetState())
			if st.GetExecutorID().GetValue() != "pod" {
				t.Errorf("%s: update names executor %q", id, st.GetExecutorID().GetValue())
			}
		}
		if len(states) != 3 || states[0] != mesos.TASK_STARTING || states[1] != mesos.TASK_RUNNING {
			t.Errorf("%s: updates %s, want STARTING, RUNNING, %s", id, describe(s.statuses(id)), want)
		}
	}
	if st := s.statuses("g3"); !strings.Contains(st[len(st)-1].GetMessage(), "exited with status 1") {
		t.Errorf("g3 message %q", st[len(st)-1].GetMessage())
	}
	// With no tasks left the executor is done.
	if f := s.next(scheduler.Event_FAILURE).Failure; f.GetExecutorID().GetValue() != "pod" {
		t.Errorf("FAILURE: %+v", f)
	}
	// Each task had its own sandbox under the executor's.
	for _, id := range []string{"g1", "g2", "g3"} {
		dirs, _ := filepath.Glob(filepath.Join(c.Agents[0].WorkDir(), "slaves", offer.AgentID.Value, "frameworks", s.id, "executors", "pod", "runs", "*-*", "tasks", id))
		if len(dirs) != 1 {
			t.Errorf("sandbox of %s: %v", id, dirs)
		}
	}
}

// TestTaskGroupsOverTime: one default executor takes a second group while
// the first runs; killing a task of the first group kills that group only.
func TestTaskGroupsOverTime(t *testing.T) {
	c := startCluster(t, clustertest.Options{})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"groups"}`)
	offer := s.offer()
	exec := mesos.ExecutorInfo{Type: mesos.ExecutorInfo_DEFAULT, ExecutorID: mesos.ExecutorID{Value: "pod"},
		Resources: resources(t, "cpus:0.1;mem:32")}
	s.launchGroup(offer, exec,
		shellTask(t, "a1", offer.AgentID, "sleep 600", "cpus:0.1;mem:16"),
		shellTask(t, "a2", offer.AgentID, "sleep 600", "cpus:0.1;mem:16"))
	s.waitState("a1", mesos.TASK_RUNNING)
	s.waitState("a2", mesos.TASK_RUNNING)
	// The agent's /state lists both tasks under the executor.
	var state struct {
		Frameworks []struct {
			Executors []struct {
				ID    string `json:"id"`
				Type  string `json:"type"`
				Tasks []struct {
					ID    string `json:"id"`
					State string `json:"state"`
				} `json:"tasks"`
			} `json:"executors"`
		} `json:"frameworks"`
	}
	resp, err := http.Get("http://" + c.Agents[0].Addr() + "/state")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&state)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(state.Frameworks) != 1 || len(state.Frameworks[0].Executors) != 1 || state.Frameworks[0].Executors[0].ID != "pod" ||
		state.Frameworks[0].Executors[0].Type != "DEFAULT" || len(state.Frameworks[0].Executors[0].Tasks) != 2 {
		t.Errorf("agent /state: %+v", state)
	}
	second := s.offer()
	if len(second.ExecutorIDs) != 1 || second.ExecutorIDs[0].Value != "pod" {
		t.Errorf("offer lists executors %v, want [pod]", second.ExecutorIDs)
	}
	s.launchGroup(second, exec,
		shellTask(t, "b1", offer.AgentID, "sleep 0.2", "cpus:0.1;mem:16"),
		shellTask(t, "b2", offer.AgentID, "sleep 0.2", "cpus:0.1;mem:16"))
	s.waitState("b1", mesos.TASK_FINISHED)
	s.waitState("b2", mesos.TASK_FINISHED)
	if a := s.statuses("a1"); terminal(a[len(a)-1].GetState()) {
		t.Fatalf("a1 ended with the other group: %s", describe(a))
	}
	s.mustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: "a1"}, AgentID: &offer.AgentID}})
	s.waitState("a1", mesos.TASK_KILLED)
	s.waitState("a2", mesos.TASK_KILLED)
	if f := s.next(scheduler.Event_FAILURE).Failure; f.GetExecutorID().GetValue() != "pod" || f.GetStatus() != 0 {
		t.Errorf("FAILURE: %+v", f)
	}
}

// startCluster starts a test cluster that is stopped before the test's
// temporary directories are removed (clustertest registers its Stop before
// the agents' TempDirs, so their removal could race the running agents).
func startCluster(t *testing.T, opts clustertest.Options) *clustertest.Cluster {
	t.Helper()
	c := clustertest.Start(t, opts)
	t.Cleanup(c.Stop)
	return c
}

// awaitExecutor waits until the agent has launched an executor (and it
// has not subscribed yet): its calls are then refused with 403.
func awaitExecutor(t *testing.T, url, fw, id string) {
	t.Helper()
	waitFor(t, "executor "+id+" to be launched", func() bool {
		code, _ := post(t, url, api.MediaJSON, "", mustJSON(&executor.Call{Type: executor.Call_HEARTBEAT,
			FrameworkID: mesos.FrameworkID{Value: fw}, ExecutorID: mesos.ExecutorID{Value: id}}))
		return code == http.StatusForbidden
	})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMesosGoExampleExecutorBinary runs mesos-go's own example-executor
// (api/v1/cmd/example-executor, v0.0.11), built unchanged from the module:
// it subscribes over protobuf and runs tasks sent to it.
func TestMesosGoExampleExecutorBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "example-executor")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/mesos/mesos-go/api/v1/cmd/example-executor").CombinedOutput(); err != nil {
		t.Fatalf("build mesos-go's example-executor: %v\n%s", err, out)
	}
	c := startCluster(t, clustertest.Options{})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"example","checkpoint":true}`)
	offer := s.offer()
	ex := &mesos.ExecutorInfo{Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: "example"}, Name: strp("Test Executor"),
		Command: &mesos.CommandInfo{Value: &bin, Shell: new(bool), Arguments: []string{bin}}, Resources: resources(t, "cpus:0.1;mem:64")}
	s.launch(offer, execTask(t, "e1", offer.AgentID, ex, "cpus:0.1;mem:16"), execTask(t, "e2", offer.AgentID, ex, "cpus:0.1;mem:16"))
	for _, id := range []string{"e1", "e2"} {
		if st := s.waitTerminal(id); st.GetState() != mesos.TASK_FINISHED || st.GetSource() != mesos.SOURCE_EXECUTOR {
			t.Fatalf("task %s on mesos-go's example-executor: %v %v %q", id, st.GetState(), st.GetSource(), st.GetMessage())
		}
	}
}
