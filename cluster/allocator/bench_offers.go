package allocator

import (
	"fmt"
	"math"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// The offer-cycle scenarios of Mesos's hierarchical_allocator_tests.cpp other than DeclineOffers.

// offerLoop is the shape shared by DeclineOffers-like scenarios: frameworks
// in one role, agents that already hold used resources for framework
// i mod F, and rounds in which the previous round's offers are recovered
// (with refuse as filter) before one timed Allocate.
type offerLoop struct {
	role   string
	total  func(i int) mesos.Resources
	used   func(i int) mesos.Resources // nil: nothing used
	refuse time.Duration
	// before runs untimed ahead of each round's Allocate.
	before func(a *Allocator, round int, ids []string)
}

func (l offerLoop) run(p ScenarioParams, rounds int) (ScenarioResult, *Allocator) {
	r := ScenarioResult{Agents: p.Agents, Frameworks: p.Frameworks, Roles: 1}
	a := p.newAllocator()
	ids, d := p.addFrameworks(a, p.Frameworks, l.role)
	r.step("add frameworks", d, p.Frameworks)
	r.Setup += d
	p.progress("added %d frameworks in %v", p.Frameworks, d)
	// The agents' descriptions are built before the clock starts.
	specs := make([]AgentSpec, p.Agents)
	used := make([]map[string]mesos.Resources, p.Agents)
	for i := range specs {
		id := fmt.Sprintf("agent%d", i+1)
		specs[i] = AgentSpec{ID: id, Hostname: id, Total: l.total(i)}
		if l.used != nil {
			used[i] = map[string]mesos.Resources{ids[i%len(ids)]: l.used(i)}
		}
	}
	d = p.timed(func() {
		for i := range specs {
			a.AddAgent(specs[i], used[i])
		}
	})
	specs, used = nil, nil // garbage for the rounds' collector otherwise
	r.step("add agents", d, p.Agents)
	r.Setup += d
	p.progress("added %d agents in %v", p.Agents, d)
	now := benchEpoch
	var offers []Offer
	for round := 0; round < rounds; round++ {
		for _, o := range offers {
			a.Recover(o.FrameworkID, o.AgentID, o.Resources, l.refuse, now)
		}
		if l.before != nil {
			l.before(a, round, ids)
		}
		now = now.Add(time.Second)
		var took time.Duration
		offers, took = r.allocateRound(p, a, now)
		p.progress("round %d: %d offers in %v", round, len(offers), took)
	}
	return r, a
}

// suppressShape is DeclineOffers's cluster with mem:1024 used.
func suppressShape() offerLoop {
	used := withAllocation(mesos.Resources{
		scalarResource("cpus", 16),
		scalarResource("mem", 1024),
		scalarResource("disk", 1024),
		rangesResource("ports", makePortRanges(16)),
	}, "*")
	total := declineOffersTotal()
	return offerLoop{
		role:  "*",
		total: func(int) mesos.Resources { return total },
		used:  func(int) mesos.Resources { return used },
	}
}

// RunSuppressOffers reproduces SuppressOffers: each round recovers every
// offer without a filter, suppresses another F/5 frameworks, then times
// one Allocate.
func RunSuppressOffers(p ScenarioParams) ScenarioResult {
	l := suppressShape()
	suppressed := 0
	l.before = func(a *Allocator, round int, ids []string) {
		for n := 0; n < max(1, len(ids)/5) && suppressed < len(ids); n++ {
			a.Suppress(ids[suppressed], nil)
			suppressed++
		}
	}
	r, _ := l.run(p, roundsOr(p.Rounds, 5))
	r.count("suppressed frameworks", suppressed)
	return r
}

// RunExtremeSuppressOffers reproduces ExtremeSuppressOffers: 99% of the
// frameworks suppressed before the first round; offers recovered without
// a filter between rounds.
func RunExtremeSuppressOffers(p ScenarioParams) ScenarioResult {
	l := suppressShape()
	n := 0
	l.before = func(a *Allocator, round int, ids []string) {
		if round == 0 {
			n = len(ids) * 99 / 100
			for _, id := range ids[:n] {
				a.Suppress(id, nil)
			}
		}
	}
	r, _ := l.run(p, roundsOr(p.Rounds, 5))
	r.count("suppressed frameworks", n)
	return r
}

func roundsOr(r, def int) int {
	if r <= 0 {
		return def
	}
	return r
}

// RunAddAndUpdateSlave reproduces AddAndUpdateSlave: add frameworks, add
// agents of cpus:2;mem:1024;disk:4096;ports:[31000-32000], agent i holding
// cpus:1;mem:128;disk:1024 and four port ranges for framework i mod F; then
// update every agent with +cpus:10 revocable. Mesos allocates on each
// event; agora's master batches, so each phase is followed by one timed
// Allocate (the rounds).
func RunAddAndUpdateSlave(p ScenarioParams) ScenarioResult {
	total := mesos.Resources{
		scalarResource("cpus", 2), scalarResource("mem", 1024), scalarResource("disk", 4096),
		rangesResource("ports", []mesos.Value_Range{{Begin: 31000, End: 32000}}),
	}
	used := withAllocation(mesos.Resources{
		scalarResource("cpus", 1), scalarResource("mem", 128), scalarResource("disk", 1024),
		rangesResource("ports", []mesos.Value_Range{{Begin: 31126, End: 31510}, {Begin: 31512, End: 31623}, {Begin: 31810, End: 31852}, {Begin: 31854, End: 31964}}),
	}, "*")
	l := offerLoop{role: "*", total: func(int) mesos.Resources { return total }, used: func(int) mesos.Resources { return used }}
	r, a := l.run(p, 1)
	revocable := scalarResource("cpus", 10)
	revocable.Revocable = &mesos.Resource_RevocableInfo{}
	updated := append(append(mesos.Resources(nil), total...), revocable)
	d := p.timed(func() {
		for i := 0; i < p.Agents; i++ {
			id := fmt.Sprintf("agent%d", i+1)
			a.UpdateAgent(AgentSpec{ID: id, Hostname: id, Total: updated})
		}
	})
	r.step("update agents", d, p.Agents)
	p.progress("updated %d agents in %v", p.Agents, d)
	offers := 0
	took := p.timed(func() { offers = len(a.Allocate(benchEpoch.Add(time.Hour))) })
	r.Rounds = append(r.Rounds, RoundResult{Allocate: took, Offers: offers})
	r.Notes = append(r.Notes, "revocable resources are ignored by the allocator, so the update changes no totals")
	return r
}

// RunAllocatorBacklog reproduces AllocatorBacklog: add frameworks, add
// agents, revive every framework. Coalescing the triggers into one
// allocation run is the master's job; here each trigger is an allocator
// call and one Allocate follows.
func RunAllocatorBacklog(p ScenarioParams) ScenarioResult {
	total := declineOffersTotal()
	r := ScenarioResult{Agents: p.Agents, Frameworks: p.Frameworks, Roles: 1}
	a := p.newAllocator()
	ids, d := p.addFrameworks(a, p.Frameworks, "*")
	r.step("add frameworks", d, p.Frameworks)
	r.Setup += d
	d = p.timed(func() {
		for i := 0; i < p.Agents; i++ {
			id := fmt.Sprintf("agent%d", i+1)
			a.AddAgent(AgentSpec{ID: id, Hostname: id, Total: total}, nil)
		}
	})
	r.step("add agents", d, p.Agents)
	r.Setup += d
	d = p.timed(func() {
		for _, id := range ids {
			a.Revive(id, nil)
		}
	})
	r.step("revive frameworks", d, p.Frameworks)
	p.progress("revived %d frameworks in %v", p.Frameworks, d)
	offers := 0
	took := p.timed(func() { offers = len(a.Allocate(benchEpoch)) })
	r.Rounds = append(r.Rounds, RoundResult{Allocate: took, Offers: offers})
	r.count("allocation runs", 1)
	return r
}

// benchLabels returns 12 labels, the last one given.
func benchLabels(last string) *mesos.Labels {
	ls := &mesos.Labels{}
	for i := 0; i < 11; i++ {
		k, v := fmt.Sprintf("key%d", i), fmt.Sprintf("value%d", i)
		ls.Labels = append(ls.Labels, mesos.Label{Key: k, Value: &v})
	}
	ls.Labels = append(ls.Labels, mesos.Label{Key: "unique", Value: &last})
	return ls
}

func dynamicReservation(role, principal string, labels *mesos.Labels) []mesos.Resource_ReservationInfo {
	return []mesos.Resource_ReservationInfo{{
		Type: mesos.Resource_ReservationInfo_DYNAMIC.Enum(), Role: &role, Principal: &principal, Labels: labels,
	}}
}

// RunResourceLabels reproduces ResourceLabels: DeclineOffers in role1
// where each agent's used resources include two dynamic reservations of
// cpus:8 for role1, each with 12 labels whose last is unique per agent, so
// they never merge.
func RunResourceLabels(p ScenarioParams) ScenarioResult {
	reservedCPUs := func(i, n int) mesos.Resource {
		r := scalarResource("cpus", 8)
		r.Reservations = dynamicReservation("role1", "principal1", benchLabels(fmt.Sprintf("agent%d-%d", i, n)))
		return r
	}
	l := offerLoop{
		role:   "role1",
		refuse: time.Duration(math.MaxInt32) * time.Second,
		total: func(i int) mesos.Resources {
			return mesos.Resources{
				scalarResource("cpus", 8), reservedCPUs(i, 1), reservedCPUs(i, 2),
				scalarResource("mem", 4096), scalarResource("disk", 4096),
				rangesResource("ports", []mesos.Value_Range{{Begin: 31000, End: 32000}}),
			}
		},
		used: func(i int) mesos.Resources {
			return withAllocation(mesos.Resources{
				reservedCPUs(i, 1), reservedCPUs(i, 2),
				scalarResource("mem", 2014), scalarResource("disk", 1024),
				rangesResource("ports", makePortRanges(16)),
			}, "role1")
		},
	}
	rounds := p.Rounds
	if rounds < 0 {
		rounds = 2 * p.Frameworks
	}
	r, _ := l.run(p, roundsOr(rounds, 10))
	return r
}

// RunPersistentVolumes reproduces PersistentVolumes (REGULAR volumes):
// agents of cpus(test):24;mem(test):4096;disk(test):3072;ports(test) plus
// a 1024 MB persistent volume each, holding cpus(test):16;mem(test):1024;
// disk(test):1024 and 16 port ranges for framework i mod F; 6 rounds with
// offers recovered unfiltered between them.
func RunPersistentVolumes(p ScenarioParams) ScenarioResult {
	static := func(rs mesos.Resources) mesos.Resources {
		role := "test"
		for i := range rs {
			rs[i].Reservations = []mesos.Resource_ReservationInfo{{Type: mesos.Resource_ReservationInfo_STATIC.Enum(), Role: &role}}
		}
		return rs
	}
	l := offerLoop{
		role: "test",
		total: func(i int) mesos.Resources {
			rs := static(mesos.Resources{
				scalarResource("cpus", 24), scalarResource("mem", 4096), scalarResource("disk", 3072),
				rangesResource("ports", []mesos.Value_Range{{Begin: 31000, End: 32000}}),
				scalarResource("disk", 1024),
			})
			path := fmt.Sprintf("path%d", i)
			rs[4].Disk = &mesos.Resource_DiskInfo{
				Persistence: &mesos.Resource_DiskInfo_Persistence{ID: fmt.Sprintf("id%d", i)},
				Volume:      &mesos.Volume{ContainerPath: path, Mode: mesos.RW.Enum()},
			}
			return rs
		},
		used: func(int) mesos.Resources {
			return withAllocation(static(mesos.Resources{
				scalarResource("cpus", 16), scalarResource("mem", 1024), scalarResource("disk", 1024),
				rangesResource("ports", makePortRanges(16)),
			}), "test")
		},
	}
	r, _ := l.run(p, roundsOr(p.Rounds, 6))
	r.Notes = append(r.Notes, "REGULAR volumes only: shared resources are not supported")
	return r
}
