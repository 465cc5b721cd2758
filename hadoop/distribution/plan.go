package distribution

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/frameworks/offers"
)

// WantMore reports whether the framework wants another tracker, given the
// trackers it has (running or launching) and their slots: fewer than
// agora.hadoop.executors.minimum, or fewer slots than
// mapred.mesos.total.{map,reduce}.slots.minimum, and never more than
// agora.hadoop.executors.maximum (0: no limit). There is no job demand to
// follow here: the JobTracker is Hadoop's own and runs elsewhere.
func (s Settings) WantMore(trackers, mapSlots, reduceSlots int) bool {
	z := s.Sizing
	if z.MaxExecutors > 0 && trackers >= z.MaxExecutors {
		return false
	}
	return trackers < z.MinExecutors || mapSlots < z.MinMapSlots || reduceSlots < z.MinReduceSlots
}

// Plan sizes a TaskTracker for offer o, as mesos/hadoop does: two ports
// picked at random from the offer's ranges (the first for HTTP, the second
// for the report address), the tracker's own share, and as many slots as
// the rest of the offer holds (Sizing.Slots, up to the map and reduce
// maximums; with the fixed policy exactly those or none). The returned
// Tracker has no TaskID yet; res are the task's resources. When the offer
// cannot hold a tracker, reason says why (and t and res are zero).
func (s Settings) Plan(o *mesos.Offer, rng *rand.Rand) (t Tracker, res []mesos.Resource, reason string) {
	z := s.Sizing
	ports, portRes, ok := pickPorts(o, 2, rng)
	if !ok {
		return Tracker{}, nil, "the offer has fewer than 2 ports (a TaskTracker needs an HTTP and a report port)"
	}
	own := offers.Need{CPUs: z.TrackerCPUs, Mem: z.TrackerMem, Disk: z.TrackerDisk}
	pool := offers.NewPool(o)
	if _, ok := pool.Take(own); !ok {
		return Tracker{}, nil, "the offer is too small for a TaskTracker: " + pool.Shortfall(own)
	}
	free := pool.Sum("")
	m, r := z.Slots(free["cpus"], free["mem"], free["disk"], z.MapMax, z.ReduceMax, z.MapMax, z.ReduceMax)
	if m+r < 1 {
		return Tracker{}, nil, fmt.Sprintf("the offer has no room for a slot after the TaskTracker's share (left: %s)", describe(free))
	}
	slots := float64(m + r)
	all := offers.Need{
		CPUs: z.TrackerCPUs + slots*z.SlotCPUs,
		Mem:  z.TrackerMem + slots*z.SlotMem,
		Disk: z.TrackerDisk + slots*z.SlotDisk,
	}
	res, ok = offers.NewPool(o).Take(all)
	if !ok { // cannot happen: the slots were sized from this offer
		return Tracker{}, nil, "the offer cannot hold the sized TaskTracker: " + offers.NewPool(o).Shortfall(all)
	}
	t = Tracker{
		AgentID: o.AgentID.Value, Host: o.Hostname,
		HTTPPort: ports[0], ReportPort: ports[1],
		MapSlots: m, ReduceSlots: r,
		CPUs: all.CPUs, Mem: all.Mem, Disk: all.Disk,
		State: mesos.TASK_STAGING.String(),
	}
	return t, append(res, portRes...), ""
}

func describe(s offers.Scalars) string {
	out := ""
	for _, k := range slices.Sorted(maps.Keys(s)) {
		if out != "" {
			out += " "
		}
		out += fmt.Sprintf("%s:%g", k, s[k])
	}
	return out
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
