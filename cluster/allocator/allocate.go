package allocator

import (
	"slices"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Recover returns resources allocated to a framework on an agent (each
// carrying allocation_info.role). If refuse > 0 the framework will not be
// offered that agent's resources again until now+refuse, unless more than
// the refused resources become available (Mesos's decline filter).
//
// Recovering more than is allocated returns only what is allocated.
func (a *Allocator) Recover(frameworkID, agentID string, res mesos.Resources, refuse time.Duration, now time.Time) {
	ag := a.agents[agentID]
	if ag == nil {
		return
	}
	fw := a.frameworks[frameworkID]
	groups := a.parse(ag, fw, res)
	for i := range groups {
		var c *client
		if fw != nil {
			c = fw.client(groups[i].role)
		}
		a.release(ag, frameworkID, c, groups[i].role, groups[i].pool, &groups[i].v)
	}
	if refuse <= 0 || fw == nil {
		return
	}
	exp := expiry(now, refuse)
	for i := range groups {
		role := groups[i].role
		if slices.ContainsFunc(groups[:i], func(g group) bool { return g.role == role }) {
			continue // one filter per role
		}
		if c := fw.client(role); c != nil && c.subscribed {
			a.addFilter(ag, c, exp, groups)
		}
	}
}

// Allocate runs one allocation cycle at time now and returns the offers made.
func (a *Allocator) Allocate(now time.Time) []Offer {
	a.settle()
	a.settleQuota()
	cs := a.beginCycle(now)
	if a.root.live == 0 || len(a.agentList) == 0 {
		a.endCycle(cs, 0)
		return nil
	}
	a.rng.Shuffle(len(a.agentList), func(i, j int) {
		a.agentList[i], a.agentList[j] = a.agentList[j], a.agentList[i]
	})
	for i, ag := range a.agentList {
		ag.pos = i
	}
	t := now.UnixNano()
	var offers []Offer
	if a.quotaOn {
		offers = a.allocateQuota(t, offers, cs)
	} else {
		offers = a.allocateDRF(t, offers, cs)
	}
	a.endCycle(cs, len(offers))
	return offers
}

// allocateDRF is a cycle without quota: one pass of hierarchical DRF.
func (a *Allocator) allocateDRF(t int64, offers []Offer, cs *cycleStats) []Offer {
	for _, ag := range a.agentList {
		if !ag.active || ag.down {
			cs.unusable++
			continue
		}
		if ag.stuckVersion == ag.version && ag.stuckEpoch == a.epoch && t < ag.filters.minExpires {
			cs.stuck++
			continue
		}
		if t >= ag.filters.minExpires {
			a.sweepFilters(ag, t)
			ag.version++
		}
		before := len(offers)
		if !a.allocatable(ag, "") {
			cs.notAllocatable++
		} else if ag.fullyFiltered(a.eligible, t) {
			cs.fullyFiltered++
		} else {
			offers = a.visit(a.root, ag, t, offers)
			a.settle()
		}
		if len(offers) == before {
			ag.stuckVersion, ag.stuckEpoch = ag.version, a.epoch
		}
	}
	return offers
}

// visit walks n's subtree in share order offering ag's resources. It
// returns the extended offers; it stops early once ag has nothing left.
func (a *Allocator) visit(n *node, ag *agent, now int64, offers []Offer) []Offer {
	for _, k := range n.kids {
		if k.live == 0 {
			continue
		}
		if k.leaf {
			offers = a.offerLeaf(k, ag, now, offers)
		} else {
			offers = a.visit(k, ag, now, offers)
		}
		if !a.allocatable(ag, "") {
			break
		}
	}
	return offers
}

// offerLeaf offers what role l may use of ag to its lowest-share framework
// that is not filtered there.
func (a *Allocator) offerLeaf(l *node, ag *agent, now int64, offers []Offer) []Offer {
	if !a.allocatable(ag, l.role) {
		return offers
	}
	var memo int8
	for _, idx := range l.clients {
		c := a.slots[idx]
		if ag.filtered(c, now, &memo, nil) {
			continue
		}
		return append(offers, a.offer(ag, c))
	}
	return offers
}

// allocatable reports whether the free resources of ag that role may use
// ("" = any role) contain one of the minimum allocatable alternatives.
func (a *Allocator) allocatable(ag *agent, role string) bool {
	var sum scalars
	multi := false
	for i := range ag.pools {
		if role == "" || ag.usable(i, role) {
			sum.add(&ag.pools[i].free.s)
			multi = multi || len(ag.pools[i].free.extra) > 0
		}
	}
next:
	for i := range a.minAlloc {
		m := &a.minAlloc[i]
		for j := range sum {
			if m.s[j] > sum[j] {
				continue next
			}
		}
		for _, e := range m.extra {
			if e.v == 0 {
				continue
			}
			if !multi {
				continue next
			}
			var have int64
			for p := range ag.pools {
				if role == "" || ag.usable(p, role) {
					have += ag.pools[p].free.extraValue(e.name)
				}
			}
			if have < e.v {
				continue next
			}
		}
		return true
	}
	return false
}

// offer allocates everything of ag that c's role may use to c.
func (a *Allocator) offer(ag *agent, c *client) Offer {
	n := 0
	for i := range ag.pools {
		if ag.usable(i, c.role) {
			n += ag.pools[i].free.count()
		}
	}
	start, ai := a.startOffer(n, c.role)
	var d scalars
	for i := range ag.pools {
		p := &ag.pools[i]
		if !ag.usable(i, c.role) || p.free.isZero() {
			continue
		}
		a.grant(ag, c, i, &p.free, ai, &d)
		p.free.reset()
	}
	return a.finishOffer(ag, c, start, &d)
}

// startOffer begins building an offer of n resources to role in a.build:
// it returns where the offer's resources start and their allocation info.
func (a *Allocator) startOffer(n int, role string) (int, *mesos.Resource_AllocationInfo) {
	b := &a.build
	b.begin(n)
	return len(b.res), b.allocation(role)
}

// grant puts v of pool i of ag into the offer being built to c (with
// allocation info ai) and into c's allocation on ag, accounts it to c's
// role, and adds its scalars to d. Taking v out of the pool is the
// caller's.
func (a *Allocator) grant(ag *agent, c *client, i int, v *vec, ai *mesos.Resource_AllocationInfo, d *scalars) {
	a.build.appendVec(v, &ag.pools[i].kind, ai)
	e := a.allocationFor(ag, c.fw.id, c, c.role, i)
	e.v.add(v)
	a.noteAlloc(ag, e, v, +1)
	d.add(&v.s)
}

// finishOffer charges d to c and returns the offer of ag to c whose
// resources start at start in a.build.
func (a *Allocator) finishOffer(ag *agent, c *client, start int, d *scalars) Offer {
	ag.version++
	a.charge(c, d, +1)
	a.recordOffer(c, ag)
	b := &a.build
	return Offer{
		FrameworkID:    c.fw.id,
		AgentID:        ag.id,
		Role:           c.role,
		Resources:      b.res[start:len(b.res):len(b.res)],
		Unavailability: ag.unavail,
	}
}
