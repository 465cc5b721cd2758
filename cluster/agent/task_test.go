package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

// sandboxOf is where the agent must have put a task's sandbox.
func sandboxOf(a *Agent, taskID string, running *api.StatusUpdate) string {
	cid := running.Status.GetContainerStatus().GetContainerID().GetValue()
	return filepath.Join(a.WorkDir(), "slaves", a.ID(), "frameworks", testFramework, "executors", taskID, "runs", cid)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestShellTaskWritesToSandboxAndFinishes(t *testing.T) {
	fm := newFakeMaster(t)
	ta, _ := startRegistered(t, fm, testConfig(t, fm, ""))
	run(fm, shellTask("echo", "echo hello from agora; echo oops >&2"))
	ups := fm.expectStates(t, "echo", mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)

	seen := map[string]bool{}
	for _, u := range ups {
		s := u.Status
		if u.FrameworkID != testFramework || s.GetSource() != mesos.SOURCE_EXECUTOR ||
			s.GetAgentID().GetValue() != ta.ID() || s.GetExecutorID().GetValue() != "echo" || s.GetTimestamp() <= 0 {
			t.Errorf("update %s: framework %q source %s agent %q executor %q timestamp %v", s.GetState(),
				u.FrameworkID, s.GetSource(), s.GetAgentID().GetValue(), s.GetExecutorID().GetValue(), s.GetTimestamp())
		}
		if len(s.UUID) != 16 || seen[string(s.UUID)] {
			t.Errorf("update %s: uuid %x is not a fresh 16-byte UUID", s.GetState(), s.UUID)
		}
		seen[string(s.UUID)] = true
	}
	if ups[1].Status.GetContainerStatus().GetContainerID().GetValue() == "" {
		t.Fatal("TASK_RUNNING carries no container_status.container_id")
	}
	if msg := ups[2].Status.GetMessage(); msg != "Command exited with status 0" {
		t.Errorf("TASK_FINISHED message = %q", msg)
	}
	sandbox := sandboxOf(ta.Agent, "echo", ups[1])
	if got := readFile(t, filepath.Join(sandbox, "stdout")); got != "hello from agora\n" {
		t.Errorf("sandbox stdout = %q", got)
	}
	if got := readFile(t, filepath.Join(sandbox, "stderr")); got != "oops\n" {
		t.Errorf("sandbox stderr = %q", got)
	}
	// The terminal update was acknowledged: the task is forgotten, the
	// sandbox stays.
	waitFor(t, "task forgotten", func() bool {
		var st struct {
			Frameworks []any `json:"frameworks"`
			Completed  []struct {
				Executors []struct {
					Directory string `json:"directory"`
				} `json:"completed_executors"`
			} `json:"completed_frameworks"`
		}
		getJSON(t, ta.Agent, "/state", &st)
		return len(st.Frameworks) == 0 && len(st.Completed) == 1 && len(st.Completed[0].Executors) == 1 &&
			st.Completed[0].Executors[0].Directory == sandbox
	})
	if _, err := os.Stat(sandbox); err != nil {
		t.Errorf("sandbox removed with the task: %v", err)
	}
}

func TestFailingCommandReportsItsExitStatus(t *testing.T) {
	fm := newFakeMaster(t)
	startRegistered(t, fm, testConfig(t, fm, ""))
	run(fm, shellTask("exit3", "exit 3"))
	run(fm, shellTask("selfkill", "kill -KILL $$"))
	for task, want := range map[string]string{
		"exit3":    "Command exited with status 3",
		"selfkill": "Command terminated with signal Killed",
	} {
		ups := fm.expectStates(t, task, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FAILED)
		if msg := ups[2].Status.GetMessage(); msg != want {
			t.Errorf("task %s: TASK_FAILED message = %q, want %q", task, msg, want)
		}
		if src := ups[2].Status.GetSource(); src != mesos.SOURCE_EXECUTOR {
			t.Errorf("task %s: source = %s", task, src)
		}
	}
}

func TestArgvCommandIsNotInterpretedByAShell(t *testing.T) {
	fm := newFakeMaster(t)
	ta, _ := startRegistered(t, fm, testConfig(t, fm, ""))
	rt := shellTask("argv", "")
	rt.Task.Command = &mesos.CommandInfo{
		Shell:     proto(false),
		Value:     proto("printf"),
		Arguments: []string{"printf", "%s|%s\n", "a  b", "$HOME;"},
	}
	run(fm, rt)
	ups := fm.expectStates(t, "argv", mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
	if got := readFile(t, filepath.Join(sandboxOf(ta.Agent, "argv", ups[1]), "stdout")); got != "a  b|$HOME;\n" {
		t.Errorf("stdout = %q, want the arguments verbatim", got)
	}
}

func TestTaskEnvironmentAndWorkingDirectory(t *testing.T) {
	fm := newFakeMaster(t)
	ta, _ := startRegistered(t, fm, testConfig(t, fm, ""))
	rt := shellTask("env", "pwd; env")
	rt.Task.Command.Environment = &mesos.Environment{Variables: []mesos.Environment_Variable{
		{Name: "GREETING", Value: proto("hello world")},
		{Name: "PATH", Value: proto("/usr/bin:/bin:/opt/agora")},
	}}
	run(fm, rt)
	ups := fm.expectStates(t, "env", mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
	sandbox := sandboxOf(ta.Agent, "env", ups[1])
	lines := strings.Split(readFile(t, filepath.Join(sandbox, "stdout")), "\n")
	if lines[0] != sandbox {
		t.Errorf("working directory = %q, want the sandbox %q", lines[0], sandbox)
	}
	env := map[string]string{}
	for _, l := range lines[1:] {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	for k, want := range map[string]string{
		"MESOS_SANDBOX":         sandbox,
		"MESOS_DIRECTORY":       sandbox,
		"MESOS_TASK_ID":         "env",
		"MESOS_FRAMEWORK_ID":    testFramework,
		"MESOS_AGENT_ID":        ta.ID(),
		"MESOS_ALLOCATION_ROLE": "analytics",
		"GREETING":              "hello world",
		"PATH":                  "/usr/bin:/bin:/opt/agora",
	} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
}

// runningPid waits for the task's TASK_RUNNING and returns its process
// group (the container's main process leads it).
func runningPid(t *testing.T, fm *fakeMaster, taskID string) int {
	t.Helper()
	ups := fm.expectStates(t, taskID, mesos.TASK_STARTING, mesos.TASK_RUNNING)
	pid := int(ups[1].Status.GetContainerStatus().GetExecutorPID())
	if pid <= 0 {
		t.Fatalf("TASK_RUNNING of %s carries no executor_pid", taskID)
	}
	return pid
}

func TestKillTaskKillsTheWholeProcessTree(t *testing.T) {
	for _, withKilling := range []bool{false, true} {
		name := "without TASK_KILLING_STATE"
		if withKilling {
			name = "with TASK_KILLING_STATE"
		}
		t.Run(name, func(t *testing.T) {
			fm := newFakeMaster(t)
			startRegistered(t, fm, testConfig(t, fm, ""))
			rt := shellTask("tree", "sleep 100 & sleep 100")
			if withKilling {
				rt.Framework = frameworkInfo(mesos.FrameworkInfo_Capability_TASK_KILLING_STATE)
			}
			run(fm, rt)
			pgid := runningPid(t, fm, "tree")
			waitFor(t, "shell and both sleeps", func() bool { return len(liveInGroup(t, pgid)) >= 3 })
			kill(fm, "tree", nil)
			want := []mesos.TaskState{mesos.TASK_KILLED}
			if withKilling {
				want = []mesos.TaskState{mesos.TASK_KILLING, mesos.TASK_KILLED}
			}
			ups := fm.expectStates(t, "tree", want...)
			if msg := ups[len(ups)-1].Status.GetMessage(); msg != "Command terminated with signal Terminated" {
				t.Errorf("TASK_KILLED message = %q", msg)
			}
			if left := liveInGroup(t, pgid); len(left) != 0 {
				t.Fatalf("processes of the killed task are alive: %v", left)
			}
		})
	}
}

func TestKillEscalatesToSIGKILLAfterTheGracePeriod(t *testing.T) {
	fm := newFakeMaster(t)
	startRegistered(t, fm, testConfig(t, fm, ""))
	// The shell and its children ignore SIGTERM.
	run(fm, shellTask("stubborn", "trap '' TERM; sleep 100 & sleep 100"))
	pgid := runningPid(t, fm, "stubborn")
	waitFor(t, "shell and both sleeps", func() bool { return len(liveInGroup(t, pgid)) >= 3 })
	grace := 100 * time.Millisecond
	kill(fm, "stubborn", &grace)
	ups := fm.expectStates(t, "stubborn", mesos.TASK_KILLED)
	if msg := ups[0].Status.GetMessage(); msg != "Command terminated with signal Killed" {
		t.Errorf("TASK_KILLED message = %q", msg)
	}
	if left := liveInGroup(t, pgid); len(left) != 0 {
		t.Fatalf("processes survived SIGKILL: %v", left)
	}
}

func TestCommandThatCannotStartFailsWithLaunchFailed(t *testing.T) {
	fm := newFakeMaster(t)
	startRegistered(t, fm, testConfig(t, fm, ""))
	rt := shellTask("missing", "")
	rt.Task.Command = &mesos.CommandInfo{Shell: proto(false), Value: proto("/nonexistent/agora-program")}
	run(fm, rt)
	ups := fm.expectStates(t, "missing", mesos.TASK_STARTING, mesos.TASK_FAILED)
	s := ups[1].Status
	if s.GetReason() != mesos.REASON_CONTAINER_LAUNCH_FAILED || !strings.Contains(s.GetMessage(), "/nonexistent/agora-program") {
		t.Errorf("TASK_FAILED reason %s message %q", s.GetReason(), s.GetMessage())
	}
}

// A MESOS container with an image fails (the agent provisions no images)
// rather than running its command on the host, without the image.
func TestMesosContainerWithAnImageIsRefused(t *testing.T) {
	fm := newFakeMaster(t)
	startRegistered(t, fm, testConfig(t, fm, ""))
	marker := filepath.Join(t.TempDir(), "ran")
	rt := shellTask("imaged", "touch "+marker)
	rt.Task.Container = &mesos.ContainerInfo{Type: mesos.ContainerInfo_MESOS.Enum(), Mesos: &mesos.ContainerInfo_MesosInfo{
		Image: &mesos.Image{Type: mesos.Image_DOCKER.Enum(), Docker: &mesos.Image_Docker{Name: "library/busybox:1.36"}}}}
	run(fm, rt)
	s := fm.expectStates(t, "imaged", mesos.TASK_FAILED)[0].Status
	if s.GetReason() != mesos.REASON_CONTAINER_LAUNCH_FAILED || s.GetSource() != mesos.SOURCE_AGENT ||
		!strings.Contains(s.GetMessage(), `image "library/busybox:1.36" (DOCKER), but this agent provisions no images; run the image in a container of type DOCKER`) {
		t.Errorf("TASK_FAILED reason %s source %s message %q", s.GetReason(), s.GetSource(), s.GetMessage())
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran on the host without its image")
	}
}

// TestCustomExecutorsAndTaskGroupsRun: a custom executor that cannot run
// fails its task (the executor terminated), and a task group runs on the
// built-in default executor (executor_test.go has the full tests).
func TestCustomExecutorsAndTaskGroupsRun(t *testing.T) {
	fm := newFakeMaster(t)
	startRegistered(t, fm, testConfig(t, fm, ""))
	custom := shellTask("custom", "true")
	custom.Task.Command = nil
	custom.Task.Executor = &mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: "ex"}, Command: &mesos.CommandInfo{Value: proto("./no-such-executor")}}
	run(fm, custom)
	group := shellTask("ignored", "true")
	group.Task = nil
	group.Executor = &mesos.ExecutorInfo{Type: mesos.ExecutorInfo_DEFAULT, ExecutorID: mesos.ExecutorID{Value: "default"}}
	group.Group = &mesos.TaskGroupInfo{Tasks: []mesos.TaskInfo{*shellTask("g1", "true").Task, *shellTask("g2", "true").Task}}
	run(fm, group)
	s := fm.expectStates(t, "custom", mesos.TASK_FAILED)[0].Status
	if s.GetReason() != mesos.REASON_EXECUTOR_TERMINATED || s.GetExecutorID().GetValue() != "ex" {
		t.Errorf("task custom: reason %s executor %q message %q", s.GetReason(), s.GetExecutorID().GetValue(), s.GetMessage())
	}
	for _, id := range []string{"g1", "g2"} {
		for _, u := range fm.expectStates(t, id, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED) {
			if u.Status.GetExecutorID().GetValue() != "default" {
				t.Errorf("task %s: update names executor %q", id, u.Status.GetExecutorID().GetValue())
			}
		}
	}
}

func TestShutdownFrameworkKillsAllItsTasks(t *testing.T) {
	fm := newFakeMaster(t)
	ta, _ := startRegistered(t, fm, testConfig(t, fm, ""))
	run(fm, shellTask("a", "sleep 100"))
	pa := runningPid(t, fm, "a")
	run(fm, shellTask("b", "sleep 100"))
	pb := runningPid(t, fm, "b")
	fm.send(&api.AgentEvent{Type: api.AgentShutdownFramework, ShutdownFramework: &api.ShutdownFramework{FrameworkID: testFramework}})
	fm.expectStates(t, "a", mesos.TASK_KILLED)
	fm.expectStates(t, "b", mesos.TASK_KILLED)
	for _, pid := range []int{pa, pb} {
		if left := liveInGroup(t, pid); len(left) != 0 {
			t.Errorf("task process group %d still alive: %v", pid, left)
		}
	}
	waitFor(t, "framework gone from /state", func() bool {
		var st struct {
			Frameworks []any `json:"frameworks"`
		}
		getJSON(t, ta.Agent, "/state", &st)
		return len(st.Frameworks) == 0
	})
}

func TestStoppingTheAgentKillsItsTasks(t *testing.T) {
	fm := newFakeMaster(t)
	ta, _ := startRegistered(t, fm, testConfig(t, fm, ""))
	run(fm, shellTask("long", "sleep 100 & sleep 100"))
	pgid := runningPid(t, fm, "long")
	waitFor(t, "shell and both sleeps", func() bool { return len(liveInGroup(t, pgid)) >= 3 })
	ta.stop(t)
	if left := liveInGroup(t, pgid); len(left) != 0 {
		t.Fatalf("task processes outlived the agent: %v", left)
	}
}

func TestRunsLatestPointsAtTheNewestRun(t *testing.T) {
	fm := newFakeMaster(t)
	ta, _ := startRegistered(t, fm, testConfig(t, fm, ""))
	run(fm, shellTask("latest", "printf abc"))
	ups := fm.expectStates(t, "latest", mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
	sandbox := sandboxOf(ta.Agent, "latest", ups[1])
	b, err := os.ReadFile(filepath.Join(filepath.Dir(sandbox), "latest", "stdout"))
	if err != nil || !bytes.Equal(b, []byte("abc")) {
		t.Fatalf("runs/latest/stdout = %q, %v", b, err)
	}
}
