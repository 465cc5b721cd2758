package agent

import (
	"net/http"
	"sort"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	agentpb "github.com/mesos/mesos-go/api/v1/lib/agent"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/containerizer"
)

// The agent's operator API (POST /api/v1): the queries tools use —
// GET_HEALTH, GET_VERSION, GET_FLAGS, GET_METRICS, GET_STATE, GET_AGENT,
// GET_FRAMEWORKS, GET_EXECUTORS, GET_TASKS and GET_CONTAINERS — in both
// codecs. Calls that change containers are not served yet (501).

const maxOperatorCall = 1 << 20

func (a *Agent) serveOperator(w http.ResponseWriter, r *http.Request) {
	var call agentpb.Call
	if _, herr := api.ReadCall(w, r, &call, maxOperatorCall); herr != nil {
		http.Error(w, herr.Message, herr.Code)
		return
	}
	codec, err := api.ResponseCodec(r.Header.Get("Accept"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotAcceptable)
		return
	}
	resp, code, msg := a.operatorCall(&call, a.viewerOf(r)) // views_authz.go
	if resp == nil {
		http.Error(w, msg, code)
		return
	}
	b, err := codec.Marshal(resp)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", codec.MediaType)
	_, _ = w.Write(b)
}

func (a *Agent) operatorCall(c *agentpb.Call, v viewer) (*agentpb.Response, int, string) {
	switch c.Type {
	case agentpb.Call_GET_HEALTH:
		return &agentpb.Response{Type: agentpb.Response_GET_HEALTH, GetHealth: &agentpb.Response_GetHealth{Healthy: true}}, 0, ""
	case agentpb.Call_GET_VERSION:
		return &agentpb.Response{Type: agentpb.Response_GET_VERSION, GetVersion: &agentpb.Response_GetVersion{
			VersionInfo: mesos.VersionInfo{Version: api.MesosVersion}}}, 0, ""
	case agentpb.Call_GET_FLAGS:
		var flags []mesos.Flag
		for _, kv := range [][2]string{{"master", a.masterName()}, {"work_dir", a.workDir}, {"hostname", a.cfg.Hostname},
			{"resources", a.cfg.Resources}, {"attributes", a.cfg.Attributes}} {
			v := kv[1]
			flags = append(flags, mesos.Flag{Name: kv[0], Value: &v})
		}
		return &agentpb.Response{Type: agentpb.Response_GET_FLAGS, GetFlags: &agentpb.Response_GetFlags{Flags: flags}}, 0, ""
	case agentpb.Call_GET_METRICS:
		snap := a.metricsSnapshot()
		names := make([]string, 0, len(snap))
		for n := range snap {
			names = append(names, n)
		}
		sort.Strings(names)
		var ms []mesos.Metric
		for _, n := range names {
			v := snap[n]
			ms = append(ms, mesos.Metric{Name: n, Value: &v})
		}
		return &agentpb.Response{Type: agentpb.Response_GET_METRICS, GetMetrics: &agentpb.Response_GetMetrics{Metrics: ms}}, 0, ""
	case agentpb.Call_GET_AGENT:
		info := a.registration().Info
		return &agentpb.Response{Type: agentpb.Response_GET_AGENT, GetAgent: &agentpb.Response_GetAgent{AgentInfo: info}}, 0, ""
	case agentpb.Call_GET_TASKS:
		return &agentpb.Response{Type: agentpb.Response_GET_TASKS, GetTasks: a.operatorState(v).GetTasks}, 0, ""
	case agentpb.Call_GET_EXECUTORS:
		return &agentpb.Response{Type: agentpb.Response_GET_EXECUTORS, GetExecutors: a.operatorState(v).GetExecutors}, 0, ""
	case agentpb.Call_GET_FRAMEWORKS:
		return &agentpb.Response{Type: agentpb.Response_GET_FRAMEWORKS, GetFrameworks: a.operatorState(v).GetFrameworks}, 0, ""
	case agentpb.Call_GET_STATE:
		return &agentpb.Response{Type: agentpb.Response_GET_STATE, GetState: a.operatorState(v)}, 0, ""
	case agentpb.Call_GET_CONTAINERS:
		return &agentpb.Response{Type: agentpb.Response_GET_CONTAINERS, GetContainers: a.operatorContainers(v)}, 0, ""
	case agentpb.Call_UNKNOWN:
		return nil, http.StatusBadRequest, "expecting 'type' to be present"
	}
	return nil, http.StatusNotImplemented, "agent call " + c.Type.String() + " is not implemented yet"
}

// operatorState is GET_STATE's answer (and, in parts, GET_TASKS',
// GET_EXECUTORS' and GET_FRAMEWORKS'), copied under a.mu at one instant,
// so that a task is either launched or completed, never both; the caller
// marshals and writes it after a.mu is released.
func (a *Agent) operatorState(v viewer) *agentpb.Response_GetState {
	heads := a.updateHeads()
	tasks := &agentpb.Response_GetTasks{}
	executors := &agentpb.Response_GetExecutors{}
	frameworks := &agentpb.Response_GetFrameworks{}
	a.mu.Lock()
	defer a.mu.Unlock()
	keys := make([]taskKey, 0, len(a.tasks))
	for k := range a.tasks {
		keys = append(keys, k)
	}
	sortKeys(keys)
	seen := map[string]bool{}
	addFramework := func(fw mesos.FrameworkInfo) {
		if id := fw.GetID().GetValue(); id != "" && !seen[id] && v.framework(&fw) {
			seen[id] = true
			frameworks.Frameworks = append(frameworks.Frameworks, agentpb.Response_GetFrameworks_Framework{FrameworkInfo: fw})
		}
	}
	for _, k := range keys {
		t := a.tasks[k]
		if !v.task(t) {
			continue
		}
		mt, _ := a.taskForMasterLocked(t, heads[k]) // register.go
		if isTerminal(mt.GetState()) {
			tasks.TerminatedTasks = append(tasks.TerminatedTasks, *mt)
		} else {
			tasks.LaunchedTasks = append(tasks.LaunchedTasks, *mt)
		}
		addFramework(t.framework)
	}
	for _, t := range a.recentCompleted() {
		if !v.task(t) {
			continue
		}
		state := t.state
		tasks.CompletedTasks = append(tasks.CompletedTasks, mesos.Task{Name: t.info.Name, TaskID: t.info.TaskID,
			FrameworkID: mesos.FrameworkID{Value: t.key.framework}, AgentID: mesos.AgentID{Value: a.agentID},
			State: &state, Resources: t.info.Resources, Statuses: append([]mesos.TaskStatus(nil), t.statuses...)})
	}
	execKeys := make([]execKey, 0, len(a.executors))
	for k := range a.executors {
		execKeys = append(execKeys, k)
	}
	sort.Slice(execKeys, func(i, j int) bool {
		if execKeys[i].framework != execKeys[j].framework {
			return execKeys[i].framework < execKeys[j].framework
		}
		return execKeys[i].executor < execKeys[j].executor
	})
	for _, k := range execKeys {
		e := a.executors[k]
		if !v.executor(&e.framework, e.info.Command) {
			continue
		}
		addFramework(e.framework)
		if e.state != execTerminated {
			executors.Executors = append(executors.Executors, agentpb.Response_GetExecutors_Executor{ExecutorInfo: e.info})
		}
	}
	sort.Slice(frameworks.Frameworks, func(i, j int) bool {
		return frameworks.Frameworks[i].FrameworkInfo.GetID().GetValue() < frameworks.Frameworks[j].FrameworkInfo.GetID().GetValue()
	})
	return &agentpb.Response_GetState{GetTasks: tasks, GetExecutors: executors, GetFrameworks: frameworks}
}

// operatorContainers lists the running containers v may view (those of
// the executors it may view) with their usage.
func (a *Agent) operatorContainers(v viewer) *agentpb.Response_GetContainers {
	type entry struct {
		c                  containerizer.Container
		fw, exec, name, id string
	}
	var entries []entry
	a.mu.Lock()
	for _, t := range a.tasks {
		if t.container != nil && t.exec == nil && !isTerminal(t.state) && v.task(t) {
			entries = append(entries, entry{t.container, t.key.framework, t.executorID(), "Command Executor (Task: " + t.key.task + ")", t.containerID})
		}
	}
	for _, e := range a.executors {
		if e.container != nil && v.executor(&e.framework, e.info.Command) {
			entries = append(entries, entry{e.container, e.key.framework, e.key.executor, e.info.GetName(), e.containerID})
		}
	}
	a.mu.Unlock()
	sort.Slice(entries, func(i, j int) bool { return entries[i].id < entries[j].id })
	out := &agentpb.Response_GetContainers{}
	for _, e := range entries {
		pid := uint32(e.c.Pid())
		name := e.name
		ct := agentpb.Response_GetContainers_Container{
			FrameworkID: &mesos.FrameworkID{Value: e.fw}, ExecutorID: &mesos.ExecutorID{Value: e.exec}, ExecutorName: &name,
			ContainerID:     mesos.ContainerID{Value: e.id},
			ContainerStatus: &mesos.ContainerStatus{ContainerID: &mesos.ContainerID{Value: e.id}, ExecutorPID: &pid},
		}
		if ur, ok := e.c.(containerizer.UsageReporter); ok {
			if u, err := ur.Usage(); err == nil {
				ct.ResourceStatistics = resourceStatistics(u)
			}
		}
		out.Containers = append(out.Containers, ct)
	}
	return out
}

func resourceStatistics(u containerizer.Usage) *mesos.ResourceStatistics {
	rs := &mesos.ResourceStatistics{
		Timestamp:             u.Timestamp,
		Processes:             &u.Processes,
		Threads:               &u.Threads,
		CPUsUserTimeSecs:      &u.CPUsUserTimeSecs,
		CPUsSystemTimeSecs:    &u.CPUsSystemTimeSecs,
		CPUsNrPeriods:         &u.CPUsNrPeriods,
		CPUsNrThrottled:       &u.CPUsNrThrottled,
		CPUsThrottledTimeSecs: &u.CPUsThrottledTimeSecs,
		MemTotalBytes:         &u.MemTotalBytes,
		MemRSSBytes:           &u.MemRSSBytes,
		MemCacheBytes:         &u.MemCacheBytes,
		MemAnonBytes:          &u.MemAnonBytes,
		MemFileBytes:          &u.MemFileBytes,
		MemMappedFileBytes:    &u.MemMappedFileBytes,
		MemSwapBytes:          &u.MemSwapBytes,
		MemUnevictableBytes:   &u.MemUnevictableBytes,
	}
	if u.CPUsLimit > 0 {
		rs.CPUsLimit = &u.CPUsLimit
	}
	if u.MemLimitBytes > 0 {
		rs.MemLimitBytes = &u.MemLimitBytes
	}
	return rs
}
