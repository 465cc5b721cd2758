package master

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/registry"
)

// fakeGOGC stands in for the process's GOGC for the test (other tests'
// masters may hold the real one), with the bookkeeping reset, until the
// test ends.
func fakeGOGC(t *testing.T, start int) *int {
	t.Helper()
	v := start
	recoveryGC.mu.Lock()
	holders, before, current, get, set := recoveryGC.holders, recoveryGC.before, recoveryGC.current, recoveryGC.get, recoveryGC.set
	recoveryGC.holders, recoveryGC.before, recoveryGC.current = nil, 0, 0
	recoveryGC.get = func() int { return v }
	recoveryGC.set = func(p int) { v = p }
	recoveryGC.mu.Unlock()
	t.Cleanup(func() {
		recoveryGC.mu.Lock()
		recoveryGC.holders, recoveryGC.before, recoveryGC.current = holders, before, current
		recoveryGC.get, recoveryGC.set = get, set
		recoveryGC.mu.Unlock()
	})
	return &v
}

// recoveringMaster is a master that recovered n admitted agents from its
// registry (not running: the test calls what its loop would).
func recoveringMaster(t *testing.T, n, percent int) *Master {
	t.Helper()
	reg := registry.NewMemory()
	for i := range n {
		id := fmt.Sprintf("S%d", i)
		if err := reg.PutAgent(registry.AgentRecord{ID: id, State: registry.AgentAdmitted, Info: &mesos.AgentInfo{Hostname: id}, Since: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	m, err := New(Config{Hostname: "localhost", IP: "127.0.0.1", Port: 5050, Registry: reg, RecoveryGCPercent: percent,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.awaiting) != n {
		t.Fatalf("the master awaits %d recovered agents, want %d", len(m.awaiting), n)
	}
	return m
}

// While recovered agents re-register the collector's target is raised,
// to the largest any running master asks; it comes back to what it was
// once every master is done (its agents back, its window over, or it
// stopped). A process that collects lazier already, or not at all, or a
// master told to leave it, keeps what it has.
func TestRecoveryGCRaisedWhileRecoveredAgentsReturn(t *testing.T) {
	gogc := fakeGOGC(t, 100)
	want := func(p int, when string) {
		t.Helper()
		if got := *gogc; got != p {
			t.Fatalf("%s: GOGC is %d, want %d", when, got, p)
		}
	}

	a := recoveringMaster(t, 2, 0) // the default
	b := recoveringMaster(t, 1, 1600)
	a.raiseRecoveryGC()
	want(DefaultRecoveryGCPercent, "one master awaiting its agents")
	b.raiseRecoveryGC()
	want(1600, "a second master asking for more")
	b.lowerRecoveryGC("the master stopped")
	want(DefaultRecoveryGCPercent, "the second master stopped, the first still awaiting")
	a.checkRecoveryGC(time.Now())
	want(DefaultRecoveryGCPercent, "one of two agents still awaited")
	delete(a.awaiting, "S0")
	delete(a.awaiting, "S1")
	a.checkRecoveryGC(time.Now())
	want(100, "every agent back")
	if a.recoveryGCRaised || b.recoveryGCRaised {
		t.Fatal("a master still says it holds the target raised")
	}
	a.lowerRecoveryGC("the master stopped") // no second lowering
	want(100, "a master done twice")

	c := recoveringMaster(t, 1, 0)
	c.raiseRecoveryGC()
	want(DefaultRecoveryGCPercent, "a third master awaiting its agent")
	c.checkRecoveryGC(c.start.Add(recoveryGCMaxWindow - time.Second))
	want(DefaultRecoveryGCPercent, "within the window")
	c.checkRecoveryGC(c.start.Add(recoveryGCMaxWindow))
	want(100, "the window over, the agent still awaited")

	*gogc = 1000
	d := recoveringMaster(t, 1, 0)
	d.raiseRecoveryGC()
	want(1000, "GOGC=1000 already")
	*gogc = -1
	d.raiseRecoveryGC()
	want(-1, "GOGC=off")
	*gogc = 100
	if d.recoveryGCRaised {
		t.Fatal("a master that left GOGC alone says it holds it raised")
	}

	off := recoveringMaster(t, 1, -1)
	off.raiseRecoveryGC()
	want(100, "a master told to leave the collector alone")
	none := recoveringMaster(t, 0, 0)
	none.raiseRecoveryGC()
	want(100, "a master with no agents to await")
}

// GOGC is read without being set (reading it by setting it would turn
// collection on for a moment where it is off); off and 0 read as "leave
// it alone".
func TestGCPercentReadsWithoutSetting(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, tc := range []struct{ set, want int }{{100, 100}, {400, 400}, {-1, -1}, {0, -1}, {50, 50}} {
		debug.SetGCPercent(tc.set)
		if got := gcPercent(); got != tc.want {
			t.Errorf("GOGC %d reads as %d, want %d", tc.set, got, tc.want)
		}
	}
}
