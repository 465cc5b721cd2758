package distribution

import (
	"math/rand/v2"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/hadoop/framework"
)

func inRanges(p uint64, rs []mesos.Value_Range) bool {
	for _, r := range rs {
		if p >= r.Begin && p <= r.End {
			return true
		}
	}
	return false
}

func TestPickPortsTakesTwoDifferentPortsFromTheRanges(t *testing.T) {
	ranges := []mesos.Value_Range{{Begin: 31000, End: 31002}, {Begin: 40000, End: 40000}, {Begin: 50000, End: 50001}}
	o := offer("a1", "h1", 4, 4096, 1000, ranges...)
	seen := map[uint64]bool{}
	for seed := uint64(0); seed < 500; seed++ {
		ports, res, ok := pickPorts(&o, 2, rand.New(rand.NewPCG(seed, 1)))
		if !ok || len(ports) != 2 {
			t.Fatalf("seed %d: got %v, %v", seed, ports, ok)
		}
		if ports[0] == ports[1] {
			t.Fatalf("seed %d: the same port twice: %v", seed, ports)
		}
		var inRes []uint64
		for _, r := range res {
			if r.Name != "ports" || r.GetType() != mesos.RANGES {
				t.Fatalf("seed %d: resource %v is not ports", seed, r)
			}
			for _, rg := range r.GetRanges().GetRange() {
				for p := rg.Begin; p <= rg.End; p++ {
					inRes = append(inRes, p)
				}
			}
		}
		if len(inRes) != 2 {
			t.Fatalf("seed %d: the resources hold ports %v, want exactly %v", seed, inRes, ports)
		}
		for _, p := range ports {
			if !inRanges(p, ranges) {
				t.Fatalf("seed %d: port %d is not offered", seed, p)
			}
			if inRes[0] != p && inRes[1] != p {
				t.Fatalf("seed %d: port %d missing from the resources %v", seed, p, inRes)
			}
			seen[p] = true
		}
	}
	if len(seen) != 6 {
		t.Errorf("500 picks used ports %v; every offered port should come up", seen)
	}
	// The offer itself is left alone.
	if got := o.Resources[3].GetRanges().GetRange(); len(got) != 3 {
		t.Errorf("the offer's ranges changed: %v", got)
	}
}

func TestPickPortsNeedsTwoPorts(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	one := offer("a1", "h1", 4, 4096, 1000, mesos.Value_Range{Begin: 31000, End: 31000})
	if _, _, ok := pickPorts(&one, 2, rng); ok {
		t.Error("an offer with one port gave two")
	}
	none := offer("a1", "h1", 4, 4096, 1000)
	if _, _, ok := pickPorts(&none, 2, rng); ok {
		t.Error("an offer without ports gave two")
	}
	two := offer("a1", "h1", 4, 4096, 1000, mesos.Value_Range{Begin: 31000, End: 31000}, mesos.Value_Range{Begin: 31005, End: 31005})
	ports, _, ok := pickPorts(&two, 2, rng)
	if !ok || ports[0]+ports[1] != 62005 {
		t.Errorf("an offer of exactly two ports gave %v, %v", ports, ok)
	}
}

func testSettings(t *testing.T, kv ...string) Settings {
	t.Helper()
	p := map[string]string{KeyJobTracker: "jt.example.com:9001", KeyExecutorURI: "http://repo/hadoop-1.2.1.tar.gz"}
	for i := 0; i < len(kv); i += 2 {
		p[kv[i]] = kv[i+1]
	}
	s, err := SettingsFrom(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPlanSizesSlotsFromTheOffer(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ports := mesos.Value_Range{Begin: 31000, End: 32000}
	for _, c := range []struct {
		name            string
		settings        Settings
		cpus, mem, disk float64
		maps, reduces   int
	}{
		// Upstream defaults (1 cpu, 1024 MB per slot and per tracker):
		// 4 cpus hold the tracker and 3 slots, split 2:1 by the 2:2 maximums.
		{"defaults", testSettings(t), 4, 8192, 10000, 2, 1},
		{"roomy offer fills the maximums", testSettings(t), 16, 16384, 10000, 2, 2},
		{"memory bound", testSettings(t), 16, 3072, 10000, 1, 1},
		{"disk bound", testSettings(t), 16, 16384, 2048, 1, 0},
		{"bigger maximums", testSettings(t, framework.KeyMapMax, "6", framework.KeyReduceMax, "2"), 9, 16384, 10000, 6, 2},
		{"small slots", testSettings(t, framework.KeySlotCPUs, "0.5", framework.KeySlotMem, "512", framework.KeyTrackerCPUs, "0.5", framework.KeyTrackerMem, "512"), 4, 4096, 10000, 2, 2},
		{"fixed policy", testSettings(t, framework.KeyFixedPolicy, "true", framework.KeyMapMax, "3", framework.KeyReduceMax, "1"), 5, 8192, 10000, 3, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := offer("agent-1", "node1.example.com", c.cpus, c.mem, c.disk, ports)
			tr, res, reason := c.settings.Plan(&o, rng)
			if reason != "" {
				t.Fatalf("declined: %s", reason)
			}
			z := c.settings.Sizing
			m, r := z.Slots(c.cpus-z.TrackerCPUs, c.mem-z.TrackerMem, c.disk-z.TrackerDisk, z.MapMax, z.ReduceMax, z.MapMax, z.ReduceMax)
			if tr.MapSlots != c.maps || tr.ReduceSlots != c.reduces || m != c.maps || r != c.reduces {
				t.Fatalf("slots %d+%d (Sizing.Slots says %d+%d), want %d+%d", tr.MapSlots, tr.ReduceSlots, m, r, c.maps, c.reduces)
			}
			n := float64(c.maps + c.reduces)
			sum := offers.Sum(res, "")
			want := offers.Scalars{"cpus": z.TrackerCPUs + n*z.SlotCPUs, "mem": z.TrackerMem + n*z.SlotMem, "disk": z.TrackerDisk + n*z.SlotDisk}
			for k, v := range want {
				if sum[k] != v {
					t.Errorf("task %s = %v, want %v", k, sum[k], v)
				}
			}
			if tr.CPUs != want["cpus"] || tr.Mem != want["mem"] || tr.Disk != want["disk"] {
				t.Errorf("tracker resources %v/%v/%v, want %v", tr.CPUs, tr.Mem, tr.Disk, want)
			}
			if tr.HTTPPort == tr.ReportPort || !inRanges(tr.HTTPPort, []mesos.Value_Range{ports}) || !inRanges(tr.ReportPort, []mesos.Value_Range{ports}) {
				t.Errorf("ports %d, %d", tr.HTTPPort, tr.ReportPort)
			}
			if tr.AgentID != "agent-1" || tr.Host != "node1.example.com" {
				t.Errorf("tracker %+v", tr)
			}
		})
	}
}

func TestPlanDeclinesWhatCannotHoldATracker(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	s := testSettings(t)
	ports := mesos.Value_Range{Begin: 31000, End: 31010}
	for _, c := range []struct {
		name  string
		offer mesos.Offer
		want  string
	}{
		{"one port", offer("a", "h", 8, 8192, 10000, mesos.Value_Range{Begin: 31000, End: 31000}), "fewer than 2 ports"},
		{"no ports", offer("a", "h", 8, 8192, 10000), "fewer than 2 ports"},
		{"too small for the tracker", offer("a", "h", 0.5, 8192, 10000, ports), "too small for a TaskTracker"},
		{"no room for a slot", offer("a", "h", 1.5, 8192, 10000, ports), "no room for a slot"},
		{"fixed policy needs every slot", offer("a", "h", 4, 8192, 10000, ports), "no room for a slot"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := s
			if strings.HasPrefix(c.name, "fixed") {
				s = testSettings(t, framework.KeyFixedPolicy, "true")
			}
			tr, res, reason := s.Plan(&c.offer, rng)
			if !strings.Contains(reason, c.want) || res != nil || tr.MapSlots+tr.ReduceSlots != 0 {
				t.Fatalf("Plan = %+v, %v, %q; want a decline saying %q", tr, res, reason, c.want)
			}
		})
	}
}

func TestWantMoreKeepsTrackersBetweenMinimumAndMaximum(t *testing.T) {
	s := testSettings(t, framework.KeyMinExecutors, "2", framework.KeyMaxExecutors, "4",
		framework.KeyMinMapSlots, "6", framework.KeyMinReduceSlots, "2")
	for _, c := range []struct {
		n, maps, reduces int
		want             bool
	}{
		{0, 0, 0, true},
		{1, 10, 10, true},  // below the minimum trackers
		{2, 4, 4, true},    // below the hot map slots
		{2, 6, 1, true},    // below the hot reduce slots
		{2, 6, 2, false},   // everything met
		{4, 0, 0, false},   // at the maximum
		{5, 0, 0, false},   // above it (never launched more)
		{3, 100, 0, true},  // reduce slots still short
		{4, 100, 0, false}, // but the maximum holds
	} {
		if got := s.WantMore(c.n, c.maps, c.reduces); got != c.want {
			t.Errorf("WantMore(%d trackers, %d maps, %d reduces) = %v, want %v", c.n, c.maps, c.reduces, got, c.want)
		}
	}
	unlimited := testSettings(t, framework.KeyMinExecutors, "1")
	if unlimited.WantMore(1, 0, 0) || !unlimited.WantMore(0, 0, 0) {
		t.Error("with a minimum of 1 and no maximum: want exactly one tracker")
	}
}
