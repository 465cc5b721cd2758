package allocator

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// TestPropertyQuotaGuaranteesMet builds random clusters and random quota
// guarantees that the cluster can honour (their sum fits in what is
// unreserved), with frameworks in guaranteed roles and greedy frameworks
// in other roles that already hold less. After one cycle in which every
// framework keeps what it is offered, every guaranteed role holds at
// least its guarantee, and no role exceeds a limit.
func TestPropertyQuotaGuaranteesMet(t *testing.T) {
	checked := 0
	defer func() {
		if checked < 40 {
			t.Errorf("only %d guarantees checked", checked)
		}
	}()
	for seed := int64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewSource(seed))
		a := New(Config{Seed: seed})
		var totCPU, totMem float64
		for i := 0; i < 5+rng.Intn(30); i++ {
			c, m := float64(1+rng.Intn(8)), float64(256*(1+rng.Intn(16)))
			text := fmt.Sprintf("cpus:%g;mem:%g", c, m)
			if rng.Intn(4) == 0 {
				text += ";cpus(other):1;mem(other):128" // reserved for a role nobody guarantees
			}
			a.AddAgent(AgentSpec{ID: fmt.Sprintf("agent%d", i), Total: res(t, text)}, nil)
			totCPU, totMem = totCPU+c, totMem+m
		}
		// Guarantees: up to 90% of the unreserved cluster in total.
		type gq struct {
			role      string
			cpus, mem float64
			limited   bool
		}
		var gs []gq
		leftCPU, leftMem := 0.9*totCPU, 0.9*totMem
		roles := []string{"a", "b", "c", "d/x", "d/y"}
		for _, role := range roles[:1+rng.Intn(len(roles))] {
			c := math.Floor(rng.Float64() * leftCPU / 2)
			m := math.Floor(rng.Float64()*leftMem/2/64) * 64
			if c < 1 && m < 64 {
				continue
			}
			leftCPU, leftMem = leftCPU-c, leftMem-m
			g := gq{role: role, cpus: c, mem: m, limited: rng.Intn(2) == 0}
			limit := ""
			if g.limited {
				limit = fmt.Sprintf("cpus:%g;mem:%g", c+float64(rng.Intn(3)), m+float64(64*rng.Intn(3)))
			}
			mustQuota(t, a, role, fmt.Sprintf("cpus:%g;mem:%g", c, m), limit)
			gs = append(gs, g)
			for i := 0; i < 1+rng.Intn(2); i++ {
				a.AddFramework(FrameworkSpec{ID: fmt.Sprintf("%s-fw%d", role, i), Roles: []string{role}}, nil, true)
			}
		}
		// Greedy competitors with a head start in DRF order.
		for i := 0; i < 1+rng.Intn(4); i++ {
			a.AddFramework(FrameworkSpec{ID: fmt.Sprintf("greedy%d", i), Roles: []string{fmt.Sprintf("g%d", i)}}, nil, true)
		}
		a.AddFramework(FrameworkSpec{ID: "other", Roles: []string{"other"}}, nil, true)
		held := map[string]map[string]float64{}
		for _, o := range a.Allocate(t0) {
			for r := o.Role; r != ""; r = parentRole(r) {
				if held[r] == nil {
					held[r] = map[string]float64{}
				}
				for _, x := range o.Resources {
					if reservationRole(&x) == "" && x.GetType() == mesos.SCALAR {
						held[r][x.Name] += x.GetScalar().GetValue()
					}
				}
			}
		}
		checked += len(gs)
		for _, g := range gs {
			if held[g.role]["cpus"] < g.cpus-1e-9 || held[g.role]["mem"] < g.mem-1e-9 {
				t.Errorf("seed %d: role %s holds %v, below its guarantee cpus:%g;mem:%g (cluster cpus:%g;mem:%g)",
					seed, g.role, held[g.role], g.cpus, g.mem, totCPU, totMem)
			}
		}
		for _, q := range a.Quotas() {
			for name, limit := range q.Limit {
				if q.Consumed[name] > limit+1e-9 {
					t.Errorf("seed %d: role %s consumes %s:%g over its limit %g", seed, q.Role, name, q.Consumed[name], limit)
				}
			}
		}
	}
}

// leontief is a framework that runs tasks of a fixed demand.
type leontief struct {
	id, role  string
	cpus, mem float64
	tasks     int
	on        map[string]int // tasks per agent
}

// TestPropertyDRFEnvyFree runs frameworks with random Leontief demands on
// identical agents: each launches as many tasks as fit in every offer and
// declines (with a filter) offers it cannot use. Demands divide the agents
// (so a framework that gets an agent fills its dominant resource there).
// While the cluster is less than half full nobody is blocked, and DRF must
// be envy-free within one agent's granularity: no framework could run more
// tasks with another's allocation (as it lies on the agents), less one
// agent's worth, than it runs with its own. Frameworks are all in one
// role, or each in its own role of weight 1; with random weights, weighted
// dominant shares stay within one agent of each other.
func TestPropertyDRFEnvyFree(t *testing.T) {
	for seed := int64(1); seed <= 30; seed++ {
		for _, variant := range []string{"one role", "own roles", "weighted"} {
			rng := rand.New(rand.NewSource(seed))
			a := New(Config{Seed: seed})
			const agentCPU, agentMem = 16.0, 16384.0
			n := 20 + rng.Intn(40)
			for i := 0; i < n; i++ {
				a.AddAgent(AgentSpec{ID: fmt.Sprintf("agent%d", i), Total: res(t, fmt.Sprintf("cpus:%g;mem:%g", agentCPU, agentMem))}, nil)
			}
			totCPU, totMem := agentCPU*float64(n), agentMem*float64(n)
			fws := map[string]*leontief{}
			weights := map[string]float64{}
			for i := 0; i < 2+rng.Intn(5); i++ {
				f := &leontief{id: fmt.Sprintf("fw%d", i), role: "*", on: map[string]int{},
					cpus: []float64{0.5, 1, 2, 4}[rng.Intn(4)], mem: []float64{256, 512, 1024, 2048}[rng.Intn(4)]}
				if variant != "one role" {
					f.role = fmt.Sprintf("r%d", i)
					weights[f.role] = 1
					if variant == "weighted" {
						weights[f.role] = float64(1 + rng.Intn(3))
						a.SetWeight(f.role, weights[f.role])
					}
				}
				fws[f.id] = f
				a.AddFramework(FrameworkSpec{ID: f.id, Roles: []string{f.role}}, nil, true)
			}
			share := func(f *leontief) float64 {
				return float64(f.tasks) * math.Max(f.cpus/totCPU, f.mem/totMem)
			}
			now := t0
			for cycle := 0; cycle < 200; cycle++ {
				var usedCPU, usedMem float64
				for _, f := range fws {
					usedCPU += float64(f.tasks) * f.cpus
					usedMem += float64(f.tasks) * f.mem
				}
				if usedCPU > totCPU/2 || usedMem > totMem/2 {
					break
				}
				offers := a.Allocate(now)
				if len(offers) == 0 {
					break
				}
				for _, o := range offers {
					f := fws[o.FrameworkID]
					q := qty(o.Resources)
					k := int(math.Min(q["cpus"]/f.cpus, q["mem"]/f.mem) + 1e-9)
					if k == 0 {
						a.Recover(o.FrameworkID, o.AgentID, o.Resources, time.Hour, now)
						continue
					}
					f.tasks += k
					f.on[o.AgentID] += k
					rest := minus(o.Resources, res(t, fmt.Sprintf("cpus:%g;mem:%g", float64(k)*f.cpus, float64(k)*f.mem)))
					if len(rest) > 0 {
						a.Recover(o.FrameworkID, o.AgentID, rest, 0, now)
					}
				}
				now = now.Add(time.Second)
			}
			agentShare := math.Max(agentCPU/totCPU, agentMem/totMem)
			for _, i := range fws {
				perAgent := math.Floor(math.Min(agentCPU/i.cpus, agentMem/i.mem))
				for _, j := range fws {
					if i == j {
						continue
					}
					if variant == "weighted" {
						si, sj := share(i)/weights[i.role], share(j)/weights[j.role]
						if sj-si > agentShare+1e-9 {
							t.Errorf("seed %d %s: %s (weight %g) has weighted share %.4f, %s (weight %g) %.4f: more than one agent (%.4f) apart",
								seed, variant, i.id, weights[i.role], si, j.id, weights[j.role], sj, agentShare)
						}
						continue
					}
					// tasks i could run with j's allocation, agent by agent
					withJ := 0.0
					for _, k := range j.on {
						withJ += math.Floor(math.Min(float64(k)*j.cpus/i.cpus, float64(k)*j.mem/i.mem) + 1e-9)
					}
					if withJ > float64(i.tasks)+perAgent {
						t.Errorf("seed %d %s: %s runs %d tasks of <%g cpus, %g mem> but could run %g with %s's allocation (%d × <%g, %g>); one agent fits %g",
							seed, variant, i.id, i.tasks, i.cpus, i.mem, withJ, j.id, j.tasks, j.cpus, j.mem, perAgent)
					}
				}
			}
		}
	}
}
