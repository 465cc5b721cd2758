package allocator

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// TestDeclineOffersScenario runs the benchmark scenario at a tiny size and
// checks its shape: while some framework has not declined an agent, every
// agent is offered each round (to a framework that has not declined it);
// once all have, nothing is offered. So the sum of offers is agents ×
// frameworks: each pair exactly once.
func TestDeclineOffersScenario(t *testing.T) {
	const agents, frameworks = 40, 8
	var offers []int
	RunDeclineOffers(agents, frameworks, 0, func(r DeclineOffersRound) { offers = append(offers, r.Offers) })
	if len(offers) != 2*frameworks {
		t.Fatalf("%d rounds, want %d", len(offers), 2*frameworks)
	}
	for i, n := range offers {
		want := agents
		if i >= frameworks {
			want = 0
		}
		if n != want {
			t.Fatalf("round %d made %d offers, want %d (all rounds: %v)", i, n, want, offers)
		}
	}
}

// BenchmarkDeclineOffers reproduces Mesos's DeclineOffers benchmark (see
// RunDeclineOffers). One op is a whole scenario; the reported metrics are
// per round of Allocate. Run:
//
//	go test -run xxx -bench DeclineOffers -benchtime 1x ./cluster/allocator/
//
// AGORA_BENCH_LARGE=1 adds 20k agents × 2k frameworks; AGORA_BENCH_ROUNDS=1
// prints every round the way Mesos does.
func BenchmarkDeclineOffers(b *testing.B) {
	sizes := [][2]int{{1000, 100}, {10000, 100}, {10000, 1000}}
	if os.Getenv("AGORA_BENCH_LARGE") != "" {
		sizes = append(sizes, [2]int{20000, 2000})
	}
	verbose := os.Getenv("AGORA_BENCH_ROUNDS") != ""
	for _, sz := range sizes {
		b.Run(fmt.Sprintf("agents=%d/frameworks=%d", sz[0], sz[1]), func(b *testing.B) {
			var rounds, busy []time.Duration
			var setup DeclineOffersSetup
			for i := 0; i < b.N; i++ {
				rounds, busy = rounds[:0], busy[:0]
				setup = RunDeclineOffers(sz[0], sz[1], 0, func(r DeclineOffersRound) {
					rounds = append(rounds, r.Allocate)
					if r.Offers > 0 {
						busy = append(busy, r.Allocate)
					}
					if verbose {
						fmt.Printf("round %d allocate() took %v to make %d offers (declines took %v)\n", r.Round, r.Allocate, r.Offers, r.Decline)
					}
				})
			}
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			slices.Sort(rounds)
			slices.Sort(busy)
			b.ReportMetric(ms(rounds[len(rounds)/2]), "p50-ms/round")
			b.ReportMetric(ms(rounds[len(rounds)*9/10]), "p90-ms/round")
			b.ReportMetric(ms(rounds[len(rounds)-1]), "max-ms/round")
			if len(busy) > 0 {
				b.ReportMetric(ms(busy[len(busy)/2]), "p50-ms/offering-round")
			}
			b.ReportMetric(ms(setup.AddAgents), "add-agents-ms")
		})
	}
}

// TestScenariosSmall runs every benchmark scenario at a small size and
// checks the shape of what it did (never its timings).
func TestScenariosSmall(t *testing.T) {
	for _, s := range Scenarios() {
		p := ScenarioParams{Agents: 200, Frameworks: 30}
		switch s.Name {
		case "MultiFrameworkAllocations", "MultiFrameworkAllocations/unfiltered":
			p = ScenarioParams{} // the real shape: it is small
		}
		r := s.RunScenario(p)
		if r.Scenario != s.Name || len(r.Rounds) == 0 {
			t.Fatalf("%s: result %+v", s.Name, r)
		}
		offers := func(i int) int { return r.Rounds[i].Offers }
		switch s.Name {
		case "DeclineOffers", "ResourceLabels", "PersistentVolumes", "AllocatorBacklog":
			for i := range r.Rounds {
				if offers(i) != r.Agents {
					t.Errorf("%s: round %d made %d offers, want one per agent (%d)", s.Name, i, offers(i), r.Agents)
				}
			}
		case "SuppressOffers":
			if offers(0) != r.Agents || offers(len(r.Rounds)-1) != 0 {
				t.Errorf("%s: offers per round %v: want every agent first, none once all are suppressed", s.Name, r.Rounds)
			}
		case "ExtremeSuppressOffers":
			if offers(len(r.Rounds)-1) != r.Agents || r.Counts["suppressed frameworks"] != 29 {
				t.Errorf("%s: %v %v", s.Name, r.Rounds, r.Counts)
			}
		case "MultiFrameworkAllocations":
			if r.Counts["tasks launched"] != 19500 || len(r.Rounds) > 60 {
				t.Errorf("%s: %d tasks in %d rounds, want all 19,500 within 60 rounds", s.Name, r.Counts["tasks launched"], len(r.Rounds))
			}
		case "LargeAndSmallQuota":
			// 25 small roles take half an agent each, 5 large ones two
			// agents each (two offers when they get whole agents).
			if r.Roles != 30 || r.Agents != 30 || offers(0) < 35 || offers(1) != 0 {
				t.Errorf("%s: %d roles, %d agents, offers %v", s.Name, r.Roles, r.Agents, r.Rounds)
			}
		case "NonQuotaVsQuota/nonquota", "NonQuotaVsQuota/quota":
			if offers(0) != r.Agents || offers(1) != 0 {
				t.Errorf("%s: offers %v, want every agent then none", s.Name, r.Rounds)
			}
		case "UpdateAllocation":
			if len(r.Rounds) != 40 {
				t.Errorf("%s: %d operations", s.Name, len(r.Rounds))
			}
		}
	}
}

// BenchmarkScenarios runs every scenario at its default size (the sizes
// `agora bench allocator` uses). One op is a whole scenario; the metrics
// are per timed round. AGORA_BENCH_SCENARIO=name runs one.
//
//	go test -run xxx -bench Scenarios -benchtime 1x ./cluster/allocator/
func BenchmarkScenarios(b *testing.B) {
	only := os.Getenv("AGORA_BENCH_SCENARIO")
	for _, s := range Scenarios() {
		if only != "" && len(FindScenarios(only)) > 0 && !slices.ContainsFunc(FindScenarios(only), func(x Scenario) bool { return x.Name == s.Name }) {
			continue
		}
		b.Run(s.Name, func(b *testing.B) {
			var r ScenarioResult
			for i := 0; i < b.N; i++ {
				r = s.RunScenario(ScenarioParams{})
			}
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(r.RoundQuantile(0.5)), "p50-ms/round")
			b.ReportMetric(ms(r.RoundQuantile(1)), "max-ms/round")
			b.ReportMetric(ms(r.RoundTotal()), "total-ms/rounds")
			b.ReportMetric(ms(r.Setup), "setup-ms")
		})
	}
}
