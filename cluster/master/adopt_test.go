package master

import (
	"fmt"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

// adoptionMaster is a master's loop state with one framework of role
// "web" and one agent with no tasks yet, as after a failover.
func adoptionMaster(tb testing.TB) (*Master, *framework, *agent) {
	m, err := New(Config{})
	if err != nil {
		tb.Fatal(err)
	}
	f := &framework{id: "F1", info: mesos.FrameworkInfo{Name: "web", Role: strPtr("web")}, tasks: map[string]*task{}, offers: map[string]*offer{}}
	m.frameworks[f.id] = f
	a := &agent{id: "S1", tasks: map[string]*task{}, offers: map[string]*offer{}, executors: map[string]*mesos.ExecutorInfo{}}
	m.agents[a.id] = a
	return m, f, a
}

func reportedTask(id string, res ...mesos.Resource) *mesos.Task {
	running := mesos.TASK_RUNNING
	return &mesos.Task{TaskID: mesos.TaskID{Value: id}, FrameworkID: mesos.FrameworkID{Value: "F1"},
		AgentID: mesos.AgentID{Value: "S1"}, State: &running, Resources: res}
}

func scalar(name string, v float64, role string) mesos.Resource {
	r := mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
	if role != "" {
		r.AllocationInfo = &mesos.Resource_AllocationInfo{Role: strPtr(role)}
	}
	return r
}

// TestAdoptedTasksKeepOrGainTheirRole: a task an agent reports after a
// failover keeps the role its resources are allocated to; resources that
// name none are the framework's role's, and so is a task without
// resources.
func TestAdoptedTasksKeepOrGainTheirRole(t *testing.T) {
	m, f, a := adoptionMaster(t)
	reg := &api.RegisterAgent{Tasks: []*mesos.Task{
		reportedTask("allocated", scalar("cpus", 1, "batch"), scalar("mem", 32, "batch")),
		reportedTask("unallocated", scalar("cpus", 1, ""), scalar("mem", 32, "")),
		reportedTask("mixed", scalar("cpus", 1, "batch"), scalar("mem", 32, "")),
		reportedTask("none"),
		reportedTask("empty", scalar("cpus", 0, "web")),
	}}
	if gone := m.adoptReportedTasks(a, reg); len(gone) != 0 {
		t.Fatalf("torn-down frameworks %v, want none", gone)
	}
	for id, want := range map[string]string{"allocated": "batch", "unallocated": "web", "mixed": "batch", "none": "web", "empty": "web"} {
		tk := f.tasks[id]
		if tk == nil || a.tasks[taskKey(f.id, id)] != tk {
			t.Fatalf("task %s not adopted by both its framework and its agent", id)
		}
		if tk.role != want {
			t.Errorf("task %s: role %q, want %q", id, tk.role, want)
		}
		if tk.info.AgentID.Value != "S1" {
			t.Errorf("task %s: agent %q, want S1", id, tk.info.AgentID.Value)
		}
		for _, r := range tk.info.Resources {
			if r.AllocationInfo == nil {
				t.Errorf("task %s: resource %s has no allocation_info", id, r.Name)
			}
		}
	}
	if got := f.tasks["mixed"].info.Resources[1].AllocationInfo.GetRole(); got != "batch" {
		t.Errorf("task mixed: unallocated mem given role %q, want the task's (batch)", got)
	}
	if res := f.tasks["none"].info.Resources; res == nil {
		t.Errorf("task none: resources nil, want an empty list")
	}
	// What the allocator is told the agent's tasks use: every resource
	// but the empty one.
	cpus, n := 0.0, 0
	for _, r := range m.agentUsed(a)["F1"] {
		n++
		if r.Name == "cpus" {
			cpus += r.GetScalar().GetValue()
		}
	}
	if cpus != 3 || n != 6 {
		t.Errorf("agent's used resources: %d with %v cpus, want 6 with 3 cpus", n, cpus)
	}
}

// BenchmarkAdoptReportedTasks is the master's work on the tasks of one
// agent re-registering after a failover (10 tasks, as the failover bench
// runs): adopting them and summing what they use for the allocator.
//
//	go test -run '^$' -bench AdoptReportedTasks -benchmem ./cluster/master/
func BenchmarkAdoptReportedTasks(b *testing.B) {
	m, f, a := adoptionMaster(b)
	regs := make([]*api.RegisterAgent, b.N)
	for i := range regs {
		reg := &api.RegisterAgent{}
		for j := 0; j < 10; j++ {
			reg.Tasks = append(reg.Tasks, reportedTask(fmt.Sprintf("t%d-%d", i, j), scalar("cpus", 0.1, "web"), scalar("mem", 32, "web")))
		}
		regs[i] = reg
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a.tasks = make(map[string]*task, 10)
		m.adoptReportedTasks(a, regs[i])
		m.agentUsed(a)
		if i%1000 == 999 {
			f.tasks = map[string]*task{} // a framework of 1,000 agents' tasks at most
		}
	}
}
