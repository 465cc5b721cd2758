package master

import (
	"net/http"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/master"
	mquota "github.com/mesos/mesos-go/api/v1/lib/quota"

	"github.com/agora-cluster/agora/cluster/auth"
)

// Filtered views: with --acls, /master/state, /master/frameworks,
// /master/tasks (and the other JSON endpoints), the operator API's GET_*
// answers and its event stream show a principal only the frameworks
// (view_frameworks), tasks (view_tasks) and executors (view_executors)
// whose user it may view, and agents only if it may view_agents. A
// framework's user is the object of all three, as in Mesos (a task
// launched as another user is judged by that user).

// viewer answers, on the loop, what one principal may see.
type viewer struct {
	m         *Master
	principal string
}

// viewerOf is r's viewer; nil (sees everything) without --acls.
func (m *Master) viewerOf(r *http.Request) *viewer {
	return m.viewerFor(requestPrincipal(r))
}

func (m *Master) viewerFor(principal string) *viewer {
	if m.cfg.ACLs == nil {
		return nil
	}
	return &viewer{m: m, principal: principal}
}

// frameworkUser is the user of a framework (active or completed); "" if
// unknown.
func (m *Master) frameworkUser(id string) string {
	if f := m.frameworks[id]; f != nil {
		return f.info.User
	}
	for _, f := range m.completedFrameworks {
		if f.id == id {
			return f.info.User
		}
	}
	return ""
}

func (v *viewer) framework(id string) bool {
	return v == nil || v.m.cfg.ACLs.Allowed(auth.ViewFrameworks, v.principal, v.m.frameworkUser(id))
}

// task: user is the task's own user if it has one.
func (v *viewer) task(frameworkID, user string) bool {
	if v == nil {
		return true
	}
	if user == "" {
		user = v.m.frameworkUser(frameworkID)
	}
	return v.m.cfg.ACLs.Allowed(auth.ViewTasks, v.principal, user)
}

func (v *viewer) executor(frameworkID string) bool {
	return v == nil || v.m.cfg.ACLs.Allowed(auth.ViewExecutors, v.principal, v.m.frameworkUser(frameworkID))
}

func (v *viewer) agents() bool {
	return v == nil || v.m.cfg.ACLs.Allowed(auth.ViewAgents, v.principal, "")
}

// filterDoc filters one of the JSON endpoints' documents in place.
func (v *viewer) filterDoc(d doc) {
	if v == nil {
		return
	}
	if _, ok := d["slaves"]; ok && !v.agents() {
		d["slaves"] = []any{}
		if _, ok := d["recovered_slaves"]; ok {
			d["recovered_slaves"] = []any{}
		}
	}
	for _, key := range []string{"frameworks", "completed_frameworks"} {
		if list, ok := d[key].([]any); ok {
			d[key] = v.filterList(list, func(x doc) bool {
				if !v.framework(str(x["id"])) {
					return false
				}
				for _, tk := range []string{"tasks", "unreachable_tasks", "completed_tasks"} {
					if ts, ok := x[tk].([]any); ok {
						x[tk] = v.filterList(ts, v.taskDoc)
					}
				}
				if es, ok := x["executors"].([]any); ok && !v.executor(str(x["id"])) {
					x["executors"] = es[:0]
				}
				return true
			})
		}
	}
	if ts, ok := d["tasks"].([]any); ok {
		d["tasks"] = v.filterList(ts, v.taskDoc)
	}
}

func (v *viewer) taskDoc(t doc) bool { return v.task(str(t["framework_id"]), str(t["user"])) }

func (v *viewer) filterList(xs []any, keep func(doc) bool) []any {
	out := []any{}
	for _, x := range xs {
		if d, ok := x.(doc); !ok || keep(d) {
			out = append(out, x)
		}
	}
	return out
}

func str(x any) string {
	s, _ := x.(string)
	return s
}

// filterView is serveJSON's hook: the document built for r, filtered.
func (m *Master) filterView(r *http.Request, v any) any {
	if d, ok := v.(doc); ok {
		m.viewerOf(r).filterDoc(d)
	}
	return v
}

// filterResponse filters an operator API answer for r's principal.
func (m *Master) filterResponse(r *http.Request, resp *master.Response) *master.Response {
	v := m.viewerOf(r)
	if v == nil || resp == nil {
		return resp
	}
	switch resp.Type {
	case master.Response_GET_STATE:
		v.filterState(resp.GetState)
	case master.Response_GET_FRAMEWORKS:
		v.filterFrameworks(resp.GetFrameworks)
	case master.Response_GET_TASKS:
		v.filterTasks(resp.GetTasks)
	case master.Response_GET_EXECUTORS:
		v.filterExecutors(resp.GetExecutors)
	case master.Response_GET_AGENTS:
		v.filterAgents(resp.GetAgents)
	case master.Response_GET_QUOTA:
		v.filterQuota(&resp.GetQuota.Status)
	}
	return resp
}

// filterQuota keeps the quotas of the roles the principal may get
// (get_quotas), as Mesos does.
func (v *viewer) filterQuota(st *mquota.QuotaStatus) {
	if v == nil || st == nil {
		return
	}
	allowed := func(role string) bool { return v.m.cfg.ACLs.Allowed(auth.GetQuotas, v.principal, role) }
	infos := st.Infos[:0]
	for _, q := range st.Infos {
		if allowed(q.GetRole()) {
			infos = append(infos, q)
		}
	}
	st.Infos = infos
	configs := st.Configs[:0]
	for _, q := range st.Configs {
		if allowed(q.Role) {
			configs = append(configs, q)
		}
	}
	st.Configs = configs
}

func (v *viewer) filterState(s *master.Response_GetState) {
	if v == nil || s == nil {
		return
	}
	v.filterFrameworks(s.GetFrameworks)
	v.filterTasks(s.GetTasks)
	v.filterExecutors(s.GetExecutors)
	v.filterAgents(s.GetAgents)
}

func (v *viewer) filterFrameworks(fs *master.Response_GetFrameworks) {
	if fs == nil {
		return
	}
	keep := func(list []master.Response_GetFrameworks_Framework) []master.Response_GetFrameworks_Framework {
		out := list[:0]
		for _, f := range list {
			if v.framework(f.FrameworkInfo.GetID().GetValue()) {
				out = append(out, f)
			}
		}
		return out
	}
	fs.Frameworks = keep(fs.Frameworks)
	fs.CompletedFrameworks = keep(fs.CompletedFrameworks)
}

func (v *viewer) filterTasks(ts *master.Response_GetTasks) {
	if ts == nil {
		return
	}
	keep := func(list []mesos.Task) []mesos.Task {
		out := list[:0]
		for _, t := range list {
			if v.task(t.FrameworkID.Value, t.GetUser()) {
				out = append(out, t)
			}
		}
		return out
	}
	ts.Tasks = keep(ts.Tasks)
	ts.UnreachableTasks = keep(ts.UnreachableTasks)
	ts.CompletedTasks = keep(ts.CompletedTasks)
	ts.PendingTasks = nil
	ts.OrphanTasks = nil
}

func (v *viewer) filterExecutors(es *master.Response_GetExecutors) {
	if es == nil {
		return
	}
	out := es.Executors[:0]
	for _, e := range es.Executors {
		if v.executor(e.ExecutorInfo.GetFrameworkID().GetValue()) {
			out = append(out, e)
		}
	}
	es.Executors = out
	es.OrphanExecutors = nil
}

func (v *viewer) filterAgents(as *master.Response_GetAgents) {
	if as != nil && !v.agents() {
		as.Agents, as.RecoveredAgents = nil, nil
	}
}

// publishTaskEvent is publish for a task's event whose message does not
// carry the task's user (TASK_UPDATED): each subscriber is shown it by
// the task's own user, as TASK_ADDED and GET_TASKS are.
func (m *Master) publishTaskEvent(ev *master.Event, taskUser string) {
	for sub := range m.operatorSubs {
		if ev := sub.view.viewTaskEvent(ev, taskUser); ev != nil {
			sub.out.push(ev)
		}
	}
}

// viewTaskEvent is viewEvent for a task's event, judged by taskUser (the
// task's own user; "": its framework's).
func (v *viewer) viewTaskEvent(ev *master.Event, taskUser string) *master.Event {
	if v == nil {
		return ev
	}
	if ev.Type == master.Event_TASK_UPDATED {
		if !v.task(ev.TaskUpdated.FrameworkID.Value, taskUser) {
			return nil
		}
		return ev
	}
	return v.viewEvent(ev)
}

// viewEvent is what of ev an operator subscriber with viewer v may see;
// nil: nothing.
func (v *viewer) viewEvent(ev *master.Event) *master.Event {
	if v == nil {
		return ev
	}
	visible := true
	switch ev.Type {
	case master.Event_TASK_ADDED:
		visible = v.task(ev.TaskAdded.Task.FrameworkID.Value, ev.TaskAdded.Task.GetUser())
	case master.Event_TASK_UPDATED:
		visible = v.task(ev.TaskUpdated.FrameworkID.Value, "")
	case master.Event_FRAMEWORK_ADDED:
		visible = v.framework(ev.FrameworkAdded.Framework.FrameworkInfo.GetID().GetValue())
	case master.Event_FRAMEWORK_UPDATED:
		visible = v.framework(ev.FrameworkUpdated.Framework.FrameworkInfo.GetID().GetValue())
	case master.Event_FRAMEWORK_REMOVED:
		visible = v.m.cfg.ACLs.Allowed(auth.ViewFrameworks, v.principal, ev.FrameworkRemoved.FrameworkInfo.User)
	case master.Event_AGENT_ADDED, master.Event_AGENT_REMOVED:
		visible = v.agents()
	}
	if !visible {
		return nil
	}
	return ev
}
