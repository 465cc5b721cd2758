package allocator

import (
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func reservation(typ mesos.Resource_ReservationInfo_Type, role, principal string, labels ...string) mesos.Resource_ReservationInfo {
	ri := mesos.Resource_ReservationInfo{Type: typ.Enum(), Role: &role}
	if principal != "" {
		ri.Principal = &principal
	}
	if len(labels) > 0 {
		ri.Labels = &mesos.Labels{}
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			ri.Labels.Labels = append(ri.Labels.Labels, mesos.Label{Key: k, Value: &v})
		}
	}
	return ri
}

func dynamic(role string, labels ...string) mesos.Resource_ReservationInfo {
	return reservation(mesos.Resource_ReservationInfo_DYNAMIC, role, "ops", labels...)
}

// reserved returns rs with the reservation stack and allocation role set.
func reserved(rs mesos.Resources, allocRole string, stack ...mesos.Resource_ReservationInfo) mesos.Resources {
	out := make(mesos.Resources, len(rs))
	for i, r := range rs {
		r.Reservations = append([]mesos.Resource_ReservationInfo(nil), stack...)
		if allocRole != "" {
			role := allocRole
			r.AllocationInfo = &mesos.Resource_AllocationInfo{Role: &role}
		}
		out[i] = r
	}
	return out
}

func volumeRes(t *testing.T, size string, allocRole, id string, stack ...mesos.Resource_ReservationInfo) mesos.Resource {
	r := reserved(res(t, "disk:"+size), allocRole, stack...)[0]
	r.Disk = &mesos.Resource_DiskInfo{
		Persistence: &mesos.Resource_DiskInfo_Persistence{ID: id},
		Volume:      &mesos.Volume{ContainerPath: "data-" + id, Mode: mesos.RW.Enum()},
	}
	return r
}

func op(typ mesos.Offer_Operation_Type, rs ...mesos.Resource) mesos.Offer_Operation {
	o := mesos.Offer_Operation{Type: typ}
	switch typ {
	case mesos.Offer_Operation_RESERVE:
		o.Reserve = &mesos.Offer_Operation_Reserve{Resources: rs}
	case mesos.Offer_Operation_UNRESERVE:
		o.Unreserve = &mesos.Offer_Operation_Unreserve{Resources: rs}
	case mesos.Offer_Operation_CREATE:
		o.Create = &mesos.Offer_Operation_Create{Volumes: rs}
	case mesos.Offer_Operation_DESTROY:
		o.Destroy = &mesos.Offer_Operation_Destroy{Volumes: rs}
	}
	return o
}

func ops(o ...mesos.Offer_Operation) []mesos.Offer_Operation { return o }

func agentTotal(t *testing.T, a *Allocator, id string) string {
	t.Helper()
	total, _, ok := a.AgentResources(id)
	if !ok {
		t.Fatalf("agent %s unknown", id)
	}
	return fmtQty(qty(total))
}

func TestReserveFromOfferAndReofferOnlyToRole(t *testing.T) {
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "agent", Total: res(t, "cpus:4;mem:1024;ports:[1-10]")}, nil)
	a.AddFramework(FrameworkSpec{ID: "eng", Roles: []string{"eng"}}, nil, true)
	o := a.Allocate(t0)[0]
	want := reserved(res(t, "cpus:2;mem:256"), "eng", dynamic("eng", "purpose=db"))
	got, err := a.UpdateAllocation("eng", "agent", o.Resources, ops(op(mesos.Offer_Operation_RESERVE, want...)))
	if err != nil {
		t.Fatal(err)
	}
	if q := fmtQty(qty(got)); q != "cpus:2;cpus(eng):2;mem:768;mem(eng):256;ports:10;" {
		t.Fatalf("converted offer %s", q)
	}
	if q := agentTotal(t, a, "agent"); q != "cpus:2;cpus(eng):2;mem:768;mem(eng):256;ports:10;" {
		t.Fatalf("agent total %s after RESERVE", q)
	}
	if tot := a.Totals(); tot.Total["cpus"] != 4 || tot.Allocated["cpus"] != 4 {
		t.Fatalf("RESERVE changed the totals: %+v", tot)
	}
	// The framework keeps them until it declines; then the reservation
	// goes only to eng, with its labels.
	a.AddFramework(FrameworkSpec{ID: "web", Roles: []string{"web"}}, nil, true)
	a.Recover("eng", "agent", got, time.Hour, t0)
	offers := byFramework(a.Allocate(t0.Add(time.Second)))
	if len(offers["eng"]) != 0 || len(offers["web"]) != 1 || fmtQty(qty(offers["web"][0].Resources)) != "cpus:2;mem:768;ports:10;" {
		t.Fatalf("offers %+v, want only the unreserved part, to web", offers)
	}
	a.Revive("eng", nil)
	offers = byFramework(a.Allocate(t0.Add(2 * time.Second)))
	if len(offers["eng"]) != 1 || fmtQty(qty(offers["eng"][0].Resources)) != "cpus(eng):2;mem(eng):256;" {
		t.Fatalf("offers %+v, want the reservation to eng", offers)
	}
	for _, r := range offers["eng"][0].Resources {
		if l := r.Reservations[0].GetLabels().GetLabels(); len(l) != 1 || l[0].Key != "purpose" {
			t.Fatalf("reservation labels lost: %+v", r.Reservations)
		}
	}
}

func TestUpdateAllocationRejectsInvalidAndChangesNothing(t *testing.T) {
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "agent", Total: append(res(t, "cpus:4;mem:1024;cpus(eng):1"),
		reserved(res(t, "mem:100"), "", dynamic("eng", "k=v"))...)}, nil)
	a.AddFramework(FrameworkSpec{ID: "eng", Roles: []string{"eng"}}, nil, true)
	o := a.Allocate(t0)[0]
	before := agentTotal(t, a, "agent")
	for _, tc := range []struct {
		name string
		ops  []mesos.Offer_Operation
		want string
	}{
		{"other role", ops(op(mesos.Offer_Operation_RESERVE, reserved(res(t, "cpus:1"), "eng", dynamic("ops"))...)), "may reserve only for that role"},
		{"too much", ops(op(mesos.Offer_Operation_RESERVE, reserved(res(t, "cpus:5"), "eng", dynamic("eng"))...)), "not available"},
		{"static", ops(op(mesos.Offer_Operation_RESERVE, reserved(res(t, "cpus:1"), "eng", reservation(mesos.Resource_ReservationInfo_STATIC, "eng", ""))...)), "only dynamic"},
		{"unreserve static", ops(op(mesos.Offer_Operation_UNRESERVE, reserved(res(t, "cpus:1"), "eng", reservation(mesos.Resource_ReservationInfo_STATIC, "eng", ""))...)), "static reservations"},
		{"unreserve wrong labels", ops(op(mesos.Offer_Operation_UNRESERVE, reserved(res(t, "mem:100"), "eng", dynamic("eng", "k=other"))...)), "not available"},
		{"unreserve unreserved", ops(op(mesos.Offer_Operation_UNRESERVE, allocated(res(t, "cpus:1"), "eng")...)), "not reserved"},
		{"volume on unreserved disk", ops(op(mesos.Offer_Operation_CREATE, volumeRes(t, "10", "eng", "v1"))), "reserved disk"},
		{"second op invalid", ops(
			op(mesos.Offer_Operation_RESERVE, reserved(res(t, "cpus:1"), "eng", dynamic("eng"))...),
			op(mesos.Offer_Operation_RESERVE, reserved(res(t, "cpus:4"), "eng", dynamic("eng"))...)), "not available"},
	} {
		_, err := a.UpdateAllocation("eng", "agent", o.Resources, tc.ops)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
		if got := agentTotal(t, a, "agent"); got != before {
			t.Fatalf("%s: a rejected operation changed the agent: %s, was %s", tc.name, got, before)
		}
	}
	if _, err := a.UpdateAllocation("eng", "agent", allocated(res(t, "cpus:40"), "eng"), nil); err == nil || !strings.Contains(err.Error(), "not allocated") {
		t.Fatalf("resources not allocated to the framework accepted: %v", err)
	}
	// Unreserving the labelled reservation with its exact labels works.
	got, err := a.UpdateAllocation("eng", "agent", o.Resources, ops(op(mesos.Offer_Operation_UNRESERVE, reserved(res(t, "mem:100"), "eng", dynamic("eng", "k=v"))...)))
	if err != nil {
		t.Fatal(err)
	}
	if q := fmtQty(qty(got)); q != "cpus:4;cpus(eng):1;mem:1124;" {
		t.Fatalf("after UNRESERVE %s", q)
	}
}

// Reservations of one role with different labels never merge: each keeps
// its labels and can be unreserved on its own.
func TestLabelledReservationsStayDistinct(t *testing.T) {
	a := New(Config{Seed: 1})
	total := append(reserved(res(t, "cpus:8"), "", dynamic("r", "a=1")), reserved(res(t, "cpus:8"), "", dynamic("r", "a=2"))...)
	a.AddAgent(AgentSpec{ID: "agent", Total: total}, nil)
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"r"}}, nil, true)
	o := a.Allocate(t0)[0]
	if len(o.Resources) != 2 {
		t.Fatalf("offer %+v merged reservations with different labels", o.Resources)
	}
	got, err := a.UpdateAllocation("fw", "agent", o.Resources, ops(op(mesos.Offer_Operation_UNRESERVE, reserved(res(t, "cpus:8"), "r", dynamic("r", "a=2"))...)))
	if err != nil {
		t.Fatal(err)
	}
	if q := fmtQty(qty(got)); q != "cpus:8;cpus(r):8;" {
		t.Fatalf("after unreserving one: %s", q)
	}
}

func TestPersistentVolumeLifecycle(t *testing.T) {
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "agent", Total: append(res(t, "cpus:2;mem:512"), reserved(res(t, "disk:1000"), "", dynamic("eng"))...)}, nil)
	a.AddFramework(FrameworkSpec{ID: "eng", Roles: []string{"eng"}}, nil, true)
	o := a.Allocate(t0)[0]
	vol := volumeRes(t, "600", "eng", "data", dynamic("eng"))
	got, err := a.UpdateAllocation("eng", "agent", o.Resources, ops(op(mesos.Offer_Operation_CREATE, vol)))
	if err != nil {
		t.Fatal(err)
	}
	var volumes, disks float64
	for _, r := range got {
		switch {
		case r.GetDisk().GetPersistence().GetID() == "data":
			volumes += r.GetScalar().GetValue()
		case r.Name == "disk":
			disks += r.GetScalar().GetValue()
		}
	}
	if volumes != 600 || disks != 400 {
		t.Fatalf("after CREATE: volume %v, plain reserved disk %v", volumes, disks)
	}
	if _, err := a.UpdateAllocation("eng", "agent", got, ops(op(mesos.Offer_Operation_CREATE, volumeRes(t, "100", "eng", "data", dynamic("eng"))))); err == nil || !strings.Contains(err.Error(), "already has volume") {
		t.Fatalf("duplicate volume ID accepted: %v", err)
	}
	if _, err := a.UpdateAllocation("eng", "agent", got, ops(op(mesos.Offer_Operation_UNRESERVE, vol))); err == nil || !strings.Contains(err.Error(), "destroy it first") {
		t.Fatalf("unreserving a volume accepted: %v", err)
	}
	half := vol
	half.Scalar = &mesos.Value_Scalar{Value: 300}
	if _, err := a.UpdateAllocation("eng", "agent", got, ops(op(mesos.Offer_Operation_DESTROY, half))); err == nil || !strings.Contains(err.Error(), "whole") {
		t.Fatalf("destroying half a volume accepted: %v", err)
	}
	// Offered back only to eng itself: not to a sub-role, not to others.
	a.AddFramework(FrameworkSpec{ID: "ml", Roles: []string{"eng/ml"}}, nil, true)
	a.AddFramework(FrameworkSpec{ID: "web", Roles: []string{"web"}}, nil, true)
	a.Recover("eng", "agent", got, time.Hour, t0)
	for _, o := range a.Allocate(t0.Add(time.Second)) {
		for _, r := range o.Resources {
			if r.GetDisk().GetPersistence() != nil {
				t.Fatalf("volume offered to %s in role %s", o.FrameworkID, o.Role)
			}
		}
	}
	// (A volume alone is below the minimum allocatable; give eng the
	// whole agent back.)
	a.RemoveFramework("ml")
	a.RemoveFramework("web")
	a.Revive("eng", nil)
	offers := byFramework(a.Allocate(t0.Add(2 * time.Second)))
	if len(offers["eng"]) != 1 {
		t.Fatalf("volume not offered back to eng: %+v", offers)
	}
	var back mesos.Resources
	for _, r := range offers["eng"][0].Resources {
		if r.GetDisk().GetPersistence().GetID() == "data" {
			back = append(back, r)
		}
	}
	if len(back) != 1 || back[0].GetDisk().GetVolume().GetContainerPath() != "data-data" {
		t.Fatalf("volume offered back as %+v", back)
	}
	after, err := a.UpdateAllocation("eng", "agent", offers["eng"][0].Resources, ops(op(mesos.Offer_Operation_DESTROY, back...)))
	if err != nil {
		t.Fatal(err)
	}
	if q := fmtQty(qty(after)); q != "cpus:2;disk(eng):1000;mem:512;" {
		t.Fatalf("after DESTROY: %s", q)
	}
	if q := agentTotal(t, a, "agent"); q != "cpus:2;disk(eng):1000;mem:512;" {
		t.Fatalf("agent total after DESTROY: %s", q)
	}
}

// A reservation for eng offered to eng/ml may be refined to eng/ml; after
// that only eng/ml gets it, and unreserving returns it to eng.
func TestReservationRefinement(t *testing.T) {
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "agent", Total: res(t, "cpus(eng):4")}, nil)
	a.AddFramework(FrameworkSpec{ID: "ml", Roles: []string{"eng/ml"}}, nil, true)
	o := a.Allocate(t0)[0]
	static := reservation(mesos.Resource_ReservationInfo_STATIC, "eng", "")
	refined := reserved(res(t, "cpus:3"), "eng/ml", static, dynamic("eng/ml"))
	got, err := a.UpdateAllocation("ml", "agent", o.Resources, ops(op(mesos.Offer_Operation_RESERVE, refined...)))
	if err != nil {
		t.Fatal(err)
	}
	if q := fmtQty(qty(got)); q != "cpus(eng):1;cpus(eng/ml):3;" {
		t.Fatalf("after refinement %s", q)
	}
	a.AddFramework(FrameworkSpec{ID: "eng", Roles: []string{"eng"}}, nil, true)
	a.Recover("ml", "agent", got, time.Hour, t0)
	offers := a.Allocate(t0.Add(time.Second))
	if len(offers) != 1 || offers[0].FrameworkID != "eng" || fmtQty(qty(offers[0].Resources)) != "cpus(eng):1;" {
		t.Fatalf("offers %+v, want eng offered only its own cpu", offers)
	}
	a.Revive("ml", nil)
	mine := byFramework(a.Allocate(t0.Add(2 * time.Second)))
	if len(mine["ml"]) != 1 {
		t.Fatalf("refined reservation not offered to eng/ml: %+v", mine)
	}
	back, err := a.UpdateAllocation("ml", "agent", mine["ml"][0].Resources, ops(op(mesos.Offer_Operation_UNRESERVE, refined...)))
	if err != nil {
		t.Fatal(err)
	}
	if q := fmtQty(qty(back)); q != "cpus(eng):3;" {
		t.Fatalf("after unreserving the refinement %s", q)
	}
	if _, err := a.UpdateAllocation("ml", "agent", back, ops(op(mesos.Offer_Operation_RESERVE, reserved(res(t, "cpus:1"), "eng/ml", static, dynamic("ops"))...))); err == nil {
		t.Fatal("refinement to a non-descendant accepted")
	}
}

func TestOperatorReserveAndUnreserve(t *testing.T) {
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "agent", Total: res(t, "cpus:4;mem:1024")}, nil)
	want := reserved(res(t, "cpus:3;mem:512"), "", dynamic("db", "team=storage"))
	if err := a.UpdateAvailable("agent", ops(op(mesos.Offer_Operation_RESERVE, want...))); err != nil {
		t.Fatal(err)
	}
	if q := agentTotal(t, a, "agent"); q != "cpus:1;cpus(db):3;mem:512;mem(db):512;" {
		t.Fatalf("after /reserve: %s", q)
	}
	a.AddFramework(FrameworkSpec{ID: "web", Roles: []string{"web"}}, nil, true)
	o := a.Allocate(t0)
	if len(o) != 1 || fmtQty(qty(o[0].Resources)) != "cpus:1;mem:512;" {
		t.Fatalf("offers %+v, want only the unreserved rest to web", o)
	}
	err := a.UpdateAvailable("agent", ops(op(mesos.Offer_Operation_RESERVE, reserved(res(t, "cpus:1"), "", dynamic("db"))...)))
	if err == nil || !strings.Contains(err.Error(), "not available unallocated on agent agent") || !strings.Contains(err.Error(), "cpus(db):1") {
		t.Fatalf("reserving offered resources: %v", err)
	}
	if err := a.UpdateAvailable("agent", ops(op(mesos.Offer_Operation_UNRESERVE, want...))); err != nil {
		t.Fatal(err)
	}
	if q := agentTotal(t, a, "agent"); q != "cpus:4;mem:1024;" {
		t.Fatalf("after /unreserve: %s", q)
	}
	if err := a.UpdateAvailable("nowhere", nil); err == nil {
		t.Fatal("unknown agent accepted")
	}
}

func TestOperatorReserveWithinQuotaLimit(t *testing.T) {
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "agent", Total: res(t, "cpus:4;mem:1024")}, nil)
	mustQuota(t, a, "db", "", "cpus:2")
	err := a.UpdateAvailable("agent", ops(op(mesos.Offer_Operation_RESERVE, reserved(res(t, "cpus:3"), "", dynamic("db"))...)))
	if err == nil || !strings.Contains(err.Error(), "quota limit") {
		t.Fatalf("reservation above the limit: %v", err)
	}
	if err := a.UpdateAvailable("agent", ops(op(mesos.Offer_Operation_RESERVE, reserved(res(t, "cpus:2"), "", dynamic("db"))...))); err != nil {
		t.Fatal(err)
	}
	if st := a.Quotas(); st[0].Consumed["cpus"] != 2 {
		t.Fatalf("unallocated reservation not counted: %+v", st)
	}
}

func diskRes(t *testing.T, size string, src *mesos.Resource_DiskInfo_Source) mesos.Resource {
	r := res(t, "disk:"+size)[0]
	if src != nil {
		r.Disk = &mesos.Resource_DiskInfo{Source: src}
	}
	return r
}

// ROOT, PATH and MOUNT disks stay distinct, carry their source into
// offers, and a MOUNT disk is never split (here by a quota limit).
func TestDiskSources(t *testing.T) {
	root := "/mnt/a"
	path := &mesos.Resource_DiskInfo_Source{Type: mesos.Resource_DiskInfo_Source_PATH, Path: &mesos.Resource_DiskInfo_Source_Path{Root: &root}}
	mount := &mesos.Resource_DiskInfo_Source{Type: mesos.Resource_DiskInfo_Source_MOUNT, Mount: &mesos.Resource_DiskInfo_Source_Mount{Root: &root}}
	total := append(res(t, "cpus:4;mem:1024"), diskRes(t, "100", nil), diskRes(t, "200", path), diskRes(t, "300", mount))
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "agent", Total: total}, nil)
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"dev"}}, nil, true)
	o := a.Allocate(t0)[0]
	bySource := map[string]float64{}
	for _, r := range o.Resources {
		if r.Name == "disk" {
			bySource[r.GetDisk().GetSource().GetType().String()] += r.GetScalar().GetValue()
		}
	}
	if bySource["UNKNOWN"] != 100 || bySource["PATH"] != 200 || bySource["MOUNT"] != 300 {
		t.Fatalf("disks by source %v", bySource)
	}
	a.Recover("fw", "agent", o.Resources, 0, t0)
	mustQuota(t, a, "dev", "", "disk:400")
	o = a.Allocate(t0)[0]
	var mountOffered, other float64
	for _, r := range o.Resources {
		if r.Name == "disk" {
			if r.GetDisk().GetSource().GetType() == mesos.Resource_DiskInfo_Source_MOUNT {
				mountOffered += r.GetScalar().GetValue()
			} else {
				other += r.GetScalar().GetValue()
			}
		}
	}
	if mountOffered != 0 && mountOffered != 300 || mountOffered+other > 400 {
		t.Fatalf("under a disk limit of 400: MOUNT %v, others %v", mountOffered, other)
	}
}

func TestUpdateAgentKeepsAllocations(t *testing.T) {
	a := oneAgent(t, "cpus:4;mem:1024")
	o := a.Allocate(t0)[0]
	a.UpdateAgent(AgentSpec{ID: "agent", Total: res(t, "cpus:8;mem:2048")})
	got := a.Allocate(t0)
	if len(got) != 1 || fmtQty(qty(got[0].Resources)) != "cpus:4;mem:1024;" {
		t.Fatalf("after growing the agent: %+v", got)
	}
	a.Recover("fw", "agent", o.Resources, 0, t0)
	if tot := a.Totals(); tot.Total["cpus"] != 8 || tot.Allocated["cpus"] != 4 {
		t.Fatalf("totals %+v", tot)
	}
}
