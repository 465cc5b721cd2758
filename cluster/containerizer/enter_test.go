package containerizer

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A command entered into a native container sees what the task sees (its
// private /tmp, its /proc with the init as pid 1, its hostname) and runs
// in the container's cgroup, not the agent's; once the container is gone
// Enter refuses.
func TestNativeEnterRunsACommandInsideTheContainer(t *testing.T) {
	eachInit(t, testNativeEnterRunsACommandInsideTheContainer)
}

func testNativeEnterRunsACommandInsideTheContainer(t *testing.T, cfg NativeConfig) {
	n := testNativeConfig(t, cfg)
	c := launchNative(t, n, shell(`hostname box-under-test; echo private > /tmp/only-in-here; touch ready; exec sleep 100`))
	sandbox := c.(*nativeContainer).exitFile
	sandbox = filepath.Dir(sandbox)
	awaitReady(t, sandbox)
	if _, err := os.Stat("/tmp/only-in-here"); err == nil {
		t.Fatal("the task's private /tmp file is visible on the host; the test cannot tell inside from outside")
	}
	script := `cat /tmp/only-in-here; cat /proc/1/comm; hostname; cat /proc/self/cgroup; pwd`
	cmd := exec.CommandContext(context.Background(), "/bin/sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if err := c.(Enterer).Enter(cmd, sandbox); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("entered command: %v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{"private\n", "agora-init\n", "box-under-test\n", "/" + n.Root() + "/" + c.ID(), sandbox + "\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("entered command's output lacks %q:\n%s", want, got)
		}
	}

	// A failing command's status comes back.
	fail := exec.Command("/bin/sh", "-c", "exit 7")
	if err := c.(Enterer).Enter(fail, sandbox); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := fail.Run(); !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("entered `exit 7` = %v, want exit status 7", err)
	}

	if err := c.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wait(t, c)
	if err := c.(Enterer).Enter(exec.Command("/bin/true"), sandbox); !errors.Is(err, ErrExited) {
		t.Errorf("Enter after the container ended = %v, want ErrExited", err)
	}
}

// procsCounter counts the reads of a cgroup's process lists.
type procsCounter struct {
	cgroup
	reads atomic.Int32
}

func (p *procsCounter) procs() ([]int, error) {
	p.reads.Add(1)
	return p.cgroup.procs()
}

func (p *procsCounter) pidsCurrent() (uint64, bool) {
	if g, ok := p.cgroup.(interface{ pidsCurrent() (uint64, bool) }); ok {
		return g.pidsCurrent()
	}
	return 0, false
}

// A container that ends with its init reaped and nothing entered into it
// holds no process the kernel has not already ended (the init is its pid
// namespace's first process), so its end reads no cgroup process list;
// one a command was entered into may still hold that command's joiner,
// outside the namespace, and one a host process was put into by hand
// holds that process (the pids controller counts it): their ends look,
// and kill what they find. Either way the cgroup is gone
// and the container counts as emptied.
func TestNativeEndLooksForProcessesOnlyWhenEntered(t *testing.T) {
	eachInit(t, testNativeEndLooksForProcessesOnlyWhenEntered)
}

func testNativeEndLooksForProcessesOnlyWhenEntered(t *testing.T, cfg NativeConfig) {
	// Without the pool: the counting wrapper is not a pooled group.
	cfg.CgroupPool = 0
	for _, how := range []string{"not-entered", "entered", "outsider"} {
		t.Run(how, func(t *testing.T) {
			n := testNativeConfig(t, cfg)
			c := launchNative(t, n, shell(`touch ready; while [ ! -e go ]; do sleep 0.05; done; sleep 30 & exit 0`))
			nc := c.(*nativeContainer)
			sandbox := filepath.Dir(nc.exitFile)
			awaitReady(t, sandbox)
			var outsiderDone chan error
			switch how {
			case "entered":
				cmd := exec.Command("/bin/true")
				if err := nc.Enter(cmd, sandbox); err != nil {
					t.Fatal(err)
				}
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("entered command: %v\n%s", err, out)
				}
			case "outsider":
				// A process of the host, put in the container's cgroup
				// by hand: not in its pid namespace.
				sleep := exec.Command("/bin/sleep", "60")
				if err := sleep.Start(); err != nil {
					t.Fatal(err)
				}
				outsiderDone = make(chan error, 1)
				go func() { outsiderDone <- sleep.Wait() }()
				t.Cleanup(func() { _ = sleep.Process.Kill() })
				if err := nc.cg.add(sleep.Process.Pid); err != nil {
					t.Fatal(err)
				}
			}
			// Before the task may end, and under the lock its reaper takes.
			counter := &procsCounter{cgroup: nc.cg}
			nc.mu.Lock()
			nc.cg = counter
			nc.mu.Unlock()
			if err := os.WriteFile(filepath.Join(sandbox, "go"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if ex := wait(t, c); ex.Code != 0 {
				t.Fatalf("exit = %+v, want 0", ex)
			}
			reads := counter.reads.Load()
			if how != "not-entered" && reads == 0 {
				t.Errorf("the end of a container (%s) read no process list", how)
			}
			if how == "not-entered" && reads != 0 {
				t.Errorf("the end of a container nothing entered read process lists %d times", reads)
			}
			if outsiderDone != nil {
				select {
				case err := <-outsiderDone:
					var ee *exec.ExitError
					if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
						t.Errorf("the process put in the cgroup ended with %v, want killed", err)
					}
				case <-time.After(20 * time.Second):
					t.Error("the process put in the container's cgroup outlived the container")
				}
			}
			if !nc.Emptied() {
				t.Error("the container does not count as emptied")
			}
			// The task's background sleep ended with the namespace.
			for _, d := range cgroupDirs(n, c.ID()) {
				if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("cgroup %s outlived its container", d)
				}
			}
		})
	}
}

// awaitReady waits, at most 30 s, for the task to create the file ready
// in its sandbox.
func awaitReady(t *testing.T, sandbox string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(sandbox, "ready")); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the task never became ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
