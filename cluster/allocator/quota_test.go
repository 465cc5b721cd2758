package allocator

import (
	"fmt"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// heldBy sums the scalars offered per role over offers.
func heldBy(offers []Offer) map[string]map[string]float64 {
	m := map[string]map[string]float64{}
	for _, o := range offers {
		if m[o.Role] == nil {
			m[o.Role] = map[string]float64{}
		}
		for k, v := range qty(o.Resources) {
			m[o.Role][k] += v
		}
	}
	return m
}

func mustQuota(t *testing.T, a *Allocator, role, guarantee, limit string) {
	t.Helper()
	if err := a.SetQuota(role, res(t, guarantee), res(t, limit)); err != nil {
		t.Fatalf("SetQuota(%s): %v", role, err)
	}
}

func agents(t *testing.T, a *Allocator, n int, total string) {
	for i := 0; i < n; i++ {
		a.AddAgent(AgentSpec{ID: fmt.Sprintf("agent%d", i), Total: res(t, total)}, nil)
	}
}

func TestQuotaLimitCapsOffers(t *testing.T) {
	a := New(Config{Seed: 1})
	agents(t, a, 4, "cpus:2;mem:1024")
	a.AddFramework(FrameworkSpec{ID: "capped", Roles: []string{"dev"}}, nil, true)
	mustQuota(t, a, "dev", "", "cpus:3;mem:4096")
	held := heldBy(a.Allocate(t0))
	if held["dev"]["cpus"] != 3 {
		t.Fatalf("dev was offered %v cpus, want exactly its limit 3", held["dev"]["cpus"])
	}
	// More frameworks in the role, more cycles: still 3.
	a.AddFramework(FrameworkSpec{ID: "capped2", Roles: []string{"dev"}}, nil, true)
	if got := a.Allocate(t0.Add(time.Second)); len(got) != 0 {
		t.Fatalf("role at its limit offered %+v", got)
	}
	// Another role gets the rest.
	a.AddFramework(FrameworkSpec{ID: "free", Roles: []string{"prod"}}, nil, true)
	held = heldBy(a.Allocate(t0.Add(2 * time.Second)))
	if held["prod"]["cpus"] != 5 || held["dev"] != nil {
		t.Fatalf("after adding prod: %v, want prod cpus:5 and nothing for dev", held)
	}
}

// A parent's limit caps its whole subtree.
func TestQuotaParentLimitCapsSubroles(t *testing.T) {
	a := New(Config{Seed: 2})
	agents(t, a, 6, "cpus:2;mem:1024")
	mustQuota(t, a, "eng", "", "cpus:5")
	for _, r := range []string{"eng", "eng/a", "eng/b", "eng/b/x"} {
		a.AddFramework(FrameworkSpec{ID: "fw-" + r, Roles: []string{r}}, nil, true)
	}
	var total float64
	now := t0
	for cycle := 0; cycle < 5; cycle++ {
		for _, m := range heldBy(a.Allocate(now)) {
			total += m["cpus"]
		}
		now = now.Add(time.Second)
	}
	if total != 5 {
		t.Fatalf("eng's subtree was offered %v cpus, want its limit 5", total)
	}
	st := a.Quotas()
	if len(st) != 1 || st[0].Consumed["cpus"] != 5 || st[0].Limit["cpus"] != 5 {
		t.Fatalf("quota status %+v", st)
	}
	if _, limited := st[0].Limit["mem"]; limited {
		t.Fatalf("mem reported as limited: %+v", st[0].Limit)
	}
}

// Reservations count against the limit whether or not they are allocated,
// and are offered even at the limit.
func TestQuotaLimitCountsReservations(t *testing.T) {
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "r", Total: res(t, "cpus(dev):2;mem(dev):512")}, nil)
	agents(t, a, 2, "cpus:2;mem:1024")
	mustQuota(t, a, "dev", "", "cpus:3")
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"dev"}}, nil, true)
	held := heldBy(a.Allocate(t0))["dev"]
	if held["cpus(dev)"] != 2 || held["cpus"] != 1 {
		t.Fatalf("dev got %v, want its reservation (cpus 2) and 1 unreserved cpu", held)
	}
}

// A role below its guarantee is served before fair sharing: here DRF alone
// would give every free agent to silver (share 0) rather than gold.
func TestQuotaGuaranteeServedFirst(t *testing.T) {
	a := New(Config{Seed: 3})
	a.AddAgent(AgentSpec{ID: "busy", Total: res(t, "cpus:2;mem:1024")}, map[string]mesos.Resources{
		"gold": allocated(res(t, "cpus:2;mem:1024"), "gold"),
	})
	agents(t, a, 3, "cpus:2;mem:1024")
	a.AddFramework(FrameworkSpec{ID: "gold", Roles: []string{"gold"}}, nil, true)
	a.AddFramework(FrameworkSpec{ID: "silver", Roles: []string{"silver"}}, nil, true)
	mustQuota(t, a, "gold", "cpus:6;mem:3072", "")
	held := heldBy(a.Allocate(t0))
	if held["gold"]["cpus"] != 4 || held["silver"]["cpus"] != 2 {
		t.Fatalf("offers %v, want gold 4 more cpus (to its guarantee of 6) and silver the last 2", held)
	}
}

// Unsatisfied guarantees hold resources back: while gold cannot take its
// guarantee (suppressed), silver is offered only what exceeds it.
func TestQuotaHeadroomHeldBack(t *testing.T) {
	a := New(Config{Seed: 4})
	agents(t, a, 4, "cpus:2;mem:1024")
	a.AddFramework(FrameworkSpec{ID: "gold", Roles: []string{"gold"}, SuppressedRoles: []string{"gold"}}, nil, true)
	a.AddFramework(FrameworkSpec{ID: "silver", Roles: []string{"silver"}}, nil, true)
	mustQuota(t, a, "gold", "cpus:4;mem:2048", "")
	now := t0
	var silver float64
	for cycle := 0; cycle < 3; cycle++ {
		silver += heldBy(a.Allocate(now))["silver"]["cpus"]
		now = now.Add(time.Second)
	}
	if silver != 4 {
		t.Fatalf("silver was offered %v cpus, want 4 (8 minus gold's unsatisfied guarantee of 4)", silver)
	}
	ex := a.Explain(now, "silver")
	if !ex.Has(ReasonQuotaHeadroom) {
		t.Fatalf("explanation lacks quota_headroom:\n%s", ex)
	}
	a.Revive("gold", nil)
	held := heldBy(a.Allocate(now))
	if held["gold"]["cpus"] != 4 {
		t.Fatalf("revived gold got %v, want its guarantee of 4 cpus", held)
	}
}

func TestQuotaRemovedRestoresFairSharing(t *testing.T) {
	a := New(Config{Seed: 1})
	agents(t, a, 4, "cpus:2;mem:1024")
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"dev"}}, nil, true)
	mustQuota(t, a, "dev", "", "cpus:1")
	if got := heldBy(a.Allocate(t0))["dev"]["cpus"]; got != 1 {
		t.Fatalf("got %v cpus under a limit of 1", got)
	}
	if err := a.SetQuota("dev", nil, nil); err != nil {
		t.Fatal(err)
	}
	if len(a.Quotas()) != 0 || a.quotaOn {
		t.Fatalf("quota still on after removal: %+v", a.Quotas())
	}
	if got := heldBy(a.Allocate(t0.Add(time.Second)))["dev"]["cpus"]; got != 7 {
		t.Fatalf("after removing the quota got %v more cpus, want the other 7", got)
	}
}

func TestSetQuotaRejectsBadInput(t *testing.T) {
	a := New(Config{})
	for _, tc := range []struct{ role, g, l, want string }{
		{"dev", "cpus:4", "cpus:2", "exceeds limit"},
		{"dev", "ports:[1-10]", "", "scalars only"},
		{"", "cpus:1", "", "invalid role"},
		{"eng/", "cpus:1", "", "invalid role"},
	} {
		err := a.SetQuota(tc.role, res(t, tc.g), res(t, tc.l))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SetQuota(%q, %q, %q) = %v, want an error containing %q", tc.role, tc.g, tc.l, err, tc.want)
		}
	}
	mustQuota(t, a, "eng", "cpus:4", "")
	mustQuota(t, a, "eng/a", "cpus:3", "")
	if err := a.SetQuota("eng/b", res(t, "cpus:2"), nil); err == nil || !strings.Contains(err.Error(), "sub-roles of eng") {
		t.Fatalf("sub-role guarantees above the parent's accepted: %v", err)
	}
	if err := a.SetQuota("eng", res(t, "cpus:2"), nil); err == nil {
		t.Fatal("parent guarantee below its sub-roles' accepted")
	}
	if len(a.Quotas()) != 2 {
		t.Fatalf("a rejected quota changed something: %+v", a.Quotas())
	}
}

// Limits may be lowered below consumption (force): nothing more is
// offered, nothing is taken back.
func TestQuotaLimitBelowConsumption(t *testing.T) {
	a := New(Config{Seed: 1})
	agents(t, a, 2, "cpus:2;mem:1024")
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"dev"}}, nil, true)
	offers := a.Allocate(t0)
	mustQuota(t, a, "dev", "", "cpus:1;mem:512")
	declineAll(a, offers[:1], 0, t0)
	if got := a.Allocate(t0.Add(time.Second)); len(got) != 0 {
		t.Fatalf("role over its limit offered %+v", got)
	}
	declineAll(a, offers[1:], 0, t0)
	if got := heldBy(a.Allocate(t0.Add(2 * time.Second)))["dev"]; got["cpus"] != 1 || got["mem"] != 512 {
		t.Fatalf("got %v, want cpus 1 and mem 512 once under the limit", got)
	}
}

// Names a limit does not mention are not limited (Mesos semantics): a role
// at its cpus limit may still be offered memory.
func TestQuotaLimitOnlyNamedResources(t *testing.T) {
	a := New(Config{Seed: 1})
	agents(t, a, 2, "cpus:2;mem:1024")
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"dev"}}, nil, true)
	mustQuota(t, a, "dev", "", "cpus:1")
	held := heldBy(a.Allocate(t0))["dev"]
	if held["cpus"] != 1 || held["mem"] != 2048 {
		t.Fatalf("got %v, want cpus 1 (limited) and all 2048 mem (not limited)", held)
	}
}

func TestRolesSummary(t *testing.T) {
	a := New(Config{Seed: 1})
	a.AddAgent(AgentSpec{ID: "agent", Total: res(t, "cpus:4;mem:1024;cpus(db):2")}, nil)
	a.AddFramework(FrameworkSpec{ID: "fw", Roles: []string{"web"}}, nil, true)
	a.SetWeight("gold", 3)
	mustQuota(t, a, "db", "cpus:1", "cpus:4")
	a.Allocate(t0)
	got := map[string]RoleStatus{}
	for _, r := range a.Roles() {
		got[r.Role] = r
	}
	if got["gold"].Weight != 3 || got["web"].Allocated["cpus"] != 4 || got["web"].Frameworks[0] != "fw" {
		t.Fatalf("roles %+v", got)
	}
	if db := got["db"]; db.Reserved["cpus"] != 2 || db.Quota == nil || db.Quota.Consumed["cpus"] != 2 || db.Quota.Guarantee["cpus"] != 1 {
		t.Fatalf("db %+v quota %+v", db, db.Quota)
	}
	if w := a.Weights(); w["gold"] != 3 || len(w) != 1 {
		t.Fatalf("weights %v", w)
	}
}
