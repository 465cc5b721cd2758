package master_test

import (
	"os"
	"path/filepath"
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
	s := clustertest.SubscribeTo(t, c.MasterURL, `{"user":"root","name":"vol","role":"vol"}`)
	offer := s.Next(scheduler.Event_OFFERS).Offers.Offers[0]
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
	s.Call(acc)
	if st := finalState(t, s, "writer"); st.GetState() != mesos.TASK_FINISHED {
		t.Fatalf("writer: %v %s", st.GetState(), st.GetMessage())
	}

	readIt := func(id string) {
		t.Helper()
		var o mesos.Offer
	retry:
		for {
			// An offer made while the test waited for the last task's
			// updates (under load it can come before them) is held
			// until declined, and with it the agent's resources.
			s.DeclineSkipped()
			o = s.Next(scheduler.Event_OFFERS).Offers.Offers[0]
			if findVolume(o, "data") != nil {
				break
			}
			s.Call(&scheduler.Call{Type: scheduler.Call_DECLINE, Decline: &scheduler.Call_Decline{OfferIDs: []mesos.OfferID{o.ID}, Filters: &mesos.Filters{RefuseSeconds: &zero}}})
		}
		reader := cmdTask(id, o.AgentID, "cpus:0.1;mem:16")
		reader.Command = &mesos.CommandInfo{Value: strPtr(`test "$(cat data/file)" = hello`)}
		reader.Resources = append(reader.Resources, *findVolume(o, "data"))
		acc := launch([]mesos.OfferID{o.ID}, reader)
		acc.Accept.Filters = &mesos.Filters{RefuseSeconds: &zero}
		s.Call(acc)
		st := finalState(t, s, id)
		if st.GetReason() == mesos.REASON_INVALID_OFFERS {
			goto retry // rescinded meanwhile: the agent was restarting
		}
		if st.GetState() != mesos.TASK_FINISHED {
			t.Fatalf("%s did not read what the writer left: %v %s", id, st.GetState(), st.GetMessage())
		}
	}
	s.Call(&scheduler.Call{Type: scheduler.Call_REVIVE, Revive: &scheduler.Call_Revive{}})
	readIt("reader-1")

	c.Agents[0].Stop()
	c.StartAgent(0, "")
	s.Call(&scheduler.Call{Type: scheduler.Call_REVIVE, Revive: &scheduler.Call_Revive{}})
	readIt("reader-after-restart")

	// Another role never sees the volume, nor vol's reserved disk. (vol's
	// framework leaves first: an offer it still held would keep the agent's
	// other resources from role other; the volume stays, reserved to vol.)
	s.Call(&scheduler.Call{Type: scheduler.Call_TEARDOWN})
	other := clustertest.SubscribeTo(t, c.MasterURL, `{"user":"root","name":"other","role":"other"}`)
	o := other.Next(scheduler.Event_OFFERS).Offers.Offers[0]
	if findVolume(o, "data") != nil || api.ScalarSum(mesos.Resources(o.Resources), "disk") > 100 {
		t.Fatalf("role other was offered the volume or vol's reserved disk: %v", mesos.Resources(o.Resources))
	}

}

// finalState acknowledges a task's updates until a terminal one.
func finalState(t *testing.T, s *clustertest.Scheduler, id string) mesos.TaskStatus {
	t.Helper()
	for {
		st := s.Update(id)
		switch st.GetState() {
		case mesos.TASK_STAGING, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_KILLING:
			continue
		}
		return st
	}
}

// TestVolumeOnPathDisk: a persistent volume on a PATH disk lives under the
// disk's root, as in Mesos.
func TestVolumeOnPathDisk(t *testing.T) {
	root := t.TempDir()
	res := `[{"name":"cpus","type":"SCALAR","scalar":{"value":2}},{"name":"mem","type":"SCALAR","scalar":{"value":512}},` +
		`{"name":"disk","type":"SCALAR","scalar":{"value":100},"reservations":[{"type":"STATIC","role":"vol"}],` +
		`"disk":{"source":{"type":"PATH","path":{"root":"` + root + `"}}}}]`
	c := clustertest.Start(t, clustertest.Options{AgentResources: res})
	s := clustertest.SubscribeTo(t, c.MasterURL, `{"user":"root","name":"vol","role":"vol"}`)
	offer := s.Next(scheduler.Event_OFFERS).Offers.Offers[0]
	var disk *mesos.Resource
	for i := range offer.Resources {
		if offer.Resources[i].Name == "disk" && offer.Resources[i].GetDisk().GetSource() != nil {
			disk = &offer.Resources[i]
		}
	}
	if disk == nil {
		t.Fatalf("no PATH disk in the offer: %v", mesos.Resources(offer.Resources))
	}
	// The framework lacks RESERVATION_REFINEMENT: it sees the old format.
	if disk.GetRole() != "vol" || len(disk.Reservations) != 0 {
		t.Fatalf("reserved disk offered as role %q with reservations %v, want role vol in the pre-refinement format", disk.GetRole(), disk.Reservations)
	}
	volume := *disk
	volume.Scalar = &mesos.Value_Scalar{Value: 10}
	d := *disk.Disk
	d.Persistence = &mesos.Resource_DiskInfo_Persistence{ID: "pathvol"}
	d.Volume = &mesos.Volume{ContainerPath: "data", Mode: mesos.RW.Enum()}
	volume.Disk = &d
	writer := cmdTask("path-writer", offer.AgentID, "cpus:0.1;mem:16")
	writer.Command = &mesos.CommandInfo{Value: strPtr("echo on-path > data/file")}
	writer.Resources = append(writer.Resources, volume)
	acc := launch([]mesos.OfferID{offer.ID}, writer)
	acc.Accept.Operations = append([]mesos.Offer_Operation{{Type: mesos.Offer_Operation_CREATE,
		Create: &mesos.Offer_Operation_Create{Volumes: []mesos.Resource{volume}}}}, acc.Accept.Operations...)
	s.Call(acc)
	if st := finalState(t, s, "path-writer"); st.GetState() != mesos.TASK_FINISHED {
		t.Fatalf("writer: %v %s", st.GetState(), st.GetMessage())
	}
	b, err := os.ReadFile(filepath.Join(root, "volumes", "roles", "vol", "pathvol", "file"))
	if err != nil || string(b) != "on-path\n" {
		t.Fatalf("volume data under the PATH disk's root: %q, %v", b, err)
	}
}
