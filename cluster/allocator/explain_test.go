package allocator

import (
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// reasonOf returns the reason with code, failing the test if absent.
func reasonOf(t *testing.T, e Explanation, code ReasonCode) Reason {
	t.Helper()
	for _, r := range e.Reasons {
		if r.Code == code {
			return r
		}
	}
	t.Fatalf("explanation lacks %s:\n%s", code, e)
	return Reason{}
}

func TestMaintenanceDrainingAndDown(t *testing.T) {
	a := New(Config{Seed: 1})
	agents(t, a, 2, "cpus:2;mem:1024")
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"*"}}, nil, true)
	start := t0.Add(time.Hour)
	a.SetAgentUnavailability("agent0", start, 2*time.Hour)
	offers := a.Allocate(t0)
	if len(offers) != 2 {
		t.Fatalf("draining agent not offered: %+v", offers)
	}
	for _, o := range offers {
		switch {
		case o.AgentID == "agent0" && (o.Unavailability == nil || !o.Unavailability.Start.Equal(start) || o.Unavailability.Duration != 2*time.Hour):
			t.Fatalf("offer of the draining agent lacks its unavailability: %+v", o.Unavailability)
		case o.AgentID == "agent1" && o.Unavailability != nil:
			t.Fatalf("offer of an available agent carries unavailability %+v", o.Unavailability)
		}
	}
	inv := a.InverseOffers()
	if len(inv) != 1 || inv[0].FrameworkID != "fw" || inv[0].AgentID != "agent0" || fmtQty(qty(inv[0].Resources)) != "cpus:2;mem:1024;" {
		t.Fatalf("inverse offers %+v", inv)
	}
	declineAll(a, offers, 0, t0)
	a.SetAgentDown("agent0", true)
	offers = a.Allocate(t0.Add(time.Second))
	if len(offers) != 1 || offers[0].AgentID != "agent1" {
		t.Fatalf("down agent offered: %+v", offers)
	}
	ex := a.Explain(t0.Add(time.Second), "fw")
	if r := reasonOf(t, ex, ReasonAgentDown); r.Agents != 1 || r.AgentIDs[0] != "agent0" {
		t.Fatalf("agent_down reason %+v", r)
	}
	a.SetAgentDown("agent0", false)
	a.ClearAgentUnavailability("agent0")
	offers = a.Allocate(t0.Add(2 * time.Second))
	if len(offers) != 1 || offers[0].AgentID != "agent0" || offers[0].Unavailability != nil {
		t.Fatalf("agent brought up not offered: %+v", offers)
	}
	if len(a.InverseOffers()) != 0 {
		t.Fatal("inverse offers after the maintenance was cancelled")
	}
}

func TestExplainFrameworkStates(t *testing.T) {
	a := oneAgent(t, "cpus:4;mem:1024")
	a.DeactivateFramework("fw")
	a.Allocate(t0)
	reasonOf(t, a.Explain(t0, "fw"), ReasonFrameworkInactive)

	a.ActivateFramework("fw")
	a.Suppress("fw", nil)
	a.Allocate(t0)
	reasonOf(t, a.Explain(t0, "fw"), ReasonSuppressed)
	reasonOf(t, a.Explain(t0, "*"), ReasonSuppressed)

	if r := reasonOf(t, a.ExplainFrameworkRole(t0, "fw", "analytics"), ReasonNotSubscribed); !strings.Contains(r.Message, "*") {
		t.Fatalf("not_subscribed does not list the framework's roles: %s", r.Message)
	}
	if e := a.Explain(t0, "nobody"); e.Kind != "unknown" || !e.Has(ReasonUnknown) {
		t.Fatalf("unknown subject: %s", e)
	}
	mustQuota(t, a, "lonely", "", "cpus:1")
	reasonOf(t, a.Explain(t0, "lonely"), ReasonNoFrameworks)
}

func TestExplainDeclined(t *testing.T) {
	a := New(Config{Seed: 1})
	agents(t, a, 3, "cpus:2;mem:1024")
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"*"}}, nil, true)
	offers := a.Allocate(t0)
	declineAll(a, offers[:2], time.Minute, t0)
	declineAll(a, offers[2:], time.Hour, t0)
	a.Allocate(t0.Add(time.Second))
	r := reasonOf(t, a.Explain(t0.Add(time.Second), "fw"), ReasonDeclined)
	if r.Agents != 3 || !r.Until.Equal(t0.Add(time.Hour)) || r.Forever {
		t.Fatalf("declined reason %+v, want 3 agents until %v", r, t0.Add(time.Hour))
	}
	a.Recover("fw", "agent0", nil, 0, t0)
	a.Revive("fw", nil)
	offers = a.Allocate(t0.Add(2 * time.Second))
	declineAll(a, offers, time.Duration(1<<62), t0.Add(2*time.Second))
	if r := reasonOf(t, a.Explain(t0.Add(3*time.Second), "fw"), ReasonDeclined); !r.Forever {
		t.Fatalf("an INT_MAX filter is not reported as forever: %+v", r)
	}
}

func TestExplainMinAllocatableAndReservedElsewhere(t *testing.T) {
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "crumbs", Total: res(t, "cpus:0.005;mem:16;disk:10")}, nil)
	a.AddAgent(AgentSpec{ID: "theirs", Total: res(t, "cpus(db):2;mem(db):1024")}, nil)
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"web"}}, nil, true)
	if got := a.Allocate(t0); len(got) != 0 {
		t.Fatalf("offers %+v", got)
	}
	e := a.Explain(t0, "fw")
	if r := reasonOf(t, e, ReasonMinAllocatable); r.Agents != 1 || r.AgentIDs[0] != "crumbs" || !strings.Contains(r.Message, "mem:16") {
		t.Fatalf("min_allocatable %+v", r)
	}
	if r := reasonOf(t, e, ReasonReservedElsewhere); r.AgentIDs[0] != "theirs" {
		t.Fatalf("reserved_for_other_roles %+v", r)
	}
}

func TestExplainQuotaLimitWithNumbers(t *testing.T) {
	a := New(Config{Seed: 1})
	agents(t, a, 3, "cpus:2;mem:1024")
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"dev/a"}}, nil, true)
	mustQuota(t, a, "dev", "", "cpus:2;mem:1024")
	a.Allocate(t0)
	a.Allocate(t0.Add(time.Second))
	r := reasonOf(t, a.Explain(t0.Add(time.Second), "fw"), ReasonQuotaLimit)
	if r.QuotaRole != "dev" || r.Consumed["cpus"] != 2 || r.Limit["cpus"] != 2 || !strings.Contains(r.Message, "cpus:2") {
		t.Fatalf("quota_limit %+v", r)
	}
}

func TestExplainAgentDeactivatedAndAllAllocated(t *testing.T) {
	a := New(Config{Seed: 1})
	agents(t, a, 2, "cpus:2;mem:1024")
	a.AddFramework(FrameworkSpec{ID: "hog", Roles: []string{"*"}}, nil, true)
	a.Allocate(t0)
	a.AddFramework(FrameworkSpec{ID: "late", Roles: []string{"*"}}, nil, true)
	a.Allocate(t0.Add(time.Second))
	reasonOf(t, a.Explain(t0.Add(time.Second), "late"), ReasonAllAllocated)
	a.AddAgent(AgentSpec{ID: "off", Total: res(t, "cpus:1;mem:64")}, nil)
	a.DeactivateAgent("off")
	reasonOf(t, a.Explain(t0.Add(time.Second), "late"), ReasonAgentDeactivated)
}

// Fair share: agents went to frameworks with a lower share, within the
// role and across roles.
func TestExplainFairShare(t *testing.T) {
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "big", Total: res(t, "cpus:8;mem:8192")}, map[string]mesos.Resources{
		"rich": allocated(res(t, "cpus:8;mem:8192"), "*"),
	})
	agents(t, a, 2, "cpus:1;mem:512")
	a.AddFramework(FrameworkSpec{ID: "rich", Roles: []string{"*"}}, nil, true)
	a.AddFramework(FrameworkSpec{ID: "poor", Roles: []string{"*"}}, nil, true)
	offers := a.Allocate(t0)
	for _, o := range offers {
		if o.FrameworkID != "poor" {
			t.Fatalf("offer %+v, want everything to poor", o)
		}
	}
	r := reasonOf(t, a.Explain(t0, "rich"), ReasonFairShare)
	if r.Agents != 2 || r.Share <= r.OtherShare || !strings.Contains(r.Message, "frameworks of role *") {
		t.Fatalf("fair_share %+v", r)
	}
	if e := a.Explain(t0, "poor"); e.Offers != 2 || e.Has(ReasonFairShare) || len(e.Recent) != 1 || e.Recent[0].Offers != 2 || !e.Since.Equal(t0) {
		t.Fatalf("poor's explanation %s %+v", e, e.Recent)
	}
	// Across roles.
	b := New(Config{Seed: 1})
	b.AddAgent(AgentSpec{ID: "big", Total: res(t, "cpus:8;mem:8192")}, map[string]mesos.Resources{
		"a": allocated(res(t, "cpus:8;mem:8192"), "ra"),
	})
	agents(t, b, 2, "cpus:1;mem:512")
	b.AddFramework(FrameworkSpec{ID: "a", Roles: []string{"ra"}}, nil, true)
	b.AddFramework(FrameworkSpec{ID: "b", Roles: []string{"rb"}}, nil, true)
	b.Allocate(t0)
	r = reasonOf(t, b.Explain(t0, "ra"), ReasonFairShare)
	if r.RoleShare <= r.OtherRoleShare || !strings.Contains(r.Message, "other roles") {
		t.Fatalf("fair_share across roles %+v", r)
	}
}

// The record can be turned off; Explain then relies on the current state.
func TestExplainRecordOff(t *testing.T) {
	a := New(Config{Seed: 1, ExplainCycles: -1})
	agents(t, a, 1, "cpus:1;mem:512")
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"*"}}, nil, true)
	a.Allocate(t0)
	if e := a.Explain(t0, "fw"); e.Cycles != 0 || e.Offers != 0 {
		t.Fatalf("explanation with the record off: %s", e)
	}
}

func TestExplainNoAgents(t *testing.T) {
	a := New(Config{})
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"*"}}, nil, true)
	a.Allocate(t0)
	reasonOf(t, a.Explain(t0, "fw"), ReasonNoAgents)
}
