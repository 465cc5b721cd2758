package agent

import (
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

// executorsJSON renders tasks as /state's executors, as Mesos does: a
// command task is an executor of its own; the tasks of a custom or the
// default executor are listed under that executor. a.mu is held.
func (a *Agent) executorsJSON(ts []*task) []any {
	var (
		out    []any
		order  []*executor
		byExec = map[*executor][]*task{}
	)
	for _, t := range ts {
		if t.exec == nil {
			out = append(out, a.executorJSON(t))
			continue
		}
		if _, ok := byExec[t.exec]; !ok {
			order = append(order, t.exec)
		}
		byExec[t.exec] = append(byExec[t.exec], t)
	}
	for _, e := range order {
		tasks, queued, completed := []any{}, []any{}, []any{}
		used := mesos.Resources(e.info.Resources).Clone()
		role := ""
		for _, t := range byExec[e] {
			tj := a.taskJSON(t)
			role = t.role()
			switch {
			case isTerminal(t.state):
				completed = append(completed, tj)
			case e.kind == customExecutor && e.delivered[t.key.task] == nil:
				queued = append(queued, tj)
				used = append(used, t.info.Resources...)
			default:
				tasks = append(tasks, tj)
				used = append(used, t.info.Resources...)
			}
		}
		typ := "CUSTOM"
		if e.kind == defaultExecutor {
			typ = "DEFAULT"
		}
		out = append(out, map[string]any{
			"id":              e.key.executor,
			"name":            e.info.GetName(),
			"source":          e.info.GetSource(),
			"framework_id":    e.key.framework,
			"container":       e.containerID,
			"directory":       e.sandbox,
			"type":            typ,
			"state":           e.state.String(),
			"role":            role,
			"resources":       api.FlattenResources(used),
			"tasks":           tasks,
			"queued_tasks":    queued,
			"completed_tasks": completed,
		})
	}
	return out
}
