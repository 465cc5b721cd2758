package allocator

import (
	"fmt"
	"math"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// DeclineOffersRound reports one round of RunDeclineOffers.
type DeclineOffersRound struct {
	Round    int
	Allocate time.Duration // the one Allocate call: what Mesos times
	Decline  time.Duration // recovering the previous round's offers (untimed in Mesos)
	Offers   int
}

// DeclineOffersSetup reports how long building the cluster took.
type DeclineOffersSetup struct {
	AddFrameworks time.Duration
	AddAgents     time.Duration
}

// RunDeclineOffers reproduces Mesos's HierarchicalAllocator_BENCHMARK_Test
// DeclineOffers scenario (Mesos's `HierarchicalAllocator_BENCHMARK_Test.DeclineOffers`) and reports every round.
//
// It adds frameworks in role "*", then agents of
// cpus:24;mem:4096;disk:4096;ports:[31000-32000], agent i already holding
// cpus:16;mem:2014;disk:1024 and 16 two-port ranges (Mesos's makePortRanges)
// for framework i mod frameworks. Each round then declines every offer of the
// previous round with refuse_seconds = INT_MAX and times one Allocate; the
// clock advances one second per round. rounds <= 0 means 2×frameworks, as
// in Mesos. report may be nil.
func RunDeclineOffers(agents, frameworks, rounds int, report func(DeclineOffersRound)) DeclineOffersSetup {
	p := ScenarioParams{}
	return runDeclineOffers(Config{Seed: 1}, &p, agents, frameworks, rounds, report)
}

func runDeclineOffers(cfg Config, p *ScenarioParams, agents, frameworks, rounds int, report func(DeclineOffersRound)) DeclineOffersSetup {
	if agents <= 0 || frameworks <= 0 {
		return DeclineOffersSetup{}
	}
	if rounds <= 0 {
		rounds = 2 * frameworks
	}
	a := New(cfg)
	var setup DeclineOffersSetup

	var ids []string
	ids, setup.AddFrameworks = p.addFrameworks(a, frameworks, "*")

	total := declineOffersTotal()
	used := declineOffersUsed()
	setup.AddAgents = p.timed(func() {
		for i := 0; i < agents; i++ {
			id := fmt.Sprintf("agent%d", i+1)
			a.AddAgent(AgentSpec{ID: id, Hostname: id, Total: total},
				map[string]mesos.Resources{ids[i%frameworks]: used})
		}
	})

	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	refuse := time.Duration(math.MaxInt32) * time.Second
	var offers []Offer
	for round := 0; round < rounds; round++ {
		decline := p.timed(func() {
			for _, o := range offers {
				a.Recover(o.FrameworkID, o.AgentID, o.Resources, refuse, now)
			}
		})
		now = now.Add(time.Second)
		took := p.timed(func() { offers = a.Allocate(now) })
		if report != nil {
			report(DeclineOffersRound{Round: round, Allocate: took, Decline: decline, Offers: len(offers)})
		}
	}
	return setup
}

// RunDeclineOffersScenario is RunDeclineOffers as a Scenario.
func RunDeclineOffersScenario(p ScenarioParams) ScenarioResult {
	r := ScenarioResult{Agents: p.Agents, Frameworks: p.Frameworks, Roles: 1}
	rounds := p.Rounds
	if rounds < 0 {
		rounds = 0 // RunDeclineOffers: 2 × frameworks
	}
	setup := runDeclineOffers(Config{Seed: 1, ExplainCycles: p.ExplainCycles}, &p, p.Agents, p.Frameworks, rounds, func(x DeclineOffersRound) {
		r.Rounds = append(r.Rounds, RoundResult{Allocate: x.Allocate, Offers: x.Offers})
		p.progress("round %d: %d offers in %v", x.Round, x.Offers, x.Allocate)
	})
	r.step("add frameworks", setup.AddFrameworks, p.Frameworks)
	r.step("add agents", setup.AddAgents, p.Agents)
	r.Setup = setup.AddFrameworks + setup.AddAgents
	return r
}

func declineOffersTotal() mesos.Resources {
	return mesos.Resources{
		scalarResource("cpus", 24),
		scalarResource("mem", 4096),
		scalarResource("disk", 4096),
		rangesResource("ports", []mesos.Value_Range{{Begin: 31000, End: 32000}}),
	}
}

// declineOffersUsed is Mesos's pre-allocation: cpus:16;mem:2014;disk:1024
// plus makePortRanges([31000-32000], 16), all allocated to role "*".
func declineOffersUsed() mesos.Resources {
	return withAllocation(mesos.Resources{
		scalarResource("cpus", 16),
		scalarResource("mem", 2014),
		scalarResource("disk", 1024),
		rangesResource("ports", makePortRanges(16)),
	}, "*")
}

// makePortRanges splits [31000-32000] into n two-port ranges, as Mesos's
// benchmark helper does.
func makePortRanges(n uint64) []mesos.Value_Range {
	const begin, end = 31000, 32000
	step := uint64(end-begin) / n
	var ports []mesos.Value_Range
	for i := uint64(0); i < n; i++ {
		b := begin + i*step
		ports = append(ports, mesos.Value_Range{Begin: b, End: b + 1})
	}
	return ports
}

// withAllocation returns rs with allocation_info.role set.
func withAllocation(rs mesos.Resources, role string) mesos.Resources {
	out := make(mesos.Resources, len(rs))
	copy(out, rs)
	for i := range out {
		out[i].AllocationInfo = &mesos.Resource_AllocationInfo{Role: &role}
	}
	return out
}

func scalarResource(name string, v float64) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
}

func rangesResource(name string, rs []mesos.Value_Range) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: rs}}
}
