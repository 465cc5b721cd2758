package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/master"
)

// agora top --once prints one frame of what the master knows: its agent
// with the resources its tasks use, and the running task; not being on a
// terminal, it prints no colour.
func TestTopOncePrintsAgentsAndTasks(t *testing.T) {
	master := startSmallCluster(t)
	startRun(t, master, "--name=topped", "--cpus=0.5", "--mem=64", "--", "sleep", "1000")
	id := waitTaskID(t, master, "topped", "TASK_RUNNING")

	out, errOut, code := runClient(t, master, "top", "--once")
	if code != 0 {
		t.Fatalf("agora top --once: exit %d, stderr %q", code, errOut)
	}
	t.Logf("agora top --once:\n%s", out)
	if strings.Contains(out, "\x1b") {
		t.Errorf("agora top --once to a pipe wrote escapes: %q", out)
	}
	for _, want := range []string{"agents=1 frameworks=1 tasks=1", "0.5/2", "64/1024", id} {
		if !strings.Contains(out, want) {
			t.Errorf("agora top --once: no %q in\n%s", want, out)
		}
	}
	var row string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, id) {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) < 5 || f[1] != "topped" || f[4] != "TASK_RUNNING" {
		t.Errorf("agora top --once: task row %q, want its name and TASK_RUNNING", row)
	}

	out, errOut, code = runClient(t, master, "top", "--once", "--json")
	var view struct {
		Agents []struct {
			Used  map[string]float64 `json:"used"`
			Tasks int                `json:"tasks"`
		} `json:"agents"`
		Tasks []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(out), &view); err != nil || code != 0 {
		t.Fatalf("agora top --once --json: exit %d, %v: %q %q", code, err, out, errOut)
	}
	if len(view.Agents) != 1 || view.Agents[0].Tasks != 1 || view.Agents[0].Used["cpus"] != 0.5 ||
		len(view.Tasks) != 1 || view.Tasks[0].ID != id || view.Tasks[0].State != "TASK_RUNNING" {
		t.Errorf("agora top --once --json: %+v", view)
	}
}

// tmuxSession runs command in a detached tmux session on a server of the
// test's own, until the test ends.
type tmuxSession struct {
	t      *testing.T
	socket string
}

func startTmux(t *testing.T, env []string, command ...string) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is not installed: `make test-deps` installs it (Debian package tmux)")
	}
	s := &tmuxSession{t: t, socket: fmt.Sprintf("agora-top-%d-%d", os.Getpid(), time.Now().UnixNano())}
	args := []string{"-L", s.socket, "new-session", "-d", "-x", "200", "-y", "50"}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	if out, err := s.tmux(append(args, command...)...); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	t.Cleanup(func() { s.tmux("kill-server") })
	return s
}

func (s *tmuxSession) tmux(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	return string(out), err
}

// waitScreen waits, at most a minute, until the pane (with its colour
// escapes) satisfies cond, and returns it.
func (s *tmuxSession) waitScreen(what string, cond func(string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	var screen string
	for time.Now().Before(deadline) {
		out, err := s.tmux("capture-pane", "-p", "-e")
		if err == nil {
			screen = out
			if cond(screen) {
				return screen
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("the tmux screen never showed %s; last screen:\n%s", what, screen)
	return ""
}

// Under a terminal (tmux), agora top draws in colour and redraws when a
// task starts, from the event stream; with NO_COLOR it draws no colour.
func TestTopRedrawsUnderATerminal(t *testing.T) {
	master := startSmallCluster(t)
	s := startTmux(t, []string{"AGORA_MASTER=" + master}, agoraBin, "top")
	s.waitScreen("the agent", func(sc string) bool { return strings.Contains(sc, "agents=1 frameworks=0 tasks=0") })

	startRun(t, master, "--name=appears", "--", "sleep", "1000")
	screen := s.waitScreen("the new task running", func(sc string) bool {
		return strings.Contains(sc, "appears") && strings.Contains(sc, "TASK_RUNNING")
	})
	if !strings.Contains(screen, "tasks=1") {
		t.Errorf("the redrawn screen does not count the task:\n%s", screen)
	}
	if !strings.Contains(screen, "\x1b[32mTASK_RUNNING") {
		t.Errorf("a running task is not green on a terminal:\n%q", screen)
	}

	plain := startTmux(t, []string{"AGORA_MASTER=" + master, "NO_COLOR=1"}, agoraBin, "top")
	screen = plain.waitScreen("the running task", func(sc string) bool { return strings.Contains(sc, "TASK_RUNNING") })
	if strings.Contains(screen, "\x1b[") {
		t.Errorf("agora top with NO_COLOR drew colour:\n%q", screen)
	}
}

// topTaskEvent is a TASK_ADDED or TASK_UPDATED event of task web-1 of
// framework F1 on agent A1.
func topTaskEvent(typ master.Event_Type, state mesos.TaskState) *master.Event {
	switch typ {
	case master.Event_TASK_ADDED:
		return &master.Event{Type: typ, TaskAdded: &master.Event_TaskAdded{Task: mesos.Task{
			Name: "web", TaskID: mesos.TaskID{Value: "web-1"}, FrameworkID: mesos.FrameworkID{Value: "F1"},
			AgentID: mesos.AgentID{Value: "A1"}, State: &state, Resources: scalars("cpus", 0.5, "mem", 64.0)}}}
	default:
		return &master.Event{Type: typ, TaskUpdated: &master.Event_TaskUpdated{FrameworkID: mesos.FrameworkID{Value: "F1"},
			Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: "web-1"}, State: &state, Message: strp("Command exited with status 0")}, State: &state}}
	}
}

// scalars is scalar resources from name, value pairs.
func scalars(kv ...any) []mesos.Resource {
	var rs []mesos.Resource
	for i := 0; i+1 < len(kv); i += 2 {
		rs = append(rs, mesos.Resource{Name: kv[i].(string), Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: kv[i+1].(float64)}})
	}
	return rs
}

// The view follows a task from TASK_ADDED to its end: the agent's use
// rises and falls with it, the ended task moves to the end of the list,
// and a state is coloured only when colour is on.
func TestTopViewFollowsATask(t *testing.T) {
	v := newTopView("m:5050")
	v.apply(&master.Event{Type: master.Event_SUBSCRIBED, Subscribed: &master.Event_Subscribed{GetState: &master.Response_GetState{
		GetAgents: &master.Response_GetAgents{Agents: []master.Response_GetAgents_Agent{{
			AgentInfo: mesos.AgentInfo{ID: &mesos.AgentID{Value: "A1"}, Hostname: "h1"}, TotalResources: scalars("cpus", 2.0, "mem", 1024.0)}}},
		GetFrameworks: &master.Response_GetFrameworks{Frameworks: []master.Response_GetFrameworks_Framework{{
			FrameworkInfo: mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: "F1"}, Name: "shop"}}}},
	}}})
	frame := func() string {
		var b bytes.Buffer
		v.render(&b, 0, time.Unix(0, 0))
		return b.String()
	}
	if f := frame(); !strings.Contains(f, "agents=1 frameworks=1 tasks=0") || !strings.Contains(f, "0/2") {
		t.Fatalf("empty cluster:\n%s", f)
	}
	v.apply(topTaskEvent(master.Event_TASK_ADDED, mesos.TASK_STAGING))
	v.apply(topTaskEvent(master.Event_TASK_UPDATED, mesos.TASK_RUNNING))
	f := frame()
	if !strings.Contains(f, "tasks=1") || !strings.Contains(f, "0.5/2") || !strings.Contains(f, "64/1024") ||
		!regexp.MustCompile(`web-1\s+web\s+shop\s+A1\s+TASK_RUNNING`).MatchString(f) {
		t.Fatalf("running task:\n%s", f)
	}
	if strings.Contains(f, "\x1b") {
		t.Errorf("colour off, yet escapes:\n%q", f)
	}
	v.colour = true
	if f := frame(); !strings.Contains(f, "\x1b[32mTASK_RUNNING\x1b[0m") {
		t.Errorf("colour on, running is not green:\n%q", f)
	}
	v.colour = false
	v.apply(topTaskEvent(master.Event_TASK_UPDATED, mesos.TASK_FINISHED))
	f = frame()
	if !strings.Contains(f, "tasks=0") || !strings.Contains(f, "0/2") || !strings.Contains(f, "TASK_FINISHED") {
		t.Fatalf("finished task:\n%s", f)
	}
	var js bytes.Buffer
	if code := v.writeJSON(&js); code != 0 || !strings.Contains(js.String(), `"ended": [`) || !strings.Contains(js.String(), `"state": "TASK_FINISHED"`) {
		t.Errorf("writeJSON: %d %s", code, js.String())
	}
}

// An event line names the event and its fields; values with spaces are
// quoted so that the line still splits into key=value fields.
func TestEventLine(t *testing.T) {
	got := eventLine(topTaskEvent(master.Event_TASK_UPDATED, mesos.TASK_FAILED))
	want := `TASK_UPDATED task=web-1 framework=F1 state=TASK_FAILED message="Command exited with status 0"`
	if got != want {
		t.Errorf("eventLine = %q, want %q", got, want)
	}
	got = eventLine(topTaskEvent(master.Event_TASK_ADDED, mesos.TASK_STAGING))
	if want := "TASK_ADDED task=web-1 name=web framework=F1 agent=A1 state=TASK_STAGING"; got != want {
		t.Errorf("eventLine = %q, want %q", got, want)
	}
}

// Bad arguments exit 2 naming what is wrong; a master that does not
// answer exits 1 saying so.
func TestCockpitCommandsRejectBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"logs"}, 2, "want one task ID"},
		{[]string{"logs", "a", "b"}, 2, "want one task ID"},
		{[]string{"events", "--count=-1"}, 2, "must not be negative"},
		{[]string{"top", "--json"}, 2, "with --once"},
		{[]string{"top", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"completion", "fish"}, 2, `unknown shell "fish"`},
		{[]string{"events", "--master=127.0.0.1:1"}, 1, "cannot reach master at 127.0.0.1:1"},
		{[]string{"top", "--once", "--master=127.0.0.1:1"}, 1, "cannot reach master at 127.0.0.1:1"},
		{[]string{"logs", "x", "--master=127.0.0.1:1"}, 1, "cannot reach master at 127.0.0.1:1"},
	} {
		_, errOut, code := runClient(t, "", c.args...)
		if code != c.code || !strings.Contains(errOut, c.says) {
			t.Errorf("agora %v: exit %d, stderr %q; want exit %d saying %q", c.args, code, errOut, c.code, c.says)
		}
	}
}

// agora top outlives a master restart: it says it lost the stream, and
// once the master is back it subscribes again and shows the cluster.
func TestTopReconnectsAfterAMasterRestart(t *testing.T) {
	dir := t.TempDir()
	masterArgs := []string{"master", "--work_dir=" + filepath.Join(dir, "master"), "--port=0", "--allocation_interval=100ms"}
	masterProc, masterAddr := startBound(t, masterArgs...)
	startBound(t, "agent", "--master="+masterAddr, "--work_dir="+filepath.Join(dir, "agent"), "--port=0",
		"--resources=cpus:2;mem:1024;disk:1024", "--switch_user=false")
	s := startTmux(t, []string{"AGORA_MASTER=" + masterAddr}, agoraBin, "top")
	s.waitScreen("the agent", func(sc string) bool { return strings.Contains(sc, "agents=1 ") })

	masterProc.kill9(t)
	s.waitScreen("the lost stream", func(sc string) bool { return strings.Contains(sc, "reconnecting") })
	restartOn(t, masterAddr, masterArgs...)
	s.waitScreen("the agent again, from the restarted master", func(sc string) bool {
		return strings.Contains(sc, "agents=1 ") && !strings.Contains(sc, "reconnecting")
	})
}
