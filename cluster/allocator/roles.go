package allocator

import (
	"maps"
	"slices"
)

// RoleStatus summarises one role for the master's /roles endpoint and
// GET_ROLES: its weight, what is allocated (offered or in use) in it and
// reserved for it, its quota and the frameworks subscribed to it.
type RoleStatus struct {
	Role       string
	Weight     float64
	Allocated  map[string]float64 // scalars allocated in the role itself
	Reserved   map[string]float64 // scalars reserved for the role itself
	Quota      *QuotaStatus       // nil without quota
	Frameworks []string           // subscribed, sorted
}

// Roles returns every role that has a weight, a quota, a reservation, an
// allocation or a subscribed framework, sorted by name. It walks the whole
// cluster: meant for endpoints, not for every cycle.
func (a *Allocator) Roles() []RoleStatus {
	a.settleQuota()
	byRole := map[string]*RoleStatus{}
	get := func(role string) *RoleStatus {
		r := byRole[role]
		if r == nil {
			r = &RoleStatus{Role: role, Weight: a.weightOf(role), Allocated: map[string]float64{}, Reserved: map[string]float64{}}
			byRole[role] = r
		}
		return r
	}
	add := func(m map[string]float64, v *vec) {
		for i, name := range mainNames {
			if v.s[i] != 0 {
				m[name] += fromMilli(v.s[i])
			}
		}
		for _, e := range v.extra {
			if e.v != 0 {
				m[e.name] += fromMilli(e.v)
			}
		}
	}
	for role := range a.weights {
		get(role)
	}
	for _, role := range a.quotaRoles {
		st := a.quotaStatus(a.quota[role])
		get(role).Quota = &st
	}
	for _, ag := range a.agentList {
		for i := range ag.pools {
			if p := &ag.pools[i]; p.role != "" {
				add(get(p.role).Reserved, &p.total)
			}
		}
		for _, e := range ag.allocs {
			add(get(e.role).Allocated, &e.v)
		}
	}
	for _, fw := range a.frameworks {
		for _, c := range fw.clients {
			if c.subscribed {
				r := get(c.role)
				r.Frameworks = append(r.Frameworks, fw.id)
			}
		}
	}
	out := make([]RoleStatus, 0, len(byRole))
	for _, role := range slices.Sorted(maps.Keys(byRole)) {
		r := byRole[role]
		slices.Sort(r.Frameworks)
		out = append(out, *r)
	}
	return out
}

// Weights returns the weights set with SetWeight (roles absent have
// weight 1).
func (a *Allocator) Weights() map[string]float64 {
	return maps.Clone(a.weights)
}
