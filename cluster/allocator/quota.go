package allocator

import (
	"fmt"
	"math"
	"slices"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Quota, with Mesos 1.9+ semantics.
//
// A role's quota has a guarantee and a limit, each a list of scalar
// quantities (cpus, mem, disk, gpus or any custom scalar). A role's
// consumption is what is reserved for it or its sub-roles plus the
// unreserved resources allocated (offered or in use) to it or its
// sub-roles; it is what both are compared with.
//
//   - Limits are never exceeded: unreserved resources offered to a role are
//     trimmed so that neither it nor any ancestor goes over its limit.
//     Reserved resources are already counted and are always offered.
//   - Guarantees are satisfied first. Each cycle has two stages, as in
//     Mesos. Stage 1 offers to roles below their guarantee (and their
//     sub-roles) up to what they lack, plus any surplus. Stage 2 offers to
//     everyone in DRF order. Across both, unreserved resources are offered
//     only while enough stays available (headroom) for the guarantees still
//     unsatisfied: the surplus is what is available beyond them.
//
// The bookkeeping (consumption per role) is kept only while some role has
// a quota, so clusters without quota pay nothing for it.

// roleQuota is the quota state of one role. While quota is on, every role
// with a consumption has one (most with no guarantee or limit).
type roleQuota struct {
	role                   string
	guarantee, limit       vec // scalars only
	limited                [nMain]bool
	hasGuarantee, hasLimit bool
	consumed               vec  // scalars only, subtree
	top                    bool // has a guarantee and no ancestor has one
	unsat                  vec  // top: what it lacks, counted in required
	hungry, capped         bool
	dirty                  bool
}

func (q *roleQuota) has() bool { return q.hasGuarantee || q.hasLimit }

// quotaState is the allocator-wide quota bookkeeping.
type quotaState struct {
	quotaOn    bool
	quota      map[string]*roleQuota
	quotaRoles []string // roles with a guarantee or limit, sorted
	quotaDirty []*roleQuota
	required   vec // Σ unsatisfied guarantees of top roles (scalars)
	avail      vec // unallocated unreserved resources of usable agents, per cycle
}

// capVec holds per-scalar caps; math.MaxInt64 means none.
type capVec struct {
	s     [nMain]int64
	extra []namedScalar
}

func (c *capVec) reset() {
	for i := range c.s {
		c.s[i] = math.MaxInt64
	}
	c.extra = c.extra[:0]
}

func (c *capVec) extraCap(name string) int64 {
	for _, e := range c.extra {
		if e.name == name {
			return e.v
		}
	}
	return math.MaxInt64
}

func (c *capVec) lower(name string, v int64) {
	for i := range c.extra {
		if c.extra[i].name == name {
			c.extra[i].v = min(c.extra[i].v, v)
			return
		}
	}
	c.extra = append(c.extra, namedScalar{name: name, v: v})
}

// addScalars adds sign × the scalars of d to v, never going below zero.
func (v *vec) addScalars(d *vec, sign int64) {
	for i := range v.s {
		v.s[i] = max(0, v.s[i]+sign*d.s[i])
	}
	for _, e := range d.extra {
		if e.v != 0 {
			x := v.extraAt(e.name)
			x.v = max(0, x.v+sign*e.v)
		}
	}
}

func (v *vec) scalarsZero() bool {
	if v.s != (scalars{}) {
		return false
	}
	for _, e := range v.extra {
		if e.v != 0 {
			return false
		}
	}
	return true
}

// scalarVec parses scalar resources; anything else is an error.
func scalarVec(what string, rs mesos.Resources) (vec, error) {
	var v vec
	for i := range rs {
		r := &rs[i]
		if r.GetType() != mesos.SCALAR {
			return vec{}, fmt.Errorf("%s: %s is not a scalar resource; quota supports scalars only", what, r.Name)
		}
		if f := r.GetScalar().GetValue(); f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return vec{}, fmt.Errorf("%s: %s has invalid quantity %v", what, r.Name, f)
		}
		if mainIndex(r.Name) < 0 {
			v.extraAt(r.Name) // present, even if zero: a zero limit is a limit
		}
		v.addResource(r)
	}
	return v, nil
}

// SetQuota sets role's quota guarantee and limit (scalar resources; names
// absent from limit are unlimited). Both empty removes the quota. A
// guarantee above the limit, a non-scalar resource, or sub-roles'
// guarantees adding up to more than their parent's guarantee is an error
// and changes nothing. Lowering a limit below the current consumption is
// allowed (Mesos's force); the role is then offered no more unreserved
// resources until it is back under.
func (a *Allocator) SetQuota(role string, guarantee, limit mesos.Resources) error {
	if role == "" || strings.HasPrefix(role, "/") || strings.HasSuffix(role, "/") || strings.Contains(role, "//") {
		return fmt.Errorf("quota for role %q: invalid role name", role)
	}
	g, err := scalarVec("quota guarantee of role "+role, guarantee)
	if err != nil {
		return err
	}
	l, err := scalarVec("quota limit of role "+role, limit)
	if err != nil {
		return err
	}
	var limited [nMain]bool
	for i := range limit {
		if j := mainIndex(limit[i].Name); j >= 0 {
			limited[j] = true
		}
	}
	for i, name := range mainNames {
		if limited[i] && g.s[i] > l.s[i] {
			return fmt.Errorf("quota for role %s: guarantee %s:%g exceeds limit %g", role, name, fromMilli(g.s[i]), fromMilli(l.s[i]))
		}
	}
	for _, e := range g.extra {
		if le := l.extraIndex(e.name); le >= 0 && e.v > l.extra[le].v {
			return fmt.Errorf("quota for role %s: guarantee %s:%g exceeds limit %g", role, e.name, fromMilli(e.v), fromMilli(l.extra[le].v))
		}
	}
	hasG, hasL := !g.scalarsZero(), len(limit) > 0
	if hasG {
		if err := a.checkGuaranteeTree(role, &g); err != nil {
			return err
		}
	}
	if !hasG && !hasL {
		a.clearQuota(role)
		return nil
	}
	a.enableQuota()
	q := a.roleQuotaFor(role)
	if !q.has() {
		i, _ := slices.BinarySearch(a.quotaRoles, role)
		a.quotaRoles = slices.Insert(a.quotaRoles, i, role)
	}
	q.guarantee, q.limit, q.limited, q.hasGuarantee, q.hasLimit = g, l, limited, hasG, hasL
	a.retop(role)
	a.markQuota(q)
	a.epoch++
	return nil
}

func (v *vec) extraIndex(name string) int {
	for i := range v.extra {
		if v.extra[i].name == name {
			return i
		}
	}
	return -1
}

// checkGuaranteeTree verifies that, with role's guarantee set to g, the
// guarantees below each guaranteed role add up to no more than its own.
func (a *Allocator) checkGuaranteeTree(role string, g *vec) error {
	guar := func(r string) *vec {
		if r == role {
			return g
		}
		if q := a.quota[r]; q != nil && q.hasGuarantee {
			return &q.guarantee
		}
		return nil
	}
	// nearest guaranteed strict ancestor of r
	parentOf := func(r string) string {
		for p := parentRole(r); p != ""; p = parentRole(p) {
			if guar(p) != nil {
				return p
			}
		}
		return ""
	}
	check := func(p string) error {
		gp := guar(p)
		if gp == nil {
			return nil
		}
		var sum vec
		for _, r := range a.descendants(p) {
			if gr := guar(r); gr != nil && parentOf(r) == p {
				sum.addScalars(gr, +1)
			}
		}
		if role != p && isRoleOrDescendant(role, p) && !slices.Contains(a.quotaRoles, role) && parentOf(role) == p {
			sum.addScalars(g, +1)
		}
		for i, name := range mainNames {
			if sum.s[i] > gp.s[i] {
				return fmt.Errorf("quota for role %s: guarantees of the sub-roles of %s add up to %s:%g, more than its guarantee %g",
					role, p, name, fromMilli(sum.s[i]), fromMilli(gp.s[i]))
			}
		}
		for _, e := range sum.extra {
			if e.v > gp.extraValue(e.name) {
				return fmt.Errorf("quota for role %s: guarantees of the sub-roles of %s add up to %s:%g, more than its guarantee %g",
					role, p, e.name, fromMilli(e.v), fromMilli(gp.extraValue(e.name)))
			}
		}
		return nil
	}
	if p := parentOf(role); p != "" {
		if err := check(p); err != nil {
			return err
		}
	}
	return check(role)
}

// descendants lists the quota roles strictly below role.
func (a *Allocator) descendants(role string) []string {
	prefix := role + "/"
	i, _ := slices.BinarySearch(a.quotaRoles, prefix)
	j := i
	for j < len(a.quotaRoles) && strings.HasPrefix(a.quotaRoles[j], prefix) {
		j++
	}
	return a.quotaRoles[i:j]
}

// clearQuota removes role's quota.
func (a *Allocator) clearQuota(role string) {
	q := a.quota[role]
	if q == nil || !q.has() {
		return
	}
	if i, ok := slices.BinarySearch(a.quotaRoles, role); ok {
		a.quotaRoles = slices.Delete(a.quotaRoles, i, i+1)
	}
	q.guarantee, q.limit, q.limited, q.hasGuarantee, q.hasLimit = vec{}, vec{}, [nMain]bool{}, false, false
	a.retop(role)
	a.markQuota(q)
	a.epoch++
	if len(a.quotaRoles) == 0 {
		a.settleQuota()
		a.quotaOn = false
		a.quota = nil
		a.required = vec{}
		a.quotaDirty = a.quotaDirty[:0]
	}
}

// enableQuota starts the consumption bookkeeping, computing it from
// scratch.
func (a *Allocator) enableQuota() {
	if a.quotaOn {
		return
	}
	a.quotaOn = true
	a.quota = map[string]*roleQuota{}
	for _, ag := range a.agentList {
		for i := range ag.pools {
			a.noteReserved(&ag.pools[i], &ag.pools[i].total, +1)
		}
		for _, e := range ag.allocs {
			a.noteAlloc(ag, e, &e.v, +1)
		}
	}
}

func (a *Allocator) roleQuotaFor(role string) *roleQuota {
	q := a.quota[role]
	if q == nil {
		q = &roleQuota{role: role}
		a.quota[role] = q
	}
	return q
}

func (a *Allocator) markQuota(q *roleQuota) {
	if !q.dirty {
		q.dirty = true
		a.quotaDirty = append(a.quotaDirty, q)
	}
}

// retop recomputes which guaranteed roles are top ones after role's
// guarantee changed, keeping required in step.
func (a *Allocator) retop(role string) {
	a.setTop(a.quota[role])
	for _, d := range a.descendants(role) {
		a.setTop(a.quota[d])
	}
}

func (a *Allocator) setTop(q *roleQuota) {
	top := q.hasGuarantee
	for p := parentRole(q.role); top && p != ""; p = parentRole(p) {
		if pq := a.quota[p]; pq != nil && pq.hasGuarantee {
			top = false
		}
	}
	if q.top {
		a.required.addScalars(&q.unsat, -1)
		q.unsat = vec{}
	}
	q.top = top
	if top {
		a.updateUnsat(q)
	}
}

// updateUnsat recomputes what top role q lacks of its guarantee.
func (a *Allocator) updateUnsat(q *roleQuota) {
	var u vec
	for i := range u.s {
		u.s[i] = max(0, q.guarantee.s[i]-q.consumed.s[i])
	}
	for _, e := range q.guarantee.extra {
		if d := e.v - q.consumed.extraValue(e.name); d > 0 {
			u.extraAt(e.name).v = d
		}
	}
	decreased := false
	for i := range u.s {
		decreased = decreased || u.s[i] < q.unsat.s[i]
	}
	for _, e := range q.unsat.extra {
		decreased = decreased || u.extraValue(e.name) < e.v
	}
	a.required.addScalars(&q.unsat, -1)
	a.required.addScalars(&u, +1)
	q.unsat = u
	if decreased {
		a.epoch++ // more surplus: agents held back may be offerable now
	}
}

// noteAlloc accounts a change of allocation e on ag by sign×d.
func (a *Allocator) noteAlloc(ag *agent, e *allocation, d *vec, sign int64) {
	if a.quotaOn && ag.pools[e.pool].role == "" {
		a.account(e.role, d, sign)
	}
}

// noteReserved accounts a change of a reserved pool's total by sign×d.
func (a *Allocator) noteReserved(p *pool, d *vec, sign int64) {
	if a.quotaOn && p.role != "" {
		a.account(p.role, d, sign)
	}
}

// account adds sign×d to the consumption of role and its ancestors.
func (a *Allocator) account(role string, d *vec, sign int64) {
	r := role
	for {
		q := a.roleQuotaFor(r)
		q.consumed.addScalars(d, sign)
		if q.has() {
			if q.top {
				a.updateUnsat(q)
			}
			a.markQuota(q)
		}
		i := strings.LastIndexByte(r, '/')
		if i < 0 {
			return
		}
		r = r[:i]
	}
}

// settleQuota brings the roles' hungry and capped flags, and the sorter
// nodes that mirror them, up to date.
func (a *Allocator) settleQuota() {
	for _, q := range a.quotaDirty {
		q.dirty = false
		hungry := false
		if q.hasGuarantee {
			for i := range q.guarantee.s {
				hungry = hungry || q.consumed.s[i] < q.guarantee.s[i]
			}
			for _, e := range q.guarantee.extra {
				hungry = hungry || q.consumed.extraValue(e.name) < e.v
			}
		}
		capped := q.hasLimit && !a.limitFitsMin(q)
		if hungry != q.hungry {
			q.hungry = hungry
			a.setHungry(q.role, hungry)
			if hungry {
				a.epoch++
			}
		}
		if capped != q.capped {
			q.capped = capped
			a.setCapped(q.role, capped)
			if !capped {
				a.epoch++
			}
		}
	}
	a.quotaDirty = a.quotaDirty[:0]
}

// limitFitsMin reports whether what q's limit leaves still holds one of
// the minimum allocatable alternatives.
func (a *Allocator) limitFitsMin(q *roleQuota) bool {
next:
	for i := range a.minAlloc {
		m := &a.minAlloc[i]
		for j := range m.s {
			if m.s[j] > 0 && q.limited[j] && q.limit.s[j]-q.consumed.s[j] < m.s[j] {
				continue next
			}
		}
		for _, e := range m.extra {
			if li := q.limit.extraIndex(e.name); e.v > 0 && li >= 0 && q.limit.extra[li].v-q.consumed.extraValue(e.name) < e.v {
				continue next
			}
		}
		return true
	}
	return false
}

// limitCap lowers c to what role may still take under its limits and
// its ancestors'.
func (a *Allocator) limitCap(role string, c *capVec) {
	r := role
	for {
		if q := a.quota[r]; q != nil && q.hasLimit {
			for i := range c.s {
				if q.limited[i] {
					c.s[i] = min(c.s[i], max(0, q.limit.s[i]-q.consumed.s[i]))
				}
			}
			for _, e := range q.limit.extra {
				c.lower(e.name, max(0, e.v-q.consumed.extraValue(e.name)))
			}
		}
		i := strings.LastIndexByte(r, '/')
		if i < 0 {
			return
		}
		r = r[:i]
	}
}

// guaranteeNeed sets n to what role may take to satisfy the guarantees of
// it and its ancestors: per scalar, the least any guaranteeing one lacks;
// zero for scalars nobody guarantees.
func (a *Allocator) guaranteeNeed(role string, n *capVec) {
	n.reset()
	r := role
	for {
		if q := a.quota[r]; q != nil && q.hasGuarantee {
			for i := range n.s {
				if q.guarantee.s[i] > 0 {
					n.s[i] = min(n.s[i], max(0, q.guarantee.s[i]-q.consumed.s[i]))
				}
			}
			for _, e := range q.guarantee.extra {
				n.lower(e.name, max(0, e.v-q.consumed.extraValue(e.name)))
			}
		}
		i := strings.LastIndexByte(r, '/')
		if i < 0 {
			break
		}
		r = r[:i]
	}
	for i := range n.s {
		if n.s[i] == math.MaxInt64 {
			n.s[i] = 0
		}
	}
}

// surplus returns, for scalar i, what may be offered beyond the headroom
// held for unsatisfied guarantees.
func (a *Allocator) surplus(i int) int64 {
	if a.required.s[i] == 0 {
		return math.MaxInt64
	}
	return max(0, a.avail.s[i]-a.required.s[i])
}

func (a *Allocator) surplusExtra(name string) int64 {
	r := a.required.extraValue(name)
	if r == 0 {
		return math.MaxInt64
	}
	return max(0, a.avail.extraValue(name)-r)
}

// capFor computes in a.caps what role may be offered of unreserved
// resources at stage (1: guarantees, 2: fair share).
func (a *Allocator) capFor(role string, stage int) *capVec {
	c := &a.caps
	c.reset()
	a.limitCap(role, c)
	hungry := !a.required.scalarsZero()
	if !hungry {
		return c
	}
	if stage == 1 {
		n := &a.need
		a.guaranteeNeed(role, n)
		for i := range c.s {
			if s := a.surplus(i); s != math.MaxInt64 {
				c.s[i] = min(c.s[i], n.s[i]+s)
			}
		}
		for _, e := range a.required.extra {
			if e.v > 0 {
				need := n.extraCap(e.name)
				if need == math.MaxInt64 {
					need = 0
				}
				c.lower(e.name, need+a.surplusExtra(e.name))
			}
		}
		return c
	}
	for i := range c.s {
		c.s[i] = min(c.s[i], a.surplus(i))
	}
	for _, e := range a.required.extra {
		if e.v > 0 {
			c.lower(e.name, a.surplusExtra(e.name))
		}
	}
	return c
}

// computeAvail sums the unallocated unreserved resources of agents that
// can be offered now.
func (a *Allocator) computeAvail() {
	a.avail = vec{}
	for _, ag := range a.agentList {
		if !ag.active || ag.down {
			continue
		}
		for i := range ag.pools {
			if ag.pools[i].role == "" {
				a.avail.addScalars(&ag.pools[i].free, +1)
			}
		}
	}
}

// QuotaStatus reports one role's quota and consumption.
type QuotaStatus struct {
	Role      string
	Guarantee map[string]float64
	Limit     map[string]float64 // absent names are unlimited
	Consumed  map[string]float64 // reservations plus allocated unreserved, sub-roles included
}

func scalarMap(v *vec, only func(name string) bool) map[string]float64 {
	m := map[string]float64{}
	for i, name := range mainNames {
		if only == nil && v.s[i] != 0 || only != nil && only(name) {
			m[name] = fromMilli(v.s[i])
		}
	}
	for _, e := range v.extra {
		if only == nil && e.v != 0 || only != nil && only(e.name) {
			m[e.name] = fromMilli(e.v)
		}
	}
	return m
}

// Quotas returns the quota of every role that has one, sorted by role.
func (a *Allocator) Quotas() []QuotaStatus {
	a.settleQuota()
	out := make([]QuotaStatus, 0, len(a.quotaRoles))
	for _, role := range a.quotaRoles {
		out = append(out, a.quotaStatus(a.quota[role]))
	}
	return out
}

func (a *Allocator) quotaStatus(q *roleQuota) QuotaStatus {
	limitNames := func(name string) bool {
		if i := mainIndex(name); i >= 0 {
			return q.limited[i]
		}
		return q.limit.extraIndex(name) >= 0
	}
	return QuotaStatus{
		Role:      q.role,
		Guarantee: scalarMap(&q.guarantee, nil),
		Limit:     scalarMap(&q.limit, limitNames),
		Consumed:  scalarMap(&q.consumed, nil),
	}
}
