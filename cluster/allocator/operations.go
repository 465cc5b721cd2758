package allocator

import (
	"fmt"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Operations that convert resources: RESERVE and UNRESERVE (dynamic
// reservations, with refinement), CREATE and DESTROY (persistent volumes).
// UpdateAllocation applies them to resources a framework was offered
// (ACCEPT); UpdateAvailable applies them to an agent's unallocated
// resources (the operator's /reserve, /unreserve, /create-volumes,
// /destroy-volumes, RESERVE_RESOURCES, UNRESERVE_RESOURCES, ...). Either
// validates every operation first and changes nothing if one is invalid.
// A conversion keeps quantities: it moves them from one pool kind to
// another, so shares and cluster totals do not change, but quota
// consumption may (see quota.go).

// conversion moves v, allocated in role ("" = unallocated), from kind from
// to kind to.
type conversion struct {
	from, to kind
	role     string
	v        vec
}

// bagEntry is a quantity of one kind allocated in one role.
type bagEntry struct {
	k    kind
	role string
	v    vec
}

type bag []bagEntry

func (b bag) index(k *kind, role string) int {
	for i := range b {
		if b[i].role == role && b[i].k.same(k) {
			return i
		}
	}
	return -1
}

func (b *bag) add(k *kind, role string, v *vec) {
	if i := b.index(k, role); i >= 0 {
		(*b)[i].v.add(v)
		return
	}
	*b = append(*b, bagEntry{k: *k, role: role, v: *v.clone()})
}

// take removes v of kind k in role, reporting false if it is not all
// there (or, for an indivisible kind, is not all of it).
func (b *bag) take(k *kind, role string, v *vec) bool {
	i := b.index(k, role)
	if i < 0 || !(*b)[i].v.contains(v) || k.indivisible() && !(*b)[i].v.equal(v) {
		return false
	}
	(*b)[i].v.sub(v)
	return true
}

// describe renders r for error messages, e.g. `cpus(eng):8` or
// `disk(eng):1024 volume "data"`.
func describe(r *mesos.Resource) string {
	var b strings.Builder
	b.WriteString(r.Name)
	if rs := reservationsOf(r); len(rs) > 0 {
		roles := make([]string, len(rs))
		for i := range rs {
			roles[i] = rs[i].GetRole()
		}
		fmt.Fprintf(&b, "(%s)", strings.Join(roles, ">"))
	}
	switch r.GetType() {
	case mesos.SCALAR:
		fmt.Fprintf(&b, ":%g", r.GetScalar().GetValue())
	case mesos.RANGES:
		var parts []string
		for _, x := range r.GetRanges().GetRange() {
			parts = append(parts, fmt.Sprintf("%d-%d", x.Begin, x.End))
		}
		fmt.Fprintf(&b, ":[%s]", strings.Join(parts, ","))
	case mesos.SET:
		fmt.Fprintf(&b, ":{%s}", strings.Join(r.GetSet().GetItem(), ","))
	}
	if d := r.Disk; d != nil {
		if d.Persistence != nil {
			fmt.Fprintf(&b, " volume %q", d.Persistence.ID)
		}
		if s := d.Source; s != nil {
			fmt.Fprintf(&b, " on %s disk", s.Type)
		}
	}
	return b.String()
}

func quantity(r *mesos.Resource) vec {
	var v vec
	v.addResource(r)
	return v
}

// popped returns k with its last reservation removed (the resources
// before it was made).
func popped(k kind) kind {
	n := len(k.reservations)
	if n <= 1 {
		k.reservations, k.role = nil, ""
		return k
	}
	k.reservations = k.reservations[: n-1 : n-1]
	k.role = k.reservations[n-2].GetRole()
	return k
}

// withoutVolume returns k's disk stripped of persistence and volume.
func withoutVolume(k kind) kind {
	if k.disk == nil {
		return k
	}
	if k.disk.Source == nil {
		k.disk = nil
	} else {
		k.disk = &mesos.Resource_DiskInfo{Source: k.disk.Source}
	}
	return k
}

// conversions validates ops against the working bag w (resources
// allocated in their roles, or free with role "" when fw is nil) and
// returns the conversions they make, updating w.
func (a *Allocator) conversions(ag *agent, fw *framework, w *bag, ops []mesos.Offer_Operation) ([]conversion, error) {
	var out []conversion
	where := "agent " + ag.id
	if fw != nil {
		where = fmt.Sprintf("framework %s on agent %s", fw.id, ag.id)
	}
	roleOf := func(r *mesos.Resource, reserved string) string {
		if fw == nil {
			return ""
		}
		if role := allocationRole(r); role != "" {
			return role
		}
		return defaultRole(fw, reserved)
	}
	convert := func(op string, r *mesos.Resource, from, to kind) error {
		role := roleOf(r, from.role)
		v := quantity(r)
		if v.isZero() {
			return fmt.Errorf("%s %s: empty quantity", op, describe(r))
		}
		if !w.take(&from, role, &v) {
			have := "unallocated on " + where
			if fw != nil {
				have = fmt.Sprintf("among the resources offered to %s in role %s", where, role)
			}
			whole := ""
			if from.indivisible() {
				whole = " (it must be taken whole)"
			}
			return fmt.Errorf("%s %s: the resources it needs are not available %s%s", op, describe(r), have, whole)
		}
		w.add(&to, role, &v)
		out = append(out, conversion{from: from, to: to, role: role, v: v})
		return nil
	}
	created := map[string]bool{}
	for i := range ops {
		op := &ops[i]
		switch op.GetType() {
		case mesos.Offer_Operation_LAUNCH, mesos.Offer_Operation_LAUNCH_GROUP:
			continue // they consume resources; they convert none
		case mesos.Offer_Operation_RESERVE:
			for j := range op.GetReserve().GetResources() {
				r := &op.Reserve.Resources[j]
				if !supported(r) {
					return nil, fmt.Errorf("RESERVE %s: unsupported resource (revocable, shared or from a resource provider)", describe(r))
				}
				to := kindOf(r)
				n := len(to.reservations)
				switch {
				case n == 0:
					return nil, fmt.Errorf("RESERVE %s: the resource carries no reservation", describe(r))
				case to.reservations[n-1].GetType() != mesos.Resource_ReservationInfo_DYNAMIC:
					return nil, fmt.Errorf("RESERVE %s: only dynamic reservations can be made", describe(r))
				case to.volume():
					return nil, fmt.Errorf("RESERVE %s: a persistent volume cannot be reserved", describe(r))
				}
				from := popped(to)
				if from.role != "" && (from.role == to.role || !isRoleOrDescendant(to.role, from.role)) {
					return nil, fmt.Errorf("RESERVE %s: a reservation for %s can only be refined to one of its sub-roles, not %s", describe(r), from.role, to.role)
				}
				if fw != nil {
					if role := roleOf(r, from.role); role != to.role {
						return nil, fmt.Errorf("RESERVE %s: the resources are allocated to role %s; %s may reserve only for that role", describe(r), role, where)
					}
				}
				if err := convert("RESERVE", r, from, to); err != nil {
					return nil, err
				}
			}
		case mesos.Offer_Operation_UNRESERVE:
			for j := range op.GetUnreserve().GetResources() {
				r := &op.Unreserve.Resources[j]
				from := kindOf(r)
				n := len(from.reservations)
				switch {
				case n == 0:
					return nil, fmt.Errorf("UNRESERVE %s: the resource is not reserved", describe(r))
				case from.reservations[n-1].GetType() != mesos.Resource_ReservationInfo_DYNAMIC:
					return nil, fmt.Errorf("UNRESERVE %s: static reservations cannot be unreserved", describe(r))
				case from.volume():
					return nil, fmt.Errorf("UNRESERVE %s: the disk holds a persistent volume; destroy it first", describe(r))
				}
				if fw != nil {
					if role := roleOf(r, from.role); role != from.role {
						return nil, fmt.Errorf("UNRESERVE %s: the reservation belongs to role %s, not to %s's role %s", describe(r), from.role, where, role)
					}
				}
				if err := convert("UNRESERVE", r, from, popped(from)); err != nil {
					return nil, err
				}
			}
		case mesos.Offer_Operation_CREATE:
			for j := range op.GetCreate().GetVolumes() {
				r := &op.Create.Volumes[j]
				p := r.GetDisk().GetPersistence()
				switch {
				case r.Name != "disk" || p == nil || p.ID == "":
					return nil, fmt.Errorf("CREATE %s: a volume is a disk resource with a persistence ID", describe(r))
				case r.Shared != nil:
					return nil, fmt.Errorf("CREATE %s: shared persistent volumes are not supported", describe(r))
				case reservationRole(r) == "":
					return nil, fmt.Errorf("CREATE %s: persistent volumes can only be created on reserved disk", describe(r))
				case !supported(r):
					return nil, fmt.Errorf("CREATE %s: unsupported disk", describe(r))
				}
				to := kindOf(r)
				if fw != nil {
					if role := roleOf(r, to.role); role != to.role {
						return nil, fmt.Errorf("CREATE %s: the disk is reserved for %s but allocated to role %s; a volume is offered only to its own role, so create it from role %s", describe(r), to.role, role, to.role)
					}
				}
				key := to.role + "\x00" + p.ID
				if created[key] || ag.hasVolume(to.role, p.ID) {
					return nil, fmt.Errorf("CREATE %s: agent %s already has volume %q for role %s", describe(r), ag.id, p.ID, to.role)
				}
				created[key] = true
				if err := convert("CREATE", r, withoutVolume(to), to); err != nil {
					return nil, err
				}
			}
		case mesos.Offer_Operation_DESTROY:
			for j := range op.GetDestroy().GetVolumes() {
				r := &op.Destroy.Volumes[j]
				from := kindOf(r)
				if !from.volume() {
					return nil, fmt.Errorf("DESTROY %s: not a persistent volume", describe(r))
				}
				if err := convert("DESTROY", r, from, withoutVolume(from)); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("operation %s is not supported by the allocator", op.GetType())
		}
	}
	return out, nil
}

// hasVolume reports whether ag has a persistent volume id for role.
func (ag *agent) hasVolume(role, id string) bool {
	for i := range ag.pools {
		p := &ag.pools[i]
		if p.volume() && p.role == role && p.disk.Persistence.ID == id && !p.total.isZero() {
			return true
		}
	}
	return false
}

// checkLimits rejects conversions that would take a role over its quota
// limit (a reservation counts against it even while unallocated).
func (a *Allocator) checkLimits(cs []conversion) error {
	if !a.quotaOn {
		return nil
	}
	delta := map[string]*vec{}
	addChain := func(role string, v *vec, sign int64) {
		for r := role; r != ""; r = parentRole(r) {
			d := delta[r]
			if d == nil {
				d = &vec{}
				delta[r] = d
			}
			for i := range d.s {
				d.s[i] += sign * v.s[i]
			}
			for _, e := range v.extra {
				d.extraAt(e.name).v += sign * e.v
			}
		}
	}
	consumer := func(k *kind, role string) string {
		if k.role != "" {
			return k.role
		}
		return role // unreserved: counts only while allocated
	}
	for i := range cs {
		c := &cs[i]
		if r := consumer(&c.from, c.role); r != "" {
			addChain(r, &c.v, -1)
		}
		if r := consumer(&c.to, c.role); r != "" {
			addChain(r, &c.v, +1)
		}
	}
	for role, d := range delta {
		q := a.quota[role]
		if q == nil || !q.hasLimit {
			continue
		}
		for i, name := range mainNames {
			if d.s[i] > 0 && q.limited[i] && q.consumed.s[i]+d.s[i] > q.limit.s[i] {
				return fmt.Errorf("role %s would exceed its quota limit %s:%g (consumed %g, adding %g)",
					role, name, fromMilli(q.limit.s[i]), fromMilli(q.consumed.s[i]), fromMilli(d.s[i]))
			}
		}
		for _, e := range d.extra {
			if li := q.limit.extraIndex(e.name); e.v > 0 && li >= 0 && q.consumed.extraValue(e.name)+e.v > q.limit.extra[li].v {
				return fmt.Errorf("role %s would exceed its quota limit %s:%g (consumed %g, adding %g)",
					role, e.name, fromMilli(q.limit.extra[li].v), fromMilli(q.consumed.extraValue(e.name)), fromMilli(e.v))
			}
		}
	}
	return nil
}

// UpdateAllocation applies RESERVE, UNRESERVE, CREATE and DESTROY
// operations (in order; LAUNCH and LAUNCH_GROUP are skipped) to resources
// offered to a framework on an agent, which stay allocated to it in their
// converted form; the agent's total changes accordingly. It returns offered
// after the conversions. A framework may reserve only unreserved (or, to
// refine, ancestor-reserved) resources for the role they were offered in,
// unreserve only its role's dynamic reservations, and create volumes only
// on disk reserved for that role. Labels and reservation stacks are
// compared exactly. Invalid operations, or offered resources not allocated
// to the framework, return an error and change nothing.
func (a *Allocator) UpdateAllocation(frameworkID, agentID string, offered mesos.Resources, ops []mesos.Offer_Operation) (mesos.Resources, error) {
	ag := a.agents[agentID]
	if ag == nil {
		return nil, fmt.Errorf("update allocation of framework %s: unknown agent %s", frameworkID, agentID)
	}
	fw := a.frameworks[frameworkID]
	if fw == nil {
		return nil, fmt.Errorf("update allocation on agent %s: unknown framework %s", agentID, frameworkID)
	}
	var w bag
	for i := range offered {
		r := &offered[i]
		p := ag.findPool(r)
		if !supported(r) || p < 0 {
			return nil, fmt.Errorf("framework %s on agent %s: %s is not part of the agent's resources", frameworkID, agentID, describe(r))
		}
		role := allocationRole(r)
		if role == "" {
			role = defaultRole(fw, ag.pools[p].role)
		}
		v := quantity(r)
		w.add(&ag.pools[p].kind, role, &v)
	}
	for i := range w {
		p := ag.findKind(&w[i].k)
		c := fw.client(w[i].role)
		j := -1
		if c != nil {
			j = ag.findAllocation(frameworkID, c, w[i].role, p)
		}
		if j < 0 || !ag.allocs[j].v.contains(&w[i].v) {
			return nil, fmt.Errorf("framework %s on agent %s: %s in role %s is not allocated to it",
				frameworkID, agentID, describeAll(render(&w[i].v, &w[i].k, "")), w[i].role)
		}
	}
	cs, err := a.conversions(ag, fw, &w, ops)
	if err != nil {
		return nil, err
	}
	if err := a.checkLimits(cs); err != nil {
		return nil, fmt.Errorf("framework %s on agent %s: %w", frameworkID, agentID, err)
	}
	for i := range cs {
		cv := &cs[i]
		c := fw.client(cv.role)
		pf := ag.findKind(&cv.from)
		j := ag.findAllocation(frameworkID, c, cv.role, pf)
		e := ag.allocs[j]
		e.v.sub(&cv.v)
		ag.pools[pf].total.sub(&cv.v)
		a.noteAlloc(ag, e, &cv.v, -1)
		a.noteReserved(&ag.pools[pf], &cv.v, -1)
		if e.v.isZero() {
			ag.dropAllocation(j)
		}
		pt := ag.poolOfKind(&cv.to)
		ag.pools[pt].total.add(&cv.v)
		e = a.allocationFor(ag, frameworkID, c, cv.role, pt)
		e.v.add(&cv.v)
		a.noteReserved(&ag.pools[pt], &cv.v, +1)
		a.noteAlloc(ag, e, &cv.v, +1)
	}
	if len(cs) > 0 {
		ag.version++
		ag.compact()
	}
	var out mesos.Resources
	for i := range w {
		if !w[i].v.isZero() {
			out = append(out, render(&w[i].v, &w[i].k, w[i].role)...)
		}
	}
	return out, nil
}

func describeAll(rs mesos.Resources) string {
	parts := make([]string, len(rs))
	for i := range rs {
		parts[i] = describe(&rs[i])
	}
	return strings.Join(parts, ";")
}

// UpdateAvailable applies operator operations (RESERVE, UNRESERVE, CREATE,
// DESTROY; RESERVE_RESOURCES and UNRESERVE_RESOURCES of the operator API)
// to an agent's unallocated resources. If the resources are not available
// (allocated, offered, or absent) it returns an error naming them and
// changes nothing; the master may rescind offers and retry. Reservations
// that would take a role over its quota limit are refused too.
func (a *Allocator) UpdateAvailable(agentID string, ops []mesos.Offer_Operation) error {
	ag := a.agents[agentID]
	if ag == nil {
		return fmt.Errorf("update available resources: unknown agent %s", agentID)
	}
	var w bag
	for i := range ag.pools {
		if !ag.pools[i].free.isZero() {
			w.add(&ag.pools[i].kind, "", &ag.pools[i].free)
		}
	}
	cs, err := a.conversions(ag, nil, &w, ops)
	if err != nil {
		return err
	}
	if err := a.checkLimits(cs); err != nil {
		return fmt.Errorf("agent %s: %w", agentID, err)
	}
	for i := range cs {
		cv := &cs[i]
		pf := ag.findKind(&cv.from)
		ag.pools[pf].free.sub(&cv.v)
		ag.pools[pf].total.sub(&cv.v)
		a.noteReserved(&ag.pools[pf], &cv.v, -1)
		pt := ag.poolOfKind(&cv.to)
		ag.pools[pt].total.add(&cv.v)
		ag.pools[pt].free.add(&cv.v)
		a.noteReserved(&ag.pools[pt], &cv.v, +1)
	}
	if len(cs) > 0 {
		ag.version++
		a.epoch++
		ag.compact()
	}
	return nil
}

// UpdateAgent changes a known agent's total (after it re-registers with
// different resources, or an operation the allocator did not see), keeping
// what is allocated there; an unknown agent is added.
func (a *Allocator) UpdateAgent(s AgentSpec) {
	ag := a.agents[s.ID]
	if ag == nil {
		a.AddAgent(s, nil)
		return
	}
	ag.hostname = s.Hostname
	fresh := make([]vec, len(ag.pools))
	for i := range s.Total {
		r := &s.Total[i]
		if !supported(r) {
			continue
		}
		p := ag.poolFor(r)
		for len(fresh) < len(ag.pools) {
			fresh = append(fresh, vec{})
		}
		fresh[p].addResource(r)
	}
	for i := range ag.pools {
		p := &ag.pools[i]
		a.addTotal(&p.total.s, -1)
		a.noteReserved(p, &p.total, -1)
		p.total = fresh[i]
		p.free.copyFrom(&p.total)
		for _, e := range ag.allocs {
			if e.pool == i {
				p.free.sub(&e.v)
			}
		}
		a.addTotal(&p.total.s, +1)
		a.noteReserved(p, &p.total, +1)
	}
	ag.version++
	a.epoch++
	ag.compact()
}

// AgentResources returns an agent's total and unallocated resources.
func (a *Allocator) AgentResources(agentID string) (total, free mesos.Resources, ok bool) {
	ag := a.agents[agentID]
	if ag == nil {
		return nil, nil, false
	}
	for i := range ag.pools {
		total = append(total, render(&ag.pools[i].total, &ag.pools[i].kind, "")...)
		free = append(free, render(&ag.pools[i].free, &ag.pools[i].kind, "")...)
	}
	return total, free, true
}
