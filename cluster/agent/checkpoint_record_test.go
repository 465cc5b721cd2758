package agent

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/containerizer"
)

// TestCheckpointRecordIsWhatJSONWrites: the task.json a task's
// checkpoints write, from its cached start, is byte for byte what
// json.Marshal writes for the same taskRecord — before its container
// starts (a plan), once it runs, without a container, and after the
// sandbox changed — and reads back to the same record.
func TestCheckpointRecordIsWhatJSONWrites(t *testing.T) {
	checkpoint := true
	tk := &task{
		info: mesos.TaskInfo{Name: "web", TaskID: mesos.TaskID{Value: "web.1"}, AgentID: mesos.AgentID{Value: "a-S0"},
			Command: &mesos.CommandInfo{Value: proto("echo \"quoted\" <&> \u2028")},
			Data:    []byte{0, 1, 2, 0xff}},
		framework:   mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: "f1"}, Name: "bench", Checkpoint: &checkpoint},
		containerID: "c1",
		sandbox:     "/var/lib/agora/slaves/a-S0/frameworks/f1/executors/web.1/runs/c1",
		launched:    time.Unix(1700000000, 123456789),
	}
	want := func(st *containerizer.State) []byte {
		b, err := json.Marshal(taskRecord{Framework: &tk.framework, Task: &tk.info, ContainerID: tk.containerID,
			Sandbox: tk.sandbox, Launched: float64(tk.launched.UnixNano()) / 1e9, Container: st})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	plan := &containerizer.State{ID: "c1", Cgroup: "agora/c1", ExitFile: "/x/exit"}
	running := &containerizer.State{ID: "c1", Pid: 4242, StartTime: 99, Cgroup: "agora/c1",
		CPUStatBase: &containerizer.CPUStat{}}
	check := func(name string, st *containerizer.State) {
		t.Helper()
		got, err := tk.ckpt.record(tk, st)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if w := want(st); !bytes.Equal(got, w) {
			t.Fatalf("%s:\n got %s\nwant %s", name, got, w)
		}
		var back taskRecord
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%s: %s does not decode: %v", name, got, err)
		}
		if back.Task.TaskID.Value != "web.1" || back.Framework.GetName() != "bench" || back.Sandbox != tk.sandbox ||
			(st == nil) != (back.Container == nil) || (st != nil && back.Container.Pid != st.Pid) {
			t.Fatalf("%s: read back %+v", name, back)
		}
	}
	check("plan", plan)
	check("running", running)
	check("no container", nil)
	check("running again", running)
	tk.sandbox = "/elsewhere/runs/c1"
	check("sandbox changed", running)
	tk.containerID = "c2"
	check("container ID changed", nil)
}
