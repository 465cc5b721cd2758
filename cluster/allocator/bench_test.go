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
