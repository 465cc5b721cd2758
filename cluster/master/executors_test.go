package master_test

import (
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

func launchGroup(offers []mesos.OfferID, exec mesos.ExecutorInfo, tasks ...mesos.TaskInfo) mesos.Offer_Operation {
	return mesos.Offer_Operation{Type: mesos.Offer_Operation_LAUNCH_GROUP, LaunchGroup: &mesos.Offer_Operation_LaunchGroup{
		Executor: exec, TaskGroup: mesos.TaskGroupInfo{Tasks: tasks}}}
}

// TestLaunchGroupValidation: an invalid task group is refused as a whole
// (TASK_ERROR, REASON_TASK_GROUP_INVALID, from the master, for each task),
// and a valid group in the same ACCEPT still runs.
func TestLaunchGroupValidation(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{AgentResources: "cpus:2;mem:1024;disk:100;ports:[31000-31010]"})
	t.Cleanup(c.Stop)
	s := clustertest.SubscribeTo(t, c.MasterURL, `{"user":"root","name":"groups"}`)
	offer := s.Next(scheduler.Event_OFFERS).Offers.Offers[0]
	agent := offer.AgentID
	rs := func(text string) []mesos.Resource {
		r, err := api.ParseResources(text)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	def := func(id string) mesos.ExecutorInfo {
		return mesos.ExecutorInfo{Type: mesos.ExecutorInfo_DEFAULT, ExecutorID: mesos.ExecutorID{Value: id}, Resources: rs("cpus:0.1;mem:32")}
	}
	withExec := cmdTask("own-executor", agent, "cpus:0.1;mem:32")
	withExec.Executor = &mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: "x"}, Command: &mesos.CommandInfo{Value: strPtr("x")}}
	custom := def("custom")
	custom.Type = mesos.ExecutorInfo_CUSTOM
	custom.Command = &mesos.CommandInfo{Value: strPtr("x")}
	noRes := def("no-resources")
	noRes.Resources = nil
	ops := []mesos.Offer_Operation{
		launchGroup(nil, def("e1"), cmdTask("plain-1", agent, "cpus:0.1;mem:32"), withExec),
		launchGroup(nil, custom, cmdTask("custom-1", agent, "cpus:0.1;mem:32")),
		launchGroup(nil, noRes, cmdTask("no-res-1", agent, "cpus:0.1;mem:32")),
		launchGroup(nil, def("e2"), cmdTask("dup", agent, "cpus:0.1;mem:32"), cmdTask("dup", agent, "cpus:0.1;mem:32")),
		launchGroup(nil, def("e3"), cmdTask("huge-1", agent, "cpus:0.1;mem:32"), cmdTask("huge-2", agent, "cpus:5;mem:32")),
		launchGroup(nil, def("good"), cmdTask("good-1", agent, "cpus:0.1;mem:32"), cmdTask("good-2", agent, "cpus:0.1;mem:32")),
	}
	if code := s.Call(&scheduler.Call{Type: scheduler.Call_ACCEPT, Accept: &scheduler.Call_Accept{OfferIDs: []mesos.OfferID{offer.ID}, Operations: ops}}); code != 202 {
		t.Fatalf("ACCEPT: %d", code)
	}
	want := map[string]string{
		"plain-1": "must not have an executor", "own-executor": "must not have an executor", "custom-1": "DEFAULT", "no-res-1": "no resources",
		"dup": "more than once", "huge-1": "more resources than offered", "huge-2": "more resources than offered",
	}
	finished := map[string]bool{}
	errored := map[string]int{}
	for len(finished) < 2 || len(errored) < len(want) {
		st := s.Next(scheduler.Event_UPDATE).Update.Status
		id := st.TaskID.Value
		if len(st.UUID) > 0 {
			s.Call(&scheduler.Call{Type: scheduler.Call_ACKNOWLEDGE, Acknowledge: &scheduler.Call_Acknowledge{AgentID: *st.AgentID, TaskID: st.TaskID, UUID: st.UUID}})
		}
		if strings.HasPrefix(id, "good-") {
			if st.GetExecutorID().GetValue() != "good" {
				t.Errorf("%s: update names executor %q", id, st.GetExecutorID().GetValue())
			}
			switch st.GetState() {
			case mesos.TASK_STARTING, mesos.TASK_RUNNING:
			case mesos.TASK_FINISHED:
				finished[id] = true
			default:
				t.Fatalf("%s: %v %s", id, st.GetState(), st.GetMessage())
			}
			continue
		}
		frag, ok := want[id]
		if !ok {
			t.Fatalf("unexpected update %v for %s: %s", st.GetState(), id, st.GetMessage())
		}
		if st.GetState() != mesos.TASK_ERROR || st.GetReason() != mesos.REASON_TASK_GROUP_INVALID || st.GetSource() != mesos.SOURCE_MASTER {
			t.Errorf("%s: %v %v %v, want TASK_ERROR REASON_TASK_GROUP_INVALID from the master", id, st.GetState(), st.GetReason(), st.GetSource())
		}
		if !strings.Contains(st.GetMessage(), frag) {
			t.Errorf("%s: message %q does not mention %q", id, st.GetMessage(), frag)
		}
		errored[id]++
	}
	// Both tasks named "dup" were refused.
	if errored["dup"] != 2 {
		for errored["dup"] < 2 {
			st := s.Next(scheduler.Event_UPDATE).Update.Status
			if st.TaskID.Value == "dup" {
				errored["dup"]++
			}
		}
	}
}
