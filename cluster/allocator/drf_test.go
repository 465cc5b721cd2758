package allocator

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// minus returns o's scalars minus d's (both unreserved, scalar only), with
// o's allocation info.
func minus(o, d mesos.Resources) mesos.Resources {
	dq := qty(d)
	var out mesos.Resources
	for _, r := range o {
		if v := r.GetScalar().GetValue() - dq[r.Name]; v > 1e-9 {
			r.Scalar = &mesos.Value_Scalar{Value: v}
			out = append(out, r)
		}
	}
	return out
}

// TestDRFPaperExample replays the worked example of the DRF paper (§4):
// 9 CPUs and 18 GB; A runs tasks of <1 CPU, 4 GB>, B tasks of <3 CPU, 1 GB>.
// The cluster is one agent whose whole free part is offered each cycle to
// the framework DRF ranks first; that framework launches one task if it fits
// and returns the rest unfiltered, or declines. So the order in which the
// allocator picks frameworks alone decides the split: DRF must pick
// the lowest dominant share each time (A, B, A, B, A when A registered
// first; B, A, A, B, A otherwise) and end with A 3 tasks, B 2 tasks, both
// dominant shares 2/3. Greedy orders give 4/1 (A first) or 0/3 (B first).
func TestDRFPaperExample(t *testing.T) {
	for _, tc := range []struct {
		order []string
		want  string
	}{
		{[]string{"A", "B"}, "[A B A B A]"},
		{[]string{"B", "A"}, "[B A A B A]"},
	} {
		order := tc.order
		t.Run(order[0]+"First", func(t *testing.T) {
			demand := map[string]mesos.Resources{
				"A": res(t, "cpus:1;mem:4096"),
				"B": res(t, "cpus:3;mem:1024"),
			}
			a := New(Config{Seed: 1})
			a.AddAgent(AgentSpec{ID: "agent", Total: res(t, "cpus:9;mem:18432")}, nil)
			for _, id := range order {
				a.AddFramework(FrameworkSpec{ID: id, Roles: []string{"*"}}, nil, true)
			}
			tasks := map[string]int{}
			var launches []string
			now := t0
			for cycle := 0; cycle < 100; cycle++ {
				offers := a.Allocate(now)
				if len(offers) == 0 {
					break
				}
				if len(offers) != 1 {
					t.Fatalf("cycle %d: %d offers from one agent", cycle, len(offers))
				}
				o := offers[0]
				d := demand[o.FrameworkID]
				if within(d, o.Resources) {
					tasks[o.FrameworkID]++
					launches = append(launches, o.FrameworkID)
					a.Recover(o.FrameworkID, o.AgentID, minus(o.Resources, d), 0, now)
				} else {
					a.Recover(o.FrameworkID, o.AgentID, o.Resources, time.Hour, now)
				}
				now = now.Add(time.Second)
			}
			if got := fmt.Sprint(launches); got != tc.want {
				t.Errorf("launch order %s, want %s", got, tc.want)
			}
			if tasks["A"] != 3 || tasks["B"] != 2 {
				t.Fatalf("tasks A=%d B=%d, want A=3 B=2", tasks["A"], tasks["B"])
			}
			shareA := math.Max(float64(tasks["A"])*1/9, float64(tasks["A"])*4/18)
			shareB := math.Max(float64(tasks["B"])*3/9, float64(tasks["B"])*1/18)
			if !approx(shareA, 2.0/3) || !approx(shareB, 2.0/3) {
				t.Errorf("dominant shares A=%v B=%v, want 2/3 each", shareA, shareB)
			}
			tot := a.Totals()
			if tot.Allocated["cpus"] != 9 || tot.Allocated["mem"] != 3*4096+2*1024 {
				t.Errorf("allocated %v, want cpus 9 mem %d", tot.Allocated, 3*4096+2*1024)
			}
		})
	}
}

// TestUnreservedDRF follows Mesos's HierarchicalAllocatorTest.UnreservedDRF:
// each new agent goes wholly to the framework of the lowest-share role, and
// within it to the lowest-share framework.
func TestUnreservedDRF(t *testing.T) {
	a := New(Config{})
	now := t0
	step := func(agent, total, want string) {
		t.Helper()
		a.AddAgent(AgentSpec{ID: agent, Total: res(t, total)}, nil)
		offers := a.Allocate(now)
		if len(offers) != 1 || offers[0].FrameworkID != want || offers[0].AgentID != agent {
			t.Fatalf("after adding %s: offers %+v, want one to %s", agent, offers, want)
		}
		if !within(res(t, total), offers[0].Resources) || !within(offers[0].Resources, res(t, total)) {
			t.Fatalf("offer %v is not all of %s", qty(offers[0].Resources), total)
		}
		now = now.Add(time.Second)
	}
	a.AddAgent(AgentSpec{ID: "agent1", Total: res(t, "cpus:2;mem:1024")}, nil)
	a.AddFramework(FrameworkSpec{ID: "fw1", Roles: []string{"role1"}}, nil, true)
	if o := a.Allocate(now); len(o) != 1 || o[0].FrameworkID != "fw1" {
		t.Fatalf("offers %+v, want agent1 to fw1", o)
	}
	a.AddFramework(FrameworkSpec{ID: "fw2", Roles: []string{"role2"}}, nil, true)
	step("agent2", "cpus:1;mem:512", "fw2")
	step("agent3", "cpus:3;mem:2048", "fw2")
	a.AddFramework(FrameworkSpec{ID: "fw3", Roles: []string{"role1"}}, nil, true)
	step("agent4", "cpus:4;mem:4096", "fw3")
	a.AddFramework(FrameworkSpec{ID: "fw4", Roles: []string{"role1"}}, nil, true)
	// role2 (0.36) is below role1 (0.63) although fw4 holds nothing.
	step("agent5", "cpus:1;mem:512", "fw2")
}

// TestReservedDRF follows Mesos's ReservedDRF: reserved resources count
// towards a role's share, and are shared fairly within their role.
func TestReservedDRF(t *testing.T) {
	a := New(Config{})
	now := t0
	expect := func(want string) {
		t.Helper()
		offers := a.Allocate(now)
		if len(offers) != 1 || offers[0].FrameworkID != want {
			t.Fatalf("offers %+v, want one to %s", offers, want)
		}
	}
	a.AddAgent(AgentSpec{ID: "agent1", Total: res(t, "cpus:1;mem:512;cpus(role1):100;mem(role1):1024")}, nil)
	a.AddFramework(FrameworkSpec{ID: "fw1", Roles: []string{"role1"}}, nil, true)
	expect("fw1")
	a.AddFramework(FrameworkSpec{ID: "fw2", Roles: []string{"role2"}}, nil, true)
	a.AddAgent(AgentSpec{ID: "agent2", Total: res(t, "cpus:2;mem:512")}, nil)
	expect("fw2")
	a.AddAgent(AgentSpec{ID: "agent3", Total: res(t, "cpus:2;mem:512")}, nil)
	expect("fw2")
	a.AddFramework(FrameworkSpec{ID: "fw3", Roles: []string{"role1"}}, nil, true)
	a.AddAgent(AgentSpec{ID: "agent4", Total: res(t, "cpus(role1):2;mem(role1):1024")}, nil)
	expect("fw3")
}

// TestHierarchicalRoles checks that DRF applies level by level: "eng" as a
// whole competes with "ops", then eng/a with eng/b. Flat DRF would give each
// role a third.
func TestHierarchicalRoles(t *testing.T) {
	a := New(Config{Seed: 3})
	for i := 0; i < 12; i++ {
		a.AddAgent(AgentSpec{ID: fmt.Sprintf("agent%d", i), Total: res(t, "cpus:1;mem:1024")}, nil)
	}
	for _, role := range []string{"eng/a", "eng/b", "ops"} {
		a.AddFramework(FrameworkSpec{ID: "fw-" + role, Roles: []string{role}}, nil, true)
	}
	got := map[string]int{}
	for _, o := range a.Allocate(t0) {
		got[o.Role]++
	}
	if got["ops"] != 6 || got["eng/a"] != 3 || got["eng/b"] != 3 {
		t.Fatalf("agents per role %v, want ops 6, eng/a 3, eng/b 3", got)
	}
}

// TestRoleWithOwnFrameworksAndSubroles checks the virtual leaf: frameworks
// directly in "eng" compete with the sub-role "eng/ml" inside "eng".
func TestRoleWithOwnFrameworksAndSubroles(t *testing.T) {
	a := New(Config{Seed: 5})
	for i := 0; i < 16; i++ {
		a.AddAgent(AgentSpec{ID: fmt.Sprintf("agent%d", i), Total: res(t, "cpus:1;mem:1024")}, nil)
	}
	a.AddFramework(FrameworkSpec{ID: "eng", Roles: []string{"eng"}}, nil, true)
	a.AddFramework(FrameworkSpec{ID: "ml", Roles: []string{"eng/ml"}}, nil, true)
	a.AddFramework(FrameworkSpec{ID: "ops", Roles: []string{"ops"}}, nil, true)
	got := map[string]int{}
	for _, o := range a.Allocate(t0) {
		got[o.FrameworkID]++
	}
	if got["ops"] != 8 || got["eng"] != 4 || got["ml"] != 4 {
		t.Fatalf("agents per framework %v, want ops 8, eng 4, ml 4", got)
	}
}

// TestWeightsHonoured checks on random clusters that a role of weight 2 ends
// with twice the dominant share of a role of weight 1, up to the share of
// the largest single agent (offers are whole agents).
func TestWeightsHonoured(t *testing.T) {
	for seed := int64(1); seed <= 30; seed++ {
		rng := rand.New(rand.NewSource(seed))
		a := New(Config{Seed: seed})
		a.SetWeight("gold", 2)
		var totCPU, totMem float64
		var cpusOf, memOf []float64
		n := 40 + rng.Intn(60)
		for i := 0; i < n; i++ {
			c, m := float64(1+rng.Intn(8)), float64(1024*(1+rng.Intn(16)))
			cpusOf, memOf = append(cpusOf, c), append(memOf, m)
			totCPU, totMem = totCPU+c, totMem+m
			a.AddAgent(AgentSpec{ID: fmt.Sprintf("agent%d", i), Total: res(t, fmt.Sprintf("cpus:%g;mem:%g", c, m))}, nil)
		}
		maxAgent := 0.0
		for i := range cpusOf {
			maxAgent = math.Max(maxAgent, math.Max(cpusOf[i]/totCPU, memOf[i]/totMem))
		}
		for i := 0; i < 1+rng.Intn(3); i++ {
			a.AddFramework(FrameworkSpec{ID: fmt.Sprintf("gold%d", i), Roles: []string{"gold"}}, nil, true)
		}
		for i := 0; i < 1+rng.Intn(3); i++ {
			a.AddFramework(FrameworkSpec{ID: fmt.Sprintf("silver%d", i), Roles: []string{"silver"}}, nil, true)
		}
		held := map[string]map[string]float64{"gold": {}, "silver": {}}
		for _, o := range a.Allocate(t0) {
			for k, v := range qty(o.Resources) {
				held[o.Role][k] += v
			}
		}
		share := func(role string) float64 {
			return math.Max(held[role]["cpus"]/totCPU, held[role]["mem"]/totMem)
		}
		gold, silver := share("gold"), share("silver")
		if math.Abs(gold/2-silver) > maxAgent+1e-9 {
			t.Errorf("seed %d: gold share %.3f (weight 2), silver %.3f (weight 1): weighted gap %.3f exceeds one agent (%.3f)",
				seed, gold, silver, math.Abs(gold/2-silver), maxAgent)
		}
		if gold < 1.5*silver {
			t.Errorf("seed %d: gold share %.3f is not about twice silver %.3f", seed, gold, silver)
		}
	}
}
