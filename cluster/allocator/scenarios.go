package allocator

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Benchmark scenarios reproducing Mesos's allocator benchmarks
// (Mesos's allocator and sorter benchmarks). Each is an exported function returning a
// ScenarioResult; Scenarios lists them for `agora bench allocator` and the
// Go benchmarks. Only the allocator's own work is timed, as in Mesos: the
// frameworks' side (declining, launching) is not.

// ScenarioParams sizes a scenario. Zero fields take the scenario's
// defaults; Rounds < 0 means the Mesos number of rounds where that is
// large (2×frameworks for DeclineOffers).
type ScenarioParams struct {
	Agents, Frameworks, Rounds int
	// ExplainCycles is passed to the allocator's Config (negative: no
	// Explain record, to measure its cost).
	ExplainCycles int
	// Progress, if not nil, receives a line now and then.
	Progress func(string)
	// Clock, if not nil, measures instead of the wall clock: for instance
	// the benchmark thread's CPU time, which other processes on a shared
	// machine disturb less. It must not go backwards.
	Clock func() time.Duration
}

// timed measures f with p's clock.
func (p *ScenarioParams) timed(f func()) time.Duration {
	if p.Clock == nil {
		start := time.Now()
		f()
		return time.Since(start)
	}
	start := p.Clock()
	f()
	return p.Clock() - start
}

func (p *ScenarioParams) newAllocator() *Allocator {
	return New(Config{Seed: 1, ExplainCycles: p.ExplainCycles})
}

// addFrameworks adds n frameworks, framework1 to frameworkN, of role to a
// and returns their IDs and the time that took.
func (p *ScenarioParams) addFrameworks(a *Allocator, n int, role string) ([]string, time.Duration) {
	ids := make([]string, n)
	d := p.timed(func() {
		for i := range ids {
			ids[i] = fmt.Sprintf("framework%d", i+1)
			a.AddFramework(FrameworkSpec{ID: ids[i], Roles: []string{role}}, nil, true)
		}
	})
	return ids, d
}

func (p *ScenarioParams) progress(format string, args ...any) {
	if p.Progress != nil {
		p.Progress(fmt.Sprintf(format, args...))
	}
}

// RoundResult is one timed allocation cycle.
type RoundResult struct {
	Allocate time.Duration
	Offers   int
}

// Step is a named timed phase (adding agents, setting quota, ...).
type Step struct {
	Name  string
	Took  time.Duration
	Count int
}

// ScenarioResult reports one run of a scenario.
type ScenarioResult struct {
	Scenario   string
	Agents     int
	Frameworks int
	Roles      int
	Rounds     []RoundResult
	// Setup is the time spent adding agents and frameworks (and quota).
	Setup  time.Duration
	Steps  []Step
	Counts map[string]int
	Notes  []string
}

func (r *ScenarioResult) step(name string, took time.Duration, count int) {
	r.Steps = append(r.Steps, Step{Name: name, Took: took, Count: count})
}

func (r *ScenarioResult) count(name string, n int) {
	if r.Counts == nil {
		r.Counts = map[string]int{}
	}
	r.Counts[name] += n
}

// allocateRound runs one timed Allocate at now and records it as a round.
func (r *ScenarioResult) allocateRound(p ScenarioParams, a *Allocator, now time.Time) ([]Offer, time.Duration) {
	var offers []Offer
	took := p.timed(func() { offers = a.Allocate(now) })
	r.Rounds = append(r.Rounds, RoundResult{Allocate: took, Offers: len(offers)})
	return offers, took
}

// allocateCycles runs n recorded allocation cycles a second apart.
func (r *ScenarioResult) allocateCycles(p ScenarioParams, a *Allocator, n int) {
	for round, now := 0, benchEpoch; round < n; round++ {
		now = now.Add(time.Second)
		offers, took := r.allocateRound(p, a, now)
		p.progress("cycle %d: %d allocations in %v", round, len(offers), took)
	}
}

// StepTime returns the time of the named step (0 if absent).
func (r *ScenarioResult) StepTime(name string) time.Duration {
	for _, s := range r.Steps {
		if s.Name == name {
			return s.Took
		}
	}
	return 0
}

// RoundQuantile returns the q-quantile (0..1) of the rounds' Allocate
// times, by the nearest-rank method on the sorted times.
func (r *ScenarioResult) RoundQuantile(q float64) time.Duration {
	if len(r.Rounds) == 0 {
		return 0
	}
	ds := make([]time.Duration, len(r.Rounds))
	for i, x := range r.Rounds {
		ds[i] = x.Allocate
	}
	slices.Sort(ds)
	i := int(q * float64(len(ds)))
	return ds[min(i, len(ds)-1)]
}

// RoundTotal returns the sum of the rounds' Allocate times.
func (r *ScenarioResult) RoundTotal() time.Duration {
	var d time.Duration
	for _, x := range r.Rounds {
		d += x.Allocate
	}
	return d
}

// Scenario is one benchmark scenario with its default size.
type Scenario struct {
	Name                       string
	Summary                    string
	Agents, Frameworks, Rounds int
	Run                        func(ScenarioParams) ScenarioResult
}

// Scenarios lists every scenario, in the order of Mesos's allocator benchmarks.
func Scenarios() []Scenario {
	return []Scenario{
		{"DeclineOffers", "every offer declined with an INT_MAX filter each round (§2.1.2)", 10000, 1000, 10, RunDeclineOffersScenario},
		{"SuppressOffers", "offers recovered unfiltered, F/5 more frameworks suppressed each round (§2.1.4)", 10000, 1000, 5, RunSuppressOffers},
		{"ExtremeSuppressOffers", "99% of frameworks suppressed, offers recovered unfiltered (§2.1.5)", 10000, 1000, 5, RunExtremeSuppressOffers},
		{"AddAndUpdateSlave", "add frameworks, add agents with used resources, update every agent (§2.1.1)", 10000, 1000, 1, RunAddAndUpdateSlave},
		{"AllocatorBacklog", "add frameworks, add agents, revive every framework, then allocate (§2.1.7)", 10000, 1000, 1, RunAllocatorBacklog},
		{"ResourceLabels", "DeclineOffers with two 12-label reservations per agent (§2.1.3)", 10000, 1000, 10, RunResourceLabels},
		{"PersistentVolumes", "reserved agents with a persistent volume each, 6 unfiltered rounds (§2.1.8, REGULAR)", 10000, 1000, 6, RunPersistentVolumes},
		{"UpdateAllocation", "RESERVE/UNRESERVE on one agent with 4 labelled reservations per role (§2.1.9; frameworks = roles)", 1, 200, 20, RunUpdateAllocation},
		{"MultiFrameworkAllocations", "554 frameworks launch 19,500 tasks on 80 agents; finished frameworks suppress (§2.2.10)", 80, 554, 0, RunMultiFrameworkAllocations},
		{"MultiFrameworkAllocations/unfiltered", "as above, finished frameworks keep returning offers unfiltered, as in Mesos's benchmark", 80, 554, 0, RunMultiFrameworkAllocationsUnfiltered},
		{"LargeAndSmallQuota", "5:1 small and large quota roles, a full then an empty cycle (§2.2.11; frameworks = roles)", 3000, 3000, 2, RunLargeAndSmallQuota},
		{"NonQuotaVsQuota/nonquota", "2 agents and 2 frameworks per role, no quota, full then empty cycle (§2.2.12; agents = 2×roles)", 2000, 2000, 2, RunNonQuota},
		{"NonQuotaVsQuota/quota", "as nonquota with each role's quota two agents' worth (§2.2.12)", 2000, 2000, 2, RunQuota},
		{"FullSort", "the DRF sorter alone: add, sort, re-sort, remove (§2.3.13; frameworks = clients)", 50000, 1000, 1, RunFullSort},
	}
}

// FindScenarios returns the scenarios named name ("all", a full name, or
// a prefix such as "NonQuotaVsQuota"), case-insensitively.
func FindScenarios(name string) []Scenario {
	var out []Scenario
	for _, s := range Scenarios() {
		n, q := strings.ToLower(s.Name), strings.ToLower(name)
		if q == "all" || n == q || strings.HasPrefix(n, q+"/") && !strings.HasSuffix(n, "/unfiltered") {
			out = append(out, s)
		}
	}
	return out
}

func (s Scenario) defaults(p ScenarioParams) ScenarioParams {
	if p.Agents <= 0 {
		p.Agents = s.Agents
	}
	if p.Frameworks <= 0 {
		p.Frameworks = s.Frameworks
	}
	if p.Rounds == 0 {
		p.Rounds = s.Rounds
	}
	return p
}

// RunScenario runs s at p's size (defaults filled in).
func (s Scenario) RunScenario(p ScenarioParams) ScenarioResult {
	r := s.Run(s.defaults(p))
	r.Scenario = s.Name
	return r
}

var benchEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
