package allocator

import (
	"slices"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Pools: an agent's resources are split into pools of identical kind. A
// kind is everything about a resource except its name and quantity: its
// reservation stack (roles, types, principals and labels, compared
// exactly) and its disk info (source, persistence, volume). Resources of
// different kinds never merge: two reservations whose labels differ stay
// two pools, a persistent volume is a pool of its own, and ROOT, PATH and
// MOUNT disks stay apart.

// kind identifies a pool. Its slices and pointers are private copies that
// are never modified once made, so offers may share them.
type kind struct {
	role         string // reservation role (top of the stack), "" = unreserved
	reservations []mesos.Resource_ReservationInfo
	disk         *mesos.Resource_DiskInfo // nil for plain resources
}

// volume reports whether the kind is a persistent volume.
func (k *kind) volume() bool { return k.disk != nil && k.disk.Persistence != nil }

// indivisible reports whether resources of the kind must be used whole:
// persistent volumes and MOUNT disks.
func (k *kind) indivisible() bool {
	return k.volume() || k.disk != nil && k.disk.Source != nil && k.disk.Source.Type == mesos.Resource_DiskInfo_Source_MOUNT
}

// holds reports whether r (whose reservation role is rrole) is of kind k.
func (k *kind) holds(r *mesos.Resource, rrole string) bool {
	if k.role != rrole || !sameDisk(k.disk, r.Disk) {
		return false
	}
	return rrole == "" || sameReservations(k.reservations, r)
}

// same reports whether two kinds are equal.
func (k *kind) same(o *kind) bool {
	if k.role != o.role || !sameDisk(k.disk, o.disk) || len(k.reservations) != len(o.reservations) {
		return false
	}
	for i := range k.reservations {
		if !sameReservation(&k.reservations[i], &o.reservations[i]) {
			return false
		}
	}
	return true
}

// kindOf returns r's kind with private copies of its parts.
func kindOf(r *mesos.Resource) kind {
	k := kind{role: reservationRole(r)}
	if rs := reservationsOf(r); len(rs) > 0 {
		for i := range rs {
			rs[i].Labels = cloneLabels(rs[i].Labels)
			if p := rs[i].Principal; p != nil {
				v := *p
				rs[i].Principal = &v
			}
			if r := rs[i].Role; r != nil {
				v := *r
				rs[i].Role = &v
			}
		}
		k.reservations = slices.Clip(rs)
	}
	if !plainDisk(r.Disk) {
		k.disk = proto.Clone(r.Disk).(*mesos.Resource_DiskInfo)
	}
	return k
}

// cloneLabels copies labels deeply (proto.Clone is much slower).
func cloneLabels(l *mesos.Labels) *mesos.Labels {
	if l == nil {
		return nil
	}
	out := &mesos.Labels{Labels: make([]mesos.Label, len(l.Labels))}
	for i, x := range l.Labels {
		out.Labels[i].Key = x.Key
		if x.Value != nil {
			v := *x.Value
			out.Labels[i].Value = &v
		}
	}
	return out
}

// plainDisk reports whether d carries no disk identity.
func plainDisk(d *mesos.Resource_DiskInfo) bool {
	return d == nil || d.Persistence == nil && d.Volume == nil && d.Source == nil
}

func sameDisk(a, b *mesos.Resource_DiskInfo) bool {
	pa, pb := plainDisk(a), plainDisk(b)
	if pa || pb {
		return pa == pb
	}
	return a == b || a.Equal(b)
}

// sameReservations reports whether r's reservation stack equals stack. r
// may use the deprecated role/reservation fields.
func sameReservations(stack []mesos.Resource_ReservationInfo, r *mesos.Resource) bool {
	if n := len(r.Reservations); n > 0 {
		if len(stack) != n {
			return false
		}
		if &stack[0] == &r.Reservations[0] {
			return true
		}
		for i := range stack {
			if !sameReservation(&stack[i], &r.Reservations[i]) {
				return false
			}
		}
		return true
	}
	if len(stack) != 1 {
		return false
	}
	s := &stack[0]
	typ := mesos.Resource_ReservationInfo_STATIC
	if r.Reservation != nil {
		typ = mesos.Resource_ReservationInfo_DYNAMIC
	}
	if s.GetType() != typ || s.GetRole() != r.GetRole() {
		return false
	}
	return s.GetPrincipal() == r.Reservation.GetPrincipal() && sameLabels(s.Labels, r.Reservation.GetLabels())
}

func sameReservation(a, b *mesos.Resource_ReservationInfo) bool {
	return a.GetType() == b.GetType() && a.GetRole() == b.GetRole() &&
		a.GetPrincipal() == b.GetPrincipal() && sameLabels(a.Labels, b.Labels)
}

// sameLabels compares label lists as multisets, as Mesos does.
func sameLabels(a, b *mesos.Labels) bool {
	la, lb := a.GetLabels(), b.GetLabels()
	if len(la) != len(lb) {
		return false
	}
	inOrder := true
	for i := range la {
		if !sameLabel(&la[i], &lb[i]) {
			inOrder = false
			break
		}
	}
	if inOrder {
		return true
	}
	used := make([]bool, len(lb))
next:
	for i := range la {
		for j := range lb {
			if !used[j] && sameLabel(&la[i], &lb[j]) {
				used[j] = true
				continue next
			}
		}
		return false
	}
	return true
}

func sameLabel(a, b *mesos.Label) bool {
	if a.Key != b.Key || (a.Value == nil) != (b.Value == nil) {
		return false
	}
	return a.Value == nil || *a.Value == *b.Value
}

// findPool returns the index of the pool of r's kind, or -1.
func (ag *agent) findPool(r *mesos.Resource) int {
	rrole := reservationRole(r)
	for i := range ag.pools {
		if ag.pools[i].holds(r, rrole) {
			return i
		}
	}
	return -1
}

// findKind returns the index of the pool of kind k, or -1.
func (ag *agent) findKind(k *kind) int {
	for i := range ag.pools {
		if ag.pools[i].kind.same(k) {
			return i
		}
	}
	return -1
}

// poolOfKind returns the index of the pool of kind k, adding an empty one
// (reusing an emptied pool's slot when possible).
func (ag *agent) poolOfKind(k *kind) int {
	if i := ag.findKind(k); i >= 0 {
		return i
	}
	ag.pools = append(ag.pools, pool{kind: *k})
	return len(ag.pools) - 1
}

// poolFor returns the index of r's pool, adding it if needed.
func (ag *agent) poolFor(r *mesos.Resource) int {
	if i := ag.findPool(r); i >= 0 {
		return i
	}
	ag.pools = append(ag.pools, pool{kind: kindOf(r)})
	return len(ag.pools) - 1
}

// compact drops pools that became empty (after unreserving or destroying)
// once there are a few, renumbering allocations and filters.
func (ag *agent) compact() {
	empty := 0
	for i := range ag.pools {
		if ag.pools[i].total.isZero() {
			empty++
		}
	}
	if empty < 4 {
		return
	}
	remap := make([]int, len(ag.pools))
	kept := ag.pools[:0]
	for i := range ag.pools {
		if ag.pools[i].total.isZero() {
			remap[i] = -1
			continue
		}
		remap[i] = len(kept)
		kept = append(kept, ag.pools[i])
	}
	clear(ag.pools[len(kept):])
	ag.pools = kept
	for _, e := range ag.allocs {
		e.pool = remap[e.pool] // allocations never sit in empty pools
	}
	for _, r := range ag.filters.refusals {
		var ps []vec
		for i, v := range r.pools {
			if i < len(remap) && remap[i] >= 0 {
				for len(ps) <= remap[i] {
					ps = append(ps, vec{})
				}
				ps[remap[i]] = v
			}
		}
		r.pools = ps
	}
}
