package allocator

import (
	"fmt"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// The simulation's quota, reservation and volume parts (see
// property_test.go): its model of consumption, the operations it plays,
// and internal invariants of the sorter tree.

// consumption computes, from the model, each role's quota consumption:
// reservations of it and its sub-roles plus unreserved resources held in
// it and its sub-roles.
func (s *sim) consumption(extra []Offer) map[string]map[string]float64 {
	m := map[string]map[string]float64{}
	add := func(role, name string, v float64) {
		for r := role; r != ""; r = parentRole(r) {
			if m[r] == nil {
				m[r] = map[string]float64{}
			}
			m[r][name] += v
		}
	}
	for _, total := range s.agents {
		for _, r := range total {
			if rr := reservationRole(&r); rr != "" && r.GetType() == mesos.SCALAR {
				add(rr, r.Name, r.GetScalar().GetValue())
			}
		}
	}
	held := func(role string, rs mesos.Resources) {
		for _, r := range rs {
			if reservationRole(&r) == "" && r.GetType() == mesos.SCALAR {
				add(role, r.Name, r.GetScalar().GetValue())
			}
		}
	}
	for _, h := range s.holdings {
		held(h.role, h.res)
	}
	for _, o := range extra {
		held(o.Role, o.Resources)
	}
	return m
}

// checkLimits asserts that the offers took no role over a quota limit
// (a role already over, after its limit was lowered, may not grow).
func (s *sim) checkLimits(offers []Offer) {
	before, after := s.consumption(nil), s.consumption(offers)
	for _, q := range s.a.Quotas() {
		for name, limit := range q.Limit {
			b, a := before[q.Role][name], after[q.Role][name]
			if a > max(limit, b)+1e-6 {
				s.t.Fatalf("role %s consumes %s:%g after the cycle, over its limit %g (was %g)", q.Role, name, a, limit, b)
			}
		}
		for name, c := range q.Consumed {
			if !approx(c, before[q.Role][name]) && !approx(c, after[q.Role][name]) {
				s.t.Fatalf("allocator says role %s consumes %s:%g, the model %g (before the cycle) / %g (after)", q.Role, name, c, before[q.Role][name], after[q.Role][name])
			}
		}
	}
}

// convertModel moves q of name on agent from reservation role from to
// role to ("" = unreserved) in the model's total.
func (s *sim) convertModel(agent, name string, q float64, from, to string) {
	mk := func(role string, v float64) mesos.Resource {
		r := mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
		if role != "" {
			r.Reservations = []mesos.Resource_ReservationInfo{dynamic(role)}
		}
		return r
	}
	s.agents[agent] = append(s.agents[agent], mk(from, -q), mk(to, q))
	if s.dyn[agent] == nil {
		s.dyn[agent] = map[string]float64{}
	}
	if from != "" {
		s.dyn[agent][name+"("+from+")"] -= q
	}
	if to != "" {
		s.dyn[agent][name+"("+to+")"] += q
	}
}

// modelFree returns what of key ("name" or "name(role)") is unallocated
// on agent according to the model.
func (s *sim) modelFree(agent, key string) float64 {
	free := qty(s.agents[agent])[key]
	for _, h := range s.holdings {
		if h.agent == agent {
			free -= qty(h.res)[key]
		}
	}
	return free
}

// operatorOp reserves free unreserved cpus for a role, or unreserves
// free dynamically reserved cpus, through UpdateAvailable.
func (s *sim) operatorOp() {
	ids := s.agentIDs()
	if len(ids) == 0 {
		return
	}
	agent := s.pick(ids)
	role := s.pick([]string{"eng", "ops", "web", "eng/ml"})
	key := "cpus(" + role + ")"
	if s.rng.Intn(2) == 0 {
		q := float64(s.rng.Intn(int(s.modelFree(agent, "cpus")*2)+1)) / 2
		if q == 0 {
			return
		}
		err := s.a.UpdateAvailable(agent, ops(op(mesos.Offer_Operation_RESERVE, reserved(res(s.t, fmt.Sprintf("cpus:%g", q)), "", dynamic(role))...)))
		if err != nil {
			if !strings.Contains(err.Error(), "quota limit") {
				s.t.Fatalf("reserving %g free cpus of %s for %s: %v", q, agent, role, err)
			}
			return
		}
		s.convertModel(agent, "cpus", q, "", role)
		s.reserves++
		return
	}
	q := min(s.dyn[agent][key], s.modelFree(agent, key))
	if q <= 0 {
		return
	}
	if err := s.a.UpdateAvailable(agent, ops(op(mesos.Offer_Operation_UNRESERVE, reserved(res(s.t, fmt.Sprintf("cpus:%g", q)), "", dynamic(role))...))); err != nil {
		s.t.Fatalf("unreserving %g free %s on %s: %v", q, key, agent, err)
	}
	s.convertModel(agent, "cpus", q, role, "")
	s.unreserves++
}

// frameworkOp has a framework reserve part of an offer for its role,
// unreserve its role's dynamic reservation, or create a volume, through
// UpdateAllocation; it returns the offer's resources afterwards.
func (s *sim) frameworkOp(o Offer, rs mesos.Resources) mesos.Resources {
	q := qty(rs)
	var operation mesos.Offer_Operation
	var from, to, name string
	var amount float64
	switch s.rng.Intn(3) {
	case 0:
		if amount = q["cpus"]; amount < 0.5 {
			return rs
		}
		amount = 0.5
		name, from, to = "cpus", "", o.Role
		operation = op(mesos.Offer_Operation_RESERVE, reserved(res(s.t, "cpus:0.5"), o.Role, dynamic(o.Role))...)
	case 1:
		// only what was reserved dynamically: static reservations are not
		// unreservable
		for _, r := range rs {
			if n := len(r.Reservations); r.Name == "cpus" && n == 1 && reservationRole(&r) == o.Role &&
				r.Reservations[0].GetType() == mesos.Resource_ReservationInfo_DYNAMIC {
				amount += r.GetScalar().GetValue()
			}
		}
		if amount <= 0 {
			return rs
		}
		name, from, to = "cpus", o.Role, ""
		operation = op(mesos.Offer_Operation_UNRESERVE, reserved(res(s.t, fmt.Sprintf("cpus:%g", amount)), o.Role, dynamic(o.Role))...)
	default:
		var disk *mesos.Resource
		for i := range rs {
			r := &rs[i]
			if r.Name == "disk" && r.Disk == nil && reservationRole(r) == o.Role && len(r.Reservations) == 1 && r.GetScalar().GetValue() >= 10 {
				disk = r
			}
		}
		if disk == nil {
			return rs
		}
		s.next++
		v := volumeRes(s.t, "10", o.Role, fmt.Sprintf("v%d", s.next), disk.Reservations...)
		operation = op(mesos.Offer_Operation_CREATE, v)
	}
	out, err := s.a.UpdateAllocation(o.FrameworkID, o.AgentID, rs, ops(operation))
	if err != nil {
		s.t.Fatalf("%s of %s for %s on %s: %v", operation.Type, fmtQty(q), o.FrameworkID, o.AgentID, err)
	}
	if name != "" {
		s.convertModel(o.AgentID, name, amount, from, to)
	} else {
		s.volumes++
	}
	if from == "" && to != "" {
		s.reserves++
	} else if from != "" {
		s.unreserves++
	}
	if a, b := fmtQty(qtyByName(out)), fmtQty(qtyByName(rs)); a != b {
		s.t.Fatalf("%s changed quantities: %s became %s", operation.Type, b, a)
	}
	return out
}

// withinExact is within, telling apart static from dynamic reservations
// and volumes from plain disk, as filters do.
func withinExact(a, b mesos.Resources) bool {
	key := func(r *mesos.Resource) string {
		k := r.Name + "(" + reservationRole(r) + ")"
		if n := len(r.Reservations); n > 0 {
			k += r.Reservations[n-1].GetType().String()
		}
		if p := r.GetDisk().GetPersistence(); p != nil {
			k += "/" + p.ID
		}
		return k
	}
	qa, qb := map[string]float64{}, map[string]float64{}
	for i := range a {
		qa[key(&a[i])] += a[i].GetScalar().GetValue()
	}
	for i := range b {
		qb[key(&b[i])] += b[i].GetScalar().GetValue()
	}
	for k, v := range qa {
		if v > qb[k]+1e-9 {
			return false
		}
	}
	return within(a, b)
}

// qtyByName sums scalars by name, whatever their reservation.
func qtyByName(rs mesos.Resources) map[string]float64 {
	m := map[string]float64{}
	for _, r := range rs {
		if r.GetType() == mesos.SCALAR {
			m[r.Name] += r.GetScalar().GetValue()
		}
	}
	return m
}

// setQuota gives a random role a random limit and guarantee, or clears
// it.
func (s *sim) setQuota() {
	role := s.pick([]string{"eng", "ops", "web", "eng/ml", "*"})
	if s.rng.Intn(4) == 0 {
		if err := s.a.SetQuota(role, nil, nil); err != nil {
			s.t.Fatal(err)
		}
		return
	}
	lc, lm := float64(s.rng.Intn(16))/2, 128*s.rng.Intn(24)
	limit := res(s.t, fmt.Sprintf("cpus:%g;mem:%d", lc, lm))
	var guarantee mesos.Resources
	if s.rng.Intn(2) == 0 {
		guarantee = res(s.t, fmt.Sprintf("cpus:%g;mem:%d", lc/2, lm/2))
	}
	if s.rng.Intn(3) == 0 {
		limit = limit[:1] // cpus only
	}
	if err := s.a.SetQuota(role, guarantee, limit); err == nil {
		s.quotas++
	} else if !strings.Contains(err.Error(), "sub-roles") {
		s.t.Fatalf("SetQuota(%s): %v", role, err)
	}
}

// checkTree verifies the sorter tree's counters against their definitions:
// live and open clients, hungry roles, per node; and that the quota flags
// mirrored on nodes match the roles' once settled.
func checkTree(t *testing.T, a *Allocator) {
	t.Helper()
	a.settleQuota()
	var walk func(n *node) (live, open, hungry int)
	walk = func(n *node) (live, open, hungry int) {
		if n.leaf {
			for _, idx := range n.clients {
				if !a.slots[idx].eligible {
					t.Fatalf("ineligible client in leaf %s", n.role)
				}
			}
			live = len(n.clients)
			open = live
		} else {
			for _, k := range n.kids {
				l, o, h := walk(k)
				live, open, hungry = live+l, open+o, hungry+h
			}
			if n.openSum != open {
				t.Fatalf("node %q: openSum %d, kids say %d", n.role, n.openSum, open)
			}
		}
		if n.live != live {
			t.Fatalf("node %q: live %d, counted %d", n.role, n.live, live)
		}
		if n.capped {
			open = 0
		}
		if n.open() != open {
			t.Fatalf("node %q: open() %d, counted %d", n.role, n.open(), open)
		}
		if n.hungrySelf {
			hungry++
		}
		if n.hungryBelow != hungry {
			t.Fatalf("node %q: hungryBelow %d, counted %d", n.role, n.hungryBelow, hungry)
		}
		if n != a.root && !n.virtual {
			capped, hungry := a.quotaFlags(n.role)
			if n.capped != capped || n.hungrySelf != hungry {
				t.Fatalf("node %q: flags capped=%v hungry=%v, role's %v %v", n.role, n.capped, n.hungrySelf, capped, hungry)
			}
		} else if n.capped || n.hungrySelf {
			t.Fatalf("virtual or root node %q carries quota flags", n.role)
		}
		return live, open, hungry
	}
	walk(a.root)
}
