package allocator

import "math"

// The allocation cycle under quota (see quota.go for the rules): two
// stages, offers trimmed to limits and headroom, pruning of subtrees whose
// roles are at their limits.

// allocateQuota is a cycle with quota: stage 1 offers to roles below
// their guarantees, stage 2 to everyone, both within limits and
// headroom (see quota.go).
func (a *Allocator) allocateQuota(t int64, offers []Offer, cs *cycleStats) []Offer {
	held := !a.required.scalarsZero()
	if held {
		a.computeAvail()
		if a.root.hungryBelow > 0 {
			for _, ag := range a.agentList {
				if !ag.active || ag.down {
					continue
				}
				if t >= ag.filters.minExpires {
					a.sweepFilters(ag, t)
					ag.version++
				}
				if !a.allocatable(ag, "") || ag.fullyFiltered(a.eligible, t) {
					continue
				}
				offers = a.visitQ(a.root, ag, t, offers, a.unreservedOnly(ag), 1, false)
				a.settle()
				a.settleQuota()
			}
		}
	}
	held = !a.required.scalarsZero()
	blocked := held && !a.surplusFitsMin()
	cs.heldBack = held
	for _, ag := range a.agentList {
		if !ag.active || ag.down {
			cs.unusable++
			continue
		}
		if !held && ag.stuckVersion == ag.version && ag.stuckEpoch == a.epoch && t < ag.filters.minExpires {
			cs.stuck++
			continue
		}
		if t >= ag.filters.minExpires {
			a.sweepFilters(ag, t)
			ag.version++
		}
		before := len(offers)
		unres := a.unreservedOnly(ag)
		switch {
		case !a.allocatable(ag, ""):
			cs.notAllocatable++
		case ag.fullyFiltered(a.eligible, t):
			cs.fullyFiltered++
		case unres && (blocked || a.root.open() == 0):
			cs.quotaBlocked++
		default:
			offers = a.visitQ(a.root, ag, t, offers, unres, 2, false)
			a.settle()
			a.settleQuota()
		}
		if len(offers) == before {
			ag.stuckVersion, ag.stuckEpoch = ag.version, a.epoch
		}
	}
	return offers
}

// unreservedOnly reports whether everything free on ag is unreserved.
func (a *Allocator) unreservedOnly(ag *agent) bool {
	for i := range ag.pools {
		if ag.pools[i].role != "" && !ag.pools[i].free.isZero() {
			return false
		}
	}
	return true
}

// surplusFitsMin reports whether the surplus beyond the guarantees'
// headroom holds one of the minimum allocatable alternatives.
func (a *Allocator) surplusFitsMin() bool {
	return a.fitsMinIn(a.surplus, a.surplusExtra)
}

// visitQ is visit under quota: stage 1 only enters subtrees with roles
// below their guarantee; agents with only unreserved resources skip
// subtrees whose roles are all at their limits.
func (a *Allocator) visitQ(n *node, ag *agent, now int64, offers []Offer, unres bool, stage int, inHungry bool) []Offer {
	for _, k := range n.kids {
		if k.live == 0 || unres && k.open() == 0 {
			continue
		}
		kh := inHungry || k.hungrySelf
		if stage == 1 && !kh && k.hungryBelow == 0 {
			continue
		}
		if k.leaf {
			if stage == 2 || kh {
				offers = a.offerLeafQ(k, ag, now, offers, stage)
			}
		} else {
			offers = a.visitQ(k, ag, now, offers, unres, stage, kh)
		}
		if !a.allocatable(ag, "") {
			break
		}
	}
	return offers
}

// offerLeafQ offers role l what planFor allows to its lowest-share
// framework not filtered there.
func (a *Allocator) offerLeafQ(l *node, ag *agent, now int64, offers []Offer, stage int) []Offer {
	if !a.planFor(ag, l.role, stage) {
		return offers
	}
	var memo int8
	for _, idx := range l.clients {
		c := a.slots[idx]
		if ag.filtered(c, now, &memo, a.plan) {
			continue
		}
		return append(offers, a.commitPlan(ag, c))
	}
	return offers
}

// planFor fills a.plan with what of each pool of ag role may be offered
// at stage, and reports whether that is allocatable.
func (a *Allocator) planFor(ag *agent, role string, stage int) bool {
	for len(a.plan) < len(ag.pools) {
		a.plan = append(a.plan, vec{})
	}
	a.plan = a.plan[:len(ag.pools)]
	c := a.capFor(role, stage)
	sum := &a.planSum
	sum.reset()
	for i := range ag.pools {
		v := &a.plan[i]
		v.reset()
		p := &ag.pools[i]
		if p.free.isZero() || !ag.usable(i, role) {
			continue
		}
		if p.role != "" {
			v.add(&p.free)
		} else {
			capInto(v, &p.free, c, p.indivisible())
		}
		sum.addScalars(v, +1)
	}
	return a.fitsMin(sum)
}

// capInto sets dst to src trimmed to the caps c, and lowers c by what it
// took. An indivisible src is taken whole or not at all.
func capInto(dst, src *vec, c *capVec, indivisible bool) {
	if indivisible {
		for i := range src.s {
			if src.s[i] > c.s[i] {
				return
			}
		}
		for _, e := range src.extra {
			if e.v > c.extraCap(e.name) {
				return
			}
		}
	}
	dst.add(src)
	for i := range dst.s {
		dst.s[i] = min(dst.s[i], c.s[i])
		if c.s[i] != math.MaxInt64 {
			c.s[i] -= dst.s[i]
		}
	}
	for j := range dst.extra {
		e := &dst.extra[j]
		if cv := c.extraCap(e.name); cv != math.MaxInt64 {
			e.v = min(e.v, cv)
			for k := range c.extra {
				if c.extra[k].name == e.name {
					c.extra[k].v -= e.v
				}
			}
		}
	}
}

// fitsMin reports whether the scalars of v hold one of the minimum
// allocatable alternatives.
func (a *Allocator) fitsMin(v *vec) bool {
	return a.fitsMinIn(func(j int) int64 { return v.s[j] }, v.extraValue)
}

// fitsMinIn reports whether one of the minimum allocatable alternatives
// fits in a room of room(j) of main scalar j and roomExtra(name) of each
// other scalar.
func (a *Allocator) fitsMinIn(room func(j int) int64, roomExtra func(name string) int64) bool {
next:
	for i := range a.minAlloc {
		m := &a.minAlloc[i]
		for j := range m.s {
			if m.s[j] > room(j) {
				continue next
			}
		}
		for _, e := range m.extra {
			if e.v > roomExtra(e.name) {
				continue next
			}
		}
		return true
	}
	return false
}

// commitPlan allocates a.plan of ag to c.
func (a *Allocator) commitPlan(ag *agent, c *client) Offer {
	n := 0
	for i := range ag.pools {
		n += a.plan[i].count()
	}
	start, ai := a.startOffer(n, c.role)
	var d scalars
	for i := range ag.pools {
		v := &a.plan[i]
		if v.isZero() {
			continue
		}
		a.grant(ag, c, i, v, ai, &d)
		p := &ag.pools[i]
		p.free.sub(v)
		if p.role == "" {
			a.avail.addScalars(v, -1)
		}
	}
	return a.finishOffer(ag, c, start, &d)
}
