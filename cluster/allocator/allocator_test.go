package allocator

import (
	"fmt"
	"slices"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// oneAgent returns an allocator with agent "agent" and framework "fw" in
// role "*".
func oneAgent(t *testing.T, total string) *Allocator {
	t.Helper()
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "agent", Hostname: "host", Total: res(t, total)}, nil)
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"*"}}, nil, true)
	return a
}

func TestOfferIsWholeAgentWithAllocationRole(t *testing.T) {
	a := oneAgent(t, "cpus:4;mem:1024;disk:10;gpus:1;ports:[31000-31009,31020-31029];bandwidth:100")
	offers := a.Allocate(t0)
	if len(offers) != 1 {
		t.Fatalf("got %d offers, want 1", len(offers))
	}
	o := offers[0]
	if o.FrameworkID != "fw" || o.AgentID != "agent" || o.Role != "*" {
		t.Fatalf("offer %+v", o)
	}
	want := "bandwidth:100;cpus:4;disk:10;gpus:1;mem:1024;ports:20;"
	if got := fmtQty(qty(o.Resources)); got != want {
		t.Fatalf("offered %s, want %s", got, want)
	}
	for _, r := range o.Resources {
		if allocationRole(&r) != "*" {
			t.Fatalf("resource %s lacks allocation_info.role", r.Name)
		}
	}
	if again := a.Allocate(t0.Add(time.Second)); len(again) != 0 {
		t.Fatalf("outstanding offer offered again: %+v", again)
	}
}

func TestDeclineFilterUntilExpiry(t *testing.T) {
	a := oneAgent(t, "cpus:4;mem:1024")
	o := a.Allocate(t0)
	a.Recover("fw", "agent", o[0].Resources, 5*time.Second, t0)
	if got := a.Allocate(t0.Add(4 * time.Second)); len(got) != 0 {
		t.Fatalf("filtered agent offered before expiry: %+v", got)
	}
	if got := a.Allocate(t0.Add(5 * time.Second)); len(got) != 1 {
		t.Fatalf("agent not offered after the filter expired: %+v", got)
	}
}

func TestDeclineWithoutFilterOffersAgain(t *testing.T) {
	a := oneAgent(t, "cpus:4;mem:1024")
	o := a.Allocate(t0)
	a.Recover("fw", "agent", o[0].Resources, 0, t0)
	if got := a.Allocate(t0); len(got) != 1 {
		t.Fatalf("got %d offers after an unfiltered decline, want 1", len(got))
	}
}

// A filter applies only while the offerable resources are within what was
// refused: when a task ends and frees more, the framework is offered again.
func TestDeclineFilterLiftedWhenMoreIsAvailable(t *testing.T) {
	a := oneAgent(t, "cpus:4;mem:1024")
	o := a.Allocate(t0)[0]
	task := allocated(res(t, "cpus:1;mem:256"), "*")
	a.Recover("fw", "agent", minus(o.Resources, task), time.Hour, t0)
	if got := a.Allocate(t0.Add(time.Second)); len(got) != 0 {
		t.Fatalf("declined remainder offered again: %+v", got)
	}
	a.Recover("fw", "agent", task, 0, t0.Add(2*time.Second)) // the task ends
	got := a.Allocate(t0.Add(3 * time.Second))
	if len(got) != 1 || fmtQty(qty(got[0].Resources)) != "cpus:4;mem:1024;" {
		t.Fatalf("after the task ended got %+v, want the whole agent", got)
	}
}

// The filter is per framework: another framework still gets the agent.
func TestDeclineFilterIsPerFramework(t *testing.T) {
	a := oneAgent(t, "cpus:4;mem:1024")
	o := a.Allocate(t0)[0]
	a.AddFramework(FrameworkSpec{ID: "other", Roles: []string{"*"}}, nil, true)
	a.Recover("fw", "agent", o.Resources, time.Hour, t0)
	got := a.Allocate(t0.Add(time.Second))
	if len(got) != 1 || got[0].FrameworkID != "other" {
		t.Fatalf("got %+v, want the agent offered to the other framework", got)
	}
}

func TestReviveClearsFilters(t *testing.T) {
	a := oneAgent(t, "cpus:4;mem:1024")
	o := a.Allocate(t0)
	a.Recover("fw", "agent", o[0].Resources, time.Hour, t0)
	if got := a.Allocate(t0.Add(time.Second)); len(got) != 0 {
		t.Fatalf("filtered agent offered: %+v", got)
	}
	a.Revive("fw", nil)
	if got := a.Allocate(t0.Add(2 * time.Second)); len(got) != 1 {
		t.Fatalf("revive did not clear the filter: %+v", got)
	}
}

func TestSuppressAndRevive(t *testing.T) {
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "agent", Total: res(t, "cpus:4;mem:1024")}, nil)
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"x", "y"}}, nil, true)
	a.Suppress("fw", nil)
	if got := a.Allocate(t0); len(got) != 0 {
		t.Fatalf("suppressed framework got %+v", got)
	}
	a.Revive("fw", []string{"y"})
	got := a.Allocate(t0)
	if len(got) != 1 || got[0].Role != "y" {
		t.Fatalf("got %+v, want one offer in role y only", got)
	}
	a.Recover("fw", "agent", got[0].Resources, 0, t0)
	a.Suppress("fw", []string{"y"})
	if got := a.Allocate(t0); len(got) != 0 {
		t.Fatalf("framework suppressed in every role got %+v", got)
	}
}

func TestSuppressedRolesInSpec(t *testing.T) {
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "agent", Total: res(t, "cpus:4;mem:1024")}, nil)
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"x", "y"}, SuppressedRoles: []string{"x"}}, nil, true)
	if got := a.Allocate(t0); len(got) != 1 || got[0].Role != "y" {
		t.Fatalf("got %+v, want an offer in role y", got)
	}
	a.UpdateFramework(FrameworkSpec{ID: "fw", Roles: []string{"x", "y"}, SuppressedRoles: []string{"x", "y"}})
	a.Recover("fw", "agent", allocated(res(t, "cpus:4;mem:1024"), "y"), 0, t0)
	if got := a.Allocate(t0); len(got) != 0 {
		t.Fatalf("got %+v after suppressing every role", got)
	}
}

func TestMinAllocatable(t *testing.T) {
	a := oneAgent(t, "cpus:0.005;mem:16;disk:100")
	if got := a.Allocate(t0); len(got) != 0 {
		t.Fatalf("offered below the default minimum: %+v", got)
	}
	a = oneAgent(t, "cpus:0.01;mem:16")
	if got := a.Allocate(t0); len(got) != 1 {
		t.Fatalf("cpus:0.01 is allocatable by default, got %+v", got)
	}
	a = New(Config{MinAllocatable: []mesos.Resources{res(t, "cpus:1;mem:128")}})
	a.AddAgent(AgentSpec{ID: "small", Total: res(t, "cpus:2;mem:64")}, nil)
	a.AddAgent(AgentSpec{ID: "big", Total: res(t, "cpus:2;mem:256")}, nil)
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"*"}}, nil, true)
	got := a.Allocate(t0)
	if len(got) != 1 || got[0].AgentID != "big" {
		t.Fatalf("got %+v, want only the big agent", got)
	}
}

func TestInactiveFrameworkAndAgent(t *testing.T) {
	a := oneAgent(t, "cpus:4;mem:1024")
	a.DeactivateFramework("fw")
	if got := a.Allocate(t0); len(got) != 0 {
		t.Fatalf("inactive framework got %+v", got)
	}
	a.ActivateFramework("fw")
	a.DeactivateAgent("agent")
	if got := a.Allocate(t0); len(got) != 0 {
		t.Fatalf("deactivated agent offered: %+v", got)
	}
	a.ActivateAgent("agent")
	if got := a.Allocate(t0); len(got) != 1 {
		t.Fatalf("got %+v after reactivation, want one offer", got)
	}
	b := New(Config{})
	b.AddAgent(AgentSpec{ID: "agent", Total: res(t, "cpus:1;mem:64")}, nil)
	b.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"*"}}, nil, false)
	if got := b.Allocate(t0); len(got) != 0 {
		t.Fatalf("framework added inactive got %+v", got)
	}
}

func TestStaticReservationOnlyForRoleAndSubroles(t *testing.T) {
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "reserved", Total: res(t, "cpus(eng):4;mem(eng):1024")}, nil)
	a.AddFramework(FrameworkSpec{ID: "other", Roles: []string{"*", "engineering", "ops/eng"}}, nil, true)
	if got := a.Allocate(t0); len(got) != 0 {
		t.Fatalf("resources reserved for eng offered to %+v", got)
	}
	a.AddFramework(FrameworkSpec{ID: "ml", Roles: []string{"eng/ml"}}, nil, true)
	got := a.Allocate(t0)
	if len(got) != 1 || got[0].FrameworkID != "ml" {
		t.Fatalf("got %+v, want the reservation offered to the sub-role eng/ml", got)
	}
	for _, r := range got[0].Resources {
		if reservationRole(&r) != "eng" || allocationRole(&r) != "eng/ml" {
			t.Fatalf("resource %s: reservation %q allocation %q", r.Name, reservationRole(&r), allocationRole(&r))
		}
	}
}

// Unreserved and reserved parts of one agent may go to different roles in
// one cycle, and the reserved part never to a foreign role.
func TestMixedAgentSplitsAcrossRoles(t *testing.T) {
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "agent", Total: res(t, "cpus:2;mem:512;cpus(eng):4;mem(eng):1024")}, nil)
	a.AddFramework(FrameworkSpec{ID: "web", Roles: []string{"web"}}, nil, true)
	a.AddFramework(FrameworkSpec{ID: "eng", Roles: []string{"eng"}}, nil, true)
	// web goes first: give eng a head start so web is lower.
	a.AddAgent(AgentSpec{ID: "busy", Total: res(t, "cpus:1;mem:128")}, map[string]mesos.Resources{
		"eng": allocated(res(t, "cpus:1;mem:128"), "eng"),
	})
	offers := byFramework(a.Allocate(t0))
	if len(offers["web"]) != 1 || fmtQty(qty(offers["web"][0].Resources)) != "cpus:2;mem:512;" {
		t.Fatalf("web got %+v, want the unreserved part", offers["web"])
	}
	if len(offers["eng"]) != 1 || fmtQty(qty(offers["eng"][0].Resources)) != "cpus(eng):4;mem(eng):1024;" {
		t.Fatalf("eng got %+v, want the reserved part", offers["eng"])
	}
}

func TestAgentUsedOfUnknownFrameworkIsAdopted(t *testing.T) {
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "agent", Total: res(t, "cpus:4;mem:1024")}, map[string]mesos.Resources{
		"late": allocated(res(t, "cpus:3;mem:512"), "*"),
	})
	if tot := a.Totals(); tot.Allocated["cpus"] != 3 {
		t.Fatalf("used resources of an unknown framework not counted: %v", tot.Allocated)
	}
	a.AddFramework(FrameworkSpec{ID: "late", Roles: []string{"*"}}, nil, true)
	a.AddFramework(FrameworkSpec{ID: "new", Roles: []string{"*"}}, nil, true)
	a.AddAgent(AgentSpec{ID: "agent2", Total: res(t, "cpus:1;mem:256")}, nil)
	got := a.Allocate(t0)
	// "late" holds 3 of 5 cpus once adopted, so "new" (share 0, then at
	// most 0.4) is first for both agents, although "late" registered first.
	for _, o := range got {
		if o.FrameworkID != "new" {
			t.Fatalf("%s offered to %s, want new (late holds more)", o.AgentID, o.FrameworkID)
		}
	}
	var cpus float64
	for _, o := range got {
		cpus += qty(o.Resources)["cpus"]
	}
	if cpus != 2 {
		t.Fatalf("offered %v cpus, want 2 (1 free on agent, 1 on agent2)", cpus)
	}
	a.Recover("late", "agent", allocated(res(t, "cpus:3;mem:512"), "*"), 0, t0)
	if tot := a.Totals(); tot.Allocated["cpus"] != 2 {
		t.Fatalf("adopted resources not recovered: %v", tot.Allocated)
	}
	a.AddAgent(AgentSpec{ID: "gone", Total: res(t, "cpus:1;mem:64")}, map[string]mesos.Resources{
		"never": allocated(res(t, "cpus:1;mem:64"), "*"),
	})
	a.RemoveAgent("gone")
	if len(a.orphans) != 0 {
		t.Fatalf("removed agent still waits for adoption: %v", a.orphans)
	}
}

func TestFrameworkUsedIsCharged(t *testing.T) {
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "a1", Total: res(t, "cpus:4;mem:1024")}, nil)
	a.AddAgent(AgentSpec{ID: "a2", Total: res(t, "cpus:4;mem:1024")}, nil)
	a.AddFramework(FrameworkSpec{ID: "rich", Roles: []string{"*"}}, map[string]mesos.Resources{
		"a1": allocated(res(t, "cpus:4;mem:1024"), "*"),
	}, true)
	a.AddFramework(FrameworkSpec{ID: "poor", Roles: []string{"*"}}, nil, true)
	got := a.Allocate(t0)
	if len(got) != 1 || got[0].FrameworkID != "poor" || got[0].AgentID != "a2" {
		t.Fatalf("got %+v, want a2 to poor only", got)
	}
}

func TestRecoverMoreThanAllocatedIsClamped(t *testing.T) {
	a := oneAgent(t, "cpus:4;mem:1024;ports:[1-10]")
	o := a.Allocate(t0)[0]
	a.Recover("fw", "agent", allocated(res(t, "cpus:40;mem:10240;ports:[1-100]"), "*"), 0, t0)
	a.Recover("fw", "agent", o.Resources, 0, t0)
	tot := a.Totals()
	if tot.Total["cpus"] != 4 || tot.Allocated["cpus"] != 0 {
		t.Fatalf("totals %+v", tot)
	}
	got := a.Allocate(t0)
	if len(got) != 1 || fmtQty(qty(got[0].Resources)) != "cpus:4;mem:1024;ports:10;" {
		t.Fatalf("got %+v, want exactly the agent", got)
	}
	a.Recover("ghost", "agent", got[0].Resources, time.Hour, t0) // unknown framework: no-op
	a.Recover("fw", "ghost", got[0].Resources, time.Hour, t0)    // unknown agent: no-op
	if tot := a.Totals(); tot.Allocated["cpus"] != 4 {
		t.Fatalf("recovering for the wrong framework freed resources: %v", tot.Allocated)
	}
}

func TestPartialPortsRecover(t *testing.T) {
	a := oneAgent(t, "cpus:4;mem:1024;ports:[100-109]")
	o := a.Allocate(t0)[0]
	// Keep cpus:1, mem:128 and port 104; recover the rest.
	rest := allocated(res(t, "cpus:3;mem:896;ports:[100-103,105-109]"), "*")
	a.Recover("fw", "agent", rest, 0, t0)
	_ = o
	got := a.Allocate(t0)
	if len(got) != 1 {
		t.Fatalf("got %d offers, want 1", len(got))
	}
	if ps := portsOf(got[0].Resources); slices.Contains(ps, 104) || len(ps) != 9 {
		t.Fatalf("reoffered ports %v, want 9 ports without 104", ps)
	}
}

func TestRemoveAgent(t *testing.T) {
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "a1", Total: res(t, "cpus:4;mem:1024")}, nil)
	a.AddFramework(FrameworkSpec{ID: "f1", Roles: []string{"*"}}, nil, true)
	a.Allocate(t0)
	a.RemoveAgent("a1")
	if tot := a.Totals(); tot.Total["cpus"] != 0 || tot.Allocated["cpus"] != 0 {
		t.Fatalf("totals after removal %+v", tot)
	}
	// f1's share went back to zero: with a newcomer registered first... f1
	// was created first, so ties go to f1.
	a.AddFramework(FrameworkSpec{ID: "f2", Roles: []string{"*"}}, nil, true)
	a.AddAgent(AgentSpec{ID: "a2", Total: res(t, "cpus:4;mem:1024")}, nil)
	if got := a.Allocate(t0); len(got) != 1 || got[0].FrameworkID != "f1" {
		t.Fatalf("got %+v, want a2 to f1 (its allocation on a1 is gone)", got)
	}
}

func TestRemoveFramework(t *testing.T) {
	a := oneAgent(t, "cpus:4;mem:1024")
	a.Allocate(t0)
	a.RemoveFramework("fw")
	if tot := a.Totals(); tot.Allocated["cpus"] != 0 {
		t.Fatalf("removed framework's offer still allocated: %v", tot.Allocated)
	}
	a.AddFramework(FrameworkSpec{ID: "fw2", Roles: []string{"*"}}, nil, true)
	if got := a.Allocate(t0); len(got) != 1 || got[0].FrameworkID != "fw2" {
		t.Fatalf("got %+v", got)
	}
	a.RemoveFramework("fw2")
	a.AddFramework(FrameworkSpec{ID: "fw2", Roles: []string{"*"}}, nil, true)
	if got := a.Allocate(t0); len(got) != 1 {
		t.Fatalf("re-added framework got %+v", got)
	}
}

func TestUpdateFrameworkDropsRole(t *testing.T) {
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "agent", Total: res(t, "cpus:4;mem:1024")}, nil)
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"x"}}, nil, true)
	o := a.Allocate(t0)
	a.UpdateFramework(FrameworkSpec{ID: "fw", Roles: []string{"y"}})
	// Still allocated in x until recovered.
	if tot := a.Totals(); tot.Allocated["cpus"] != 4 {
		t.Fatalf("allocation in a dropped role lost: %v", tot.Allocated)
	}
	a.Recover("fw", "agent", o[0].Resources, 0, t0)
	got := a.Allocate(t0)
	if len(got) != 1 || got[0].Role != "y" {
		t.Fatalf("got %+v, want an offer in role y", got)
	}
}

func TestTotals(t *testing.T) {
	a := New(Config{})
	a.AddAgent(AgentSpec{ID: "a1", Total: res(t, "cpus:4;mem:1024;disk:50;ports:[1-5];bandwidth:10")}, nil)
	a.AddAgent(AgentSpec{ID: "a2", Total: res(t, "cpus(eng):2;mem(eng):512")}, nil)
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"*"}}, map[string]mesos.Resources{
		"a1": allocated(res(t, "cpus:1.5;mem:100"), "*"),
	}, true)
	tot := a.Totals()
	wantTotal := map[string]float64{"cpus": 6, "mem": 1536, "disk": 50, "gpus": 0, "bandwidth": 10}
	wantAlloc := map[string]float64{"cpus": 1.5, "mem": 100, "disk": 0, "gpus": 0, "bandwidth": 0}
	if fmtQty(tot.Total) != fmtQty(wantTotal) || fmtQty(tot.Allocated) != fmtQty(wantAlloc) {
		t.Fatalf("totals %v / %v, want %v / %v", tot.Total, tot.Allocated, wantTotal, wantAlloc)
	}
}

func TestSameSeedSameOffers(t *testing.T) {
	run := func(seed int64) string {
		a := New(Config{Seed: seed})
		for i := 0; i < 50; i++ {
			a.AddAgent(AgentSpec{ID: fmt.Sprintf("agent%02d", i), Total: res(t, "cpus:2;mem:512")}, nil)
		}
		for i := 0; i < 7; i++ {
			a.AddFramework(FrameworkSpec{ID: fmt.Sprintf("fw%d", i), Roles: []string{"*"}}, nil, true)
		}
		var s string
		for _, o := range a.Allocate(t0) {
			s += o.FrameworkID + "@" + o.AgentID + " "
		}
		return s
	}
	if run(1) != run(1) {
		t.Fatal("the same seed gave different offers")
	}
	if run(1) == run(2) {
		t.Fatal("different seeds visited agents in the same order")
	}
}

// A filter with an effectively infinite refusal must not overflow.
func TestHugeRefuse(t *testing.T) {
	a := oneAgent(t, "cpus:4;mem:1024")
	o := a.Allocate(t0)
	a.Recover("fw", "agent", o[0].Resources, time.Duration(1<<63-1), t0)
	if got := a.Allocate(t0.Add(100 * 365 * 24 * time.Hour)); len(got) != 0 {
		t.Fatalf("infinite filter expired: %+v", got)
	}
}

// An agent nobody could take is skipped by later cycles until something
// changes; each kind of change must wake it up.
func TestUnofferableAgentWakesUp(t *testing.T) {
	a := oneAgent(t, "cpus:4;mem:1024")
	now := t0
	cycle := func() []Offer {
		now = now.Add(time.Second)
		return a.Allocate(now)
	}
	a.Recover("fw", "agent", cycle()[0].Resources, time.Hour, now)
	if got := cycle(); len(got) != 0 {
		t.Fatalf("filtered agent offered: %+v", got)
	}
	if got := cycle(); len(got) != 0 {
		t.Fatalf("filtered agent offered: %+v", got)
	}
	a.AddFramework(FrameworkSpec{ID: "new", Roles: []string{"*"}}, nil, true)
	got := cycle()
	if len(got) != 1 || got[0].FrameworkID != "new" {
		t.Fatalf("new framework not offered the skipped agent: %+v", got)
	}
	a.Recover("new", "agent", got[0].Resources, time.Hour, now)
	if got := cycle(); len(got) != 0 {
		t.Fatalf("agent declined by everyone offered: %+v", got)
	}
	a.Suppress("new", nil)
	a.Revive("new", nil)
	if got := cycle(); len(got) != 1 || got[0].FrameworkID != "new" {
		t.Fatalf("revived framework not offered the skipped agent: %+v", got)
	}
	a.Recover("new", "agent", got[0].Resources, 90*time.Second, now)
	cycle()
	now = now.Add(2 * time.Minute)
	if got := cycle(); len(got) != 1 || got[0].FrameworkID != "new" {
		t.Fatalf("agent not offered after the filter expired: %+v", got)
	}
}
