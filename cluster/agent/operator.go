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
	resp, code, msg := a.operatorCall(&call)
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

func (a *Agent) operatorCall(c *agentpb.Call) (*agentpb.Response, int, string) {
	switch c.Type {
	case agentpb.Call_GET_HEALTH:
		return &agentpb.Response{Type: agentpb.Response_GET_HEALTH, GetHealth: &agentpb.Response_GetHealth{Healthy: true}}, 0, ""
	case agentpb.Call_GET_VERSION:
		return &agentpb.Response{Type: agentpb.Response_GET_VERSION, GetVersion: &agentpb.Response_GetVersion{
			VersionInfo: mesos.VersionInfo{Version: api.MesosVersion}}}, 0, ""
	case agentpb.Call_GET_FLAGS:
		var flags []mesos.Flag
		for _, kv := range [][2]string{{"master", a.cfg.MasterAddr}, {"work_dir", a.workDir}, {"hostname", a.cfg.Hostname},
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
		return &agentpb.Response{Type: agentpb.Response_GET_TASKS, GetTasks: a.operatorTasks()}, 0, ""
	case agentpb.Call_GET_EXECUTORS:
		return &agentpb.Response{Type: agentpb.Response_GET_EXECUTORS, GetExecutors: a.operatorExecutors()}, 0, ""
	case agentpb.Call_GET_FRAMEWORKS:
		return &agentpb.Response{Type: agentpb.Response_GET_FRAMEWORKS, GetFrameworks: a.operatorFrameworks()}, 0, ""
	case agentpb.Call_GET_STATE:
		return &agentpb.Response{Type: agentpb.Response_GET_STATE, GetState: &agentpb.Response_GetState{
			GetTasks: a.operatorTasks(), GetExecutors: a.operatorExecutors(), GetFrameworks: a.operatorFrameworks()}}, 0, ""
	case agentpb.Call_GET_CONTAINERS:
		return &agentpb.Response{Type: agentpb.Response_GET_CONTAINERS, GetContainers: a.operatorContainers()}, 0, ""
	case agentpb.Call_UNKNOWN:
		return nil, http.StatusBadRequest, "expecting 'type' to be present"
	}
	return nil, http.StatusNotImplemented, "agent call " + c.Type.String() + " is not implemented yet"
}

func (a *Agent) operatorTasks() *agentpb.Response_GetTasks {
	out := &agentpb.Response_GetTasks{}
	a.mu.Lock()
	keys := make([]taskKey, 0, len(a.tasks))
	for k := range a.tasks {
		keys = append(keys, k)
	}
	completed := append([]*task(nil), a.completed...)
	a.mu.Unlock()
	sortKeys(keys)
	for _, k := range keys {
		if mt, _, ok := a.taskForMaster(k); ok {
			if isTerminal(mt.GetState()) {
				out.TerminatedTasks = append(out.TerminatedTasks, *mt)
			} else {
				out.LaunchedTasks = append(out.LaunchedTasks, *mt)
			}
		}
	}
	for _, t := range completed {
		state := t.state
		out.CompletedTasks = append(out.CompletedTasks, mesos.Task{Name: t.info.Name, TaskID: t.info.TaskID,
			FrameworkID: mesos.FrameworkID{Value: t.key.framework}, AgentID: mesos.AgentID{Value: a.ID()},
			State: &state, Resources: t.info.Resources, Statuses: t.statuses})
	}
	return out
}

func (a *Agent) operatorExecutors() *agentpb.Response_GetExecutors {
	out := &agentpb.Response_GetExecutors{}
	for _, e := range a.executorInfos() {
		out.Executors = append(out.Executors, agentpb.Response_GetExecutors_Executor{ExecutorInfo: *e})
	}
	return out
}

func (a *Agent) operatorFrameworks() *agentpb.Response_GetFrameworks {
	out := &agentpb.Response_GetFrameworks{}
	seen := map[string]bool{}
	a.mu.Lock()
	defer a.mu.Unlock()
	add := func(fw mesos.FrameworkInfo) {
		if id := fw.GetID().GetValue(); id != "" && !seen[id] {
			seen[id] = true
			out.Frameworks = append(out.Frameworks, agentpb.Response_GetFrameworks_Framework{FrameworkInfo: fw})
		}
	}
	for _, t := range a.tasks {
		add(t.framework)
	}
	for _, e := range a.executors {
		add(e.framework)
	}
	sort.Slice(out.Frameworks, func(i, j int) bool {
		return out.Frameworks[i].FrameworkInfo.GetID().GetValue() < out.Frameworks[j].FrameworkInfo.GetID().GetValue()
	})
	return out
}

// operatorContainers lists running containers with their usage.
func (a *Agent) operatorContainers() *agentpb.Response_GetContainers {
	type entry struct {
		c                  containerizer.Container
		fw, exec, name, id string
	}
	var entries []entry
	a.mu.Lock()
	for _, t := range a.tasks {
		if t.container != nil && t.exec == nil && !isTerminal(t.state) {
			entries = append(entries, entry{t.container, t.key.framework, t.executorID(), "Command Executor (Task: " + t.key.task + ")", t.containerID})
		}
	}
	for _, e := range a.executors {
		if e.container != nil {
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
