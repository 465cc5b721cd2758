package containerizer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/containerizer/containerinit"
)

// A restarted agent that has only a container's Plan (it was killed
// between the launch and checkpointing the container's pid) finds the
// container from it: running, ended, or never started.

func planSpec(t *testing.T, script string) Spec {
	spec := shell(script)
	spec.ID = fmt.Sprintf("p%d", time.Now().UnixNano())
	spec.Dir = t.TempDir()
	return spec
}

func expectNoCgroup(t *testing.T, n *Native, id string) {
	t.Helper()
	for _, dir := range cgroupDirs(n, id) {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s is still there (%v)", dir, err)
		}
	}
}

// With either init: an init that joined its cgroup by itself (the C init)
// must be found there by a restarted agent just the same.
func TestNativeRecoverFromPlanAdoptsTheRunningInit(t *testing.T) {
	eachInit(t, testNativeRecoverFromPlanAdoptsTheRunningInit)
}

func testNativeRecoverFromPlanAdoptsTheRunningInit(t *testing.T, cfg NativeConfig) {
	n := testNativeConfig(t, cfg)
	spec := planSpec(t, `sleep 100 & sleep 100`)
	plan := n.Plan(spec)
	if plan.Pid != 0 || plan.Cgroup != n.Root()+"/"+spec.ID || plan.ExitFile != filepath.Join(spec.Dir, exitFileName) {
		t.Fatalf("plan = %+v", plan)
	}
	c := launchNative(t, n, spec)
	ns := pidNamespace(c.Pid())
	waitFor(t, "the task's processes", func() bool { return len(liveInNamespace(t, ns)) >= 3 })

	again, err := NewNative(NativeConfig{Root: n.Root(), InitPath: cfg.InitPath})
	if err != nil {
		t.Fatal(err)
	}
	adopted, err := again.Recover(context.Background(), plan)
	if err != nil {
		t.Fatal(err)
	}
	if adopted.Pid() != c.Pid() || adopted.State().StartTime != c.State().StartTime {
		t.Fatalf("adopted pid %d (state %+v), want the init %d (%+v)", adopted.Pid(), adopted.State(), c.Pid(), c.State())
	}
	if err := adopted.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wait(t, adopted)
	wait(t, c)
	expectGone(t, n, spec.ID, ns)
}

func TestNativeRecoverFromPlanReadsTheExitStatus(t *testing.T) {
	n := testNative(t)
	again, err := NewNative(NativeConfig{Root: n.Root()})
	if err != nil {
		t.Fatal(err)
	}

	// The container ended and its cgroup went with it.
	spec := planSpec(t, `exit 3`)
	c := launchNative(t, n, spec)
	if e := wait(t, c); e.Code != 3 {
		t.Fatalf("exit = %+v", e)
	}
	got, err := again.Recover(context.Background(), n.Plan(spec))
	if err != nil {
		t.Fatal(err)
	}
	if e := wait(t, got); e != (Exit{Code: 3}) {
		t.Errorf("recovered exit = %+v, want status 3", e)
	}

	// The container ended while no agent watched: its empty cgroup is
	// left, with the status its init wrote.
	spec = planSpec(t, `true`)
	if _, err := n.h.create(n.Root()+"/"+spec.ID, limits{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(spec.Dir, exitFileName), containerinit.ExitFileContent(uint32(syscall.SIGTERM)), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = again.Recover(context.Background(), n.Plan(spec))
	if err != nil {
		t.Fatal(err)
	}
	if e := wait(t, got); e != (Exit{Signal: syscall.SIGTERM}) {
		t.Errorf("recovered exit = %+v, want SIGTERM", e)
	}
	expectNoCgroup(t, n, spec.ID)
}

func TestNativeRecoverFromPlanOfAContainerThatNeverStarted(t *testing.T) {
	n := testNative(t)

	// Killed before it created the cgroup.
	spec := planSpec(t, `true`)
	if _, err := n.Recover(context.Background(), n.Plan(spec)); !errors.Is(err, ErrNeverStarted) || !errors.Is(err, ErrGone) {
		t.Fatalf("recover without a cgroup: %v, want ErrNeverStarted", err)
	}

	// Killed before the init joined the cgroup (or before it let the task
	// start): an empty cgroup and no exit status.
	if _, err := n.h.create(n.Root()+"/"+spec.ID, limits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Recover(context.Background(), n.Plan(spec)); !errors.Is(err, ErrNeverStarted) {
		t.Fatalf("recover of an empty cgroup: %v, want ErrNeverStarted", err)
	}
	expectNoCgroup(t, n, spec.ID)

	// A checkpointed pid whose container is gone without a status is not
	// known never to have started.
	st := n.Plan(spec)
	st.Pid, st.StartTime = 1, 1
	if _, err := n.Recover(context.Background(), st); !errors.Is(err, ErrGone) || errors.Is(err, ErrNeverStarted) {
		t.Fatalf("recover of a launched container that is gone: %v, want ErrGone only", err)
	}
}

func TestProcessCannotRecoverFromAPlan(t *testing.T) {
	plan := Process{}.Plan(Spec{ID: "c1", Dir: t.TempDir()})
	if plan != (State{ID: "c1"}) {
		t.Fatalf("plan = %+v", plan)
	}
	_, err := Process{}.Recover(context.Background(), plan)
	if !errors.Is(err, ErrGone) || errors.Is(err, ErrNeverStarted) {
		t.Fatalf("recover from a plan: %v, want ErrGone (not ErrNeverStarted: it may have run)", err)
	}
}

// The init leaves the task's exit status in the sandbox unless the spec
// says no restarted agent will look for it; either way Wait reports it.
func TestNativeExitFileOnlyWhenWanted(t *testing.T) { eachInit(t, testNativeExitFileOnlyWhenWanted) }

func testNativeExitFileOnlyWhenWanted(t *testing.T, cfg NativeConfig) {
	n := testNativeConfig(t, cfg)
	for _, noFile := range []bool{false, true} {
		spec := planSpec(t, `exit 3`)
		spec.NoExitFile = noFile
		plan := n.Plan(spec)
		if got := plan.ExitFile != ""; got == noFile {
			t.Fatalf("NoExitFile=%v: plan = %+v", noFile, plan)
		}
		c := launchNative(t, n, spec)
		if e := wait(t, c); e.Code != 3 || e.Unknown {
			t.Fatalf("NoExitFile=%v: exit = %+v, want status 3", noFile, e)
		}
		_, err := os.Stat(filepath.Join(spec.Dir, exitFileName))
		if noFile && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("NoExitFile: the init left an exit-status file (stat: %v)", err)
		}
		if !noFile {
			b, err := os.ReadFile(filepath.Join(spec.Dir, exitFileName))
			if want := containerinit.ExitFileContent(3 << 8); err != nil || string(b) != string(want) {
				t.Errorf("the exit-status file holds %q (%v), want %q", b, err, want)
			}
			if _, err := os.Stat(filepath.Join(spec.Dir, exitFileName+".tmp")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the init left its temporary exit-status file (stat: %v)", err)
			}
		}
		if st := c.State(); (st.ExitFile == "") != noFile {
			t.Errorf("NoExitFile=%v: state = %+v", noFile, st)
		}
	}
}
