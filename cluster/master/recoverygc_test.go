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

// gcPercent reads the process's GOGC.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
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
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	want := func(p int, when string) {
		t.Helper()
		if got := gcPercent(); got != p {
			t.Fatalf("%s: GOGC is %d, want %d", when, got, p)
		}
	}

	a := recoveringMaster(t, 2, 0) // the default, 400
	b := recoveringMaster(t, 1, 800)
	a.raiseRecoveryGC()
	want(DefaultRecoveryGCPercent, "one master awaiting its agents")
	b.raiseRecoveryGC()
	want(800, "a second master asking for more")
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

	debug.SetGCPercent(1000)
	d := recoveringMaster(t, 1, 0)
	d.raiseRecoveryGC()
	want(1000, "GOGC=1000 already")
	debug.SetGCPercent(-1)
	d.raiseRecoveryGC()
	want(-1, "GOGC=off")
	debug.SetGCPercent(100)
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
