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
// DeclineOffers scenario (perf-anchors §2.1(2)) and reports every round.
//
// It adds frameworks in role "*", then agents of
// cpus:24;mem:4096;disk:4096;ports:[31000-32000], agent i already holding
// cpus:16;mem:2014;disk:1024 and 16 two-port ranges (Mesos's makePortRanges)
// for framework i mod frameworks. Each round then declines every offer of the
// previous round with refuse_seconds = INT_MAX and times one Allocate; the
// clock advances one second per round. rounds <= 0 means 2×frameworks, as
// in Mesos. report may be nil.
func RunDeclineOffers(agents, frameworks, rounds int, report func(DeclineOffersRound)) DeclineOffersSetup {
	if agents <= 0 || frameworks <= 0 {
		return DeclineOffersSetup{}
	}
	if rounds <= 0 {
		rounds = 2 * frameworks
	}
	a := New(Config{Seed: 1})
	var setup DeclineOffersSetup

	start := time.Now()
	ids := make([]string, frameworks)
	for i := range ids {
		ids[i] = fmt.Sprintf("framework%d", i+1)
		a.AddFramework(FrameworkSpec{ID: ids[i], Roles: []string{"*"}}, nil, true)
	}
	setup.AddFrameworks = time.Since(start)

	total := declineOffersTotal()
	used := declineOffersUsed()
	start = time.Now()
	for i := 0; i < agents; i++ {
		id := fmt.Sprintf("agent%d", i+1)
		a.AddAgent(AgentSpec{ID: id, Hostname: id, Total: total},
			map[string]mesos.Resources{ids[i%frameworks]: used})
	}
	setup.AddAgents = time.Since(start)

	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	refuse := time.Duration(math.MaxInt32) * time.Second
	var offers []Offer
	for round := 0; round < rounds; round++ {
		start = time.Now()
		for _, o := range offers {
			a.Recover(o.FrameworkID, o.AgentID, o.Resources, refuse, now)
		}
		decline := time.Since(start)
		now = now.Add(time.Second)
		start = time.Now()
		offers = a.Allocate(now)
		took := time.Since(start)
		if report != nil {
			report(DeclineOffersRound{Round: round, Allocate: took, Decline: decline, Offers: len(offers)})
		}
	}
	return setup
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
	const begin, end, n = 31000, 32000, 16
	step := uint64(end-begin) / n
	var ports []mesos.Value_Range
	for i := uint64(0); i < n; i++ {
		b := begin + i*step
		ports = append(ports, mesos.Value_Range{Begin: b, End: b + 1})
	}
	rs := mesos.Resources{
		scalarResource("cpus", 16),
		scalarResource("mem", 2014),
		scalarResource("disk", 1024),
		rangesResource("ports", ports),
	}
	role := "*"
	for i := range rs {
		rs[i].AllocationInfo = &mesos.Resource_AllocationInfo{Role: &role}
	}
	return rs
}

func scalarResource(name string, v float64) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
}

func rangesResource(name string, rs []mesos.Value_Range) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: rs}}
}
