package offers

import (
	"fmt"
	"sort"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Need is what one task asks of an offer.
type Need struct {
	CPUs  float64
	Mem   float64 // MB
	Disk  float64 // MB
	GPUs  float64
	Ports int // how many ports, taken from the offer's "ports" ranges
	// Role is the allocation role to take resources from; "" lets the pool
	// pick the first role of the offer that fits. A task's resources always
	// come from a single role.
	Role string
}

func (n Need) scalars() []struct {
	name string
	want float64
} {
	return []struct {
		name string
		want float64
	}{{"cpus", n.CPUs}, {"mem", n.Mem}, {"disk", n.Disk}, {"gpus", n.GPUs}}
}

// Pool is what is left of one offer while tasks are packed into it. It is
// not safe for concurrent use.
type Pool struct {
	offer *mesos.Offer
	free  []mesos.Resource
	taken int
}

// NewPool starts packing offer. The offer itself is not modified.
func NewPool(offer *mesos.Offer) *Pool {
	p := &Pool{offer: offer, free: make([]mesos.Resource, 0, len(offer.Resources))}
	for _, r := range offer.Resources {
		p.free = append(p.free, copyValue(r))
	}
	return p
}

// Offer is the offer being packed.
func (p *Pool) Offer() *mesos.Offer { return p.offer }

// Tasks is how many needs Take has satisfied.
func (p *Pool) Tasks() int { return p.taken }

// Free is what is left; the slice is the pool's own, do not modify it.
func (p *Pool) Free() []mesos.Resource { return p.free }

// Sum adds up what is left for role ("" for every role).
func (p *Pool) Sum(role string) Scalars { return Sum(p.free, role) }

// plan is the resources one need would take, by index into Pool.free.
type plan struct {
	scalars map[int]float64
	ports   map[int]mesos.Ranges
}

// Take removes n from the pool and returns the resources to put in the
// task's TaskInfo; ok is false, and nothing changes, if n does not fit
// (Shortfall says why).
func (p *Pool) Take(n Need) (rs []mesos.Resource, ok bool) {
	for _, role := range p.candidateRoles(n.Role) {
		pl, _ := p.plan(n, role)
		if pl == nil {
			continue
		}
		p.taken++
		return p.apply(pl), true
	}
	return nil, false
}

// Fits reports whether Take(n) would succeed.
func (p *Pool) Fits(n Need) bool {
	for _, role := range p.candidateRoles(n.Role) {
		if pl, _ := p.plan(n, role); pl != nil {
			return true
		}
	}
	return false
}

// Shortfall explains why n does not fit ("" if it does), for example
// "mem: want 64, have 32".
func (p *Pool) Shortfall(n Need) string {
	var reasons []string
	for _, role := range p.candidateRoles(n.Role) {
		pl, why := p.plan(n, role)
		if pl != nil {
			return ""
		}
		if role != "" {
			why = fmt.Sprintf("role %s: %s", role, why)
		}
		reasons = append(reasons, why)
	}
	return strings.Join(reasons, "; ")
}

// candidateRoles are the allocation roles to try for a need.
func (p *Pool) candidateRoles(want string) []string {
	roles := Roles(p.offer.Resources)
	if want == "" {
		return roles
	}
	for _, r := range roles {
		if r == "" {
			return []string{""} // not MULTI_ROLE: every resource is the framework's
		}
	}
	return []string{want}
}

// plan works out which resources of role n would take, or says what is
// missing.
func (p *Pool) plan(n Need, role string) (*plan, string) {
	pl := &plan{scalars: map[int]float64{}, ports: map[int]mesos.Ranges{}}
	for _, s := range n.scalars() {
		if s.want <= 0 {
			continue
		}
		left := s.want
		for i := range p.free {
			r := &p.free[i]
			if left <= epsilon {
				break
			}
			if r.Name != s.name || r.GetType() != mesos.SCALAR || !usable(r, role) {
				continue
			}
			have := r.GetScalar().GetValue()
			if have <= epsilon {
				continue
			}
			take := round(min(have, left))
			pl.scalars[i] = take
			left = round(left - take)
		}
		if left > epsilon {
			return nil, fmt.Sprintf("%s: want %g, have %g", s.name, s.want, round(s.want-left))
		}
	}
	if n.Ports > 0 {
		left := uint64(n.Ports)
		for i := range p.free {
			r := &p.free[i]
			if left == 0 {
				break
			}
			if r.Name != "ports" || r.GetType() != mesos.RANGES || !usable(r, role) {
				continue
			}
			var got mesos.Ranges
			for _, rg := range r.GetRanges().GetRange() {
				if left == 0 {
					break
				}
				k := min(rg.End-rg.Begin+1, left)
				got = append(got, mesos.Value_Range{Begin: rg.Begin, End: rg.Begin + k - 1})
				left -= k
			}
			if len(got) > 0 {
				pl.ports[i] = got
			}
		}
		if left > 0 {
			return nil, fmt.Sprintf("ports: want %d, have %d", n.Ports, uint64(n.Ports)-left)
		}
	}
	return pl, ""
}

// apply removes a plan's resources from the pool and returns copies of them.
func (p *Pool) apply(pl *plan) []mesos.Resource {
	idx := make([]int, 0, len(pl.scalars)+len(pl.ports))
	for i := range pl.scalars {
		idx = append(idx, i)
	}
	for i := range pl.ports {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out := make([]mesos.Resource, 0, len(idx))
	for _, i := range idx {
		r := &p.free[i]
		if amount, ok := pl.scalars[i]; ok {
			t := copyValue(*r)
			t.Scalar.Value = amount
			out = append(out, t)
			r.Scalar.Value = round(r.Scalar.Value - amount)
			continue
		}
		got := pl.ports[i]
		t := copyValue(*r)
		t.Ranges = &mesos.Value_Ranges{Range: got}
		out = append(out, t)
		left := mesos.Ranges(r.Ranges.Range)
		for _, g := range got {
			left = left.Remove(g)
		}
		r.Ranges = &mesos.Value_Ranges{Range: left}
	}
	p.free = compact(p.free)
	return out
}

// usable reports whether a task of role may take scratch resources from r:
// allocated to that role, not revocable, and not a persistent volume or a
// mount/block disk (those are consumed whole, by name).
func usable(r *mesos.Resource, role string) bool {
	if !allocatedTo(r, role) || r.IsRevocable() || r.Shared != nil {
		return false
	}
	if d := r.Disk; d != nil && (d.Persistence != nil || d.Volume != nil || d.Source != nil) {
		return false
	}
	return true
}

// copyValue copies r with its own scalar, ranges and set, so changing the
// copy's amounts leaves r alone. Metadata (allocation, reservations) is
// shared; nothing here changes it.
func copyValue(r mesos.Resource) mesos.Resource {
	if r.Scalar != nil {
		r.Scalar = &mesos.Value_Scalar{Value: r.Scalar.Value}
	}
	if r.Ranges != nil {
		r.Ranges = &mesos.Value_Ranges{Range: append([]mesos.Value_Range(nil), r.Ranges.Range...)}
	}
	if r.Set != nil {
		r.Set = &mesos.Value_Set{Item: append([]string(nil), r.Set.Item...)}
	}
	return r
}

// compact drops resources that are used up.
func compact(rs []mesos.Resource) []mesos.Resource {
	out := rs[:0]
	for _, r := range rs {
		switch r.GetType() {
		case mesos.SCALAR:
			if r.GetScalar().GetValue() <= epsilon {
				continue
			}
		case mesos.RANGES:
			if len(r.GetRanges().GetRange()) == 0 {
				continue
			}
		}
		out = append(out, r)
	}
	return out
}
