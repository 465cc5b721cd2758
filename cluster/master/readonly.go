package master

import (
	"net/http"
	"sort"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

// The read-only JSON endpoints keep Mesos's field names so dashboards and
// Mesos-DNS-style tools work unchanged. Documents are built on the loop and
// encoded outside it.

type doc = map[string]any

func (m *Master) serveJSON(build func(r *http.Request) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, errorf(http.StatusMethodNotAllowed, "expecting a 'GET' request, received '%s'", r.Method))
			return
		}
		var v any
		if err := m.do(r.Context(), func() { v = m.filterView(r, build(r)) }); err != nil { // authz_view.go
			answerLoopFailure(w, err)
			return
		}
		writeJSON(w, r, v)
	}
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) { api.WriteJSON(w, r, v) }

func (m *Master) flagsDoc() doc {
	d := doc{}
	for k, v := range m.cfg.Flags {
		d[k] = v
	}
	return d
}

func (m *Master) stateDoc() doc {
	var slaves, recovered []any
	activated, deactivated, unreachable := 0, 0, 0
	for _, a := range m.sortedAgents() {
		if a.unreachable {
			unreachable++
			continue
		}
		activated++
		slaves = append(slaves, m.agentDoc(a, false))
	}
	for _, r := range m.admitted {
		if r.State == "admitted" {
			recovered = append(recovered, doc{"id": r.ID, "hostname": r.Info.GetHostname()})
		}
	}
	var frameworks, completed []any
	for _, f := range m.sortedFrameworks() {
		frameworks = append(frameworks, m.frameworkDoc(f, true))
	}
	for _, f := range m.completedFrameworks {
		completed = append(completed, m.frameworkDoc(f, true))
	}
	leader := m.info.GetPID()
	return doc{
		"version":                 api.MesosVersion,
		"agora_version":           api.Version,
		"build_date":              "",
		"start_time":              timeSecs(m.start),
		"elected_time":            timeSecs(m.start),
		"id":                      m.id,
		"pid":                     leader,
		"hostname":                m.cfg.Hostname,
		"leader":                  leader,
		"leader_info":             doc{"id": m.id, "pid": leader, "port": m.cfg.Port, "hostname": m.cfg.Hostname, "ip": m.info.IP},
		"activated_slaves":        activated,
		"deactivated_slaves":      deactivated,
		"unreachable_slaves":      unreachable,
		"flags":                   m.flagsDoc(),
		"slaves":                  nonNil(slaves),
		"recovered_slaves":        nonNil(recovered),
		"frameworks":              nonNil(frameworks),
		"completed_frameworks":    nonNil(completed),
		"orphan_tasks":            []any{},
		"unregistered_frameworks": []any{},
		"capabilities":            []string{"AGENT_UPDATE"},
	}
}

func nonNil(xs []any) []any {
	if xs == nil {
		return []any{}
	}
	return xs
}

func (m *Master) sortedAgents() []*agent {
	out := make([]*agent, 0, len(m.agents))
	for _, a := range m.agents {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (m *Master) sortedFrameworks() []*framework {
	out := make([]*framework, 0, len(m.frameworks))
	for _, f := range m.frameworks {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (m *Master) agentResources(a *agent) (used, offered mesos.Resources) {
	for _, t := range a.tasks {
		if !isTerminal(t.state()) {
			used.Add(t.info.Resources...)
		}
	}
	for _, e := range a.executors {
		used.Add(e.Resources...)
	}
	for _, o := range a.offers {
		offered.Add(o.resources...)
	}
	return used, offered
}

func (m *Master) agentDoc(a *agent, summary bool) doc {
	used, offered := m.agentResources(a)
	total := mesos.Resources(a.info.Resources)
	var unreserved mesos.Resources
	reserved := map[string]mesos.Resources{}
	for _, r := range total {
		if role := r.GetRole(); len(r.Reservations) == 0 && (role == "" || role == "*") {
			unreserved = append(unreserved, r)
			continue
		}
		reserved[r.ReservationRole()] = append(reserved[r.ReservationRole()], r)
	}
	reservedFlat := doc{}
	for role, rs := range reserved {
		reservedFlat[role] = api.FlattenResources(rs)
	}
	d := doc{
		"id":                   a.id,
		"pid":                  a.pid,
		"hostname":             a.info.Hostname,
		"port":                 a.info.GetPort(),
		"registered_time":      timeSecs(a.registeredTime),
		"resources":            api.FlattenResources(total),
		"used_resources":       api.FlattenResources(used),
		"offered_resources":    api.FlattenResources(offered),
		"reserved_resources":   reservedFlat,
		"unreserved_resources": api.FlattenResources(unreserved),
		"attributes":           api.FlattenAttributes(a.info.Attributes),
		"active":               !a.unreachable,
		"deactivated":          a.deactivated || a.draining,
		"connected":            a.out != nil,
		"version":              a.version,
		"capabilities":         []string{},
	}
	if !a.reregisteredTime.IsZero() {
		d["reregistered_time"] = timeSecs(a.reregisteredTime)
	}
	if len(a.warnings) > 0 {
		d["warnings"] = a.warnings
	}
	if a.draining {
		state := "DRAINING"
		if a.drained {
			state = "DRAINED"
		}
		d["drain_info"] = doc{"state": state, "config": doc{"mark_gone": a.drainMarkGone}}
	}
	if summary {
		counts := stateCounts(a.tasks)
		for k, v := range counts {
			d[k] = v
		}
		fids := map[string]bool{}
		for _, t := range a.tasks {
			fids[t.info.FrameworkID.Value] = true
		}
		d["framework_ids"] = sortedKeys(fids)
	}
	return d
}

func stateCounts(tasks map[string]*task) doc {
	d := doc{}
	for _, s := range []string{"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_FINISHED", "TASK_KILLED", "TASK_FAILED", "TASK_LOST", "TASK_ERROR", "TASK_UNREACHABLE"} {
		d[s] = 0
	}
	for _, t := range tasks {
		s := t.state().String()
		n, _ := d[s].(int)
		d[s] = n + 1
	}
	return d
}

// sortedKeys returns m's keys in order, an empty (not nil) slice for an
// empty m.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (m *Master) frameworkDoc(f *framework, withTasks bool) doc {
	var used, offered mesos.Resources
	var tasks, unreachable, completed, offers []any
	for _, id := range sortedKeys(f.tasks) {
		t := f.tasks[id]
		if !isTerminal(t.state()) {
			used.Add(t.info.Resources...)
		}
		if withTasks {
			if t.state() == mesos.TASK_UNREACHABLE {
				unreachable = append(unreachable, taskDoc(t))
			} else {
				tasks = append(tasks, taskDoc(t))
			}
		}
	}
	for _, o := range f.offers {
		offered.Add(o.resources...)
		if withTasks {
			offers = append(offers, doc{"id": o.id, "framework_id": f.id, "slave_id": o.agent.id,
				"resources": api.FlattenResources(o.resources), "allocation_info": doc{"role": o.role}})
		}
	}
	if withTasks {
		for _, t := range f.completed {
			completed = append(completed, taskDoc(t))
		}
	}
	caps := []string{}
	for _, c := range f.info.Capabilities {
		caps = append(caps, c.GetType().String())
	}
	d := doc{
		"id":                f.id,
		"name":              f.info.Name,
		"pid":               "",
		"hostname":          f.info.GetHostname(),
		"webui_url":         f.info.GetWebUiURL(),
		"user":              f.info.User,
		"principal":         f.info.GetPrincipal(),
		"used_resources":    api.FlattenResources(used),
		"offered_resources": api.FlattenResources(offered),
		"resources":         api.FlattenResources(used.Plus(offered...)),
		"capabilities":      caps,
		"active":            f.conn != nil && !f.removed,
		"connected":         f.conn != nil,
		"recovered":         f.recovered,
		"failover_timeout":  f.info.GetFailoverTimeout(),
		"checkpoint":        f.info.GetCheckpoint(),
		"registered_time":   timeSecs(f.registeredTime),
		"unregistered_time": timeSecs(f.unregisteredTime),
		"roles":             f.roles(),
		"role":              f.roles()[0],
		"offer_constraints": doc{},
	}
	if !f.reregisteredTime.IsZero() {
		d["reregistered_time"] = timeSecs(f.reregisteredTime)
	}
	if withTasks {
		d["tasks"] = nonNil(tasks)
		d["unreachable_tasks"] = nonNil(unreachable)
		d["completed_tasks"] = nonNil(completed)
		d["offers"] = nonNil(offers)
		d["executors"] = []any{}
	} else {
		for k, v := range stateCounts(f.tasks) {
			d[k] = v
		}
		agents := map[string]bool{}
		for _, t := range f.tasks {
			agents[t.info.AgentID.Value] = true
		}
		d["slave_ids"] = sortedKeys(agents)
	}
	return d
}

func taskDoc(t *task) doc {
	var statuses []any
	for _, s := range t.info.Statuses {
		sd := doc{"state": s.GetState().String(), "timestamp": s.GetTimestamp()}
		if s.ContainerStatus != nil {
			sd["container_status"] = s.ContainerStatus
		}
		if s.Healthy != nil {
			sd["healthy"] = *s.Healthy
		}
		statuses = append(statuses, sd)
	}
	d := doc{
		"id":           t.info.TaskID.Value,
		"name":         t.info.Name,
		"framework_id": t.info.FrameworkID.Value,
		"executor_id":  t.info.GetExecutorID().GetValue(),
		"slave_id":     t.info.AgentID.Value,
		"state":        t.state().String(),
		"resources":    api.FlattenResources(t.info.Resources),
		"role":         t.role,
		"statuses":     nonNil(statuses),
	}
	if t.info.User != nil {
		d["user"] = *t.info.User
	}
	if t.info.Labels != nil {
		d["labels"] = t.info.Labels.Labels
	}
	if t.info.Discovery != nil {
		d["discovery"] = t.info.Discovery
	}
	if t.info.Container != nil {
		d["container"] = t.info.Container
	}
	return d
}

func (m *Master) stateSummaryDoc() doc {
	var slaves, frameworks []any
	for _, a := range m.sortedAgents() {
		if !a.unreachable {
			slaves = append(slaves, m.agentDoc(a, true))
		}
	}
	for _, f := range m.sortedFrameworks() {
		frameworks = append(frameworks, m.frameworkDoc(f, false))
	}
	return doc{"hostname": m.cfg.Hostname, "cluster": "", "slaves": nonNil(slaves), "frameworks": nonNil(frameworks)}
}

func (m *Master) frameworksDoc(r *http.Request) doc {
	want := r.URL.Query().Get("framework_id")
	var fs, done []any
	for _, f := range m.sortedFrameworks() {
		if want == "" || want == f.id {
			fs = append(fs, m.frameworkDoc(f, true))
		}
	}
	for _, f := range m.completedFrameworks {
		if want == "" || want == f.id {
			done = append(done, m.frameworkDoc(f, true))
		}
	}
	return doc{"frameworks": nonNil(fs), "completed_frameworks": nonNil(done), "unregistered_frameworks": []any{}}
}

func (m *Master) slavesDoc(r *http.Request) doc {
	want := r.URL.Query().Get("slave_id")
	var as []any
	for _, a := range m.sortedAgents() {
		if (want == "" || want == a.id) && !a.unreachable {
			as = append(as, m.agentDoc(a, false))
		}
	}
	return doc{"slaves": nonNil(as), "recovered_slaves": []any{}}
}

func (m *Master) tasksDoc(r *http.Request) doc {
	var ts []any
	for _, f := range m.sortedFrameworks() {
		for _, id := range sortedKeys(f.tasks) {
			ts = append(ts, taskDoc(f.tasks[id]))
		}
		for _, t := range f.completed {
			ts = append(ts, taskDoc(t))
		}
	}
	return doc{"tasks": nonNil(ts)}
}

var _ = time.Second
