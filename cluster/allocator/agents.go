package allocator

import (
	"slices"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Agents: their resources split into reservation pools, and their
// registration and activation.

// agent is an agent with its resources split into reservation pools.
type agent struct {
	id, hostname string
	active       bool
	removed      bool
	down         bool            // under maintenance (machine down): offers nothing
	unavail      *Unavailability // scheduled maintenance, if any
	pos          int             // index in Allocator.agentList
	pools        []pool
	allocs       []*allocation
	spare        []*allocation // dropped entries, reused with their buffers
	filters      agentFilters
	// version counts changes to free resources and filters. A visit that
	// offers nothing records version and the eligibility epoch; while both
	// are unchanged and no filter expires, the next cycle skips the agent.
	version, stuckVersion, stuckEpoch uint64
}

// pool is the part of an agent's resources of one kind (see pools.go).
type pool struct {
	kind
	total, free vec
}

// allocation is what one framework holds in one role from one pool of an
// agent, offered or in use.
type allocation struct {
	frameworkID string
	role        string
	client      *client // nil while the framework is unknown
	pool        int
	v           vec
}

// usable reports whether pool i may be offered to role: unreserved
// resources to any role, reserved ones to their role and its sub-roles,
// persistent volumes to their role only.
func (ag *agent) usable(i int, role string) bool {
	p := &ag.pools[i]
	if p.role == "" {
		return true
	}
	if p.disk != nil && p.disk.Persistence != nil {
		return role == p.role
	}
	return isRoleOrDescendant(role, p.role)
}

// AddAgent starts tracking an agent; used maps framework ID to resources it
// already holds there (each carrying allocation_info.role). Resources of
// frameworks not yet added are set aside until AddFramework adopts them.
// Adding a known agent replaces it.
func (a *Allocator) AddAgent(s AgentSpec, used map[string]mesos.Resources) {
	if a.agents[s.ID] != nil {
		a.RemoveAgent(s.ID)
	}
	ag := &agent{id: s.ID, hostname: s.Hostname, active: true, pos: len(a.agentList), version: 1}
	ag.filters.reset()
	for i := range s.Total {
		r := &s.Total[i]
		if !supported(r) {
			continue
		}
		ag.pools[ag.poolFor(r)].total.addResource(r)
	}
	for i := range ag.pools {
		ag.pools[i].free.copyFrom(&ag.pools[i].total)
		a.addTotal(&ag.pools[i].total.s, +1)
		a.noteReserved(&ag.pools[i], &ag.pools[i].total, +1)
	}
	a.agents[s.ID] = ag
	a.agentList = append(a.agentList, ag)
	for _, fwID := range sortedKeys(used) {
		fw := a.frameworks[fwID]
		for _, g := range a.parse(ag, fw, used[fwID]) {
			var c *client
			if fw != nil {
				c = a.clientFor(fw, g.role)
			}
			a.take(ag, fwID, c, g.role, g.pool, &g.v)
			if c != nil {
				a.dropClientIfIdle(c)
			}
		}
		if fw == nil && slices.ContainsFunc(ag.allocs, func(e *allocation) bool { return e.frameworkID == fwID }) {
			a.orphans[fwID] = append(a.orphans[fwID], ag)
		}
	}
}

// RemoveAgent forgets an agent and all allocations on it.
func (a *Allocator) RemoveAgent(id string) {
	ag := a.agents[id]
	if ag == nil {
		return
	}
	for len(ag.allocs) > 0 {
		e := ag.allocs[0]
		c := e.client
		a.noteAlloc(ag, e, &e.v, -1)
		if c != nil {
			a.charge(c, &e.v.s, -1)
		} else if list := a.orphans[e.frameworkID]; list != nil {
			if list = slices.DeleteFunc(list, func(x *agent) bool { return x == ag }); len(list) == 0 {
				delete(a.orphans, e.frameworkID)
			} else {
				a.orphans[e.frameworkID] = list
			}
		}
		ag.dropAllocation(0)
		if c != nil {
			a.dropClientIfIdle(c)
		}
	}
	for i := range ag.pools {
		a.addTotal(&ag.pools[i].total.s, -1)
		a.noteReserved(&ag.pools[i], &ag.pools[i].total, -1)
	}
	a.forgetFilterBits(ag.filters.bits, nil)
	last := a.agentList[len(a.agentList)-1]
	a.agentList[ag.pos] = last
	last.pos = ag.pos
	a.agentList = a.agentList[:len(a.agentList)-1]
	delete(a.agents, id)
	ag.removed = true
}

// ActivateAgent includes an agent in offers again.
func (a *Allocator) ActivateAgent(id string) {
	if ag := a.agents[id]; ag != nil {
		ag.active = true
		ag.version++
	}
}

// DeactivateAgent excludes an agent from offers; what it holds stays
// allocated.
func (a *Allocator) DeactivateAgent(id string) {
	if ag := a.agents[id]; ag != nil {
		ag.active = false
	}
}
