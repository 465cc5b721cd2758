package master_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/registry"
)

// wireAgent is an agent driven by hand over the master's agent endpoint,
// for orders of events a real agent produces only under load.
type wireAgent struct {
	t      *testing.T
	url    string
	id     string
	stream io.Closer
	events *clustertest.Queue[*api.AgentEvent]
}

// register (re-)registers the agent, reporting tasks, and reads its new
// stream in the background (answering PINGs); the old stream is closed.
func (w *wireAgent) register(tasks ...*mesos.Task) {
	w.t.Helper()
	if w.stream != nil {
		w.stream.Close()
	}
	port := int32(5051)
	info := &mesos.AgentInfo{Hostname: "resend-agent", Port: &port, Resources: []mesos.Resource{
		{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 4}},
		{Name: "mem", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 4096}},
	}}
	if w.id != "" {
		info.ID = &mesos.AgentID{Value: w.id}
	}
	body, err := api.JSON.MarshalAgent(&api.AgentCall{Type: api.AgentRegister, AgentID: w.id,
		Register: &api.RegisterAgent{Info: info, Version: api.Version, Tasks: tasks}})
	if err != nil {
		w.t.Fatal(err)
	}
	resp := postAgentCall(w.t, w.url, api.MediaJSON, api.MediaJSON, body)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		w.t.Fatalf("register: %s %s", resp.Status, b)
	}
	w.stream = resp.Body
	w.t.Cleanup(func() { resp.Body.Close() })
	records := api.NewRecordReader(resp.Body)
	next := func() (*api.AgentEvent, error) {
		rec, err := records.ReadRecord()
		if err != nil {
			return nil, err
		}
		return api.DecodeAgentEvent(api.JSON, rec)
	}
	ev, err := next()
	if err != nil || ev.Type != api.AgentRegistered || ev.Registered == nil {
		w.t.Fatalf("register: first event %+v (%v), want REGISTERED", ev, err)
	}
	w.id = ev.Registered.AgentID
	id := w.id
	q := clustertest.NewQueue[*api.AgentEvent](w.t)
	w.events = q
	go func() {
		for {
			ev, err := next()
			if err != nil {
				return
			}
			if ev.Type == api.AgentPing && ev.Ping != nil {
				w.call(&api.AgentCall{Type: api.AgentPong, AgentID: id, Pong: &api.Pong{Seq: ev.Ping.Seq}})
				continue
			}
			q.Put(ev)
		}
	}()
}

// call posts an agent call; its answer means the master has handled it.
func (w *wireAgent) call(c *api.AgentCall) int {
	body, err := api.JSON.MarshalAgent(c)
	if err != nil {
		return 0
	}
	req, _ := http.NewRequest(http.MethodPost, w.url+api.AgentPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", api.MediaJSON)
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// send posts one status update, which the master must take.
func (w *wireAgent) send(fid string, st mesos.TaskStatus) {
	w.t.Helper()
	st.AgentID = &mesos.AgentID{Value: w.id}
	st.Source = mesos.SOURCE_EXECUTOR.Enum()
	if code := w.call(&api.AgentCall{Type: api.AgentStatusUpdate, AgentID: w.id,
		Updates: []*api.StatusUpdate{{FrameworkID: fid, Status: &st, LatestState: st.State}}}); code/100 != 2 {
		w.t.Fatalf("STATUS_UPDATE of %s: HTTP %d", st.TaskID.Value, code)
	}
}

// next returns the next event of type typ, passing over others (and
// listing the RECONCILE_TASKS among them in asked).
func (w *wireAgent) next(typ api.AgentEventType, asked *[]string) *api.AgentEvent {
	w.t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case ev := <-w.events.C():
			if ev.Type == api.AgentReconcileTasks && ev.ReconcileTasks != nil && asked != nil {
				*asked = append(*asked, ev.ReconcileTasks.TaskIDs...)
			}
			if ev.Type == typ {
				return ev
			}
		case <-timeout:
			w.t.Fatalf("agent: no %s event within a minute", typ)
		}
	}
}

// TestResubscribedFrameworkGetsAMissedUpdateOnce: a task ends while its
// framework is away; the framework re-subscribes. If the agent's copy of
// the update came while the framework was away, the master asks the
// agent for it again (else it would come only after the agent's retry
// backoff). If the agent re-registered meanwhile, the copy every agent
// sends of its pending updates once registered may come after the
// framework is back — it reaches the framework, and the master must not
// ask for a second one, which would deliver the update twice (seen under
// load as TestTaskEndingWhileMasterIsDown's "the task's update came
// again").
func TestResubscribedFrameworkGetsAMissedUpdateOnce(t *testing.T) {
	url := startBareMaster(t, registry.NewMemory())
	w := &wireAgent{t: t, url: url}
	w.register()
	const fi = `{"user":"root","name":"resend","failover_timeout":3600,"capabilities":[{"type":"PARTITION_AWARE"}]`
	s := clustertest.SubscribeTo(t, url, fi+`}`)
	fid := s.ID
	uuid := func(s string) []byte { return []byte(s + "-0123456789abcdef")[:16] }

	// launch starts a task on the agent and has the framework see it run.
	launch := func(s *clustertest.Scheduler, id string) {
		t.Helper()
		s.DeclineSkipped() // offers passed over while waiting for updates
		offer := s.Offer()
		s.Launch(offer, cmdTask(id, offer.AgentID, "cpus:0.1;mem:16"))
		if rt := w.next(api.AgentRunTask, nil); rt.RunTask.Task.TaskID.Value != id {
			t.Fatalf("RUN_TASK of %s, want %s", rt.RunTask.Task.TaskID.Value, id)
		}
		w.send(fid, mesos.TaskStatus{TaskID: mesos.TaskID{Value: id}, State: mesos.TASK_RUNNING.Enum(), UUID: uuid(id + "-run")})
		s.Until(id, mesos.TASK_RUNNING)
	}
	// back re-subscribes the framework. The agent then sends copies of
	// the ended task's update (its copy sent once registered, late), and
	// another for each request to resend the task's update that came
	// before the framework's message, which the framework sends once
	// subscribed.
	back := func(task string, finished mesos.TaskStatus, copies int) (*clustertest.Scheduler, []string) {
		t.Helper()
		s := clustertest.SubscribeTo(t, url, fi+`,"id":{"value":"`+fid+`"}}`)
		s.MustCall(&scheduler.Call{Type: scheduler.Call_MESSAGE, Message: &scheduler.Call_Message{
			AgentID: mesos.AgentID{Value: w.id}, ExecutorID: mesos.ExecutorID{Value: task}, Data: []byte("after-subscribe")}})
		var asked []string
		w.next(api.AgentFrameworkMessage, &asked)
		for i := 0; i < copies; i++ {
			w.send(fid, finished)
		}
		for _, id := range asked {
			if id == task {
				w.send(fid, finished) // as a real agent answers
			}
		}
		return s, asked
	}
	// once checks the framework gets the update, and only once: events
	// come in order, so a second copy would come before the answer to a
	// reconciliation asked after the first.
	once := func(s *clustertest.Scheduler, finished mesos.TaskStatus) {
		t.Helper()
		id := finished.TaskID.Value
		if st := s.Update(id); st.GetState() != mesos.TASK_FINISHED || !bytes.Equal(st.UUID, finished.UUID) {
			t.Fatalf("%s after re-subscribing: %v (%v %q), want the agent's TASK_FINISHED", id, st.GetState(), st.GetReason(), st.GetMessage())
		}
		s.MustCall(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{
			Tasks: []scheduler.Call_Reconcile_Task{{TaskID: mesos.TaskID{Value: id}}}}})
		if st := s.Update(id); st.GetReason() != mesos.REASON_RECONCILIATION {
			t.Fatalf("%s: the update came again (%v %v), want only the reconciliation answer", id, st.GetState(), st.GetSource())
		}
	}

	// The agent stays registered: its copy came while the framework was
	// away and went nowhere, so the master asks for another.
	launch(s, "stays")
	s.Close()
	endA := mesos.TaskStatus{TaskID: mesos.TaskID{Value: "stays"}, State: mesos.TASK_FINISHED.Enum(), UUID: uuid("stays-end")}
	w.send(fid, endA)
	s2, asked := back("stays", endA, 0)
	if len(asked) != 1 || asked[0] != "stays" {
		t.Fatalf("the master asked the agent to resend %v, want [stays]: the framework would wait for the agent's retry", asked)
	}
	once(s2, endA)

	// The agent re-registers while the framework is away, and its copy
	// sent once registered comes only after the framework is back.
	launch(s2, "rejoins")
	s2.Close()
	endB := mesos.TaskStatus{TaskID: mesos.TaskID{Value: "rejoins"}, State: mesos.TASK_FINISHED.Enum(), UUID: uuid("rejoins-end")}
	w.send(fid, endB)
	finished := mesos.TASK_FINISHED
	w.register(&mesos.Task{Name: "rejoins", TaskID: endB.TaskID, FrameworkID: mesos.FrameworkID{Value: fid},
		AgentID: mesos.AgentID{Value: w.id}, State: &finished, StatusUpdateState: &finished, StatusUpdateUUID: endB.UUID,
		Statuses: []mesos.TaskStatus{endB}})
	s3, _ := back("rejoins", endB, 1)
	once(s3, endB)
}
