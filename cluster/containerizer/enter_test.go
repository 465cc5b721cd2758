package containerizer

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(sandbox, "ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the task never became ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
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
