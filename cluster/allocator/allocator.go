// Package allocator is agora's hierarchical DRF allocator. It is a pure
// decision core: no I/O, no clocks (callers pass now), no goroutines. The
// master owns one Allocator and calls it from a single goroutine.
//
// Resources offered to a framework count as allocated to it until they are
// recovered (declined, unused remainder of an accept, or freed by a terminal
// task), exactly as in Mesos.
//
// Allocate follows Mesos's HierarchicalDRF allocator: agents are visited in
// a seeded random order; for each, roles are walked in weighted dominant
// share order down the role tree ("a" is the parent of "a/b"), frameworks
// within a role in dominant share order, and all resources the first
// eligible framework may use are offered to it. Shares are updated
// incrementally after every offer. Dominant shares are taken over the
// cluster's cpus, mem, disk and gpus, reserved resources included, as in
// current Mesos.
//
// Offers' resources are carved out of shared chunks; treat them as
// read-only.
//
// Resources reserved for a role (statically, or dynamically through
// RESERVE; see operations.go) are offered only to that role and its
// sub-roles; persistent volumes only to their own role. Resources of
// different kinds (reservation stacks with their labels, disk sources,
// volumes) are kept apart in pools (pools.go). Quota guarantees and limits
// (quota.go), maintenance (maintenance.go) and Explain (explain.go) build
// on this. Revocable, shared and resource-provider resources are not
// handled yet and are ignored wherever they appear.
package allocator

import (
	"math/rand/v2"
	"slices"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Config holds the allocator's policy knobs.
type Config struct {
	// MinAllocatable lists alternatives: an agent's free resources are offered
	// only if they contain at least one of them. Empty means Mesos's default
	// {cpus:0.01} or {mem:32}. Only scalar quantities are compared.
	MinAllocatable []mesos.Resources
	// Seed seeds the order in which agents are visited each cycle (Mesos
	// shuffles them). The same seed and the same calls give the same offers.
	Seed int64
	// ExplainCycles is how many recent cycles Explain looks back on: 0
	// means 8, negative turns the record off.
	ExplainCycles int
}

// FrameworkSpec describes a framework to the allocator.
type FrameworkSpec struct {
	ID              string
	Roles           []string
	SuppressedRoles []string
}

// AgentSpec describes an agent to the allocator.
type AgentSpec struct {
	ID       string
	Hostname string
	Total    mesos.Resources
}

// Offer is one allocation decision: resources of one agent for one
// framework in one role. Resources carry allocation_info.role = Role.
type Offer struct {
	FrameworkID string
	AgentID     string
	Role        string
	Resources   mesos.Resources
	// Unavailability is the agent's scheduled maintenance, if any (shared:
	// read-only), for the offer's unavailability field.
	Unavailability *Unavailability
}

// Allocator is the hierarchical DRF allocator. It is not safe for
// concurrent use.
type Allocator struct {
	minAlloc []vec
	rng      *rand.Rand

	frameworks map[string]*framework
	agents     map[string]*agent
	agentList  []*agent // visiting order, reshuffled every cycle
	// orphans lists agents holding resources of frameworks not yet added
	// (after a master failover agents may re-register first).
	orphans map[string][]*agent

	sorter
	build       offerBuilder
	groups      []group // scratch for parsed resources
	tmp         vec
	bitsScratch []uint64

	// scratch for offers under quota
	plan       []vec
	planSum    vec
	caps, need capVec

	explain explainRing
}

// New returns an empty allocator.
func New(cfg Config) *Allocator {
	a := &Allocator{
		rng:        rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15)),
		frameworks: map[string]*framework{},
		agents:     map[string]*agent{},
		orphans:    map[string][]*agent{},
		sorter:     newSorter(),
	}
	for _, alt := range cfg.MinAllocatable {
		var v vec
		for i := range alt {
			if alt[i].GetType() == mesos.SCALAR {
				v.addResource(&alt[i])
			}
		}
		a.minAlloc = append(a.minAlloc, v)
	}
	if len(a.minAlloc) == 0 {
		a.minAlloc = []vec{{s: scalars{cpus: 10}}, {s: scalars{mem: 32 * milli}}}
	}
	switch n := cfg.ExplainCycles; {
	case n < 0:
		a.explain.off = true
	case n == 0:
		a.explain.cycles = make([]cycleStats, defaultExplainCycles)
	default:
		a.explain.cycles = make([]cycleStats, n)
	}
	return a
}

// Totals summarises the cluster for metrics: total and allocated (offered or
// used) amounts of each scalar resource.
type Totals struct {
	Total     map[string]float64
	Allocated map[string]float64
}

// Totals returns the current totals over all agents, active or not. cpus,
// mem, disk and gpus are always present.
func (a *Allocator) Totals() Totals {
	var total, free vec
	for _, ag := range a.agentList {
		for i := range ag.pools {
			total.s.add(&ag.pools[i].total.s)
			free.s.add(&ag.pools[i].free.s)
			for _, e := range ag.pools[i].total.extra {
				total.extraAt(e.name).v += e.v
			}
			for _, e := range ag.pools[i].free.extra {
				free.extraAt(e.name).v += e.v
			}
		}
	}
	t := Totals{Total: map[string]float64{}, Allocated: map[string]float64{}}
	for i, name := range mainNames {
		t.Total[name] = fromMilli(total.s[i])
		t.Allocated[name] = fromMilli(total.s[i] - free.s[i])
	}
	for _, e := range total.extra {
		t.Total[e.name] = fromMilli(e.v)
		t.Allocated[e.name] = fromMilli(e.v - free.extraValue(e.name))
	}
	return t
}

func sortedKeys(m map[string]mesos.Resources) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
