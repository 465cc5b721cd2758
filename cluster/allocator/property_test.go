package allocator

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// The property test drives the allocator with random clusters and random
// framework behaviour, keeps its own independent model of what is held
// where, and checks after every cycle that no offer breaks a rule.

var simRoles = []string{"*", "eng", "eng/ml", "ops", "web"}

type simFramework struct {
	roles      []string
	active     bool
	suppressed map[string]bool
}

type holding struct {
	fw, agent, role string
	res             mesos.Resources
}

type simFilter struct {
	fw, role, agent string
	refused         mesos.Resources
	expires         time.Time
}

type sim struct {
	t        *testing.T
	rng      *rand.Rand
	a        *Allocator
	now      time.Time
	agents   map[string]mesos.Resources
	active   map[string]bool
	fws      map[string]*simFramework
	holdings []holding
	filters  []simFilter
	next     int
	offers   int
	// dyn holds the dynamically reserved amounts per agent and
	// "name(role)", which the simulation may unreserve.
	dyn map[string]map[string]float64
	// counts of operations that went through
	reserves, unreserves, volumes, quotas int
}

func newSim(t *testing.T, seed int64) *sim {
	s := &sim{
		t: t, rng: rand.New(rand.NewSource(seed)), a: New(Config{Seed: seed}), now: t0,
		agents: map[string]mesos.Resources{}, active: map[string]bool{}, fws: map[string]*simFramework{},
		dyn: map[string]map[string]float64{},
	}
	for i := 0; i < 5+s.rng.Intn(20); i++ {
		s.addAgent()
	}
	for i := 0; i < 2+s.rng.Intn(6); i++ {
		s.addFramework()
	}
	return s
}

func (s *sim) pick(keys []string) string { return keys[s.rng.Intn(len(keys))] }

func (s *sim) agentIDs() []string {
	ids := make([]string, 0, len(s.agents))
	for id := range s.agents {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (s *sim) frameworkIDs() []string {
	ids := make([]string, 0, len(s.fws))
	for id := range s.fws {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (s *sim) addAgent() {
	s.next++
	id := fmt.Sprintf("agent%d", s.next)
	lo := 31000 + uint64(s.rng.Intn(100))
	text := fmt.Sprintf("cpus:%g;mem:%d;disk:%d;ports:[%d-%d]",
		float64(1+s.rng.Intn(16))/2, 256*(1+s.rng.Intn(16)), 1000*s.rng.Intn(4), lo, lo+uint64(s.rng.Intn(20)))
	if s.rng.Intn(3) == 0 {
		role := s.pick([]string{"eng", "ops", "eng/ml"})
		text += fmt.Sprintf(";cpus(%s):%d;mem(%s):%d;disk(%s):%d", role, 1+s.rng.Intn(4), role, 128*(1+s.rng.Intn(8)), role, 100*s.rng.Intn(3))
	}
	total := res(s.t, text)
	if s.rng.Intn(4) == 0 {
		// a persistent volume, reserved (statically) for its role
		role := s.pick([]string{"eng", "ops", "eng/ml"})
		total = append(total, volumeRes(s.t, fmt.Sprint(50*(1+s.rng.Intn(4))), "", fmt.Sprintf("vol-%s", id),
			reservation(mesos.Resource_ReservationInfo_STATIC, role, "")))
	}
	s.agents[id], s.active[id] = total, true
	s.a.AddAgent(AgentSpec{ID: id, Hostname: id, Total: total}, nil)
}

func (s *sim) removeAgent(id string) {
	delete(s.dyn, id)
	delete(s.agents, id)
	delete(s.active, id)
	s.holdings = slices.DeleteFunc(s.holdings, func(h holding) bool { return h.agent == id })
	s.filters = slices.DeleteFunc(s.filters, func(f simFilter) bool { return f.agent == id })
	s.a.RemoveAgent(id)
}

func (s *sim) addFramework() {
	s.next++
	id := fmt.Sprintf("fw%d", s.next)
	roles := []string{s.pick(simRoles)}
	if r := s.pick(simRoles); s.rng.Intn(3) == 0 && r != roles[0] {
		roles = append(roles, r)
	}
	s.fws[id] = &simFramework{roles: roles, active: true, suppressed: map[string]bool{}}
	s.a.AddFramework(FrameworkSpec{ID: id, Roles: roles}, nil, true)
}

func (s *sim) removeFramework(id string) {
	delete(s.fws, id)
	s.holdings = slices.DeleteFunc(s.holdings, func(h holding) bool { return h.fw == id })
	s.dropFilters(id, nil)
	s.a.RemoveFramework(id)
}

// dropFilters forgets fw's filters for roles (all if nil).
func (s *sim) dropFilters(fw string, roles []string) {
	s.filters = slices.DeleteFunc(s.filters, func(f simFilter) bool {
		return f.fw == fw && (roles == nil || slices.Contains(roles, f.role))
	})
}

// recover returns rs of an offer or task, installing a model filter.
func (s *sim) recover(fw, agent, role string, rs mesos.Resources, refuse time.Duration) {
	s.a.Recover(fw, agent, rs, refuse, s.now)
	if refuse > 0 {
		s.filters = append(s.filters, simFilter{fw: fw, role: role, agent: agent, refused: rs, expires: s.now.Add(refuse)})
	}
}

// splitTask keeps a small task out of an offer and returns it and the rest.
func splitTask(rs mesos.Resources) (task, rest mesos.Resources) {
	tookPort := false
	for _, r := range rs {
		switch r.GetType() {
		case mesos.SCALAR:
			v := r.GetScalar().GetValue()
			keep := min(v, 0.5)
			if r.Name == "mem" {
				keep = min(v, 128)
			}
			t := r
			t.Scalar = &mesos.Value_Scalar{Value: keep}
			task = append(task, t)
			if v-keep > 1e-9 {
				r.Scalar = &mesos.Value_Scalar{Value: v - keep}
				rest = append(rest, r)
			}
		case mesos.RANGES:
			var left []mesos.Value_Range
			for _, x := range r.GetRanges().GetRange() {
				if !tookPort {
					tookPort = true
					t := r
					t.Ranges = &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: x.Begin, End: x.Begin}}}
					task = append(task, t)
					if x.End > x.Begin {
						left = append(left, mesos.Value_Range{Begin: x.Begin + 1, End: x.End})
					}
					continue
				}
				left = append(left, x)
			}
			if len(left) > 0 {
				r.Ranges = &mesos.Value_Ranges{Range: left}
				rest = append(rest, r)
			}
		}
	}
	return task, rest
}

// check verifies one cycle's offers against the model, then records them.
func (s *sim) check(offers []Offer) {
	t := s.t
	s.checkLimits(offers)
	seen := map[string]bool{}
	for _, o := range offers {
		key := o.FrameworkID + "|" + o.AgentID + "|" + o.Role
		if seen[key] {
			t.Fatalf("%s offered twice in one cycle", key)
		}
		seen[key] = true
		fw := s.fws[o.FrameworkID]
		switch {
		case fw == nil:
			t.Fatalf("offer to unknown framework %s", o.FrameworkID)
		case !fw.active:
			t.Fatalf("offer to inactive framework %s", o.FrameworkID)
		case !slices.Contains(fw.roles, o.Role):
			t.Fatalf("offer to %s in role %s it is not subscribed to", o.FrameworkID, o.Role)
		case fw.suppressed[o.Role]:
			t.Fatalf("offer to %s in suppressed role %s", o.FrameworkID, o.Role)
		case s.agents[o.AgentID] == nil:
			t.Fatalf("offer of unknown agent %s", o.AgentID)
		case !s.active[o.AgentID]:
			t.Fatalf("offer of deactivated agent %s", o.AgentID)
		}
		q := qty(o.Resources)
		var cpus, mem float64
		for _, r := range o.Resources {
			switch r.Name {
			case "cpus":
				cpus += r.GetScalar().GetValue()
			case "mem":
				mem += r.GetScalar().GetValue()
			}
		}
		if cpus < 0.01 && mem < 32 {
			t.Fatalf("offer below the minimum allocatable: %s", fmtQty(q))
		}
		for _, r := range o.Resources {
			if allocationRole(&r) != o.Role {
				t.Fatalf("resource %s carries allocation role %q in an offer for %q", r.Name, allocationRole(&r), o.Role)
			}
			if r.GetDisk().GetPersistence() != nil && reservationRole(&r) != o.Role {
				t.Fatalf("volume %s of role %s offered to role %s", r.Disk.Persistence.ID, reservationRole(&r), o.Role)
			}
			if rr := reservationRole(&r); rr != "" && !isRoleOrDescendant(o.Role, rr) {
				t.Fatalf("resource %s reserved for %s offered to role %s", r.Name, rr, o.Role)
			}
		}
		for _, f := range s.filters {
			if f.fw == o.FrameworkID && f.role == o.Role && f.agent == o.AgentID && s.now.Before(f.expires) && withinExact(o.Resources, f.refused) {
				t.Fatalf("%s offered %s on %s within a filter refusing %s until %v (now %v)",
					o.FrameworkID, fmtQty(q), o.AgentID, fmtQty(qty(f.refused)), f.expires, s.now)
			}
		}
		s.holdings = append(s.holdings, holding{fw: o.FrameworkID, agent: o.AgentID, role: o.Role, res: o.Resources})
	}
	s.offers += len(offers)
	s.checkHoldings()
}

// checkHoldings asserts that nothing is over-committed: per agent, held
// quantities are within the total and no port is held twice; and that the
// allocator's totals agree with the model.
func (s *sim) checkHoldings() {
	t := s.t
	held := map[string]map[string]float64{}
	ports := map[string]map[uint64]string{}
	sum := map[string]float64{}
	for _, h := range s.holdings {
		if held[h.agent] == nil {
			held[h.agent], ports[h.agent] = map[string]float64{}, map[uint64]string{}
		}
		for k, v := range qty(h.res) {
			held[h.agent][k] += v
		}
		for _, r := range h.res {
			if r.GetType() == mesos.SCALAR {
				sum[r.Name] += r.GetScalar().GetValue()
			}
		}
		for _, p := range portsOf(h.res) {
			if other, dup := ports[h.agent][p]; dup {
				t.Fatalf("port %d of %s held twice (%s and %s)", p, h.agent, other, h.fw)
			}
			ports[h.agent][p] = h.fw
		}
		if !within(h.res, s.agents[h.agent]) {
			t.Fatalf("%s holds %s on %s, not part of its total", h.fw, fmtQty(qty(h.res)), h.agent)
		}
	}
	for agent, q := range held {
		total := qty(s.agents[agent])
		for k, v := range q {
			if v > total[k]+1e-6 {
				t.Fatalf("%s over-committed: %s held %g of %g", agent, k, v, total[k])
			}
		}
	}
	tot := s.a.Totals()
	for _, name := range []string{"cpus", "mem", "disk"} {
		if !approx(tot.Allocated[name], sum[name]) {
			t.Fatalf("Totals().Allocated[%s] = %g, model holds %g", name, tot.Allocated[name], sum[name])
		}
	}
	// Reservations and volumes only move resources between pools: the
	// cluster's totals, and each agent's per reservation role, are what
	// the model says.
	modelTotal := map[string]float64{}
	for id, total := range s.agents {
		for _, r := range total {
			if r.GetType() == mesos.SCALAR {
				modelTotal[r.Name] += r.GetScalar().GetValue()
			}
		}
		got, _, _ := s.a.AgentResources(id)
		want := qty(total)
		for k, v := range want {
			if approx(v, 0) {
				delete(want, k)
			}
		}
		if fmtQty(qty(got)) != fmtQty(want) {
			t.Fatalf("agent %s: allocator total %s, model %s", id, fmtQty(qty(got)), fmtQty(want))
		}
	}
	for _, name := range []string{"cpus", "mem", "disk"} {
		if !approx(tot.Total[name], modelTotal[name]) {
			t.Fatalf("Totals().Total[%s] = %g, model %g", name, tot.Total[name], modelTotal[name])
		}
	}
	checkTree(t, s.a)
	// Internal bookkeeping: each client's count of filtered agents.
	for _, c := range s.a.slots {
		if c == nil {
			continue
		}
		n := 0
		for _, ag := range s.a.agentList {
			if hasBit(ag.filters.bits, c.idx) {
				n++
			}
		}
		if n != c.filterAgents {
			t.Fatalf("client %s/%s has filters on %d agents but counts %d", c.fw.id, c.role, n, c.filterAgents)
		}
	}
}

// react plays the frameworks' part for this cycle's offers.
func (s *sim) react(offers []Offer) {
	for _, o := range offers {
		i := slices.IndexFunc(s.holdings, func(h holding) bool {
			return h.fw == o.FrameworkID && h.agent == o.AgentID && h.role == o.Role && &h.res[0] == &o.Resources[0]
		})
		if s.rng.Intn(6) == 0 {
			s.holdings[i].res = s.frameworkOp(o, s.holdings[i].res)
			o.Resources = s.holdings[i].res
			if len(o.Resources) == 0 {
				continue
			}
		}
		switch r := s.rng.Float64(); {
		case r < 0.35:
			s.holdings = slices.Delete(s.holdings, i, i+1)
			s.recover(o.FrameworkID, o.AgentID, o.Role, o.Resources, time.Duration(1+s.rng.Intn(20))*time.Second)
		case r < 0.55:
			s.holdings = slices.Delete(s.holdings, i, i+1)
			s.recover(o.FrameworkID, o.AgentID, o.Role, o.Resources, 0)
		case r < 0.85:
			task, rest := splitTask(o.Resources)
			s.holdings[i].res = task
			if len(rest) > 0 {
				s.recover(o.FrameworkID, o.AgentID, o.Role, rest, time.Duration(s.rng.Intn(2)*5)*time.Second)
			}
		default: // keep everything as one big task
		}
	}
}

// event applies one random change to the cluster.
func (s *sim) event() {
	fwIDs, agentIDs := s.frameworkIDs(), s.agentIDs()
	switch s.rng.Intn(12) {
	case 0:
		if len(s.holdings) > 0 {
			i := s.rng.Intn(len(s.holdings))
			h := s.holdings[i]
			s.holdings = slices.Delete(s.holdings, i, i+1)
			s.recover(h.fw, h.agent, h.role, h.res, time.Duration(s.rng.Intn(2)*3)*time.Second)
		}
	case 1:
		s.addAgent()
	case 2:
		if len(agentIDs) > 3 {
			s.removeAgent(s.pick(agentIDs))
		}
	case 3:
		s.addFramework()
	case 4:
		if len(fwIDs) > 1 {
			s.removeFramework(s.pick(fwIDs))
		}
	case 5, 6:
		if len(fwIDs) > 0 {
			id := s.pick(fwIDs)
			fw := s.fws[id]
			var roles []string
			if s.rng.Intn(2) == 0 {
				roles = []string{s.pick(fw.roles)}
			}
			if s.rng.Intn(2) == 0 {
				for _, r := range fw.roles {
					if roles == nil || slices.Contains(roles, r) {
						fw.suppressed[r] = true
					}
				}
				s.a.Suppress(id, roles)
			} else {
				for _, r := range fw.roles {
					if roles == nil || slices.Contains(roles, r) {
						fw.suppressed[r] = false
					}
				}
				s.dropFilters(id, roles)
				s.a.Revive(id, roles)
			}
		}
	case 7:
		if len(fwIDs) > 0 {
			id := s.pick(fwIDs)
			if s.fws[id].active = !s.fws[id].active; s.fws[id].active {
				s.a.ActivateFramework(id)
			} else {
				s.dropFilters(id, nil)
				s.a.DeactivateFramework(id)
			}
		}
	case 8:
		if len(agentIDs) > 0 {
			id := s.pick(agentIDs)
			if s.active[id] = !s.active[id]; s.active[id] {
				s.a.ActivateAgent(id)
			} else {
				s.a.DeactivateAgent(id)
			}
		}
	case 9:
		s.a.SetWeight(s.pick(simRoles), float64(1+s.rng.Intn(4)))
	case 10:
		s.operatorOp()
	case 11:
		if s.rng.Intn(3) == 0 {
			s.setQuota()
		}
	}
}

func TestPropertyRandomClusters(t *testing.T) {
	seeds, steps := 40, 150
	if testing.Short() {
		seeds = 10
	}
	total := 0
	var ops struct{ reserves, unreserves, volumes, quotas int }
	for seed := int64(1); seed <= int64(seeds); seed++ {
		s := newSim(t, seed)
		t.Logf("seed %d", seed)
		for step := 0; step < steps; step++ {
			for i := s.rng.Intn(3); i > 0; i-- {
				s.event()
				s.checkHoldings()
			}
			offers := s.a.Allocate(s.now)
			s.check(offers)
			s.react(offers)
			s.checkHoldings()
			s.now = s.now.Add(time.Duration(500+s.rng.Intn(3000)) * time.Millisecond)
		}
		total += s.offers
		ops.reserves += s.reserves
		ops.unreserves += s.unreserves
		ops.volumes += s.volumes
		ops.quotas += s.quotas
	}
	if total < 1000 {
		t.Fatalf("only %d offers in the whole run: the simulation exercises too little", total)
	}
	t.Logf("%d offers; reserves %d, unreserves %d, volumes %d, quota changes %d", total, ops.reserves, ops.unreserves, ops.volumes, ops.quotas)
	if ops.reserves < 20 || ops.unreserves < 5 || ops.volumes < 5 || ops.quotas < 20 {
		t.Fatalf("too few operations exercised: %+v", ops)
	}
}

// TestEverythingOfferableIsOffered checks work conservation: with every
// framework eligible and no filters, one cycle hands out every agent.
func TestEverythingOfferableIsOffered(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		a := New(Config{Seed: seed})
		for i := 0; i < 10+rng.Intn(50); i++ {
			a.AddAgent(AgentSpec{ID: fmt.Sprintf("agent%d", i),
				Total: res(t, fmt.Sprintf("cpus:%d;mem:%d;ports:[1-%d]", 1+rng.Intn(8), 64*(1+rng.Intn(64)), 1+rng.Intn(100)))}, nil)
		}
		for i := 0; i < 1+rng.Intn(10); i++ {
			a.AddFramework(FrameworkSpec{ID: fmt.Sprintf("fw%d", i), Roles: []string{simRoles[rng.Intn(len(simRoles))]}}, nil, true)
		}
		a.Allocate(t0)
		tot := a.Totals()
		if tot.Allocated["cpus"] != tot.Total["cpus"] || tot.Allocated["mem"] != tot.Total["mem"] {
			t.Fatalf("seed %d: after one cycle allocated %v of %v", seed, tot.Allocated, tot.Total)
		}
	}
}

// TestSuppressedNeverOffered runs a busy cluster in which half the
// frameworks are suppressed and checks they get nothing while the others
// keep getting offers.
func TestSuppressedNeverOffered(t *testing.T) {
	a := New(Config{Seed: 9})
	for i := 0; i < 40; i++ {
		a.AddAgent(AgentSpec{ID: fmt.Sprintf("agent%d", i), Total: res(t, "cpus:2;mem:512")}, nil)
	}
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("fw%d", i)
		a.AddFramework(FrameworkSpec{ID: id, Roles: []string{"*"}}, nil, true)
		if i%2 == 0 {
			a.Suppress(id, nil)
		}
	}
	now := t0
	got := 0
	for cycle := 0; cycle < 20; cycle++ {
		offers := a.Allocate(now)
		for _, o := range offers {
			var n int
			fmt.Sscanf(o.FrameworkID, "fw%d", &n)
			if n%2 == 0 {
				t.Fatalf("cycle %d: suppressed %s got an offer", cycle, o.FrameworkID)
			}
		}
		got += len(offers)
		declineAll(a, offers, 0, now)
		now = now.Add(time.Second)
	}
	if got != 20*40 {
		t.Fatalf("unsuppressed frameworks got %d offers, want %d", got, 20*40)
	}
}
