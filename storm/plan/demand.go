package plan

import (
	"fmt"
	"time"
)

// Cluster is what Nimbus reports, reduced to what the plan needs.
type Cluster struct {
	// Supervisors are every supervisor Nimbus lists (the framework's and
	// any others).
	Supervisors []NimbusSupervisor
	Topologies  []Topology
}

// NimbusSupervisor is one supervisor Nimbus lists.
type NimbusSupervisor struct {
	Host  string
	Slots int
}

// Topology is one topology: the workers it asks for (topology.workers)
// and the slots its executors run in.
type Topology struct {
	ID, Name string
	Workers  int
	Slots    []HostPort
}

// HostPort is a worker slot.
type HostPort struct {
	Host string
	Port uint64
}

func (h HostPort) String() string { return fmt.Sprintf("%s:%d", h.Host, h.Port) }

// Own is a supervisor of the framework: launched and not known to have
// ended.
type Own struct {
	TaskID string
	Supervisor
	// Busy is the last time a worker ran in one of its slots (or its
	// launch).
	Busy time.Time
}

// Supply is the slots there are: on each host where the framework runs or
// recently ran supervisors (recent), its own supervisors' slots, launched
// or not yet registered, and Nimbus's count for a supervisor that died
// there is not trusted until Nimbus notices; on every other host,
// Nimbus's count (supervisors the user runs).
func Supply(c Cluster, own []Own, recent map[string]bool) int {
	ours := map[string]bool{}
	n := 0
	for _, o := range own {
		ours[o.Host] = true
		n += o.Slots()
	}
	for _, s := range c.Supervisors {
		if !ours[s.Host] && !recent[s.Host] {
			n += s.Slots
		}
	}
	return n
}

// Demand is the workers the topologies ask for.
func Demand(c Cluster) int {
	n := 0
	for _, t := range c.Topologies {
		n += max(t.Workers, 1)
	}
	return n
}

// Short is how many more slots the topologies need.
func Short(c Cluster, own []Own, recent map[string]bool) int {
	return max(0, Demand(c)-Supply(c, own, recent))
}

// Used are the slots some topology's executors run in.
func Used(c Cluster) map[HostPort]bool {
	used := map[HostPort]bool{}
	for _, t := range c.Topologies {
		for _, s := range t.Slots {
			used[s] = true
		}
	}
	return used
}

// Runs says whether a worker runs in one of o's slots.
func (o Own) Runs(used map[HostPort]bool) bool {
	for _, p := range o.SlotPorts {
		if used[HostPort{o.Host, p}] {
			return true
		}
	}
	return false
}

// Idle picks the supervisors to release at now: those that ran no worker
// for timeout (own's Busy is up to date), as long as the slots left still
// cover the demand. The longest idle go first.
func Idle(c Cluster, own []Own, recent map[string]bool, now time.Time, timeout time.Duration) []string {
	spare := Supply(c, own, recent) - Demand(c)
	var out []string
	for _, o := range sortedByBusy(own) {
		if now.Sub(o.Busy) < timeout || spare < o.Slots() {
			continue
		}
		spare -= o.Slots()
		out = append(out, o.TaskID)
	}
	return out
}

func sortedByBusy(own []Own) []Own {
	out := append([]Own(nil), own...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Busy.Before(out[j-1].Busy); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
