package standalone

import (
	"testing"
	"time"

	"github.com/agora-cluster/agora/frameworks/offers"
)

func TestParseAppCores(t *testing.T) {
	for _, tc := range []struct {
		page            string
		left            int
		unlimited, okay bool
	}{
		{"<li><strong>Cores:</strong>\n            4 (2 granted, 2 left)\n            </li>", 2, false, true},
		{"<li><strong>Cores:</strong>\n   Unlimited (3 granted)\n</li>", unlimitedCores, true, true},
		{"<li><strong>Cores:</strong> 2 (2 granted, 0 left)</li>", 0, false, true},
		{"<html>Application not found</html>", 0, false, false},
	} {
		left, unlimited, ok := parseAppCores(tc.page)
		if left != tc.left || unlimited != tc.unlimited || ok != tc.okay {
			t.Errorf("parseAppCores(%q) = %d, %v, %v; want %d, %v, %v", tc.page, left, unlimited, ok, tc.left, tc.unlimited, tc.okay)
		}
	}
}

func TestUnmetCores(t *testing.T) {
	alive := func(cores, used, mem, memUsed int) WorkerState {
		return WorkerState{State: "ALIVE", Cores: cores, CoresUsed: used, Memory: mem, MemoryUsed: memUsed}
	}
	app := func(left, mem int) AppState {
		return AppState{CoresLeft: left, CoresLeftKnown: true, MemoryPerExec: mem}
	}
	for _, tc := range []struct {
		name    string
		st      MasterState
		pending int
		want    int
	}{
		{"no workers", MasterState{ActiveApps: []AppState{app(2, 512)}}, 0, 2},
		{"pending workers count", MasterState{ActiveApps: []AppState{app(2, 512)}}, 1, 1},
		{"free cores cover it", MasterState{Workers: []WorkerState{alive(2, 0, 1024, 0)}, ActiveApps: []AppState{app(2, 512)}}, 0, 0},
		{"free cores without memory do not", MasterState{Workers: []WorkerState{alive(2, 0, 1024, 768)}, ActiveApps: []AppState{app(2, 512)}}, 0, 2},
		{"a free core goes to one application", MasterState{Workers: []WorkerState{alive(1, 0, 2048, 0)}, ActiveApps: []AppState{app(1, 512), app(1, 512)}}, 0, 1},
		{"dead workers give nothing", MasterState{Workers: []WorkerState{{State: "DEAD", Cores: 4, Memory: 4096}}, ActiveApps: []AppState{app(1, 512)}}, 0, 1},
		{"unlimited", MasterState{ActiveApps: []AppState{{CoresLeft: unlimitedCores, CoresLeftKnown: true, CoresUnlimited: true}}}, 3, unlimitedCores},
		{"unknown page: waiting while it has none", MasterState{ActiveApps: []AppState{{Cores: 0}, {Cores: 2}}}, 0, 1},
		{"nothing waits", MasterState{ActiveApps: []AppState{app(0, 512)}}, 0, 0},
	} {
		if got := unmetCores(&tc.st, tc.pending); got != tc.want {
			t.Errorf("%s: unmetCores = %d; want %d", tc.name, got, tc.want)
		}
	}
}

func newTest(t *testing.T, cfg Config) *Scheduler {
	t.Helper()
	cfg.Masters, cfg.SparkHome = []string{"127.0.0.1:5050"}, "/opt/spark"
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.master = &Daemon{TaskID: "spark-master-1", Hostname: "h", Port: 7077, UIPort: 8080, State: "TASK_RUNNING", Ready: true}
	return s
}

func (s *Scheduler) addWorker(id string, port uint64, cores int) *Daemon {
	w := &Daemon{TaskID: id, AgentID: "a-" + id, Hostname: "h", Port: port, Cores: cores, MemMB: 1024, State: "TASK_RUNNING", Launched: time.Now()}
	s.workers[id] = w
	return w
}

// Waiting applications raise the target, by the cores they wait for over
// a worker's size, up to WorkersMax; registered workers count, pending
// ones too.
func TestRebalanceAddsWorkers(t *testing.T) {
	s := newTest(t, Config{WorkersMax: 3, WorkerCores: 2})
	now := time.Now()
	st := &MasterState{ActiveApps: []AppState{{ID: "app-1", CoresLeft: 3, CoresLeftKnown: true, MemoryPerExec: 512}}}
	if kill := s.rebalance(st, now); len(kill) != 0 || s.target != 2 {
		t.Fatalf("3 cores wanted, workers of 2: target %d, kill %v; want 2 and none", s.target, kill)
	}
	if !s.wantsLocked() {
		t.Error("short of the target, offers are not wanted")
	}
	// Both launched, not registered: their cores are pending.
	s.addWorker("spark-worker-2", 31000, 2)
	s.addWorker("spark-worker-3", 31002, 2)
	if s.rebalance(st, now); s.target != 2 || s.wantsLocked() {
		t.Errorf("pending workers cover the wait: target %d, wants %v; want 2, false", s.target, s.wantsLocked())
	}
	// One that never registers stops counting: it is killed, to be
	// replaced.
	if kill := s.rebalance(st, now.Add(registerWithin+time.Second)); len(kill) != 2 || !s.wantsLocked() {
		t.Errorf("workers not registered after %v: killed %v, wants offers %v; want both killed and offers wanted", registerWithin, kill, s.wantsLocked())
	}
	// An unlimited application: up to WorkersMax.
	st.ActiveApps[0] = AppState{ID: "app-1", CoresLeft: unlimitedCores, CoresLeftKnown: true, CoresUnlimited: true}
	if s.rebalance(st, now); s.target != 3 {
		t.Errorf("unlimited application: target %d; want WorkersMax 3", s.target)
	}
}

// A registered worker that runs no executor for the idle timeout is
// released while nothing waits, never below WorkersMin; a busy one is
// kept.
func TestRebalanceReleasesIdleWorkers(t *testing.T) {
	s := newTest(t, Config{WorkersMin: 2, WorkersMax: 3, IdleTimeout: 10 * time.Second})
	s.target = 3
	for i, p := range []uint64{31000, 31001, 31002} {
		s.addWorker("spark-worker-"+string(rune('2'+i)), p, 1)
	}
	st := &MasterState{Workers: []WorkerState{
		{ID: "w1", Host: "h", Port: 31000, State: "ALIVE", Cores: 1, CoresUsed: 1, Memory: 1024},
		{ID: "w2", Host: "h", Port: 31001, State: "ALIVE", Cores: 1, Memory: 1024},
		{ID: "w3", Host: "h", Port: 31002, State: "ALIVE", Cores: 1, Memory: 1024},
	}}
	t0 := time.Now()
	if kill := s.rebalance(st, t0); len(kill) != 0 {
		t.Fatalf("released %v at once", kill)
	}
	for _, w := range s.workers {
		if !w.Ready || w.SparkID == "" {
			t.Errorf("worker %+v not seen registered", w)
		}
	}
	if kill := s.rebalance(st, t0.Add(5*time.Second)); len(kill) != 0 {
		t.Fatalf("released %v before the idle timeout", kill)
	}
	kill := s.rebalance(st, t0.Add(11*time.Second))
	if len(kill) != 1 || kill[0] == "spark-worker-2" {
		t.Fatalf("released %v; want one of the two idle workers (WorkersMin 2)", kill)
	}
	if s.target != 2 || !s.workers[kill[0]].Killed {
		t.Errorf("target %d, released worker %+v; want 2 and marked killed", s.target, s.workers[kill[0]])
	}
	// Now busy workers and waiting applications keep the rest.
	st.ActiveApps = []AppState{{ID: "app-2", CoresLeft: 1, CoresLeftKnown: true, MemoryPerExec: 2048}}
	if kill := s.rebalance(st, t0.Add(time.Minute)); len(kill) != 0 {
		t.Errorf("released %v while an application waits", kill)
	}
}

func TestWorkerSize(t *testing.T) {
	s := newTest(t, Config{})
	cores, mem, why := s.workerSize(offers.Scalars{"cpus": 2.5, "mem": 3072})
	if cores != 2 || mem != 3072-workerDaemonMB || why != "" {
		t.Errorf("from the offer: %d cores, %g MB (%s); want 2, %d", cores, mem, why, 3072-workerDaemonMB)
	}
	if _, _, why := s.workerSize(offers.Scalars{"cpus": 0.5, "mem": 3072}); why == "" {
		t.Error("half a cpu made a worker")
	}
	if _, _, why := s.workerSize(offers.Scalars{"cpus": 2, "mem": 700}); why == "" {
		t.Error("700 MB made a worker")
	}
	fixed := newTest(t, Config{WorkerCores: 1, WorkerMemMB: 1024})
	if cores, mem, why := fixed.workerSize(offers.Scalars{"cpus": 4, "mem": 8192}); cores != 1 || mem != 1024 || why != "" {
		t.Errorf("fixed sizes: %d cores, %g MB (%s); want 1, 1024", cores, mem, why)
	}
	if _, _, why := fixed.workerSize(offers.Scalars{"cpus": 4, "mem": 1200}); why == "" {
		t.Error("1024 MB + the daemon's fit 1200 MB")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{SparkHome: "/opt/spark"},
		{Masters: []string{"m:5050"}},
		{Masters: []string{"m:5050"}, SparkHome: "/s", WorkersMin: 3, WorkersMax: 2},
		{Masters: []string{"m:5050"}, SparkHome: "/s", WorkerCores: -1},
		{Masters: []string{"m:5050"}, SparkHome: "/s", WorkerMemMB: 100},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
