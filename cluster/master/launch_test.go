package master_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

func cmdTask(id string, agent mesos.AgentID, res string) mesos.TaskInfo {
	rs, err := api.ParseResources(res)
	if err != nil {
		panic(err)
	}
	return mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: agent,
		Command: &mesos.CommandInfo{Value: strPtr("true")}, Resources: rs}
}

func launch(offers []mesos.OfferID, tasks ...mesos.TaskInfo) *scheduler.Call {
	return &scheduler.Call{Type: scheduler.Call_ACCEPT, Accept: &scheduler.Call_Accept{OfferIDs: offers,
		Operations: []mesos.Offer_Operation{{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{TaskInfos: tasks}}}}}
}

func TestLaunchValidation(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{AgentResources: "cpus:2;mem:1024;disk:100;ports:[31000-31010]"})
	s := clustertest.SubscribeTo(t, c.MasterURL, `{"user":"root","name":"validation"}`)
	offer := s.Next(scheduler.Event_OFFERS).Offers.Offers[0]
	agent := offer.AgentID

	tooBig := cmdTask("too-big", agent, "cpus:3;mem:32")
	good := cmdTask("good", agent, "cpus:0.5;mem:32;ports:[31005-31006]")
	dup := cmdTask("good", agent, "cpus:0.1;mem:32")
	noRes := cmdTask("no-resources", agent, "")
	badPorts := cmdTask("bad-ports", agent, "cpus:0.1;ports:[40000-40000]")
	wrongAgent := cmdTask("wrong-agent", mesos.AgentID{Value: "elsewhere"}, "cpus:0.1")
	slash := cmdTask("a/b", agent, "cpus:0.1")
	both := cmdTask("two-kinds", agent, "cpus:0.1")
	both.Executor = &mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: "e"}, Command: &mesos.CommandInfo{Value: strPtr("x")}}
	if code := s.Call(launch([]mesos.OfferID{offer.ID}, tooBig, good, dup, noRes, badPorts, wrongAgent, slash, both)); code != 202 {
		t.Fatalf("ACCEPT: %d", code)
	}
	want := map[string]string{
		"too-big": "more resources than offered", "no-resources": "no resources", "bad-ports": "ports",
		"wrong-agent": "names agent", "a/b": "'/'", "two-kinds": "exactly one",
	}
	gotGood := false
	for len(want) > 0 || !gotGood {
		st := s.Next(scheduler.Event_UPDATE).Update.Status
		id := st.TaskID.Value
		if id == "good" && st.GetState() == mesos.TASK_ERROR {
			if !strings.Contains(st.GetMessage(), "more than once") {
				t.Fatalf("duplicate task ID: message %q", st.GetMessage())
			}
			continue
		}
		if id == "good" {
			if len(st.UUID) > 0 {
				s.Call(&scheduler.Call{Type: scheduler.Call_ACKNOWLEDGE, Acknowledge: &scheduler.Call_Acknowledge{AgentID: *st.AgentID, TaskID: st.TaskID, UUID: st.UUID}})
			}
			if st.GetState() == mesos.TASK_FINISHED {
				gotGood = true
			}
			continue
		}
		frag, ok := want[id]
		if !ok {
			t.Fatalf("unexpected update %v for %s: %s", st.GetState(), id, st.GetMessage())
		}
		if st.GetState() != mesos.TASK_ERROR || st.GetReason() != mesos.REASON_TASK_INVALID || st.GetSource() != mesos.SOURCE_MASTER || len(st.UUID) != 0 {
			t.Fatalf("%s: %v %v %v uuid=%x, want TASK_ERROR REASON_TASK_INVALID from the master without uuid", id, st.GetState(), st.GetReason(), st.GetSource(), st.UUID)
		}
		if !strings.Contains(st.GetMessage(), frag) {
			t.Fatalf("%s: message %q does not mention %q", id, st.GetMessage(), frag)
		}
		delete(want, id)
	}

	// The used offer is gone: accepting it again drops the task with
	// REASON_INVALID_OFFERS (TASK_LOST for a framework that is not
	// partition-aware).
	if code := s.Call(launch([]mesos.OfferID{offer.ID}, cmdTask("late", agent, "cpus:0.1"))); code != 202 {
		t.Fatalf("ACCEPT of a used offer: %d", code)
	}
	st := s.Update("late")
	if st.GetState() != mesos.TASK_LOST || st.GetReason() != mesos.REASON_INVALID_OFFERS || !strings.Contains(st.GetMessage(), "no longer valid") {
		t.Fatalf("late: %v %v %q", st.GetState(), st.GetReason(), st.GetMessage())
	}
	if code := s.Call(launch([]mesos.OfferID{{Value: "no-such-offer"}}, cmdTask("unknown", agent, "cpus:0.1"))); code != 202 {
		t.Fatalf("ACCEPT of an unknown offer: %d", code)
	}
	if st := s.Update("unknown"); st.GetState() != mesos.TASK_LOST || st.GetReason() != mesos.REASON_INVALID_OFFERS {
		t.Fatalf("unknown offer: %v %v", st.GetState(), st.GetReason())
	}
}

// TestPartitionAwareFrameworkGetsDropped checks the capability mapping of
// invalid-offer drops.
func TestPartitionAwareFrameworkGetsDropped(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	s := clustertest.SubscribeTo(t, c.MasterURL, `{"user":"root","name":"pa","capabilities":[{"type":"PARTITION_AWARE"}]}`)
	offer := s.Next(scheduler.Event_OFFERS).Offers.Offers[0]
	s.Call(launch([]mesos.OfferID{{Value: "gone"}}, cmdTask("t", offer.AgentID, "cpus:0.1")))
	if st := s.Update("t"); st.GetState() != mesos.TASK_DROPPED {
		t.Fatalf("state %v, want TASK_DROPPED", st.GetState())
	}
}

// TestStaleAgentIDIsRefused registers an agent under an ID the master
// never admitted: 409 with a reason, and nothing changes.
func TestStaleAgentIDIsRefused(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	body := `{"type":"REGISTER","register":{"info":{"hostname":"h","id":{"value":"stale-id"},"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":1}}]},"version":"x"}}`
	resp, err := http.Post(c.MasterURL+api.AgentPath, api.MediaJSON, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(b), "stale-id") || !strings.Contains(string(b), "unknown") {
		t.Fatalf("stale agent ID: %d %s", resp.StatusCode, b)
	}
	s, err := c.State()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Slaves) != 1 {
		t.Fatalf("agents after a refused registration: %d", len(s.Slaves))
	}
}

func TestUpdateFramework(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	s := clustertest.SubscribeTo(t, c.MasterURL, `{"user":"root","name":"before"}`)
	s.Next(scheduler.Event_OFFERS)
	upd := func(fi mesos.FrameworkInfo) int {
		return s.Call(&scheduler.Call{Type: scheduler.Call_UPDATE_FRAMEWORK, UpdateFramework: &scheduler.Call_UpdateFramework{FrameworkInfo: fi}})
	}
	fi := mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: s.ID}, User: "root", Name: "after", Role: strPtr("analytics")}
	if code := upd(fi); code != 200 {
		t.Fatalf("UPDATE_FRAMEWORK: %d", code)
	}
	// The old offer (role *) is rescinded; new offers come for the new role.
	s.Next(scheduler.Event_RESCIND)
	c.WaitFor("renamed framework", func(st *clustertest.State) bool {
		return len(st.Frameworks) == 1 && st.Frameworks[0].Name == "after"
	})
	bad := fi
	bad.User = "someone-else"
	if code := upd(bad); code != 400 {
		t.Fatalf("changing the user: %d, want 400", code)
	}
}
