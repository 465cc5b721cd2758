package allocator

import (
	"fmt"
	"math/rand/v2"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// RunUpdateAllocation reproduces UpdateAllocation: one agent carrying, for
// each of p.Frameworks roles, dynamic reservations of cpus, mem and disk
// (100 each) and a port range, each with its own random 36-character label
// (4 × roles resource objects that never merge), each role's held by its
// framework; framework 0 also holds cpus:10;mem:100 unreserved and
// alternately RESERVEs and UNRESERVEs cpus:1;mem:1 with UpdateAllocation,
// p.Rounds times each (default 20). Each operation is a round.
func RunUpdateAllocation(p ScenarioParams) ScenarioResult {
	roles := p.Frameworks
	ops := roundsOr(p.Rounds, 20)
	r := ScenarioResult{Agents: 1, Frameworks: roles, Roles: roles}
	rng := rand.New(rand.NewPCG(1, 2))
	label := func() *mesos.Labels {
		const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
		b := make([]byte, 36)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		v := string(b)
		return &mesos.Labels{Labels: []mesos.Label{{Key: "key", Value: &v}}}
	}
	roleName := func(i int) string { return fmt.Sprintf("role%d", i) }
	var total mesos.Resources
	used := map[string]mesos.Resources{}
	for i := 0; i < roles; i++ {
		for _, x := range []mesos.Resource{
			scalarResource("cpus", 100), scalarResource("mem", 100), scalarResource("disk", 100),
			rangesResource("ports", []mesos.Value_Range{{Begin: uint64(1000 + 10*i), End: uint64(1009 + 10*i)}}),
		} {
			x.Reservations = dynamicReservation(roleName(i), "principal", label())
			total = append(total, x)
			used[fmt.Sprintf("framework%d", i)] = append(used[fmt.Sprintf("framework%d", i)], withAllocation(mesos.Resources{x}, roleName(i))...)
		}
	}
	own := mesos.Resources{scalarResource("cpus", 10), scalarResource("mem", 100)}
	total = append(total, own...)
	used["framework0"] = append(used["framework0"], withAllocation(own, roleName(0))...)
	a := p.newAllocator()
	d := p.timed(func() {
		for i := 0; i < roles; i++ {
			a.AddFramework(FrameworkSpec{ID: fmt.Sprintf("framework%d", i), Roles: []string{roleName(i)}}, nil, true)
		}
		a.AddAgent(AgentSpec{ID: "agent", Hostname: "agent", Total: total}, used)
	})
	r.step("add frameworks and agent", d, roles)
	r.Setup = d
	reserve := withAllocation(mesos.Resources{scalarResource("cpus", 1), scalarResource("mem", 1)}, roleName(0))
	lbl := label()
	for i := range reserve {
		reserve[i].Reservations = dynamicReservation(roleName(0), "principal", lbl)
	}
	held := used["framework0"]
	var res, unres time.Duration
	for i := 0; i < 2*ops; i++ {
		typ := mesos.Offer_Operation_RESERVE
		o := mesos.Offer_Operation{Type: typ, Reserve: &mesos.Offer_Operation_Reserve{Resources: reserve}}
		if i%2 == 1 {
			typ = mesos.Offer_Operation_UNRESERVE
			o = mesos.Offer_Operation{Type: typ, Unreserve: &mesos.Offer_Operation_Unreserve{Resources: reserve}}
		}
		var err error
		var out mesos.Resources
		took := p.timed(func() { out, err = a.UpdateAllocation("framework0", "agent", held, []mesos.Offer_Operation{o}) })
		if err != nil {
			panic(fmt.Sprintf("UpdateAllocation scenario: %v", err)) // valid by construction
		}
		held = out
		if i%2 == 0 {
			res += took
		} else {
			unres += took
		}
		r.Rounds = append(r.Rounds, RoundResult{Allocate: took})
	}
	r.step("RESERVE", res, ops)
	r.step("UNRESERVE", unres, ops)
	p.progress("%d RESERVE in %v, %d UNRESERVE in %v", ops, res, ops, unres)
	return r
}

// RunFullSort reproduces the sorter benchmark FullSort on the DRF sorter
// alone: p.Frameworks clients in one role, p.Agents agents of
// cpus:24;mem:4096;disk:4096, each with cpus:16;mem:2014;disk:1024
// allocated to client i mod C (the sorter counts scalars only, so the 100
// port ranges Mesos allocates too are left out). It times adding clients,
// adding agents, adding allocations, a full sort, a no-op sort, removing
// allocations, removing agents and removing clients. The full sort is the
// round.
func RunFullSort(p ScenarioParams) ScenarioResult {
	r := ScenarioResult{Agents: p.Agents, Frameworks: p.Frameworks, Roles: 1}
	a := p.newAllocator()
	cs := make([]*client, p.Frameworks)
	r.step("add clients", p.timed(func() {
		for i := range cs {
			id := fmt.Sprintf("client%d", i)
			a.AddFramework(FrameworkSpec{ID: id, Roles: []string{"*"}}, nil, true)
			cs[i] = a.frameworks[id].client("*")
		}
	}), p.Frameworks)
	total := scalars{cpus: 24 * milli, mem: 4096 * milli, disk: 4096 * milli}
	alloc := scalars{cpus: 16 * milli, mem: 2014 * milli, disk: 1024 * milli}
	a.settle()
	r.step("add agents", p.timed(func() {
		for i := 0; i < p.Agents; i++ {
			a.addTotal(&total, +1)
		}
	}), p.Agents)
	r.step("add allocations", p.timed(func() {
		for i := 0; i < p.Agents; i++ {
			a.charge(cs[i%len(cs)], &alloc, +1)
		}
	}), p.Agents)
	full := p.timed(a.settle)
	r.step("full sort", full, p.Frameworks)
	r.Rounds = append(r.Rounds, RoundResult{Allocate: full})
	r.step("no-op sort", p.timed(a.settle), p.Frameworks)
	r.step("remove allocations", p.timed(func() {
		for i := 0; i < p.Agents; i++ {
			a.charge(cs[i%len(cs)], &alloc, -1)
		}
		a.settle()
	}), p.Agents)
	r.step("remove agents", p.timed(func() {
		for i := 0; i < p.Agents; i++ {
			a.addTotal(&total, -1)
		}
		a.settle()
	}), p.Agents)
	r.step("remove clients", p.timed(func() {
		for i := range cs {
			a.RemoveFramework(fmt.Sprintf("client%d", i))
		}
	}), p.Frameworks)
	for _, s := range r.Steps[:3] {
		r.Setup += s.Took
	}
	p.progress("full sort of %d clients over %d agents in %v", p.Frameworks, p.Agents, full)
	return r
}
