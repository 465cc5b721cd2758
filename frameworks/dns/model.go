package dns

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/master"

	"github.com/agora-cluster/agora/frameworks/state"
)

// view is what the resolver knows of the cluster: the parts records are
// made of. It is changed by one goroutine at a time (under Resolver.mu).
type view struct {
	leader     endpoint
	agents     map[string]agentRec
	frameworks map[string]frameworkRec
	tasks      map[string]*taskRec // by framework ID + "/" + task ID
}

type endpoint struct {
	host string
	ip   net.IP
	port int
}

type agentRec struct {
	id   string
	ip   net.IP
	port int
}

type frameworkRec struct {
	name string
	ip   net.IP
}

type taskRec struct {
	id, name, frameworkID, agentID string
	state                          mesos.TaskState
	// healthy is the latest health a status reported (nil: none yet);
	// checked says the task has a health check, so it is published only
	// once a status says it is healthy.
	healthy   *bool
	checked   bool
	ports     []uint32
	discovery *mesos.DiscoveryInfo
	netIPs    []net.IP          // from the latest container status
	labelIPs  map[string]net.IP // "mesos"/"docker" IPSources, from status labels
}

func newView() *view {
	return &view{agents: map[string]agentRec{}, frameworks: map[string]frameworkRec{}, tasks: map[string]*taskRec{}}
}

func taskKey(frameworkID, taskID string) string { return frameworkID + "/" + taskID }

// published says whether a task gets records: running, and healthy when
// it has a health check or has reported its health.
func (t *taskRec) published() bool {
	if t.state != mesos.TASK_RUNNING {
		return false
	}
	if t.healthy != nil {
		return *t.healthy
	}
	return !t.checked
}

// applyStatus folds one status update into the task.
func (t *taskRec) applyStatus(st mesos.TaskStatus) {
	if st.State != nil {
		t.state = *st.State
	}
	if st.Healthy != nil {
		h := *st.Healthy
		t.healthy = &h
	}
	if cs := st.ContainerStatus; cs != nil && len(cs.NetworkInfos) > 0 {
		t.netIPs = netInfoIPs(cs.NetworkInfos)
	}
	if st.Labels != nil {
		for _, l := range st.Labels.Labels {
			switch l.Key {
			case "MesosContainerizer.NetworkSettings.IPAddress":
				t.setLabelIP("mesos", l.GetValue())
			case "Docker.NetworkSettings.IPAddress":
				t.setLabelIP("docker", l.GetValue())
			}
		}
	}
}

func (t *taskRec) setLabelIP(source, v string) {
	if ip := net.ParseIP(v); ip != nil {
		if t.labelIPs == nil {
			t.labelIPs = map[string]net.IP{}
		}
		t.labelIPs[source] = ip
	}
}

func netInfoIPs(nis []mesos.NetworkInfo) []net.IP {
	var ips []net.IP
	for _, ni := range nis {
		for _, a := range ni.IPAddresses {
			if ip := net.ParseIP(a.GetIPAddress()); ip != nil {
				ips = append(ips, ip)
			}
		}
	}
	return ips
}

// taskFromOperator turns the operator API's Task into a record source.
func taskFromOperator(t mesos.Task) *taskRec {
	r := &taskRec{id: t.TaskID.Value, name: t.Name, frameworkID: t.FrameworkID.Value, agentID: t.AgentID.Value,
		checked: t.HealthCheck != nil, discovery: t.Discovery}
	for _, res := range t.Resources {
		if res.Name == "ports" && res.Ranges != nil {
			for _, rg := range res.Ranges.Range {
				for p := rg.Begin; p <= rg.End && p-rg.Begin < 1<<16; p++ {
					r.ports = append(r.ports, uint32(p))
				}
			}
		}
	}
	for _, st := range t.Statuses {
		r.applyStatus(st)
	}
	if t.State != nil {
		r.state = *t.State
	}
	return r
}

// agentFromOperator takes the agent's IP from its libprocess PID, else
// from its host name.
func agentFromOperator(a master.Response_GetAgents_Agent) agentRec {
	port := int(a.AgentInfo.GetPort())
	ip := pidIP(a.GetPID())
	if ip == nil {
		ip = hostIP(a.AgentInfo.Hostname)
	}
	return agentRec{id: a.AgentInfo.GetID().GetValue(), ip: ip, port: port}
}

func frameworkFromOperator(f master.Response_GetFrameworks_Framework) (string, frameworkRec) {
	return f.FrameworkInfo.GetID().GetValue(), frameworkRec{name: f.FrameworkInfo.Name, ip: hostIP(f.FrameworkInfo.GetHostname())}
}

// resetFromOperator replaces the view's contents with a GET_STATE
// snapshot, keeping the leader.
func (v *view) resetFromOperator(s *master.Response_GetState) {
	leader := v.leader
	*v = *newView()
	v.leader = leader
	if s == nil {
		return
	}
	if s.GetAgents != nil {
		for _, a := range s.GetAgents.Agents {
			r := agentFromOperator(a)
			v.agents[r.id] = r
		}
	}
	if s.GetFrameworks != nil {
		for _, f := range s.GetFrameworks.Frameworks {
			id, r := frameworkFromOperator(f)
			v.frameworks[id] = r
		}
	}
	if s.GetTasks != nil {
		for _, t := range s.GetTasks.Tasks {
			r := taskFromOperator(t)
			v.tasks[taskKey(r.frameworkID, r.id)] = r
		}
	}
}

// change is what an event touched, for the records to follow: full asks
// for a whole rebuild (a new snapshot of the cluster).
type change struct {
	full, static              bool
	tasks, agents, frameworks []string // task keys, agent and framework IDs
}

func (c change) empty() bool {
	return !c.full && !c.static && len(c.tasks)+len(c.agents)+len(c.frameworks) == 0
}

// applyEvent folds one operator API event into the view and says what it
// touched: the records of a task follow its framework (the name) and its
// agent (the address), so an agent or framework change touches their
// tasks too.
func (v *view) applyEvent(ev *master.Event) change {
	var ch change
	switch ev.GetType() {
	case master.Event_SUBSCRIBED:
		v.resetFromOperator(ev.Subscribed.GetGetState())
		ch.full = true
	case master.Event_TASK_ADDED:
		r := taskFromOperator(ev.TaskAdded.Task)
		key := taskKey(r.frameworkID, r.id)
		v.tasks[key] = r
		ch.tasks = []string{key}
	case master.Event_TASK_UPDATED:
		u := ev.TaskUpdated
		key := taskKey(u.FrameworkID.Value, u.Status.TaskID.Value)
		t := v.tasks[key]
		if t == nil {
			return ch // its TASK_ADDED came before this stream
		}
		t.applyStatus(u.Status)
		if u.State != nil {
			t.state = *u.State
		}
		if isTerminal(t.state) {
			delete(v.tasks, key)
		}
		ch.tasks = []string{key}
	case master.Event_AGENT_ADDED:
		r := agentFromOperator(ev.AgentAdded.Agent)
		v.agents[r.id] = r
		ch.agents = []string{r.id}
		ch.tasks = v.tasksWhere(func(t *taskRec) bool { return t.agentID == r.id })
	case master.Event_AGENT_REMOVED:
		id := ev.AgentRemoved.AgentID.Value
		delete(v.agents, id)
		ch.agents = []string{id}
		ch.tasks = v.tasksWhere(func(t *taskRec) bool { return t.agentID == id })
	case master.Event_FRAMEWORK_ADDED, master.Event_FRAMEWORK_UPDATED:
		fi := ev.GetFrameworkAdded().GetFramework()
		if ev.GetType() == master.Event_FRAMEWORK_UPDATED {
			fi = ev.GetFrameworkUpdated().GetFramework()
		}
		id, r := frameworkFromOperator(fi)
		v.frameworks[id] = r
		ch.frameworks = []string{id}
		ch.tasks = v.tasksWhere(func(t *taskRec) bool { return t.frameworkID == id })
	case master.Event_FRAMEWORK_REMOVED:
		id := ev.FrameworkRemoved.FrameworkInfo.GetID().GetValue()
		delete(v.frameworks, id)
		ch.frameworks = []string{id}
		ch.tasks = v.tasksWhere(func(t *taskRec) bool { return t.frameworkID == id })
		for _, k := range ch.tasks {
			delete(v.tasks, k)
		}
	}
	return ch
}

// tasksWhere are the keys of the tasks that match.
func (v *view) tasksWhere(match func(*taskRec) bool) []string {
	var out []string
	for k, t := range v.tasks {
		if match(t) {
			out = append(out, k)
		}
	}
	return out
}

func isTerminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR, mesos.TASK_LOST,
		mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

// masterState is GET /master/state, the parts records are made of; the
// task fields beyond frameworks/state's typed view are read here.
type masterState struct {
	Leader     string `json:"leader"`
	LeaderInfo *struct {
		Hostname string `json:"hostname"`
		Port     int    `json:"port"`
	} `json:"leader_info"`
	Slaves     []state.Agent    `json:"slaves"`
	Frameworks []stateFramework `json:"frameworks"`
}

type stateFramework struct {
	ID       string      `json:"id"`
	Name     string      `json:"name"`
	Hostname string      `json:"hostname"`
	Tasks    []stateTask `json:"tasks"`
}

type stateTask struct {
	ID          string               `json:"id"`
	Name        string               `json:"name"`
	FrameworkID string               `json:"framework_id"`
	SlaveID     string               `json:"slave_id"`
	State       string               `json:"state"`
	Resources   state.Resources      `json:"resources"`
	Discovery   *mesos.DiscoveryInfo `json:"discovery"`
	Statuses    []struct {
		State           string                 `json:"state"`
		Healthy         *bool                  `json:"healthy"`
		ContainerStatus *mesos.ContainerStatus `json:"container_status"`
	} `json:"statuses"`
}

// resetFromState replaces the view's contents with a /master/state
// document. Whether a task has a health check is not in that document:
// it is kept from what the event stream said.
func (v *view) resetFromState(s *masterState) {
	old := v.tasks
	*v = *newView()
	if ip, port := pidHostPort(s.Leader); ip != nil {
		v.leader = endpoint{ip: ip, port: port}
		if s.LeaderInfo != nil {
			v.leader.host = s.LeaderInfo.Hostname
		}
	}
	for _, a := range s.Slaves {
		ip := pidIP(a.PID)
		if ip == nil {
			ip = hostIP(a.Hostname)
		}
		v.agents[a.ID] = agentRec{id: a.ID, ip: ip, port: a.Port}
	}
	for _, f := range s.Frameworks {
		v.frameworks[f.ID] = frameworkRec{name: f.Name, ip: hostIP(f.Hostname)}
		for _, t := range f.Tasks {
			r := &taskRec{id: t.ID, name: t.Name, frameworkID: f.ID, agentID: t.SlaveID,
				discovery: t.Discovery, ports: parsePorts(t.Resources.Ports)}
			for _, st := range t.Statuses {
				s := mesos.TaskStatus{Healthy: st.Healthy, ContainerStatus: st.ContainerStatus}
				if v, ok := mesos.TaskState_value[st.State]; ok {
					ts := mesos.TaskState(v)
					s.State = &ts
				}
				r.applyStatus(s)
			}
			if v, ok := mesos.TaskState_value[t.State]; ok {
				r.state = mesos.TaskState(v)
			}
			if prev := old[taskKey(f.ID, t.ID)]; prev != nil {
				r.checked = prev.checked
			}
			if !isTerminal(r.state) {
				v.tasks[taskKey(f.ID, t.ID)] = r
			}
		}
	}
}

// parsePorts reads the flattened ports resource "[31000-31001, 31005-31005]".
func parsePorts(s string) []uint32 {
	var out []uint32
	for _, rg := range strings.Split(strings.Trim(s, "[] "), ",") {
		lo, hi, ok := strings.Cut(strings.TrimSpace(rg), "-")
		if !ok {
			hi = lo
		}
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := strconv.ParseUint(hi, 10, 16)
		if err1 != nil || err2 != nil || b < a {
			continue
		}
		for p := a; p <= b; p++ {
			out = append(out, uint32(p))
		}
	}
	return out
}

// pidHostPort reads "name@ip:port".
func pidHostPort(pid string) (net.IP, int) {
	i := strings.LastIndex(pid, "@")
	if i < 0 {
		return nil, 0
	}
	host, port, err := net.SplitHostPort(pid[i+1:])
	if err != nil {
		return nil, 0
	}
	p, _ := strconv.Atoi(port)
	return net.ParseIP(host), p
}

func pidIP(pid string) net.IP {
	ip, _ := pidHostPort(pid)
	return ip
}

// hostIP is the IP a host name stands for: itself when it is an address,
// else its first address in the resolver (nil when it has none). Looked-up
// names are cached for a while: the view is rebuilt with every resync, and
// a slow lookup would hold up the event stream.
func hostIP(host string) net.IP {
	if host == "" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip
	}
	hostCache.Lock()
	e, ok := hostCache.m[host]
	hostCache.Unlock()
	if ok && time.Since(e.at) < hostCacheTTL {
		return e.ip
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var ip net.IP
	if ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host); err == nil && len(ips) > 0 {
		ip = ips[0]
		for _, x := range ips {
			if x4 := x.To4(); x4 != nil {
				ip = x4
				break
			}
		}
	}
	hostCache.Lock()
	if len(hostCache.m) > 100000 {
		hostCache.m = map[string]hostEntry{} // bounded: start over
	}
	hostCache.m[host] = hostEntry{ip: ip, at: time.Now()}
	hostCache.Unlock()
	return ip
}

const hostCacheTTL = 5 * time.Minute

type hostEntry struct {
	ip net.IP
	at time.Time
}

var hostCache = struct {
	sync.Mutex
	m map[string]hostEntry
}{m: map[string]hostEntry{}}
