// Package offers matches tasks to resource offers: it sums what an offer
// holds, takes the cpus, mem, disk and ports a task needs from it, and packs
// many tasks into one offer. The resources it returns are copies of the
// offered ones, keeping allocation_info, reservations and role, so that the
// master finds them in the offer when it validates the launch.
package offers

import (
	"math"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Scalars maps a scalar resource name ("cpus", "mem", "disk", "gpus") to an
// amount.
type Scalars map[string]float64

// Sum adds up the scalar resources of rs by name, counting only those a
// task allocated to role could use: resources whose allocation_info names
// another role are left out (MULTI_ROLE offers carry one allocation role per
// resource). An empty role counts everything. Revocable resources are left
// out, as Take never uses them.
func Sum(rs []mesos.Resource, role string) Scalars {
	out := Scalars{}
	for i := range rs {
		r := &rs[i]
		if r.GetType() != mesos.SCALAR || r.IsRevocable() || !allocatedTo(r, role) {
			continue
		}
		out[r.Name] = round(out[r.Name] + r.GetScalar().GetValue())
	}
	return out
}

// Roles lists the allocation roles of an offer's resources in order of
// first appearance; an offer to a framework without MULTI_ROLE has none and
// gives [""].
func Roles(rs []mesos.Resource) []string {
	var out []string
	seen := map[string]bool{}
	for i := range rs {
		role := allocationRole(&rs[i])
		if !seen[role] {
			seen[role] = true
			out = append(out, role)
		}
	}
	if len(out) == 0 {
		out = []string{""}
	}
	return out
}

// allocationRole is the role a resource is allocated to, or "" when the
// offer carries no allocation_info.
func allocationRole(r *mesos.Resource) string {
	if r.AllocationInfo == nil || r.AllocationInfo.Role == nil {
		return ""
	}
	return *r.AllocationInfo.Role
}

// allocatedTo reports whether a task of role may use r.
func allocatedTo(r *mesos.Resource, role string) bool {
	a := allocationRole(r)
	return role == "" || a == "" || a == role
}

// round keeps scalars at Mesos's fixed-point precision of three decimals.
func round(f float64) float64 { return math.Round(f*1000) / 1000 }

// epsilon absorbs float error when comparing amounts that Mesos rounds to
// three decimals.
const epsilon = 1e-6
