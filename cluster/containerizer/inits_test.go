package containerizer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/cluster/containerizer/containerinit"
)

// cInitSource is the C container init that `make build` compiles into
// bin/agora-init when a C compiler is there, with the Makefile's flags.
const cInitSource = "containerinit/cinit/agora-init.c"

var cInitFlags = []string{"-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-static", "-s"}

// buildCInit compiles the C init into a directory of the test's with the
// compiler `make build` would take (CC if set, else musl-gcc if installed,
// else cc); a machine without a C compiler skips (or, in CI, fails) the
// test's tier.
func buildCInit(t *testing.T) string {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
		if _, err := exec.LookPath("musl-gcc"); err == nil {
			cc = "musl-gcc"
		}
	}
	if _, err := exec.LookPath(cc); err != nil {
		tier.Need(t, tier.Root, fmt.Errorf("no C compiler to build the C container init: %w", err))
	}
	out := filepath.Join(t.TempDir(), "agora-init")
	args := append(append([]string{}, cInitFlags...), "-o", out, cInitSource)
	if b, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", cc, strings.Join(args, " "), err, b)
	}
	return out
}

// buildGoInit builds cmd/agora-init, the Go init on its own (the test
// binary serves as the Go init of the native tests, but it runs tests,
// not the init, when started without the agent's pipes).
func buildGoInit(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), "agora-init-go")
	cmd := exec.Command(goCmd, "build", "-o", out, "../../cmd/agora-init")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/agora-init: %v\n%s", err, b)
	}
	return out
}

// eachInit runs test once per container init, as subtests: the Go init
// (NativeConfig's default in a test: this binary, the fallback of every
// agent) and the C init. The agent cannot tell them apart, so every
// scenario must come out the same with either.
func eachInit(t *testing.T, test func(t *testing.T, cfg NativeConfig)) {
	t.Helper()
	t.Run("go-init", func(t *testing.T) { test(t, NativeConfig{CgroupPool: 2}) })
	t.Run("c-init", func(t *testing.T) {
		if err := tier.RootErr(); err != nil {
			tier.Need(t, tier.Root, err) // skip before compiling anything
		}
		test(t, NativeConfig{CgroupPool: 2, InitPath: buildCInit(t)})
	})
}

// expectInit checks that running container c's init is the program cfg
// names (this test binary by default), so that eachInit's subtests do
// test the init they are named after.
func expectInit(t *testing.T, c Container, cfg NativeConfig) {
	t.Helper()
	want := cfg.InitPath
	if want == "" {
		var err error
		if want, err = os.Executable(); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", c.Pid())); err != nil || got != want {
		t.Errorf("the container's init runs %q (%v), want %s", got, err, want)
	}
}

// initRun is what an init invocation left: its exit status, stderr, and
// the lines it wrote on its status pipe.
type initRun struct {
	code           int
	stderr, status string
}

// runInit starts the init at path with args; with config non-nil, fds 3
// and 4 are the agent's pipes and config is written to fd 3 (then
// closed). Bounded: the init is killed after a minute.
func runInit(t *testing.T, path string, args []string, config []byte) initRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path)
	cmd.Args = args
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	var statusR *os.File
	if config != nil {
		cfgR, cfgW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		var statusW *os.File
		if statusR, statusW, err = os.Pipe(); err != nil {
			t.Fatal(err)
		}
		defer statusR.Close()
		cmd.ExtraFiles = []*os.File{cfgR, statusW}
		// The pipe holds a small configuration whole: written before the
		// init starts, so the init reads a closed pipe's EOF after it.
		if _, err := cfgW.Write(config); err != nil {
			t.Fatal(err)
		}
		cfgW.Close()
		defer cfgR.Close()
		defer statusW.Close()
	}
	err := cmd.Start()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	var status []byte
	if statusR != nil {
		// EOF once the init (the only writer left) exits.
		_ = statusR.SetReadDeadline(time.Now().Add(time.Minute))
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(statusR)
		status = buf.Bytes()
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%v: %v", args, err)
	}
	return initRun{code: cmd.ProcessState.ExitCode(), stderr: stderr.String(), status: string(status)}
}

// TestInitsAnswerAlike starts the Go and the C init outside any container
// with what the agent never sends (or without the agent): both must refuse
// with the same status and the same words, and neither may mount anything
// (the configurations that get as far as the isolation check name this
// process's own mount namespace, or are not pid 1).
func TestInitsAnswerAlike(t *testing.T) {
	// buildCInit skips without a C compiler through the root+cgroups
	// tier, which CI requires.
	inits := map[string]string{"go": buildGoInit(t), "c": buildCInit(t)}
	ownNS, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatalf("this test needs /proc: %v", err)
	}
	frame := func(cfg string) []byte { return containerinit.Frame([]byte(cfg)) }
	initArgs := []string{"agora", InitCommand, "c1"}
	for _, tc := range []struct {
		name   string
		args   []string
		config []byte // nil: no pipes
		code   int
		want   string // in stderr or on the status pipe
	}{
		{"not started by the agent", initArgs, nil, 2, "agora __init: this is the container init; the agent starts it\n"},
		{"no arguments", []string{"agora"}, nil, 2, "the agent starts it"},
		{"no configuration", initArgs, []byte{}, 1, ""},
		{"a bad length", initArgs, []byte("00000000x1\np/x\x00"), 1, ""},
		{"a short frame", initArgs, []byte("0000000010\np/x\x00"), 1, ""},
		{"an unknown field", initArgs, frame("p/bin/true\x00zoo\x00"), 1, "error container init: unknown configuration field \"z\"\n"},
		{"no program", initArgs, frame("s/\x00"), 1, "error container init: no program to run\n"},
		{"a malformed field", initArgs, frame("p/bin/true\x00\x00"), 1, "error container init: malformed configuration\n"},
		{"a bad uid", initArgs, frame("p/bin/true\x00uroot\x00"), 1,
			"error container init: bad configuration field u: strconv.ParseUint: parsing \"root\": invalid syntax\n"},
		{"a gid out of range", initArgs, frame("p/bin/true\x00g4294967296\x00"), 1,
			"error container init: bad configuration field g: strconv.ParseUint: parsing \"4294967296\": value out of range\n"},
		{"the agent's mount namespace", initArgs, containerinit.Frame(containerinit.Config{Path: "/bin/true", AgentMountNS: ownNS}.Encode()), 1,
			"error the container init is not in a mount namespace of its own; refusing to mount anything\n"},
		{"no agent's mount namespace", initArgs, containerinit.Frame(containerinit.Config{Path: "/bin/true"}.Encode()), 1,
			"not in a mount namespace of its own"},
		{"not pid 1", initArgs, containerinit.Frame(containerinit.Config{Path: "/bin/true", AgentMountNS: "mnt:[1]"}.Encode()), 1,
			"error the container init is not pid 1 of a new pid namespace; refusing to mount anything\n"},
		{"enter without arguments", []string{"agora", containerinit.EnterCommand}, nil, 127,
			"agora __enter: usage: agora __enter PID DIR [CGROUP-PROCS]... -- PATH ARG...\n"},
		{"enter a bad pid", []string{"agora", containerinit.EnterCommand, "x1", "/", "--", "/bin/true"}, nil, 127, "agora __enter: bad pid \"x1\"\n"},
		{"enter without a command", []string{"agora", containerinit.EnterCommand, "1", "/", "a", "b"}, nil, 127, "agora __enter: no command after --\n"},
		{"enter a missing container", []string{"agora", containerinit.EnterCommand, "999999999", "/", "--", "/bin/true"}, nil, 127,
			"agora __enter: open the container's ipc namespace: no such file or directory\n"},
		{"enter a missing cgroup", []string{"agora", containerinit.EnterCommand, "1", "/", "/nonexistent/cgroup.procs", "--", "/bin/true"}, nil, 127,
			"agora __enter: join the container's cgroup: open /nonexistent/cgroup.procs: no such file or directory\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs := map[string]initRun{}
			for name, path := range inits {
				r := runInit(t, path, tc.args, tc.config)
				runs[name] = r
				if r.code != tc.code || !strings.Contains(r.stderr+r.status, tc.want) {
					t.Errorf("%s init: exit %d, stderr %q, status %q; want exit %d and %q", name, r.code, r.stderr, r.status, tc.code, tc.want)
				}
			}
			if runs["go"] != runs["c"] {
				t.Errorf("the inits differ:\n go: %+v\n  c: %+v", runs["go"], runs["c"])
			}
		})
	}
}

// TestNativeTaskRunsAsItsUser: a task with a user runs with that user's
// uid, gid and groups (set in that order by the init), not root's.
func TestNativeTaskRunsAsItsUser(t *testing.T) {
	eachInit(t, func(t *testing.T, cfg NativeConfig) {
		n := testNativeConfig(t, cfg)
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Skipf("no user nobody to run the task as: %v", err)
		}
		groups, err := u.GroupIds()
		if err != nil {
			t.Fatalf("groups of nobody: %v", err)
		}
		spec := shell(`id -u; id -g; id -G`)
		spec.User, spec.Dir = "nobody", tempDirIn(t, "/tmp")
		c := launchNative(t, n, spec)
		if e := wait(t, c); !e.Success() {
			stderr, _ := os.ReadFile(filepath.Join(spec.Dir, "stderr"))
			t.Fatalf("exit = %+v, stderr %q", e, stderr)
		}
		out, _ := os.ReadFile(filepath.Join(spec.Dir, "stdout"))
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 3 || lines[0] != u.Uid || lines[1] != u.Gid {
			t.Fatalf("the task's id -u, -g, -G = %q, want uid %s gid %s", out, u.Uid, u.Gid)
		}
		got := strings.Fields(lines[2])
		for _, g := range groups {
			if !contains(got, g) {
				t.Errorf("the task's groups %v lack %s (nobody's: %v)", got, g, groups)
			}
		}
		if contains(got, "0") {
			t.Errorf("the task kept root's group: %v", got)
		}
	})
}

// TestJoinedInitNeedsNoGo: an init that joins the container's cgroup by
// itself (the C one) starts the task without waiting for the agent's Go
// byte, so a launch makes one round trip through the agent less; the Go
// init, which the agent moves, still waits for it. Each init gets the
// configuration and then the end of the pipe, never Go, in a pid and
// mount namespace of its own as in a launch.
func TestJoinedInitNeedsNoGo(t *testing.T) {
	n := testNativeConfig(t, NativeConfig{})
	ownNS, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		init string
		want string // the init's lines on its status pipe
	}{
		{buildCInit(t), "ready joined\npid 2\nstatus 0\n"},
		{buildGoInit(t), "ready\n"},
	} {
		id := fmt.Sprintf("nogo-%d", time.Now().UnixNano())
		cg, _, err := n.newCgroup(n.cfg.Root+"/"+id, limits{})
		if err != nil {
			t.Fatal(err)
		}
		sandbox := t.TempDir()
		cfg := containerinit.Config{Path: "/bin/true", Args: []string{"true"}, Sandbox: sandbox,
			Tmp: filepath.Join(sandbox, "tmp"), AgentMountNS: ownNS, Cgroup: cg.threadFiles()}
		if err := os.Mkdir(cfg.Tmp, 0o777); err != nil {
			t.Fatal(err)
		}
		cfgR, cfgW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		statusR, statusW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, tc.init)
		cmd.Args = []string{"agora", InitCommand, id}
		cmd.Dir = sandbox
		cmd.ExtraFiles = []*os.File{cfgR, statusW}
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		// The configuration, then the pipe's end: no Go.
		if _, err := cfgW.Write(cfg.EncodeFramed()); err != nil {
			t.Fatal(err)
		}
		cfgW.Close()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cfgR.Close()
		statusW.Close()
		// EOF once the init (the only writer left) exits.
		_ = statusR.SetReadDeadline(time.Now().Add(time.Minute))
		var got bytes.Buffer
		_, _ = got.ReadFrom(statusR)
		statusR.Close()
		_ = cmd.Wait()
		cancel()
		if got.String() != tc.want {
			t.Errorf("%s: status pipe %q, want %q (stderr %q)", filepath.Base(tc.init), got.String(), tc.want, stderr.String())
		}
		if err := removeCgroup(cg); err != nil {
			t.Errorf("remove the cgroup: %v", err)
		}
	}
}
