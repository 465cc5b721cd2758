package allocator

import (
	"slices"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Frameworks: registration, roles, activation, suppression.

// framework is a framework as the allocator sees it.
type framework struct {
	id      string
	active  bool
	clients []*client // one per role it is subscribed to or holds resources in
}

func (fw *framework) client(role string) *client {
	for _, c := range fw.clients {
		if c.role == role {
			return c
		}
	}
	return nil
}

// defaultRole guesses the role of a resource without allocation info: the
// framework's only role, else the reservation role, else "*".
func defaultRole(fw *framework, reserved string) string {
	if fw != nil {
		var only string
		n := 0
		for _, c := range fw.clients {
			if c.subscribed {
				only = c.role
				n++
			}
		}
		if n == 1 {
			return only
		}
	}
	if reserved != "" {
		return reserved
	}
	return "*"
}

// AddFramework starts tracking a framework; used maps agent ID to resources
// the framework already holds there (each carrying allocation_info.role).
// An inactive framework gets no offers until ActivateFramework.
//
// Resources that agents reported for the framework before it was added are
// adopted; used resources on an agent that reported none are taken from the
// agent's free resources. Adding a known framework updates it instead.
func (a *Allocator) AddFramework(f FrameworkSpec, used map[string]mesos.Resources, active bool) {
	if fw := a.frameworks[f.ID]; fw != nil {
		a.UpdateFramework(f)
		if active {
			a.ActivateFramework(f.ID)
		} else {
			a.DeactivateFramework(f.ID)
		}
		return
	}
	fw := &framework{id: f.ID, active: active}
	a.frameworks[f.ID] = fw
	for _, role := range f.Roles {
		c := a.clientFor(fw, role)
		c.subscribed = true
		c.suppressed = slices.Contains(f.SuppressedRoles, role)
	}
	adopted := map[*agent]bool{}
	for _, ag := range a.orphans[f.ID] {
		if ag.removed || adopted[ag] {
			continue
		}
		adopted[ag] = true
		for _, e := range ag.allocs {
			if e.frameworkID == f.ID && e.client == nil {
				e.client = a.clientFor(fw, e.role)
				e.client.nAllocs++
				a.charge(e.client, &e.v.s, +1)
			}
		}
	}
	delete(a.orphans, f.ID)
	for _, agentID := range sortedKeys(used) {
		ag := a.agents[agentID]
		if ag == nil || adopted[ag] {
			continue
		}
		for _, g := range a.parse(ag, fw, used[agentID]) {
			a.take(ag, f.ID, a.clientFor(fw, g.role), g.role, g.pool, &g.v)
		}
	}
	for _, c := range slices.Clone(fw.clients) {
		a.refresh(c)
		a.dropClientIfIdle(c)
	}
}

// UpdateFramework changes a framework's roles and suppressed roles.
func (a *Allocator) UpdateFramework(f FrameworkSpec) {
	fw := a.frameworks[f.ID]
	if fw == nil {
		return
	}
	was := map[*client]bool{}
	for _, c := range fw.clients {
		was[c], c.subscribed = c.subscribed, false
	}
	for _, role := range f.Roles {
		a.clientFor(fw, role).subscribed = true
	}
	for _, c := range slices.Clone(fw.clients) {
		c.suppressed = slices.Contains(f.SuppressedRoles, c.role)
		a.refresh(c)
		if was[c] && !c.subscribed {
			a.clearFilters(c) // as Mesos does for roles a framework leaves
		}
		a.dropClientIfIdle(c)
	}
}

// RemoveFramework forgets a framework and everything allocated to it.
func (a *Allocator) RemoveFramework(id string) {
	fw := a.frameworks[id]
	if fw == nil {
		return
	}
	for _, c := range fw.clients {
		c.subscribed = false
		a.refresh(c)
	}
	for _, ag := range a.agentList {
		for i := 0; i < len(ag.allocs); {
			e := ag.allocs[i]
			if e.frameworkID != id {
				i++
				continue
			}
			ag.pools[e.pool].free.add(&e.v)
			a.noteAlloc(ag, e, &e.v, -1)
			if e.client != nil {
				a.charge(e.client, &e.v.s, -1)
			}
			ag.dropAllocation(i)
			ag.version++
		}
	}
	for _, c := range slices.Clone(fw.clients) {
		a.dropClientIfIdle(c)
	}
	delete(a.frameworks, id)
}

// ActivateFramework lets a framework receive offers again.
func (a *Allocator) ActivateFramework(id string) {
	if fw := a.frameworks[id]; fw != nil && !fw.active {
		fw.active = true
		for _, c := range fw.clients {
			a.refresh(c)
		}
	}
}

// DeactivateFramework stops offers to a framework (it stays allocated). As in
// Mesos, its decline filters are dropped.
func (a *Allocator) DeactivateFramework(id string) {
	if fw := a.frameworks[id]; fw != nil && fw.active {
		fw.active = false
		for _, c := range fw.clients {
			a.refresh(c)
			a.clearFilters(c)
		}
	}
}

// Suppress stops offers to a framework for roles (all its roles if empty).
func (a *Allocator) Suppress(frameworkID string, roles []string) {
	fw := a.frameworks[frameworkID]
	if fw == nil {
		return
	}
	for _, c := range fw.clients {
		if len(roles) == 0 || slices.Contains(roles, c.role) {
			c.suppressed = true
			a.refresh(c)
		}
	}
}

// Revive unsuppresses roles (all if empty) and clears the framework's
// decline filters for them.
func (a *Allocator) Revive(frameworkID string, roles []string) {
	fw := a.frameworks[frameworkID]
	if fw == nil {
		return
	}
	for _, c := range fw.clients {
		if len(roles) == 0 || slices.Contains(roles, c.role) {
			c.suppressed = false
			a.refresh(c)
			a.clearFilters(c)
		}
	}
}
