package allocator

import (
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Allocations: what each framework holds on each agent, and moving
// resources between an agent's free pool and a framework.

// group is a parsed slice of a resource list: one allocation role, one pool.
type group struct {
	role string
	pool int
	v    vec
}

// parse splits res into groups by allocation role and pool of ag. fw may be
// nil. Resources of pools the agent does not have are dropped.
func (a *Allocator) parse(ag *agent, fw *framework, res mesos.Resources) []group {
	gs := a.groups[:0]
	for i := range res {
		r := &res[i]
		if !supported(r) {
			continue
		}
		p := ag.findPool(r)
		if p < 0 {
			continue
		}
		role := allocationRole(r)
		if role == "" {
			role = defaultRole(fw, ag.pools[p].role)
		}
		j := 0
		for j < len(gs) && (gs[j].role != role || gs[j].pool != p) {
			j++
		}
		if j == len(gs) {
			if len(gs) < cap(gs) {
				gs = gs[:j+1]
				gs[j].v.reset()
			} else {
				gs = append(gs, group{})
			}
			gs[j].role, gs[j].pool = role, p
		}
		gs[j].v.addResource(r)
	}
	a.groups = gs
	return gs
}

// take moves up to v out of pool p's free resources into the allocation of
// frameworkID (client c, possibly nil) in role.
func (a *Allocator) take(ag *agent, frameworkID string, c *client, role string, p int, v *vec) {
	pl := &ag.pools[p]
	a.tmp.intersect(v, &pl.free)
	if a.tmp.isZero() {
		return
	}
	pl.free.sub(&a.tmp)
	ag.version++
	e := a.allocationFor(ag, frameworkID, c, role, p)
	e.v.add(&a.tmp)
	a.noteAlloc(ag, e, &a.tmp, +1)
	if c != nil {
		a.charge(c, &a.tmp.s, +1)
	}
}

// is reports whether e is the allocation of frameworkID (client c, nil if
// the framework is unknown) in role from pool p.
func (e *allocation) is(frameworkID string, c *client, role string, p int) bool {
	if e.pool != p || e.client != c {
		return false
	}
	return c != nil || e.frameworkID == frameworkID && e.role == role
}

// findAllocation returns the index of the entry, or -1.
func (ag *agent) findAllocation(frameworkID string, c *client, role string, p int) int {
	for i, e := range ag.allocs {
		if e.is(frameworkID, c, role, p) {
			return i
		}
	}
	return -1
}

// allocationFor finds or creates the allocation entry.
func (a *Allocator) allocationFor(ag *agent, frameworkID string, c *client, role string, p int) *allocation {
	if i := ag.findAllocation(frameworkID, c, role, p); i >= 0 {
		return ag.allocs[i]
	}
	var e *allocation
	if n := len(ag.spare); n > 0 {
		e = ag.spare[n-1]
		ag.spare = ag.spare[:n-1]
		e.v.reset()
	} else {
		e = &allocation{}
	}
	e.frameworkID, e.role, e.client, e.pool = frameworkID, role, c, p
	if c != nil {
		c.nAllocs++
	}
	ag.allocs = append(ag.allocs, e)
	return e
}

// dropAllocation removes entry i, keeping it for reuse.
func (ag *agent) dropAllocation(i int) {
	e := ag.allocs[i]
	n := len(ag.allocs) - 1
	ag.allocs[i] = ag.allocs[n]
	ag.allocs[n] = nil
	ag.allocs = ag.allocs[:n]
	if e.client != nil {
		e.client.nAllocs--
	}
	e.client = nil
	if len(ag.spare) < 4 {
		ag.spare = append(ag.spare, e)
	}
}

// release returns up to v from the allocation of frameworkID (client c) in
// role and pool p.
func (a *Allocator) release(ag *agent, frameworkID string, c *client, role string, p int, v *vec) {
	if i := ag.findAllocation(frameworkID, c, role, p); i >= 0 {
		e := ag.allocs[i]
		a.tmp.intersect(&e.v, v)
		if a.tmp.isZero() {
			return
		}
		ag.version++
		e.v.sub(&a.tmp)
		ag.pools[p].free.add(&a.tmp)
		a.noteAlloc(ag, e, &a.tmp, -1)
		if c != nil {
			a.charge(c, &a.tmp.s, -1)
		}
		if e.v.isZero() {
			ag.dropAllocation(i)
			if c != nil {
				a.dropClientIfIdle(c)
			}
		}
	}
}
