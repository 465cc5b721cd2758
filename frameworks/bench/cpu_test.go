package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseCPULine(t *testing.T) {
	busy, total, err := parseCPULine([]byte("cpu  100 5 50 1000 20 3 2 7 40 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	// user+nice+system+irq+softirq; total adds idle, iowait, steal.
	if busy != 160 || total != 1187 {
		t.Errorf("busy %d total %d, want 160 and 1187", busy, total)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8\n", "cpu 1 2 x 4 5 6 7 8\n", "cpu 1 2\n", "cpu 0 0 0 0 0 0 0 0\n"} {
		if _, _, err := parseCPULine([]byte(bad)); err == nil {
			t.Errorf("parseCPULine(%q): no error", bad)
		}
	}
	// An older kernel's line without steal and guest columns still reads.
	if busy, total, err := parseCPULine([]byte("cpu 10 0 10 80 0 0 0\n")); err != nil || busy != 20 || total != 100 {
		t.Errorf("seven columns: %d %d %v, want 20 100", busy, total, err)
	}
}

func TestLaunchCPU(t *testing.T) {
	from := cpuSample{ok: true, busy: 1000, total: 4000, cpus: 2, self: time.Second}
	to := cpuSample{ok: true, busy: 1150, total: 4200, cpus: 2, self: 1300 * time.Millisecond}
	c := launchCPU(from, to, 1000)
	if c == nil {
		t.Fatal("no CPU")
	}
	// 150 ticks of 10 ms over 1000 tasks; 300 ms of this process; 150 of 200 ticks busy.
	if c.Machine != 1.5 || c.Framework != 0.3 || c.BusyPercent != 75 || c.CPUs != 2 {
		t.Errorf("%+v, want machine 1.5, framework 0.3, busy 75%% of 2 CPUs", c)
	}
	// Idle time that stepped back never makes the machine more than busy.
	if c := launchCPU(from, cpuSample{ok: true, busy: 1150, total: 4100, cpus: 2}, 1000); c == nil || c.BusyPercent != 100 {
		t.Errorf("busy share over all of the time: %+v, want 100%%", c)
	}
	for _, tc := range []struct {
		from, to cpuSample
		n        int
	}{
		{cpuSample{}, to, 1000},   // the machine's counters unread at the start
		{from, cpuSample{}, 1000}, // or at the end
		{from, to, 0},             // nothing finished
		{to, from, 1000},          // counters that went back
	} {
		if c := launchCPU(tc.from, tc.to, tc.n); c != nil {
			t.Errorf("launchCPU(%+v, %+v, %d) = %+v, want nil", tc.from, tc.to, tc.n, c)
		}
	}
}

func TestSampleCPUWithoutProcStat(t *testing.T) {
	old := procStat
	defer func() { procStat = old }()
	procStat = filepath.Join(t.TempDir(), "missing")
	if s := sampleCPU(); s.ok {
		t.Errorf("a missing %s read as %+v", procStat, s)
	}
	procStat = filepath.Join(t.TempDir(), "stat")
	if err := os.WriteFile(procStat, []byte("intr 1 2 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s := sampleCPU(); s.ok {
		t.Errorf("a stat file without a cpu line read as %+v", s)
	}
	// The CPUs are the ones the machine's line sums, whatever this
	// process may run on.
	stat := "cpu  40 0 20 300 0 0 0 0 0 0\ncpu0 10 0 5 75 0 0 0 0 0 0\ncpu1 10 0 5 75 0 0 0 0 0 0\n" +
		"cpu2 10 0 5 75 0 0 0 0 0 0\ncpu3 10 0 5 75 0 0 0 0 0 0\nintr 1 2\nctxt 5\n"
	if err := os.WriteFile(procStat, []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	if s := sampleCPU(); !s.ok || s.busy != 60 || s.total != 360 || s.cpus != 4 {
		t.Errorf("four CPUs' counters read as %+v, want busy 60 of 360 over 4 CPUs", s)
	}
	procStat = old
	if s := sampleCPU(); !s.ok || s.total == 0 || s.cpus < 1 || s.self <= 0 {
		t.Errorf("this machine's counters: %+v", s)
	}
}
