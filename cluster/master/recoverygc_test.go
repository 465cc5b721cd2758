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
	holders, before, current, release := recoveryGC.holders, recoveryGC.before, recoveryGC.current, recoveryGC.release
	get, set, hold := recoveryGC.get, recoveryGC.set, recoveryGC.hold
	recoveryGC.holders, recoveryGC.before, recoveryGC.current, recoveryGC.release = nil, 0, 0, nil
	recoveryGC.get = func() int { return v }
	recoveryGC.set = func(p int) { v = p }
	recoveryGC.hold = func() (func(), bool) { return func() {}, false }
	recoveryGC.mu.Unlock()
	t.Cleanup(func() {
		recoveryGC.mu.Lock()
		recoveryGC.holders, recoveryGC.before, recoveryGC.current, recoveryGC.release = holders, before, current, release
		recoveryGC.get, recoveryGC.set, recoveryGC.hold = get, set, hold
		recoveryGC.mu.Unlock()
	})
	return &v
}

// fakePacing makes the fake GOGC paced (cluster/gcpace) at percent: a
// hold stops pacing, and its release has pacing set percent again. It
// returns how many holds are not released.
func fakePacing(t *testing.T, gogc *int, percent int) *int {
	t.Helper()
	held := 0
	recoveryGC.mu.Lock()
	recoveryGC.hold = func() (func(), bool) {
		held++
		done := false
		return func() {
			if !done {
				done = true
				held--
				*gogc = percent
			}
		}, true
	}
	recoveryGC.mu.Unlock()
	return &held
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

// Where the collector is paced, the raise holds pacing whatever pacing had
// set (even a percentage above the raise's, which pacing would lower as
// the heap grows), and hands the collector back to pacing once the last
// master is done, instead of restoring the value pacing had set before.
func TestRecoveryGCHoldsPacing(t *testing.T) {
	gogc := fakeGOGC(t, DefaultRecoveryGCPercent) // pacing's value for a small heap
	held := fakePacing(t, gogc, 150)

	// A master told to leave the collector alone, or with nobody to
	// await, holds nothing.
	off := recoveringMaster(t, 1, -1)
	off.raiseRecoveryGC()
	none := recoveringMaster(t, 0, 0)
	none.raiseRecoveryGC()
	if *held != 0 || *gogc != DefaultRecoveryGCPercent {
		t.Fatalf("masters that raise nothing: GOGC %d, %d holds; want %d, 0", *gogc, *held, DefaultRecoveryGCPercent)
	}

	a := recoveringMaster(t, 2, 0)
	b := recoveringMaster(t, 1, 1600)
	a.raiseRecoveryGC()
	if *gogc != DefaultRecoveryGCPercent || *held != 1 {
		t.Fatalf("one master awaiting its agents: GOGC %d, %d holds; want %d, 1", *gogc, *held, DefaultRecoveryGCPercent)
	}
	b.raiseRecoveryGC()
	if *gogc != 1600 || *held != 1 {
		t.Fatalf("a second master asking for more: GOGC %d, %d holds; want 1600, 1", *gogc, *held)
	}
	b.lowerRecoveryGC("the master stopped")
	if *gogc != DefaultRecoveryGCPercent || *held != 1 {
		t.Fatalf("the second master stopped: GOGC %d, %d holds; want %d, 1", *gogc, *held, DefaultRecoveryGCPercent)
	}
	a.lowerRecoveryGC("every recovered agent is back or marked unreachable")
	if *gogc != 150 || *held != 0 {
		t.Fatalf("every master done: GOGC %d, %d holds; want pacing's 150, 0", *gogc, *held)
	}
	a.lowerRecoveryGC("again")
	if *held != 0 {
		t.Fatalf("%d holds after a second lower", *held)
	}
	// A later recovery holds pacing again.
	c := recoveringMaster(t, 1, 0)
	c.raiseRecoveryGC()
	if *gogc != DefaultRecoveryGCPercent || *held != 1 {
		t.Fatalf("a later recovery: GOGC %d, %d holds; want %d, 1", *gogc, *held, DefaultRecoveryGCPercent)
	}
	c.lowerRecoveryGC("stopped")
	if *gogc != 150 || *held != 0 {
		t.Fatalf("the later recovery done: GOGC %d, %d holds; want 150, 0", *gogc, *held)
	}
}
