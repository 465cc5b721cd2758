package agent

import (
	"maps"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/httplimit"
)

// routes builds the agent's HTTP endpoints. They keep Mesos's paths and
// field names so existing tools and dashboards work against agora agents.
func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	get := func(path string, h http.HandlerFunc) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				http.Error(w, "Expecting a GET request", http.StatusMethodNotAllowed)
				return
			}
			h(w, r)
		})
	}
	get("/health", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	get("/slave(1)/health", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	get("/version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, r, map[string]any{"version": api.MesosVersion, "agora_version": api.Version})
	})
	get("/state", a.serveState)
	get("/state.json", a.serveState)
	get("/slave(1)/state", a.serveState)
	get("/slave(1)/state.json", a.serveState)
	get("/metrics/snapshot", a.serveMetrics)
	get("/metrics", a.prometheusHandler().ServeHTTP) // metrics.go
	get("/files/browse", a.serveBrowse)
	get("/files/browse.json", a.serveBrowse)
	get("/files/read", a.serveRead)
	get("/files/read.json", a.serveRead)
	get("/files/download", a.serveDownload)
	get("/files/download.json", a.serveDownload)
	get("/files/debug", a.serveFilesDebug)
	get("/files/debug.json", a.serveFilesDebug)
	mux.HandleFunc("/api/v1", a.serveOperator) // operator.go
	mux.HandleFunc("/slave(1)/api/v1", a.serveOperator)
	get("/monitor/statistics", a.serveStatistics) // monitor.go
	get("/monitor/statistics.json", a.serveStatistics)
	mux.HandleFunc(ExecutorAPIPath, a.serveExecutorAPI) // executor_api.go
	mux.HandleFunc("/slave(1)"+ExecutorAPIPath, a.serveExecutorAPI)
	return mux
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) { api.WriteJSON(w, r, v) }

func secs(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// serveState is /state: the agent, its frameworks, executors and tasks.
// The answer is built under a.mu from plain values (maps, slices and
// strings that share nothing with the agent's state), and marshalled and
// written after a.mu is released, so a slow client holds up nobody.
func (a *Agent) serveState(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, a.stateSnapshot(a.viewerOf(r))) // views_authz.go
}

// stateSnapshot is /state's answer, taken at one instant under a.mu: a
// task appears once, live or completed, if v may view it.
func (a *Agent) stateSnapshot(v viewer) map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	host, _, _ := strings.Cut(a.masterHost(), ":")
	state := map[string]any{
		"version":         api.MesosVersion,
		"agora_version":   api.Version,
		"start_time":      secs(a.startTime),
		"id":              a.agentID,
		"pid":             a.pid(),
		"hostname":        a.cfg.Hostname,
		"port":            a.port,
		"capabilities":    []string{},
		"resources":       api.FlattenResources(a.resources),
		"attributes":      api.FlattenAttributes(a.attributes),
		"master_hostname": host,
		"registered":      a.registered,
		"warnings":        append([]string{}, a.warnings...),
		"flags": map[string]string{
			"master":     a.masterName(),
			"work_dir":   a.workDir,
			"hostname":   a.cfg.Hostname,
			"port":       strconv.Itoa(int(a.port)),
			"resources":  a.cfg.Resources,
			"attributes": a.cfg.Attributes,
		},
	}
	type fwView struct {
		info      mesos.FrameworkInfo
		live      []*task
		completed []*task
	}
	fws := map[string]*fwView{}
	view := func(t *task) *fwView {
		v := fws[t.key.framework]
		if v == nil {
			v = &fwView{info: t.framework}
			fws[t.key.framework] = v
		}
		return v
	}
	for _, t := range a.tasks {
		if v.task(t) {
			fv := view(t)
			fv.live = append(fv.live, t)
		}
	}
	for _, t := range a.recentCompleted() {
		if v.task(t) {
			fv := view(t)
			fv.completed = append(fv.completed, t)
		}
	}
	var frameworks, completedFrameworks []any
	ids := make([]string, 0, len(fws))
	for id := range fws {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fv := fws[id]
		sortTasks(fv.live)
		executors := a.executorsJSON(fv.live) // executor_state.go
		completedExecutors := a.executorsJSON(fv.completed)
		fj := frameworkJSON(fv.info)
		fj["executors"] = nonNil(executors)
		fj["completed_executors"] = nonNil(completedExecutors)
		if len(fv.live) > 0 {
			frameworks = append(frameworks, fj)
		} else {
			completedFrameworks = append(completedFrameworks, fj)
		}
	}
	state["frameworks"] = nonNil(frameworks)
	state["completed_frameworks"] = nonNil(completedFrameworks)
	return state
}

func nonNil(xs []any) []any {
	if xs == nil {
		return []any{}
	}
	return xs
}

func sortTasks(ts []*task) {
	sort.Slice(ts, func(i, j int) bool { return ts[i].launched.Before(ts[j].launched) })
}

func frameworkJSON(fi mesos.FrameworkInfo) map[string]any {
	caps := []string{}
	for _, c := range fi.Capabilities {
		caps = append(caps, c.Type.String())
	}
	m := map[string]any{
		"id":               fi.GetID().GetValue(),
		"name":             fi.Name,
		"user":             fi.User,
		"hostname":         fi.GetHostname(),
		"principal":        fi.GetPrincipal(),
		"checkpoint":       fi.GetCheckpoint(),
		"failover_timeout": fi.GetFailoverTimeout(),
		"capabilities":     caps,
		"role":             fi.GetRole(),
	}
	if roles := fi.GetRoles(); len(roles) > 0 {
		m["roles"] = append([]string(nil), roles...)
	}
	return m
}

// executorJSON describes a task's command executor; a.mu is held.
func (a *Agent) executorJSON(t *task) map[string]any {
	tj := a.taskJSON(t)
	tasks, completed := []any{}, []any{}
	if isTerminal(t.state) {
		completed = append(completed, tj)
	} else {
		tasks = append(tasks, tj)
	}
	return map[string]any{
		"id":              t.executorID(),
		"name":            "Command Executor (Task: " + t.key.task + ") (Command: " + commandLine(t.info.Command) + ")",
		"source":          t.key.task,
		"framework_id":    t.key.framework,
		"container":       t.containerID,
		"directory":       t.sandbox,
		"type":            "COMMAND",
		"role":            t.role(),
		"resources":       api.FlattenResources(t.info.Resources),
		"tasks":           tasks,
		"queued_tasks":    []any{},
		"completed_tasks": completed,
	}
}

func commandLine(c *mesos.CommandInfo) string {
	if c == nil {
		return ""
	}
	if c.GetShell() {
		return "sh -c '" + c.GetValue() + "'"
	}
	return "[" + strings.Join(c.Arguments, ", ") + "]"
}

// taskJSON renders a task as Mesos's agent /state does; a.mu is held.
func (a *Agent) taskJSON(t *task) map[string]any {
	statuses := make([]any, 0, len(t.statuses))
	for _, s := range t.statuses {
		sj := map[string]any{"state": s.GetState().String(), "timestamp": s.GetTimestamp()}
		if cs := s.ContainerStatus; cs != nil {
			csj := map[string]any{}
			if cs.ContainerID != nil {
				csj["container_id"] = map[string]any{"value": cs.ContainerID.Value}
			}
			if cs.ExecutorPID != nil {
				csj["executor_pid"] = *cs.ExecutorPID
			}
			sj["container_status"] = csj
		}
		if s.Message != nil {
			sj["message"] = *s.Message
		}
		if s.Reason != nil {
			sj["reason"] = s.Reason.String()
		}
		statuses = append(statuses, sj)
	}
	tj := map[string]any{
		"id":           t.key.task,
		"name":         t.info.Name,
		"framework_id": t.key.framework,
		"executor_id":  t.executorID(),
		"slave_id":     a.agentID,
		"state":        t.state.String(),
		"resources":    api.FlattenResources(t.info.Resources),
		"statuses":     statuses,
		"role":         t.role(),
	}
	if t.info.Labels != nil {
		labels := []any{}
		for _, l := range t.info.Labels.Labels {
			labels = append(labels, map[string]any{"key": l.Key, "value": l.GetValue()})
		}
		tj["labels"] = labels
	}
	return tj
}

// serveMetrics is /metrics/snapshot with Mesos's agent metric names.
func (a *Agent) serveMetrics(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, a.metricsSnapshot())
}

// metricsSnapshot computes the Mesos-named agent metrics.
func (a *Agent) metricsSnapshot() map[string]float64 {
	a.mu.Lock()
	m := map[string]float64{}
	for k, v := range a.counters {
		m[k] = v
	}
	for _, name := range []string{"finished", "failed", "killed", "lost", "error", "dropped", "gone"} {
		m["slave/tasks_"+name] += 0
	}
	// Not Mesos metrics: HTTP requests authenticated and refused (401).
	maps.Copy(m, a.cfg.HTTP.Auth.Metrics("slave"))
	for _, name := range []string{"valid_status_updates", "container_launch_errors", "recovery_errors", "executors_terminated", "registrations", "slow_executors_disconnected"} {
		m["slave/"+name] += 0
	}
	var used mesos.Resources
	running, killing := 0.0, 0.0
	frameworks := map[string]bool{}
	gauges := map[mesos.TaskState]float64{}
	for _, t := range a.tasks {
		gauges[t.state]++
		if isTerminal(t.state) {
			continue
		}
		used = append(used, t.info.Resources...)
		frameworks[t.key.framework] = true
		if t.done != nil {
			running++
		}
		if t.state == mesos.TASK_KILLING {
			killing++
		}
	}
	m["slave/registered"] = b2f(a.registered)
	a.mu.Unlock()
	if j := a.journal; j != nil {
		// The checkpoint journal's (journal.go; Mesos has no such file):
		// records per fdatasync is its group commit at work.
		j.mu.Lock()
		m["slave/checkpoint_journal_bytes"] = float64(j.size)
		j.mu.Unlock()
		m["slave/checkpoint_journal_records"] = float64(j.records.Load())
		m["slave/checkpoint_journal_syncs"] = float64(j.syncs.Load())
		m["slave/checkpoint_journal_compactions"] = float64(j.compactions.Load())
	}

	for _, s := range []mesos.TaskState{mesos.TASK_STAGING, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_KILLING} {
		m[taskMetric(s)] = gauges[s]
	}
	m["slave/uptime_secs"] = time.Since(a.startTime).Seconds()
	// Not Mesos metrics: the HTTP server's connections and those refused
	// past --http_max_connections.
	var hs httplimit.Stats
	if l := a.httpLn.Load(); l != nil {
		hs = l.Stats()
	}
	m["slave/http_connections"] = float64(hs.Open)
	m["slave/http_connections_refused"] = float64(hs.Refused)
	m["slave/handler_panics"] = float64(a.panics.Load())
	m["slave/executors_running"] = running
	m["slave/executors_terminating"] = killing
	m["slave/executors_registering"] = 0
	m["slave/frameworks_active"] = float64(len(frameworks))
	for _, name := range []string{"cpus", "mem", "disk", "gpus"} {
		total, u := api.ScalarSum(a.resources, name), api.ScalarSum(used, name)
		m["slave/"+name+"_total"] = total
		m["slave/"+name+"_used"] = u
		m["slave/"+name+"_percent"] = 0
		if total > 0 {
			m["slave/"+name+"_percent"] = u / total
		}
	}
	m["system/cpus_total"] = float64(runtime.NumCPU())
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		unit := float64(si.Unit)
		m["system/mem_total_bytes"] = float64(si.Totalram) * unit
		m["system/mem_free_bytes"] = float64(si.Freeram) * unit
		for i, name := range []string{"1min", "5min", "15min"} {
			m["system/load_"+name] = float64(si.Loads[i]) / 65536
		}
	}
	return m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
