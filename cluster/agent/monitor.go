package agent

import (
	"net/http"
	"sort"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/containerizer"
)

// executorStatistics is one entry of /monitor/statistics, as Mesos writes it.
type executorStatistics struct {
	ExecutorID   string              `json:"executor_id"`
	ExecutorName string              `json:"executor_name"`
	FrameworkID  string              `json:"framework_id"`
	Source       string              `json:"source"`
	Statistics   containerizer.Usage `json:"statistics"`
}

// serveStatistics is /monitor/statistics: the resource usage of every
// running executor (for command tasks, the task's container). Native
// containers report from their cgroups; plain processes from /proc.
func (a *Agent) serveStatistics(w http.ResponseWriter, r *http.Request) {
	type source struct {
		entry executorStatistics
		c     containerizer.Container
		cpus  float64
		mem   float64
	}
	var sources []source
	v := a.viewerOf(r) // views_authz.go: the executors the principal may view
	a.mu.Lock()
	for _, t := range a.tasks {
		if t.container == nil || t.exec != nil || isTerminal(t.state) || !v.task(t) {
			continue
		}
		sources = append(sources, source{
			entry: executorStatistics{
				ExecutorID:   t.executorID(),
				ExecutorName: "Command Executor (Task: " + t.key.task + ") (Command: " + commandLine(t.info.Command) + ")",
				FrameworkID:  t.key.framework,
				Source:       t.key.task,
			},
			c:    t.container,
			cpus: api.ScalarSum(t.info.Resources, "cpus"),
			mem:  api.ScalarSum(t.info.Resources, "mem"),
		})
	}
	for _, e := range a.executors {
		if e.container == nil || !v.executor(&e.framework, e.info.Command) {
			continue
		}
		sources = append(sources, source{
			entry: executorStatistics{
				ExecutorID:   e.key.executor,
				ExecutorName: e.info.GetName(),
				FrameworkID:  e.key.framework,
				Source:       e.info.GetSource(),
			},
			c:    e.container,
			cpus: api.ScalarSum(e.info.Resources, "cpus"),
			mem:  api.ScalarSum(e.info.Resources, "mem"),
		})
	}
	a.mu.Unlock()

	out := []executorStatistics{}
	for _, s := range sources {
		ur, ok := s.c.(containerizer.UsageReporter)
		if !ok {
			continue
		}
		u, err := ur.Usage()
		if err != nil {
			continue // ended meanwhile
		}
		if u.CPUsLimit == 0 {
			u.CPUsLimit = s.cpus
		}
		if u.MemLimitBytes == 0 {
			u.MemLimitBytes = uint64(s.mem * mib)
		}
		s.entry.Statistics = u
		out = append(out, s.entry)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].FrameworkID != out[j].FrameworkID {
			return out[i].FrameworkID < out[j].FrameworkID
		}
		return out[i].ExecutorID < out[j].ExecutorID
	})
	writeJSON(w, r, out)
}
