package master

import (
	"fmt"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// bigMaster is a master's loop state of agents agents and tasks running
// tasks of ten frameworks, built in place (no agents or frameworks run).
func bigMaster(b *testing.B, agents, tasks int) *Master {
	m, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < agents; i++ {
		id := fmt.Sprintf("S%d", i)
		m.agents[id] = &agent{id: id, info: mesos.AgentInfo{Hostname: fmt.Sprintf("node-%05d", i),
			Attributes: []mesos.Attribute{{Name: "rack", Type: mesos.TEXT, Text: &mesos.Value_Text{Value: fmt.Sprintf("r%d", i%10)}}}},
			tasks: map[string]*task{}, offers: map[string]*offer{}}
	}
	start := time.Now()
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("F%d", i)
		m.frameworks[id] = &framework{id: id, info: mesos.FrameworkInfo{Name: fmt.Sprintf("framework-%d", i)}, tasks: map[string]*task{}, offers: map[string]*offer{}}
	}
	running := mesos.TASK_RUNNING
	for i := 0; i < tasks; i++ {
		f := m.frameworks[fmt.Sprintf("F%d", i%10)]
		a := m.agents[fmt.Sprintf("S%d", i%agents)]
		t := &task{role: "*", launched: start.Add(time.Duration(i) * time.Millisecond), info: mesos.Task{
			TaskID: mesos.TaskID{Value: fmt.Sprintf("task-%06d", i)}, Name: fmt.Sprintf("job-%d", i%100),
			FrameworkID: mesos.FrameworkID{Value: f.id}, AgentID: mesos.AgentID{Value: a.id}, State: &running}}
		f.tasks[t.info.TaskID.Value] = t
		a.tasks[taskKey(f.id, t.info.TaskID.Value)] = t
	}
	return m
}

// BenchmarkListPages is the master's side of the web UI's tasks and agents
// pages at 10,000 agents and 100,000 tasks: one page of 100 rows, with and
// without a filter (on the loop, where it runs).
//
//	go test -run '^$' -bench ListPages ./cluster/master/
func BenchmarkListPages(b *testing.B) {
	m := bigMaster(b, 10000, 100000)
	for _, path := range []string{
		"/master/tasks?state=active&limit=100&offset=0&filter=",
		"/master/tasks?state=active&limit=100&offset=500&filter=node-00007",
		"/master/slaves?limit=100&offset=0&filter=",
		"/master/slaves?limit=100&offset=0&filter=rack%3Dr3",
		"/master/summary",
	} {
		b.Run(path, func(b *testing.B) {
			r := httptest.NewRequest("GET", path, nil)
			// CPU time, besides the wall time: on a shared machine the
			// wall time is mostly waiting for a core.
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var err error
				switch {
				case path == "/master/summary":
					_, err = m.serveSummary(r)
				case path[:13] == "/master/tasks":
					_, err = m.serveTasks(r)
				default:
					_, err = m.serveSlaves(r)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
