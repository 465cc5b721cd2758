package distribution

import (
	"cmp"
	"math/rand/v2"
	"slices"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// pickPorts takes n different ports at random from an offer's port
// ranges, as mesos/hadoop does (so trackers of agents sharing a host and a
// range rarely collide). It returns the ports in the order picked and the
// resources to put in the TaskInfo: copies of the offered port resources
// (keeping role, reservation and allocation) narrowed to the picked
// ports. ok is false when the offer has fewer than n ports.
func pickPorts(o *mesos.Offer, n int, rng *rand.Rand) (ports []uint64, res []mesos.Resource, ok bool) {
	type span struct {
		res        int // index into o.Resources
		begin, end uint64
	}
	var spans []span
	var total uint64
	for i := range o.Resources {
		r := &o.Resources[i]
		if r.Name != "ports" || r.GetType() != mesos.RANGES || r.IsRevocable() {
			continue
		}
		for _, rg := range r.GetRanges().GetRange() {
			if rg.End < rg.Begin {
				continue
			}
			spans = append(spans, span{i, rg.Begin, rg.End})
			total += rg.End - rg.Begin + 1
		}
	}
	if total < uint64(n) {
		return nil, nil, false
	}
	// Draw n distinct positions among the total, then map them to ports.
	var picked []uint64 // positions, kept sorted for the shifting below
	for k := 0; k < n; k++ {
		pos := rng.Uint64N(total - uint64(k))
		for _, p := range picked { // skip positions already taken
			if pos >= p {
				pos++
			}
		}
		i, _ := slices.BinarySearch(picked, pos)
		picked = slices.Insert(picked, i, pos)
		ports = append(ports, pos) // a position for now
	}
	byRes := map[int][]mesos.Value_Range{}
	var order []int
	for k, pos := range ports {
		for _, sp := range spans {
			size := sp.end - sp.begin + 1
			if pos >= size {
				pos -= size
				continue
			}
			port := sp.begin + pos
			ports[k] = port
			if _, seen := byRes[sp.res]; !seen {
				order = append(order, sp.res)
			}
			byRes[sp.res] = append(byRes[sp.res], mesos.Value_Range{Begin: port, End: port})
			break
		}
	}
	for _, i := range order {
		r := o.Resources[i]
		rs := byRes[i]
		slices.SortFunc(rs, func(a, b mesos.Value_Range) int { return cmp.Compare(a.Begin, b.Begin) })
		r.Ranges = &mesos.Value_Ranges{Range: rs}
		res = append(res, r)
	}
	return ports, res, true
}
