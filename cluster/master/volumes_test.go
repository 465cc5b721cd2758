package master_test

import (
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

func findVolume(o mesos.Offer, id string) *mesos.Resource {
	for i := range o.Resources {
		if p := o.Resources[i].GetDisk().GetPersistence(); p != nil && p.ID == id {
			return &o.Resources[i]
		}
	}
	return nil
}

// TestPersistentVolume: a volume created by a framework of role "vol" keeps
// what one task wrote for the next task of the role, is never offered to
// another role, and survives an agent restart.
func TestPersistentVolume(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{AgentResources: "cpus:2;mem:1024;disk:100;disk(vol):200"})
	s := newRawScheduler(t, c.MasterURL, `{"user":"root","name":"vol","role":"vol"}`)
	offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	role := "vol"
	volume := mesos.Resource{Name: "disk", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 50},
		Reservations: []mesos.Resource_ReservationInfo{{Type: mesos.Resource_ReservationInfo_STATIC.Enum(), Role: &role}},
		Disk: &mesos.Resource_DiskInfo{Persistence: &mesos.Resource_DiskInfo_Persistence{ID: "data"},
			Volume: &mesos.Volume{ContainerPath: "data", Mode: mesos.RW.Enum()}}}
	writer := cmdTask("writer", offer.AgentID, "cpus:0.1;mem:16")
	writer.Command = &mesos.CommandInfo{Value: strPtr("echo hello > data/file")}
	writer.Resources = append(writer.Resources, volume)
	acc := launch([]mesos.OfferID{offer.ID}, writer)
	acc.Accept.Operations = append([]mesos.Offer_Operation{{Type: mesos.Offer_Operation_CREATE,
		Create: &mesos.Offer_Operation_Create{Volumes: []mesos.Resource{volume}}}}, acc.Accept.Operations...)
	zero := 0.0
	acc.Accept.Filters = &mesos.Filters{RefuseSeconds: &zero}
	s.call(acc)
	if st := finalState(t, s, "writer"); st.GetState() != mesos.TASK_FINISHED {
		t.Fatalf("writer: %v %s", st.GetState(), st.GetMessage())
	}

	readIt := func(id string) {
		t.Helper()
		var o mesos.Offer
		for {
			o = s.next(scheduler.Event_OFFERS).Offers.Offers[0]
			if findVolume(o, "data") != nil {
				break
			}
			s.call(&scheduler.Call{Type: scheduler.Call_DECLINE, Decline: &scheduler.Call_Decline{OfferIDs: []mesos.OfferID{o.ID}, Filters: &mesos.Filters{RefuseSeconds: &zero}}})
		}
		reader := cmdTask(id, o.AgentID, "cpus:0.1;mem:16")
		reader.Command = &mesos.CommandInfo{Value: strPtr(`test "$(cat data/file)" = hello`)}
		reader.Resources = append(reader.Resources, *findVolume(o, "data"))
		acc := launch([]mesos.OfferID{o.ID}, reader)
		acc.Accept.Filters = &mesos.Filters{RefuseSeconds: &zero}
		s.call(acc)
		if st := finalState(t, s, id); st.GetState() != mesos.TASK_FINISHED {
			t.Fatalf("%s did not read what the writer left: %v %s", id, st.GetState(), st.GetMessage())
		}
	}
	s.call(&scheduler.Call{Type: scheduler.Call_REVIVE, Revive: &scheduler.Call_Revive{}})
	readIt("reader-1")

	c.Agents[0].Stop()
	c.StartAgent(0, "")
	s.call(&scheduler.Call{Type: scheduler.Call_REVIVE, Revive: &scheduler.Call_Revive{}})
	readIt("reader-after-restart")

	// Another role never sees the volume, nor vol's reserved disk.
	s.call(&scheduler.Call{Type: scheduler.Call_SUPPRESS, Suppress: &scheduler.Call_Suppress{}})
	// Another role never sees the volume.
	other := newRawScheduler(t, c.MasterURL, `{"user":"root","name":"other","role":"other"}`)
	o := other.next(scheduler.Event_OFFERS).Offers.Offers[0]
	if findVolume(o, "data") != nil || api.ScalarSum(mesos.Resources(o.Resources), "disk") > 100 {
		t.Fatalf("role other was offered the volume or vol's reserved disk: %v", mesos.Resources(o.Resources))
	}

}

// finalState acknowledges a task's updates until a terminal one.
func finalState(t *testing.T, s *rawScheduler, id string) mesos.TaskStatus {
	t.Helper()
	for {
		st := s.update(id)
		switch st.GetState() {
		case mesos.TASK_STAGING, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_KILLING:
			continue
		}
		return st
	}
}
