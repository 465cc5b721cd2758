package allocator

import (
	"math"
	"math/bits"
	"slices"
	"time"
)

// Decline filters, as in Mesos: after a framework declines resources of an
// agent for refuse > 0, it is not offered that agent (in that role) until the
// filter expires, unless what it could be offered is no longer contained in
// what it declined.
//
// Filters live on their agent: a bitmap over client indexes answers "has
// this client any filter here" in O(1), and a pointer-free list holds the
// details (pointer-free so that millions of filters cost the garbage
// collector nothing). Refused resources are interned per agent: frameworks
// that decline everything tend to decline identical resources, so usually
// all filters of an agent share one refusal ("uniform") and a check needs no
// lookup at all.

// offerFilter keeps a client away from an agent while now < expires and the
// offerable resources are within refused.
type offerFilter struct {
	client  int32
	refused int32 // index into agentFilters.refusals
	expires int64 // unix nanoseconds
}

// refusal holds declined resources per pool of the agent.
type refusal struct{ pools []vec }

type agentFilters struct {
	list       []offerFilter
	refusals   []*refusal
	bits       []uint64
	sorted     bool  // list is sorted by client
	uniform    int32 // when !mixed, every filter refuses refusals[uniform]
	mixed      bool
	minExpires int64 // no filter expires before this
	last       int32 // client of the last list entry
}

func (f *agentFilters) reset() {
	f.list, f.refusals = f.list[:0], f.refusals[:0]
	clear(f.bits)
	f.sorted, f.uniform, f.mixed, f.minExpires, f.last = true, -1, false, math.MaxInt64, -1
}

// intern returns the index of a refusal equal to the groups of role,
// adding one if needed.
func (f *agentFilters) intern(npools int, groups []group, role string) int32 {
	if f.uniform >= 0 && f.refusals[f.uniform].matches(groups, role) {
		return f.uniform
	}
	if len(f.refusals) <= 8 {
		for i, r := range f.refusals {
			if r.matches(groups, role) {
				return int32(i)
			}
		}
	}
	r := &refusal{pools: make([]vec, npools)}
	for i := range groups {
		if groups[i].role == role && groups[i].pool < npools {
			r.pools[groups[i].pool].add(&groups[i].v)
		}
	}
	f.refusals = append(f.refusals, r)
	return int32(len(f.refusals) - 1)
}

// expiry returns now+refuse in unix nanoseconds, saturating.
func expiry(now time.Time, refuse time.Duration) int64 {
	t := now.UnixNano()
	if int64(refuse) > math.MaxInt64-t {
		return math.MaxInt64
	}
	return t + int64(refuse)
}

// matches reports whether r refuses exactly the groups of role.
func (r *refusal) matches(groups []group, role string) bool {
	for j := range groups {
		if groups[j].role == role && groups[j].pool >= len(r.pools) && !groups[j].v.isZero() {
			return false
		}
	}
	for i := range r.pools {
		var g *vec
		for j := range groups {
			if groups[j].role == role && groups[j].pool == i {
				g = &groups[j].v
			}
		}
		if g == nil {
			if !r.pools[i].isZero() {
				return false
			}
		} else if !r.pools[i].equal(g) {
			return false
		}
	}
	return true
}

func (r *refusal) covers(o *refusal) bool {
	for i := range o.pools {
		if i >= len(r.pools) {
			if !o.pools[i].isZero() {
				return false
			}
			continue
		}
		if !r.pools[i].contains(&o.pools[i]) {
			return false
		}
	}
	return true
}

// refused returns what r refuses of pool i (nil if nothing).
func (r *refusal) refused(i int) *vec {
	if i < len(r.pools) {
		return &r.pools[i]
	}
	return nil
}

// holdsAll reports whether r refuses all of v in pool i.
func (r *refusal) holdsAll(i int, v *vec) bool {
	if x := r.refused(i); x != nil {
		return x.contains(v)
	}
	return v.isZero()
}

// addFilter installs a filter for c on ag refusing the groups of c's role.
func (a *Allocator) addFilter(ag *agent, c *client, expires int64, groups []group) {
	f := &ag.filters
	ag.version++
	ref := f.intern(len(ag.pools), groups, c.role)
	f.minExpires = min(f.minExpires, expires)
	if len(f.list) == 0 {
		f.uniform, f.mixed = ref, false
	} else if ref != f.uniform {
		f.mixed = true
	}
	if !hasBit(f.bits, c.idx) {
		c.filterAgents++
	} else {
		// Replace a filter the new one makes redundant, so repeated
		// declines do not pile up.
		for i := range f.list {
			old := &f.list[i]
			if old.client == c.idx && old.expires <= expires && f.refusals[ref].covers(f.refusals[old.refused]) {
				old.expires, old.refused = expires, ref
				return
			}
		}
	}
	if f.last > c.idx {
		f.sorted = false
	}
	f.last = c.idx
	f.list = append(f.list, offerFilter{client: c.idx, refused: ref, expires: expires})
	setBit(&f.bits, c.idx)
}

// sweep drops expired filters.
func (f *agentFilters) sweep(now int64) {
	if now < f.minExpires {
		return
	}
	keep := f.list[:0]
	for _, x := range f.list {
		if now < x.expires {
			keep = append(keep, x)
		}
	}
	clear(f.list[len(keep):])
	f.list = keep
	f.rebuild()
}

// removeClient drops every filter of client idx.
func (f *agentFilters) removeClient(idx int32) {
	f.list = slices.DeleteFunc(f.list, func(x offerFilter) bool { return x.client == idx })
	f.rebuild()
}

// rebuild recomputes bits, minExpires, uniformity and the refusal table
// from the list.
func (f *agentFilters) rebuild() {
	clear(f.bits)
	f.minExpires, f.uniform, f.mixed, f.last = math.MaxInt64, -1, false, -1
	if len(f.refusals) > 1 {
		f.compact()
	}
	for i := range f.list {
		x := &f.list[i]
		setBit(&f.bits, x.client)
		f.minExpires = min(f.minExpires, x.expires)
		if f.uniform < 0 {
			f.uniform = x.refused
		} else if x.refused != f.uniform {
			f.mixed = true
		}
		f.last = x.client
	}
	if len(f.list) == 0 {
		clear(f.refusals)
		f.refusals = f.refusals[:0]
	}
}

// compact drops refusals no filter refers to.
func (f *agentFilters) compact() {
	remap := make([]int32, len(f.refusals))
	for i := range remap {
		remap[i] = -1
	}
	var kept []*refusal
	for i := range f.list {
		x := &f.list[i]
		if remap[x.refused] < 0 {
			remap[x.refused] = int32(len(kept))
			kept = append(kept, f.refusals[x.refused])
		}
		x.refused = remap[x.refused]
	}
	f.refusals = kept
}

// clearFilters drops c's filters on every agent.
func (a *Allocator) clearFilters(c *client) {
	if c.filterAgents == 0 {
		return
	}
	for _, ag := range a.agentList {
		if hasBit(ag.filters.bits, c.idx) {
			ag.filters.removeClient(c.idx)
			ag.version++
		}
	}
	c.filterAgents = 0
}

// sweepFilters drops ag's expired filters, keeping the clients' counts of
// filtered agents in step.
func (a *Allocator) sweepFilters(ag *agent, now int64) {
	f := &ag.filters
	if now < f.minExpires {
		return
	}
	old := append(a.bitsScratch[:0], f.bits...)
	f.sweep(now)
	a.forgetFilterBits(old, f.bits)
	a.bitsScratch = old
}

// forgetFilterBits decrements the filtered-agent count of every client
// whose bit is set in old but not in now.
func (a *Allocator) forgetFilterBits(old, now []uint64) {
	for w, x := range old {
		var y uint64
		if w < len(now) {
			y = now[w]
		}
		for gone := x &^ y; gone != 0; gone &= gone - 1 {
			if c := a.slots[int32(w*64+bits.TrailingZeros64(gone))]; c != nil && c.filterAgents > 0 {
				c.filterAgents--
			}
		}
	}
}

// covered reports whether everything of ag that role may be offered is
// within r. plan, if not nil, is what would be offered per pool instead of
// all that is free.
func (ag *agent) covered(r *refusal, role string, plan []vec) bool {
	if plan != nil {
		for i := range plan {
			if !r.holdsAll(i, &plan[i]) {
				return false
			}
		}
		return true
	}
	for i := range ag.pools {
		if ag.usable(i, role) && !r.holdsAll(i, &ag.pools[i].free) {
			return false
		}
	}
	return true
}

// filtered reports whether c may not be offered ag now (or plan, if not
// nil). memo caches the uniform-refusal answer for c's role during one
// visit (0 = unknown).
func (ag *agent) filtered(c *client, now int64, memo *int8, plan []vec) bool {
	f := &ag.filters
	if !hasBit(f.bits, c.idx) {
		return false
	}
	if !f.mixed && now < f.minExpires {
		if *memo == 0 {
			*memo = -1
			if ag.covered(f.refusals[f.uniform], c.role, plan) {
				*memo = 1
			}
		}
		return *memo > 0
	}
	if !f.sorted {
		slices.SortFunc(f.list, func(x, y offerFilter) int { return int(x.client) - int(y.client) })
		f.sorted, f.last = true, f.list[len(f.list)-1].client
	}
	i, _ := slices.BinarySearchFunc(f.list, c.idx, func(x offerFilter, idx int32) int { return int(x.client) - int(idx) })
	for ; i < len(f.list) && f.list[i].client == c.idx; i++ {
		if now < f.list[i].expires && ag.covered(f.refusals[f.list[i].refused], c.role, plan) {
			return true
		}
	}
	return false
}

// fullyFiltered reports, without walking the frameworks, that every
// eligible client has a filter on ag that applies now.
func (ag *agent) fullyFiltered(eligible []uint64, now int64) bool {
	f := &ag.filters
	if len(f.list) == 0 || f.mixed || now >= f.minExpires {
		return false
	}
	for w, e := range eligible {
		var b uint64
		if w < len(f.bits) {
			b = f.bits[w]
		}
		if e&^b != 0 {
			return false
		}
	}
	u := f.refusals[f.uniform]
	for i := range ag.pools {
		if !u.holdsAll(i, &ag.pools[i].free) {
			return false
		}
	}
	return true
}
