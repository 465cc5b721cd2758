package master

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/master"

	"github.com/agora-cluster/agora/cluster/api"
)

// The operator API (POST /api/v1) answers the GET_* queries from the
// master's state and streams cluster events to SUBSCRIBE callers (the web
// UI, mwatch, DC/OS-style tools).

// maxOperatorSubscribers caps SUBSCRIBE streams, as Mesos does.
const maxOperatorSubscribers = 1000

// operatorSub is one operator SUBSCRIBE stream.
type operatorSub struct {
	codec api.Codec
	out   *outbox
	view  *viewer // what its principal may see (authz_view.go)
}

func (m *Master) serveOperator(w http.ResponseWriter, r *http.Request) {
	var call master.Call
	if _, err := readCall(w, r, &call); err != nil {
		writeError(w, err)
		return
	}
	codec, err := api.ResponseCodec(r.Header.Get("Accept"))
	if err != nil {
		writeError(w, errorf(http.StatusNotAcceptable, "%v", err))
		return
	}
	if call.Type == master.Call_SUBSCRIBE {
		m.serveOperatorSubscribe(w, r, codec)
		return
	}
	var resp *master.Response
	herr, derr := m.await(r.Context(), func(reply func(error)) {
		if err := m.authorizeOperator(r, &call); err != nil { // authz.go
			reply(err)
			return
		}
		if !m.operatorChange(&call, reply) {
			var err error
			resp, err = m.operatorCall(&call)
			resp = m.filterResponse(r, resp) // authz_view.go
			reply(err)
		}
	})
	if derr != nil {
		answerLoopFailure(w, derr)
		return
	}
	if herr != nil {
		writeError(w, herr)
		return
	}
	if resp == nil {
		w.WriteHeader(http.StatusOK) // a no-data answer: no Content-Type
		return
	}
	b, err := codec.Marshal(resp)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", codec.MediaType)
	w.Write(b)
}

// operatorChange starts a call that changes the registry; it answers
// (done, on the loop) once the change is durable and applied. handled is
// false for other calls.
func (m *Master) operatorChange(c *master.Call, done func(error)) (handled bool) {
	return m.policyChange(c, done) || m.maintenanceChange(c, done) || m.reservationChange(c, done) || m.operatorTeardown(c, done)
}

// operatorTeardown is TEARDOWN: the framework is recorded completed, then
// removed.
func (m *Master) operatorTeardown(c *master.Call, done func(error)) bool {
	if c.Type != master.Call_TEARDOWN {
		return false
	}
	if c.Teardown == nil {
		done(missingField("teardown"))
		return true
	}
	id := c.Teardown.FrameworkID.Value
	f := m.frameworks[id]
	if f == nil {
		done(errorf(http.StatusBadRequest, "framework %s is not registered", id))
		return true
	}
	m.teardownFramework(f, "torn down by the operator", done)
	return true
}

// operatorCall answers one call on the loop; a nil response means 200
// without a body.
func (m *Master) operatorCall(c *master.Call) (*master.Response, error) {
	if testHookOperatorCall != nil {
		testHookOperatorCall(c)
	}
	if resp, ok, err := m.policyCall(c); ok {
		return resp, err
	}
	if resp, ok, err := m.maintenanceCall(c); ok {
		return resp, err
	}
	switch c.Type {
	case master.Call_GET_HEALTH:
		return &master.Response{Type: master.Response_GET_HEALTH, GetHealth: &master.Response_GetHealth{Healthy: true}}, nil
	case master.Call_GET_VERSION:
		return &master.Response{Type: master.Response_GET_VERSION, GetVersion: &master.Response_GetVersion{
			VersionInfo: mesos.VersionInfo{Version: api.MesosVersion}}}, nil
	case master.Call_GET_FLAGS:
		var flags []mesos.Flag
		for _, k := range sortedKeys(m.cfg.Flags) {
			v := m.cfg.Flags[k]
			flags = append(flags, mesos.Flag{Name: k, Value: &v})
		}
		return &master.Response{Type: master.Response_GET_FLAGS, GetFlags: &master.Response_GetFlags{Flags: flags}}, nil
	case master.Call_GET_METRICS:
		snap := m.snapshot()
		var ms []mesos.Metric
		for _, k := range sortedKeys(snap) {
			v := snap[k]
			ms = append(ms, mesos.Metric{Name: k, Value: &v})
		}
		return &master.Response{Type: master.Response_GET_METRICS, GetMetrics: &master.Response_GetMetrics{Metrics: ms}}, nil
	case master.Call_GET_STATE:
		return &master.Response{Type: master.Response_GET_STATE, GetState: m.operatorState()}, nil
	case master.Call_GET_AGENTS:
		return &master.Response{Type: master.Response_GET_AGENTS, GetAgents: m.operatorAgents()}, nil
	case master.Call_GET_FRAMEWORKS:
		return &master.Response{Type: master.Response_GET_FRAMEWORKS, GetFrameworks: m.operatorFrameworks()}, nil
	case master.Call_GET_TASKS:
		return &master.Response{Type: master.Response_GET_TASKS, GetTasks: m.operatorTasks()}, nil
	case master.Call_GET_EXECUTORS:
		return &master.Response{Type: master.Response_GET_EXECUTORS, GetExecutors: m.operatorExecutors()}, nil
	case master.Call_GET_MASTER:
		mi := m.info
		return &master.Response{Type: master.Response_GET_MASTER, GetMaster: &master.Response_GetMaster{
			MasterInfo: &mi, StartTime: floatPtr(timeSecs(m.start)), ElectedTime: floatPtr(timeSecs(m.start))}}, nil
	case master.Call_GET_ROLES:
		return &master.Response{Type: master.Response_GET_ROLES, GetRoles: m.operatorRoles()}, nil
	case master.Call_UNKNOWN:
		return nil, missingField("type")
	}
	return nil, errorf(http.StatusNotImplemented, "operator call %s is not implemented yet", c.Type)
}

func (m *Master) serveOperatorSubscribe(w http.ResponseWriter, r *http.Request, codec api.Codec) {
	sub := &operatorSub{codec: codec, out: m.subscriberOutbox("operator"), view: m.viewerOf(r)}
	var err error
	if derr := m.do(r.Context(), func() {
		if len(m.operatorSubs) >= maxOperatorSubscribers {
			err = errorf(http.StatusServiceUnavailable, "too many operator subscribers (%d)", maxOperatorSubscribers)
			return
		}
		m.operatorSubs[sub] = true
		hb := m.cfg.HeartbeatInterval.Seconds()
		st := m.operatorState()
		sub.view.filterState(st)
		sub.out.push(&master.Event{Type: master.Event_SUBSCRIBED, Subscribed: &master.Event_Subscribed{
			GetState: st, HeartbeatIntervalSeconds: &hb}})
		sub.out.push(&master.Event{Type: master.Event_HEARTBEAT})
	}); derr != nil {
		answerLoopFailure(w, derr)
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", codec.MediaType)
	w.WriteHeader(http.StatusOK)
	rw := api.NewRecordWriter(w)
	m.pumpMessages(r.Context(), w, sub.out, codec, rw)
	m.async(func() { delete(m.operatorSubs, sub); sub.out.close() })
}

// subscriberOutbox is the outbox of a scheduler's or an operator
// subscriber's event stream, cut after Config.MaxSubscriberBacklog unread
// events. The cut runs on the loop, like every push.
func (m *Master) subscriberOutbox(kind string) *outbox {
	return newBoundedOutbox(m.cfg.MaxSubscriberBacklog, func() {
		m.counters.slowSubscribersCut++
		m.log.Warn("a subscriber fell too far behind; its stream is cut (it subscribes again and reconciles)",
			"kind", kind, "backlog", m.cfg.MaxSubscriberBacklog)
	})
}

// pumpMessages writes an outbox of wire messages to a RecordIO stream. A
// cut outbox (its reader fell too far behind) also ends a write blocked on
// that reader, through w's write deadline.
func (m *Master) pumpMessages(ctx context.Context, w http.ResponseWriter, out *outbox, codec api.Codec, rw *api.RecordWriter) {
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-out.cut:
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now())
		case <-finished:
		}
	}()
	for {
		items, ok := out.take(ctx.Done())
		if !ok {
			return
		}
		for _, it := range items {
			b, err := codec.Marshal(it.(api.Message))
			if err != nil {
				m.log.Error("encode operator event", "err", err)
				continue
			}
			if err := rw.Append(b); err != nil {
				return
			}
		}
		// One flush for every event this turn made ready.
		rw.Flush()
	}
}

// publish sends an event to every operator subscriber.
func (m *Master) publish(ev *master.Event) {
	for sub := range m.operatorSubs {
		if ev := sub.view.viewEvent(ev); ev != nil { // authz_view.go
			sub.out.push(ev)
		}
	}
}

func (m *Master) publishTaskUpdated(t *task, st mesos.TaskStatus) {
	if len(m.operatorSubs) == 0 {
		return
	}
	state := t.state()
	m.publishTaskEvent(&master.Event{Type: master.Event_TASK_UPDATED, TaskUpdated: &master.Event_TaskUpdated{
		FrameworkID: t.info.FrameworkID, Status: st, State: &state}}, t.info.GetUser())
}

func (m *Master) publishTaskAdded(t *task) {
	if len(m.operatorSubs) == 0 {
		return
	}
	m.publish(&master.Event{Type: master.Event_TASK_ADDED, TaskAdded: &master.Event_TaskAdded{Task: *proto.Clone(&t.info).(*mesos.Task)}})
}

func (m *Master) publishAgentAdded(a *agent) {
	if len(m.operatorSubs) > 0 {
		m.publish(&master.Event{Type: master.Event_AGENT_ADDED, AgentAdded: &master.Event_AgentAdded{Agent: m.operatorAgent(a)}})
	}
}

func (m *Master) publishAgentRemoved(a *agent) {
	if len(m.operatorSubs) > 0 {
		m.publish(&master.Event{Type: master.Event_AGENT_REMOVED, AgentRemoved: &master.Event_AgentRemoved{AgentID: mesos.AgentID{Value: a.id}}})
	}
}

func (m *Master) publishFramework(f *framework, added bool) {
	if len(m.operatorSubs) == 0 {
		return
	}
	if added {
		m.publish(&master.Event{Type: master.Event_FRAMEWORK_ADDED, FrameworkAdded: &master.Event_FrameworkAdded{Framework: m.operatorFramework(f)}})
		return
	}
	m.publish(&master.Event{Type: master.Event_FRAMEWORK_UPDATED, FrameworkUpdated: &master.Event_FrameworkUpdated{Framework: m.operatorFramework(f)}})
}

func (m *Master) publishFrameworkRemoved(f *framework) {
	if len(m.operatorSubs) > 0 {
		m.publish(&master.Event{Type: master.Event_FRAMEWORK_REMOVED, FrameworkRemoved: &master.Event_FrameworkRemoved{FrameworkInfo: f.info}})
	}
}

func timeInfo(t time.Time) *mesos.TimeInfo {
	if t.IsZero() {
		return nil
	}
	return &mesos.TimeInfo{Nanoseconds: t.UnixNano()}
}

func (m *Master) operatorAgent(a *agent) master.Response_GetAgents_Agent {
	used, offered := m.agentResources(a)
	pid := a.pid
	return master.Response_GetAgents_Agent{
		AgentInfo: a.info, Active: !a.unreachable, Version: a.version, PID: &pid,
		RegisteredTime: timeInfo(a.registeredTime), ReregisteredTime: timeInfo(a.reregisteredTime),
		TotalResources: a.info.Resources, AllocatedResources: used, OfferedResources: offered,
	}
}

func (m *Master) operatorAgents() *master.Response_GetAgents {
	out := &master.Response_GetAgents{}
	for _, a := range m.sortedAgents() {
		if !a.unreachable {
			out.Agents = append(out.Agents, m.operatorAgent(a))
		}
	}
	for _, r := range m.admitted {
		if r.State == "admitted" && r.Info != nil {
			out.RecoveredAgents = append(out.RecoveredAgents, *r.Info)
		}
	}
	return out
}

func (m *Master) operatorFramework(f *framework) master.Response_GetFrameworks_Framework {
	var used, offered mesos.Resources
	var offers []mesos.Offer
	for _, t := range f.tasks {
		if !isTerminal(t.state()) {
			used.Add(t.info.Resources...)
		}
	}
	for _, o := range f.offers {
		offered.Add(o.resources...)
		offers = append(offers, m.offerMessage(o))
	}
	return master.Response_GetFrameworks_Framework{
		FrameworkInfo: f.info, Active: f.conn != nil && !f.removed, Connected: f.conn != nil, Recovered: f.recovered,
		RegisteredTime: timeInfo(f.registeredTime), ReregisteredTime: timeInfo(f.reregisteredTime),
		UnregisteredTime: timeInfo(f.unregisteredTime), Offers: offers,
		AllocatedResources: used, OfferedResources: offered,
	}
}

func (m *Master) operatorFrameworks() *master.Response_GetFrameworks {
	out := &master.Response_GetFrameworks{}
	for _, f := range m.sortedFrameworks() {
		out.Frameworks = append(out.Frameworks, m.operatorFramework(f))
	}
	for _, f := range m.completedFrameworks {
		out.CompletedFrameworks = append(out.CompletedFrameworks, m.operatorFramework(f))
	}
	return out
}

func (m *Master) operatorTasks() *master.Response_GetTasks {
	out := &master.Response_GetTasks{}
	add := func(f *framework) {
		for _, id := range sortedKeys(f.tasks) {
			t := f.tasks[id]
			switch t.state() {
			case mesos.TASK_UNREACHABLE:
				out.UnreachableTasks = append(out.UnreachableTasks, t.info)
			default:
				out.Tasks = append(out.Tasks, t.info)
			}
		}
		for _, t := range f.completed {
			out.CompletedTasks = append(out.CompletedTasks, t.info)
		}
	}
	for _, f := range m.sortedFrameworks() {
		add(f)
	}
	for _, f := range m.completedFrameworks {
		for _, t := range f.completed {
			out.CompletedTasks = append(out.CompletedTasks, t.info)
		}
	}
	return out
}

func (m *Master) operatorExecutors() *master.Response_GetExecutors {
	out := &master.Response_GetExecutors{}
	for _, a := range m.sortedAgents() {
		for _, key := range sortedKeys(a.executors) {
			out.Executors = append(out.Executors, master.Response_GetExecutors_Executor{
				ExecutorInfo: *a.executors[key], AgentID: mesos.AgentID{Value: a.id}})
		}
	}
	return out
}

func (m *Master) operatorRoles() *master.Response_GetRoles {
	type roleSum struct {
		frameworks []mesos.FrameworkID
		res        mesos.Resources
	}
	roles := map[string]*roleSum{"*": {}}
	for _, f := range m.sortedFrameworks() {
		for _, r := range f.roles() {
			if roles[r] == nil {
				roles[r] = &roleSum{}
			}
			roles[r].frameworks = append(roles[r].frameworks, mesos.FrameworkID{Value: f.id})
		}
		for _, t := range f.tasks {
			if !isTerminal(t.state()) && roles[t.role] != nil {
				roles[t.role].res.Add(t.info.Resources...)
			}
		}
	}
	out := &master.Response_GetRoles{}
	names := make([]string, 0, len(roles))
	for r := range roles {
		names = append(names, r)
	}
	sort.Strings(names)
	for _, r := range names {
		out.Roles = append(out.Roles, mesos.Role{Name: r, Weight: 1, Frameworks: roles[r].frameworks, Resources: roles[r].res})
	}
	return out
}

func (m *Master) operatorState() *master.Response_GetState {
	return &master.Response_GetState{
		GetTasks: m.operatorTasks(), GetExecutors: m.operatorExecutors(),
		GetFrameworks: m.operatorFrameworks(), GetAgents: m.operatorAgents(),
	}
}

// testHookOperatorCall, set by tests only, runs at the start of every
// operator query on the loop (to make one panic).
var testHookOperatorCall func(*master.Call)
