package allocator

import (
	"slices"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Conversion between mesos.Resources and the allocator's vec.
//
// Not supported, and therefore ignored on the way in (neither offered nor
// counted): revocable resources, shared resources, resources from resource
// providers, BLOCK and RAW disks, and persistent volumes that are not
// reserved. Static and dynamic reservations are offered alike; they differ
// only in what UNRESERVE accepts.

// supported reports whether the allocator understands r.
func supported(r *mesos.Resource) bool {
	if r.Revocable != nil || r.Shared != nil || r.ProviderID != nil || r.Name == "" {
		return false
	}
	if d := r.Disk; !plainDisk(d) {
		if r.Name != "disk" {
			return false
		}
		if s := d.Source; s != nil && s.Type != mesos.Resource_DiskInfo_Source_PATH && s.Type != mesos.Resource_DiskInfo_Source_MOUNT {
			return false
		}
		if d.Persistence != nil && (d.Persistence.ID == "" || reservationRole(r) == "") {
			return false
		}
	}
	return true
}

// reservationRole returns the role r is reserved for, "" if unreserved.
func reservationRole(r *mesos.Resource) string {
	if n := len(r.Reservations); n > 0 {
		return r.Reservations[n-1].GetRole()
	}
	if r.Role != nil && *r.Role != "*" {
		return *r.Role
	}
	return ""
}

// reservationsOf returns the reservation stack of r in the "refined" format,
// converting the deprecated role field.
func reservationsOf(r *mesos.Resource) []mesos.Resource_ReservationInfo {
	if len(r.Reservations) > 0 {
		return slices.Clone(r.Reservations)
	}
	if r.Role != nil && *r.Role != "*" {
		role := *r.Role
		typ := mesos.Resource_ReservationInfo_STATIC
		if r.Reservation != nil {
			typ = mesos.Resource_ReservationInfo_DYNAMIC
		}
		ri := mesos.Resource_ReservationInfo{Type: &typ, Role: &role}
		if r.Reservation != nil {
			ri.Principal, ri.Labels = r.Reservation.Principal, r.Reservation.Labels
		}
		return []mesos.Resource_ReservationInfo{ri}
	}
	return nil
}

// allocationRole returns r's allocation_info.role, or "" if unset.
func allocationRole(r *mesos.Resource) string {
	if r.AllocationInfo != nil && r.AllocationInfo.Role != nil {
		return *r.AllocationInfo.Role
	}
	return ""
}

// addResource adds one resource to v.
func (v *vec) addResource(r *mesos.Resource) {
	switch r.GetType() {
	case mesos.SCALAR:
		q := toMilli(r.GetScalar().GetValue())
		if q == 0 {
			return
		}
		if i := mainIndex(r.Name); i >= 0 {
			v.s[i] += q
		} else {
			v.extraAt(r.Name).v += q
		}
	case mesos.RANGES:
		rs := r.GetRanges().GetRange()
		if len(rs) == 0 {
			return
		}
		nr := v.rangesAt(r.Name)
		for _, x := range rs {
			if x.Begin <= x.End {
				nr.spans = append(nr.spans, span{x.Begin, x.End})
			}
		}
		nr.spans = squashSpans(nr.spans)
	case mesos.SET:
		items := r.GetSet().GetItem()
		if len(items) == 0 {
			return
		}
		s := v.setAt(r.Name)
		s.items = append(s.items, items...)
		slices.Sort(s.items)
		s.items = slices.Compact(s.items)
	}
}

// isRoleOrDescendant reports whether role is ancestor or a sub-role of it
// ("a/b" is a sub-role of "a").
func isRoleOrDescendant(role, ancestor string) bool {
	return role == ancestor || len(role) > len(ancestor) && role[len(ancestor)] == '/' && role[:len(ancestor)] == ancestor
}

// offerBuilder renders offers as mesos.Resources. It carves everything out
// of large chunks so that an allocation cycle makes a handful of heap
// allocations instead of several per offer. Chunks are never reused: offers
// returned earlier keep pointing into them.
type offerBuilder struct {
	res    []mesos.Resource
	cells  []resourceCell
	ranges []mesos.Value_Range
	allocs []allocCell
	small  bool // allocate only what is needed (one-off renderings)
}

func (b *offerBuilder) chunk() int {
	if b.small {
		return 4
	}
	return chunk
}

// render returns v of kind k as a fresh resource list, allocated to role
// unless role is "".
func render(v *vec, k *kind, role string) mesos.Resources {
	b := offerBuilder{small: true}
	b.begin(v.count())
	var ai *mesos.Resource_AllocationInfo
	if role != "" {
		ai = b.allocation(role)
	}
	b.appendVec(v, k, ai)
	return b.res
}

type resourceCell struct {
	typ    mesos.Value_Type
	scalar mesos.Value_Scalar
	ranges mesos.Value_Ranges
	set    mesos.Value_Set
}

type allocCell struct {
	info mesos.Resource_AllocationInfo
	role string
}

const chunk = 4096

// begin starts an offer with room for n resources.
func (b *offerBuilder) begin(n int) {
	if cap(b.res)-len(b.res) < n {
		b.res = make([]mesos.Resource, 0, max(b.chunk(), n))
	}
}

// allocation returns a fresh AllocationInfo for role.
func (b *offerBuilder) allocation(role string) *mesos.Resource_AllocationInfo {
	if len(b.allocs) == cap(b.allocs) {
		b.allocs = make([]allocCell, 0, max(1, b.chunk()/4))
	}
	b.allocs = append(b.allocs, allocCell{role: role})
	c := &b.allocs[len(b.allocs)-1]
	c.info.Role = &c.role
	return &c.info
}

func (b *offerBuilder) cell() *resourceCell {
	if len(b.cells) == cap(b.cells) {
		b.cells = make([]resourceCell, 0, b.chunk())
	}
	b.cells = b.cells[:len(b.cells)+1]
	return &b.cells[len(b.cells)-1]
}

// appendVec appends v's resources of kind k, carrying allocation info ai.
// The kind's reservations and disk info are shared, not copied.
func (b *offerBuilder) appendVec(v *vec, k *kind, ai *mesos.Resource_AllocationInfo) {
	reservations := k.reservations
	scalar := func(name string, q int64) {
		c := b.cell()
		c.typ = mesos.SCALAR
		c.scalar.Value = fromMilli(q)
		r := mesos.Resource{Name: name, Type: &c.typ, Scalar: &c.scalar, Reservations: reservations, AllocationInfo: ai}
		if k.disk != nil && name == "disk" {
			r.Disk = k.disk
		}
		b.res = append(b.res, r)
	}
	for i, q := range v.s {
		if q > 0 {
			scalar(mainNames[i], q)
		}
	}
	for _, e := range v.extra {
		if e.v > 0 {
			scalar(e.name, e.v)
		}
	}
	for _, r := range v.ranges {
		if len(r.spans) == 0 {
			continue
		}
		if cap(b.ranges)-len(b.ranges) < len(r.spans) {
			b.ranges = make([]mesos.Value_Range, 0, max(b.chunk(), len(r.spans)))
		}
		start := len(b.ranges)
		for _, s := range r.spans {
			b.ranges = append(b.ranges, mesos.Value_Range{Begin: s.lo, End: s.hi})
		}
		c := b.cell()
		c.typ = mesos.RANGES
		c.ranges.Range = b.ranges[start:len(b.ranges):len(b.ranges)]
		b.res = append(b.res, mesos.Resource{Name: r.name, Type: &c.typ, Ranges: &c.ranges, Reservations: reservations, AllocationInfo: ai})
	}
	for _, s := range v.sets {
		if len(s.items) == 0 {
			continue
		}
		c := b.cell()
		c.typ = mesos.SET
		c.set.Item = slices.Clone(s.items)
		b.res = append(b.res, mesos.Resource{Name: s.name, Type: &c.typ, Set: &c.set, Reservations: reservations, AllocationInfo: ai})
	}
}

// count returns how many mesos.Resource entries v renders to.
func (v *vec) count() int {
	n := 0
	for _, q := range v.s {
		if q > 0 {
			n++
		}
	}
	for _, e := range v.extra {
		if e.v > 0 {
			n++
		}
	}
	for _, r := range v.ranges {
		if len(r.spans) > 0 {
			n++
		}
	}
	for _, s := range v.sets {
		if len(s.items) > 0 {
			n++
		}
	}
	return n
}
