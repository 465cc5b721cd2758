package allocator

import (
	"fmt"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// The scenarios of Mesos's hierarchical_allocator_benchmarks.cpp: many frameworks launching tasks, and
// quota.

// mfProfile is a framework profile of MultiFrameworkAllocations.
type mfProfile struct {
	name, role string
	tasks      int
	cpus, mem  float64
	perOffer   int
}

// RunMultiFrameworkAllocations reproduces MultiFrameworkAllocations: 80
// agents of cpus:64;mem:488000 (p.Agents scales the count); 4 Marathon-like
// frameworks (roleA-i, 4,000 tasks of cpus:0.07;mem:400, at most 100 per
// offer), 500 Jenkins-like ones (roleB, 5 tasks of cpus:0.1;mem:4000, one
// per offer) and 50 Spark-dispatcher-like ones (roleC-i, 20 tasks of
// cpus:1;mem:1000, at most 5 per offer): 19,500 tasks. Each round times
// one Allocate; every framework launches what fits within its caps and
// returns the rest unfiltered. A framework that has launched all its
// tasks suppresses offers, as a well-behaved framework does. It stops when
// all tasks run or after p.Rounds rounds (default 1,000).
func RunMultiFrameworkAllocations(p ScenarioParams) ScenarioResult {
	return runMultiFramework(p, true)
}

// RunMultiFrameworkAllocationsUnfiltered is MultiFrameworkAllocations with
// Mesos's exact framework behaviour: a framework that has launched all its
// tasks keeps taking offers and returning them unfiltered. Under DRF the
// finished Spark-like roles, whose shares stay smallest, then take nearly
// every agent each cycle, and the others starve; default 200 rounds.
func RunMultiFrameworkAllocationsUnfiltered(p ScenarioParams) ScenarioResult {
	if p.Rounds <= 0 {
		p.Rounds = 200
	}
	return runMultiFramework(p, false)
}

func runMultiFramework(p ScenarioParams, suppressDone bool) ScenarioResult {
	var profiles []mfProfile
	for i := 1; i <= 4; i++ {
		profiles = append(profiles, mfProfile{fmt.Sprintf("Marathon-%d", i), fmt.Sprintf("roleA-%d", i), 4000, 0.07, 400, 100})
	}
	for i := 0; i < 500; i++ {
		profiles = append(profiles, mfProfile{fmt.Sprintf("Jenkins-%d", i), "roleB", 5, 0.1, 4000, 1})
	}
	for i := 1; i <= 50; i++ {
		profiles = append(profiles, mfProfile{fmt.Sprintf("SparkDispatcher-%d", i), fmt.Sprintf("roleC-%d", i), 20, 1, 1000, 5})
	}
	r := ScenarioResult{Agents: p.Agents, Frameworks: len(profiles), Roles: 55}
	a := p.newAllocator()
	total := mesos.Resources{scalarResource("cpus", 64), scalarResource("mem", 488000)}
	d := p.timed(func() {
		for i := 0; i < p.Agents; i++ {
			id := fmt.Sprintf("agent-%d", i)
			a.AddAgent(AgentSpec{ID: id, Hostname: id, Total: total}, nil)
		}
	})
	r.step("add agents", d, p.Agents)
	r.Setup += d
	byID := map[string]*mfProfile{}
	launched := map[string]int{}
	want := 0
	d = p.timed(func() {
		for i := range profiles {
			pr := &profiles[i]
			byID[pr.name] = pr
			want += pr.tasks
			a.AddFramework(FrameworkSpec{ID: pr.name, Roles: []string{pr.role}}, nil, true)
		}
	})
	r.step("add frameworks", d, len(profiles))
	r.Setup += d
	maxRounds := p.Rounds
	if maxRounds <= 0 {
		maxRounds = 1000
	}
	now := benchEpoch
	done := 0
	var cpusUsed, memUsed float64
	for round := 0; round < maxRounds && done < want; round++ {
		now = now.Add(time.Second)
		offers, took := r.allocateRound(p, a, now)
		before := done
		for _, o := range offers {
			pr := byID[o.FrameworkID]
			var c, m float64
			for _, x := range o.Resources {
				switch x.Name {
				case "cpus":
					c += x.GetScalar().GetValue()
				case "mem":
					m += x.GetScalar().GetValue()
				}
			}
			k := 0
			for k < pr.perOffer && launched[pr.name] < pr.tasks && c >= pr.cpus-1e-9 && m >= pr.mem-1e-9 {
				c, m = c-pr.cpus, m-pr.mem
				launched[pr.name]++
				k++
			}
			done += k
			if suppressDone && launched[pr.name] == pr.tasks {
				a.Suppress(pr.name, nil)
			}
			if k == 0 {
				a.Recover(o.FrameworkID, o.AgentID, o.Resources, 0, now)
				continue
			}
			cpusUsed += float64(k) * pr.cpus
			memUsed += float64(k) * pr.mem
			rest := mesos.Resources{scalarResource("cpus", c), scalarResource("mem", m)}
			a.Recover(o.FrameworkID, o.AgentID, withAllocation(rest, o.Role), 0, now)
		}
		p.progress("round %d: %d offers in %v, launched %d tasks (%d of %d)", round, len(offers), took, done-before, done, want)
	}
	r.count("tasks launched", done)
	r.count("tasks wanted", want)
	r.count("rounds", len(r.Rounds))
	r.Notes = append(r.Notes, fmt.Sprintf("allocated cpus:%.1f;mem:%.0f of capacity cpus:%d;mem:%d", cpusUsed, memUsed, 64*p.Agents, 488000*p.Agents))
	return r
}

// RunLargeAndSmallQuota reproduces LargeAndSmallQuota with the DRF
// sorter: p.Frameworks roles, five small for each large, one framework
// each; small roles have quota cpus:1;mem:1024;disk:1024 (half an agent),
// large ones cpus:4;mem:4096;disk:4096 (two agents), guarantee and limit
// alike; small/5 + 5×large agents of cpus:2;mem:2048;disk:2048. It times a
// full cycle, then a second one that must offer nothing. At 3,000 roles
// that is Mesos's /2 (2,500 + 500).
func RunLargeAndSmallQuota(p ScenarioParams) ScenarioResult {
	large := max(1, p.Frameworks/6)
	small := max(0, p.Frameworks-large)
	agents := small/5 + 5*large
	r := ScenarioResult{Agents: agents, Frameworks: small + large, Roles: small + large}
	a := p.newAllocator()
	total := mesos.Resources{scalarResource("cpus", 2), scalarResource("mem", 2048), scalarResource("disk", 2048)}
	d := p.timed(func() {
		for i := 0; i < agents; i++ {
			id := fmt.Sprintf("agent%d", i)
			a.AddAgent(AgentSpec{ID: id, Hostname: id, Total: total}, nil)
		}
	})
	r.step("add agents", d, agents)
	r.Setup += d
	role := func(i int) string {
		if i < small {
			return fmt.Sprintf("smallQuotaRole%d", i)
		}
		return fmt.Sprintf("largeQuotaRole%d", i-small)
	}
	d = p.timed(func() {
		for i := 0; i < small+large; i++ {
			a.AddFramework(FrameworkSpec{ID: "framework_" + role(i), Roles: []string{role(i)}}, nil, true)
		}
	})
	r.step("add frameworks", d, small+large)
	r.Setup += d
	smallQ := mesos.Resources{scalarResource("cpus", 1), scalarResource("mem", 1024), scalarResource("disk", 1024)}
	largeQ := mesos.Resources{scalarResource("cpus", 4), scalarResource("mem", 4096), scalarResource("disk", 4096)}
	d = p.timed(func() {
		for i := 0; i < small+large; i++ {
			q := smallQ
			if i >= small {
				q = largeQ
			}
			if err := a.SetQuota(role(i), q, q); err != nil {
				panic(err) // the scenario's quota is valid by construction
			}
		}
	})
	r.step("set quota", d, small+large)
	r.Setup += d
	p.progress("%d agents, %d roles, %d frameworks set up in %v", agents, small+large, small+large, r.Setup)
	r.allocateCycles(p, a, 2)
	return r
}

// runNonQuotaVsQuota is NonQuotaVsQuota: p.Frameworks/2 roles with two
// frameworks and two agents of cpus:2;mem:2048;disk:2048 each; with quota,
// each role's guarantee and limit are two agents' worth, so the same
// allocations are made.
func runNonQuotaVsQuota(p ScenarioParams, quota bool) ScenarioResult {
	roles := max(1, p.Frameworks/2)
	r := ScenarioResult{Agents: 2 * roles, Frameworks: 2 * roles, Roles: roles}
	a := p.newAllocator()
	total := mesos.Resources{scalarResource("cpus", 2), scalarResource("mem", 2048), scalarResource("disk", 2048)}
	d := p.timed(func() {
		for i := 0; i < 2*roles; i++ {
			id := fmt.Sprintf("agent%d", i)
			a.AddAgent(AgentSpec{ID: id, Hostname: id, Total: total}, nil)
		}
	})
	r.step("add agents", d, 2*roles)
	r.Setup += d
	d = p.timed(func() {
		for i := 0; i < roles; i++ {
			for j := 0; j < 2; j++ {
				a.AddFramework(FrameworkSpec{ID: fmt.Sprintf("framework_%d_%d", i, j), Roles: []string{fmt.Sprintf("role%d", i)}}, nil, true)
			}
		}
	})
	r.step("add frameworks", d, 2*roles)
	r.Setup += d
	if quota {
		q := mesos.Resources{scalarResource("cpus", 4), scalarResource("mem", 4096), scalarResource("disk", 4096)}
		d = p.timed(func() {
			for i := 0; i < roles; i++ {
				if err := a.SetQuota(fmt.Sprintf("role%d", i), q, q); err != nil {
					panic(err)
				}
			}
		})
		r.step("set quota", d, roles)
		r.Setup += d
	}
	r.allocateCycles(p, a, 2)
	return r
}

// RunNonQuota is NonQuotaVsQuota without quota.
func RunNonQuota(p ScenarioParams) ScenarioResult { return runNonQuotaVsQuota(p, false) }

// RunQuota is NonQuotaVsQuota with quota.
func RunQuota(p ScenarioParams) ScenarioResult { return runNonQuotaVsQuota(p, true) }
