package offers

import (
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func scalar(name string, v float64, role string) mesos.Resource {
	r := mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
	if role != "" {
		r.AllocationInfo = &mesos.Resource_AllocationInfo{Role: &role}
	}
	return r
}

func ports(role string, rs ...mesos.Value_Range) mesos.Resource {
	r := mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: rs}}
	if role != "" {
		r.AllocationInfo = &mesos.Resource_AllocationInfo{Role: &role}
	}
	return r
}

func offer(rs ...mesos.Resource) *mesos.Offer {
	return &mesos.Offer{ID: mesos.OfferID{Value: "o1"}, AgentID: mesos.AgentID{Value: "a1"}, Hostname: "h1", Resources: rs}
}

func TestSumCountsOnlyTheRolesResources(t *testing.T) {
	rs := []mesos.Resource{scalar("cpus", 1, "a"), scalar("cpus", 2, "b"), scalar("mem", 64, "a"), ports("a", mesos.Value_Range{Begin: 1, End: 2})}
	if got := Sum(rs, "a"); got["cpus"] != 1 || got["mem"] != 64 || len(got) != 2 {
		t.Errorf("Sum(a) = %v, want cpus 1 mem 64", got)
	}
	if got := Sum(rs, ""); got["cpus"] != 3 {
		t.Errorf("Sum(all) cpus = %v, want 3", got["cpus"])
	}
	if got := Sum([]mesos.Resource{scalar("cpus", 4, "")}, "b"); got["cpus"] != 4 {
		t.Errorf("offer without allocation_info: Sum(b) cpus = %v, want 4", got["cpus"])
	}
}

func TestRolesInOrderOfAppearance(t *testing.T) {
	rs := []mesos.Resource{scalar("cpus", 1, "b"), scalar("mem", 1, "a"), scalar("cpus", 1, "b")}
	if got := strings.Join(Roles(rs), ","); got != "b,a" {
		t.Errorf("Roles = %q, want b,a", got)
	}
	if got := Roles([]mesos.Resource{scalar("cpus", 1, "")}); len(got) != 1 || got[0] != "" {
		t.Errorf("Roles without allocation_info = %q, want [\"\"]", got)
	}
}

func TestTakeCopiesAllocationInfoAndLeavesOfferAlone(t *testing.T) {
	o := offer(scalar("cpus", 1, "*"), scalar("mem", 128, "*"), ports("*", mesos.Value_Range{Begin: 31000, End: 31009}))
	p := NewPool(o)
	rs, ok := p.Take(Need{CPUs: 0.5, Mem: 64, Ports: 2})
	if !ok {
		t.Fatalf("Take: does not fit: %s", p.Shortfall(Need{CPUs: 0.5, Mem: 64, Ports: 2}))
	}
	got := Sum(rs, "*")
	if got["cpus"] != 0.5 || got["mem"] != 64 {
		t.Errorf("taken scalars = %v, want cpus 0.5 mem 64", got)
	}
	for _, r := range rs {
		if r.AllocationInfo.GetRole() != "*" {
			t.Errorf("taken %s has allocation role %q, want *", r.Name, r.AllocationInfo.GetRole())
		}
		if r.Name == "ports" {
			rg := r.GetRanges().GetRange()
			if len(rg) != 1 || rg[0].Begin != 31000 || rg[0].End != 31001 {
				t.Errorf("taken ports = %v, want [31000-31001]", rg)
			}
		}
	}
	if o.Resources[0].Scalar.Value != 1 || o.Resources[2].Ranges.Range[0].Begin != 31000 {
		t.Errorf("Take changed the offer: %v", o.Resources)
	}
	left := p.Sum("*")
	if left["cpus"] != 0.5 || left["mem"] != 64 {
		t.Errorf("left = %v, want cpus 0.5 mem 64", left)
	}
}

func TestTakePacksUntilFullAndExplainsShortfall(t *testing.T) {
	p := NewPool(offer(scalar("cpus", 1, ""), scalar("mem", 256, "")))
	n := Need{CPUs: 0.1, Mem: 32}
	for p.Fits(n) {
		if _, ok := p.Take(n); !ok {
			t.Fatal("Fits said yes, Take said no")
		}
	}
	if p.Tasks() != 8 {
		t.Errorf("packed %d tasks, want 8 (mem-bound)", p.Tasks())
	}
	if why := p.Shortfall(n); !strings.Contains(why, "mem: want 32, have 0") {
		t.Errorf("Shortfall = %q, want it to name mem", why)
	}
	if left := p.Sum(""); left["cpus"] != 0.2 {
		t.Errorf("cpus left = %v, want 0.2", left["cpus"])
	}
}

func TestTakeFixedPointExact(t *testing.T) {
	p := NewPool(offer(scalar("cpus", 1, ""), scalar("mem", 1000, "")))
	for i := 0; i < 10; i++ {
		if _, ok := p.Take(Need{CPUs: 0.1, Mem: 100}); !ok {
			t.Fatalf("task %d: %s", i, p.Shortfall(Need{CPUs: 0.1, Mem: 100}))
		}
	}
	if len(p.Free()) != 0 {
		t.Errorf("free after exact packing = %v, want nothing", p.Free())
	}
}

func TestTakeUsesOneRole(t *testing.T) {
	p := NewPool(offer(scalar("cpus", 1, "a"), scalar("mem", 64, "a"), scalar("cpus", 1, "b"), scalar("mem", 64, "b")))
	if p.Fits(Need{CPUs: 1.5}) {
		t.Error("a need larger than any one role's share fits")
	}
	rs, ok := p.Take(Need{CPUs: 1, Mem: 64, Role: "b"})
	if !ok {
		t.Fatal("role b need does not fit")
	}
	for _, r := range rs {
		if r.AllocationInfo.GetRole() != "b" {
			t.Errorf("took %s from role %q, want b", r.Name, r.AllocationInfo.GetRole())
		}
	}
	rs, ok = p.Take(Need{CPUs: 1})
	if !ok || rs[0].AllocationInfo.GetRole() != "a" {
		t.Errorf("any-role need after b is used up: ok=%v rs=%v, want role a", ok, rs)
	}
}

func TestTakeSpansReservedAndUnreserved(t *testing.T) {
	reserved := scalar("cpus", 0.5, "")
	reserved.Reservations = []mesos.Resource_ReservationInfo{{Type: mesos.Resource_ReservationInfo_STATIC.Enum(), Role: new(string)}}
	*reserved.Reservations[0].Role = "web"
	p := NewPool(offer(reserved, scalar("cpus", 1, "")))
	rs, ok := p.Take(Need{CPUs: 1})
	if !ok || len(rs) != 2 {
		t.Fatalf("Take = %v, %v; want two cpus resources", rs, ok)
	}
	if len(rs[0].Reservations) != 1 || rs[0].Scalar.Value != 0.5 || rs[1].Scalar.Value != 0.5 {
		t.Errorf("taken = %v, want 0.5 reserved + 0.5 unreserved", rs)
	}
}

func TestTakePortsAcrossRanges(t *testing.T) {
	p := NewPool(offer(ports("", mesos.Value_Range{Begin: 31000, End: 31001}, mesos.Value_Range{Begin: 31005, End: 31010})))
	rs, ok := p.Take(Need{Ports: 4})
	if !ok {
		t.Fatal("4 ports do not fit in 8")
	}
	got := rs[0].GetRanges().GetRange()
	if len(got) != 2 || got[0] != (mesos.Value_Range{Begin: 31000, End: 31001}) || got[1] != (mesos.Value_Range{Begin: 31005, End: 31006}) {
		t.Errorf("ports = %v, want [31000-31001, 31005-31006]", got)
	}
	left := p.Free()[0].GetRanges().GetRange()
	if len(left) != 1 || left[0] != (mesos.Value_Range{Begin: 31007, End: 31010}) {
		t.Errorf("ports left = %v, want [31007-31010]", left)
	}
	if why := p.Shortfall(Need{Ports: 5}); why != "ports: want 5, have 4" {
		t.Errorf("Shortfall = %q", why)
	}
}

func TestTakeSkipsRevocableAndVolumes(t *testing.T) {
	rev := scalar("cpus", 4, "")
	rev.Revocable = &mesos.Resource_RevocableInfo{}
	vol := scalar("disk", 100, "")
	vol.Disk = &mesos.Resource_DiskInfo{Persistence: &mesos.Resource_DiskInfo_Persistence{ID: "v1"}}
	p := NewPool(offer(rev, vol, scalar("cpus", 1, ""), scalar("disk", 10, "")))
	if p.Fits(Need{CPUs: 2}) {
		t.Error("revocable cpus were counted")
	}
	if p.Fits(Need{Disk: 20}) {
		t.Error("a persistent volume was used as scratch disk")
	}
	if !p.Fits(Need{CPUs: 1, Disk: 10}) {
		t.Errorf("plain resources do not fit: %s", p.Shortfall(Need{CPUs: 1, Disk: 10}))
	}
}
