package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/allocator"
	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/registry"
)

func agentEvent(ev api.AgentEvent) *api.AgentEvent { return &ev }

func shutdownFrameworkEvent(fid string) api.AgentEvent {
	return api.AgentEvent{Type: api.AgentShutdownFramework, ShutdownFramework: &api.ShutdownFramework{FrameworkID: fid}}
}

func agentEventFrameworkMessage(fid, eid string, data []byte) *api.AgentEvent {
	return &api.AgentEvent{Type: api.AgentFrameworkMessage, FrameworkMessage: &api.FrameworkMessage{FrameworkID: fid, ExecutorID: eid, Data: data}}
}

func agentEventShutdownExecutor(fid, eid string) *api.AgentEvent {
	return &api.AgentEvent{Type: api.AgentShutdownExecutor, ShutdownExecutor: &api.ShutdownExecutor{FrameworkID: fid, ExecutorID: eid}}
}

func agentIP(a *agent) string {
	if ip := pidHost(a.pid); ip != "" {
		return ip
	}
	return a.info.Hostname
}

// pidHost is the IP of a pid "slave(1)@IP:PORT", "" if it has none.
func pidHost(pid string) string {
	if i := strings.LastIndex(pid, "@"); i >= 0 {
		hp := pid[i+1:]
		if j := strings.LastIndex(hp, ":"); j >= 0 {
			return strings.Trim(hp[:j], "[]")
		}
	}
	return ""
}

// serveAgent is the internal agent protocol endpoint (see api/agentwire.go).
func (m *Master) serveAgent(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, errorf(http.StatusMethodNotAllowed, "expecting a 'POST' request, received '%s'", r.Method))
		return
	}
	codec, err := api.RequestCodec(r.Header.Get("Content-Type")) // checked by typedBody
	if err != nil {
		writeError(w, errorf(http.StatusUnsupportedMediaType, "%v", err))
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, errorf(http.StatusBadRequest, "cannot read agent call: %v", err))
		return
	}
	if len(body) > MaxRequestBody {
		writeError(w, errorf(http.StatusBadRequest, "agent call exceeds %d bytes", MaxRequestBody))
		return
	}
	var call api.AgentCall
	if err := decodeAgentCall(codec, body, &call); err != nil {
		writeError(w, errorf(http.StatusBadRequest, "failed to parse agent call (%s): %v", codec.MediaType, err))
		return
	}
	if call.Type == api.AgentRegister {
		m.serveAgentRegister(w, r, &call)
		return
	}
	var herr error
	principal := requestPrincipal(r)
	if derr := m.do(r.Context(), func() {
		if a := m.agents[call.AgentID]; a != nil {
			if herr = checkAgentPrincipal(a, principal, string(call.Type)); herr != nil { // authz.go
				return
			}
		}
		herr = m.handleAgentCall(&call)
	}); derr != nil {
		answerLoopFailure(w, derr)
		return
	}
	if herr != nil {
		writeError(w, herr)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (m *Master) handleAgentCall(c *api.AgentCall) error {
	a := m.agents[c.AgentID]
	if a == nil || a.unreachable {
		return errorf(http.StatusConflict, "agent %s is not registered with this master", c.AgentID)
	}
	switch c.Type {
	case api.AgentPong:
		if c.Pong != nil && c.Pong.Seq > a.lastPongSeq {
			a.lastPongSeq = c.Pong.Seq
			a.missedPings = 0
		}
	case api.AgentStatusUpdate:
		if len(c.Updates) == 0 {
			return errorf(http.StatusBadRequest, "STATUS_UPDATE without 'updates'")
		}
		for _, u := range c.Updates {
			if u != nil {
				m.statusUpdate(a, u)
			}
		}
	case api.AgentExecutorMsg:
		if c.Message == nil {
			return errorf(http.StatusBadRequest, "EXECUTOR_MESSAGE without 'message'")
		}
		m.executorMessage(a, c.Message)
	case api.AgentExecutorExited:
		if c.ExecutorExited != nil {
			m.executorExited(a, c.ExecutorExited)
		}
	default:
		return errorf(http.StatusBadRequest, "unknown agent call type %q", c.Type)
	}
	return nil
}

// agentStreamCodec is the codec of an agent's event stream: protobuf if
// its Accept names protobuf and not JSON, else JSON.
func agentStreamCodec(accept string) api.Codec {
	if c, err := api.ResponseCodec(accept); err == nil {
		return c
	}
	return api.JSON
}

// serveAgentRegister answers REGISTER with the agent's event stream.
func (m *Master) serveAgentRegister(w http.ResponseWriter, r *http.Request, call *api.AgentCall) {
	reg := call.Register
	if reg == nil || reg.Info == nil || reg.Info.Hostname == "" {
		writeError(w, errorf(http.StatusBadRequest, "REGISTER requires 'register.info' with a hostname"))
		return
	}
	if err := m.authorizeAgentRegistration(r, reg.Info); err != nil { // authz.go
		writeError(w, err)
		return
	}
	codec := agentStreamCodec(r.Header.Get("Accept"))
	out := newOutbox()
	var a *agent
	from := peer{remote: r.RemoteAddr}
	register := func() (error, error) {
		return m.await(r.Context(), func(reply func(error)) {
			principal := requestPrincipal(r)
			m.registerAgent(reg, out, from, principal, func(got *agent, err error) {
				if got != nil && principal != "" {
					got.principal = principal
				}
				a = got
				reply(err)
			})
		})
	}
	err, derr := register()
	if derr == nil && errors.Is(err, errLookupHostname) {
		// A record to check against the addresses of the agent's
		// hostname (authz.go): looked up here, off the loop (the lookup
		// shared with other re-registrations of that hostname), and asked
		// again. A failed lookup is a 503: the agent keeps its ID and
		// retries.
		from = m.lookupAgentHost(r.Context(), from, reg.Info.Hostname)
		err, derr = register()
		if errors.Is(err, errLookupHostname) {
			err = errorf(http.StatusInternalServerError, "agent %s: its hostname was looked up, yet is asked for again", reg.Info.Hostname)
		}
	}
	if derr != nil {
		answerLoopFailure(w, derr)
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", codec.MediaType)
	// The Date header, formatted once a second: the server would format
	// it on the handler's stack, growing it (a copy of the whole handler
	// chain) for every agent's stream.
	h["Date"] = []string{httpDate(time.Now())}
	w.WriteHeader(http.StatusOK)
	rw := api.NewRecordWriter(w)
	m.pumpAgent(r.Context(), out, rw, codec)
	m.async(func() { m.agentDisconnected(a, out) })
}

func (m *Master) pumpAgent(ctx context.Context, out *outbox, rw *api.RecordWriter, codec api.Codec) {
	for {
		items, ok := out.take(ctx.Done())
		if !ok {
			return
		}
		frames, errs, fatal := encodeAgentEvents(codec, items) // decoder.go
		for _, err := range errs {
			m.log.Error("agent event left out of its stream", "err", err)
		}
		if err := rw.WriteFrames(frames); err != nil {
			return
		}
		if fatal != nil {
			m.log.Error("agent event stream ended: an event could not be encoded; the agent re-registers", "err", fatal)
			return
		}
	}
}

// readBody reads r's body, at most MaxRequestBody+1 bytes. A body with a
// Content-Length (the server holds it to that length) is read into one
// buffer of its size: thousands of agents re-registering at once would
// otherwise each grow one from 512 bytes.
//
// The body is closed once read: an agent's REGISTER stays open as its
// event stream, and HTTP/2 would otherwise keep the chunk it buffered the
// body in (4 KB for a REGISTER of ten tasks) for as long as the agent
// stays — 160 MB of a leader's heap at 40,000 agents.
func readBody(r *http.Request) ([]byte, error) {
	defer r.Body.Close()
	if n := r.ContentLength; n > 0 && n <= MaxRequestBody {
		b := make([]byte, n)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(io.LimitReader(r.Body, MaxRequestBody+1))
}

// registerAgent admits a new agent or re-admits a known one, calling done
// on the loop once the registry has the agent (or with why not). It runs
// on the loop.
func (m *Master) registerAgent(reg *api.RegisterAgent, out *outbox, from peer, principal string, done func(*agent, error)) {
	remote := from.remote
	info := *reg.Info
	id := info.GetID().GetValue()
	if len(info.Resources) == 0 {
		done(nil, errorf(http.StatusBadRequest, "agent %s offers no resources", info.Hostname))
		return
	}
	for i := range info.Resources {
		if err := info.Resources[i].Validate(); err != nil {
			done(nil, errorf(http.StatusBadRequest, "agent %s: resource %q is malformed: %v", info.Hostname, info.Resources[i].Name, err))
			return
		}
	}
	pid := fmt.Sprintf("slave(1)@%s:%d", hostOf(remote), info.GetPort())
	if id == "" {
		m.admitAgent(info, reg, out, pid, hostOf(remote), principal, done)
		return
	}
	// Whatever else is in flight for this agent is applied first, and
	// what the agent is then decides.
	m.inLane(agentLane(id), func() {
		now := m.now()
		if m.machineDown(info.Hostname, hostOf(remote)) {
			done(nil, errorf(http.StatusServiceUnavailable, "machine %s is down for maintenance; bring it up (/machine/up) before its agent registers", info.Hostname))
			return
		}
		if a, ok := m.agents[id]; ok {
			if err := checkAgentPrincipal(a, principal, "REGISTER"); err != nil { // authz.go
				done(nil, err)
				return
			}
			m.reregisterAgent(a, &info, reg, out, pid, now, done)
			return
		}
		m.readmitAgent(info, reg, out, pid, from, principal, now, done)
	})
}

// admitAgent admits an agent that has no ID yet, once the registry has it.
func (m *Master) admitAgent(info mesos.AgentInfo, reg *api.RegisterAgent, out *outbox, pid, ip, principal string, done func(*agent, error)) {
	if m.machineDown(info.Hostname, ip) {
		done(nil, errorf(http.StatusServiceUnavailable, "machine %s is down for maintenance; bring it up (/machine/up) before its agent registers", info.Hostname))
		return
	}
	now := m.now()
	id := m.newID("S")
	info.ID = &mesos.AgentID{Value: id}
	rec := registry.AgentRecord{ID: id, State: registry.AgentAdmitted, Info: &info, Since: now, Principal: principal, PID: pid}
	m.commit(agentLane(id), []registry.Change{{Agent: &rec}}, func(err error) {
		if err != nil {
			done(nil, errorf(http.StatusServiceUnavailable, "cannot admit agent %s: %v", info.Hostname, err))
			return
		}
		if m.machineDown(info.Hostname, ip) {
			// Taken down while the registry wrote: it stays admitted
			// (as after a master restart) and registers once it is up.
			m.admitted[id] = rec
			done(nil, errorf(http.StatusServiceUnavailable, "machine %s went down for maintenance; bring it up (/machine/up) before its agent registers", info.Hostname))
			return
		}
		a := m.newAgent(&info, reg, out, pid, now)
		m.counters.agentRegistrations++
		m.alloc.AddAgent(allocator.AgentSpec{ID: id, Hostname: info.Hostname, Total: info.Resources}, nil)
		m.log.Info("agent registered", "agent", id, "hostname", info.Hostname, "resources", mesos.Resources(info.Resources).String())
		if m.windowFor(a) != nil {
			m.applySchedule()
		}
		m.publishAgentAdded(a)
		m.sendRegistered(a)
		m.requestAllocation()
		done(a, nil)
	})
}

// readmitAgent takes back an agent admitted before this master restarted,
// with the reservations and volumes recorded for it if its resources
// still add up — once the registry has it admitted again (else the agent
// retries). Only the principal the registry names for it may bring it
// back (readmitPrincipal).
func (m *Master) readmitAgent(info mesos.AgentInfo, reg *api.RegisterAgent, out *outbox, pid string, from peer, principal string, now time.Time, done func(*agent, error)) {
	id := info.GetID().GetValue()
	rec, ok := m.admitted[id]
	if !ok || rec.State == registry.AgentGone {
		why := "it is unknown to this master"
		if ok {
			why = "it was marked gone"
		}
		done(nil, errorf(http.StatusConflict, "refusing to re-register agent %s (%s): %s; register again without an ID", id, info.Hostname, why))
		return
	}
	principal, err := readmitPrincipal(rec, &info, principal, from) // authz.go
	if err != nil {
		// Logged once per agent and answer code: a refused (403) or
		// deferred (503) agent retries until let in.
		var he *httpError
		if errors.As(err, &he) && m.firstRefusal(fmt.Sprintf("re-registration of %s: %d", id, he.code)) {
			m.log.Warn("agent re-registration refused", "agent", id, "hostname", info.Hostname, "from", from.remote, "code", he.code, "err", err)
		}
		done(nil, err)
		return
	}
	if rec.Info != nil && compatibleTotal(rec.Info.Resources, info.Resources) {
		info.Resources = rec.Info.Resources
	}
	next := registry.AgentRecord{ID: id, State: registry.AgentAdmitted, Info: &info, Since: now, Principal: principal, PID: pid}
	readmit := func(err error) {
		if err != nil {
			done(nil, errorf(http.StatusServiceUnavailable, "cannot re-admit agent %s (%s): %v", id, info.Hostname, err))
			return
		}
		delete(m.admitted, id)
		delete(m.awaiting, id) // back (reregister.go)
		m.checkRecoveryGC(now) // recoverygc.go
		a := m.newAgent(&info, reg, out, pid, now)
		a.principal = principal
		m.counters.agentReregistrations++
		tornDown := m.adoptReportedTasks(a, reg)
		m.alloc.AddAgent(allocator.AgentSpec{ID: id, Hostname: info.Hostname, Total: info.Resources}, m.agentUsed(a))
		ended := 0
		for _, t := range a.tasks {
			if isTerminal(t.state()) {
				ended++
			}
		}
		m.log.Info("agent re-registered after master restart", "agent", id, "hostname", info.Hostname, "tasks", len(a.tasks),
			"ended_unacknowledged", ended)
		m.publishAgentAdded(a)
		m.sendRegistered(a)
		for _, fid := range tornDown {
			m.log.Info("agent re-registered with tasks of a torn-down framework; shutting them down", "agent", id, "framework", fid)
			a.out.push(agentEvent(shutdownFrameworkEvent(fid)))
		}
		m.requestAllocation()
		done(a, nil)
	}
	// A pid that changed is not worth a write of its own: it is read only
	// for a record without a principal (authz.go), and an agent's
	// connections may come from another of its addresses after a
	// failover (several addresses, NAT), which would make every agent's
	// return a registry write. A record without one gets it.
	if rec.State == registry.AgentAdmitted && sameAgentInfo(rec.Info, &info) && rec.Principal == principal && rec.PID != "" {
		// Already admitted as it is (a master failover or restart): the
		// registry has nothing to learn, and thousands of agents coming
		// back at once need not wait for thousands of writes.
		readmit(nil)
		return
	}
	m.commit(agentLane(id), []registry.Change{{Agent: &next}}, readmit)
}

func hostOf(remote string) string {
	if i := strings.LastIndex(remote, ":"); i >= 0 {
		return strings.Trim(remote[:i], "[]")
	}
	return remote
}

func (m *Master) newAgent(info *mesos.AgentInfo, reg *api.RegisterAgent, out *outbox, pid string, now time.Time) *agent {
	a := &agent{
		id: info.ID.Value, info: *info, pid: pid, version: reg.Version, warnings: reg.Warnings,
		out: out, tasks: make(map[string]*task, len(reg.Tasks)), offers: map[string]*offer{},
		executors: map[string]*mesos.ExecutorInfo{}, registeredTime: now,
	}
	m.agents[a.id] = a
	return a
}

func (m *Master) sendRegistered(a *agent) {
	a.lastPongSeq = m.pingSeq
	a.missedPings = 0
	a.out.push(agentEvent(api.AgentEvent{Type: api.AgentRegistered, Registered: &api.AgentRegisteredInfo{
		AgentID:           a.id,
		PingIntervalNanos: int64(m.cfg.AgentPingTimeout),
		MaxPingTimeouts:   m.cfg.MaxAgentPingTimeouts,
		MasterID:          m.id,
	}}))
}

// reregisterAgent handles a known agent coming back (reconnect, or after
// being unreachable): its reported tasks are reconciled with ours. An
// unreachable agent is reachable again only once the registry says so
// (else the agent retries and stays unreachable meanwhile).
func (m *Master) reregisterAgent(a *agent, info *mesos.AgentInfo, reg *api.RegisterAgent, out *outbox, pid string, now time.Time, done func(*agent, error)) {
	if !a.unreachable {
		done(m.rejoin(a, reg, out, pid, now, false), nil)
		return
	}
	rec := registry.AgentRecord{ID: a.id, State: registry.AgentAdmitted, Info: &a.info, Since: now, Principal: a.principal, PID: pid}
	m.commit(agentLane(a.id), []registry.Change{{Agent: &rec}}, func(err error) {
		if err != nil {
			done(nil, errorf(http.StatusServiceUnavailable, "cannot re-admit unreachable agent %s (%s): %v", a.id, a.info.Hostname, err))
			return
		}
		done(m.rejoin(a, reg, out, pid, now, true), nil)
	})
}

// rejoin reconnects a known agent, reachable again if wasUnreachable.
func (m *Master) rejoin(a *agent, reg *api.RegisterAgent, out *outbox, pid string, now time.Time, wasUnreachable bool) *agent {
	if a.out != nil && a.out != out {
		a.out.close()
	}
	a.out = out
	a.pid = pid
	a.version = reg.Version
	a.warnings = reg.Warnings
	a.reregisteredTime = now
	m.counters.agentReregistrations++
	for _, t := range a.tasks {
		t.heard = false // the agent sends its pending updates again once registered
	}
	reported := map[string]*mesos.Task{}
	for _, t := range reg.Tasks {
		if t != nil {
			reported[taskKey(t.FrameworkID.Value, t.TaskID.Value)] = t
		}
	}
	// Tasks of frameworks that are gone must not outlive them (the agent
	// may have been away when the framework was removed).
	var after []*api.AgentEvent // sent once REGISTERED has gone out
	shutdown := map[string]bool{}
	for _, t := range reg.Tasks {
		if t == nil {
			continue
		}
		if fid := t.FrameworkID.Value; m.frameworks[fid] == nil && !shutdown[fid] {
			shutdown[fid] = true
			after = append(after, agentEvent(shutdownFrameworkEvent(fid)))
		}
	}
	if wasUnreachable {
		a.unreachable = false
		a.unreachableTime = time.Time{}
	}
	// Tasks we know that the agent no longer runs are lost.
	for key, t := range a.tasks {
		if _, ok := reported[key]; ok || isTerminal(t.state()) {
			continue
		}
		f := m.frameworks[t.info.FrameworkID.Value]
		if f == nil {
			delete(a.tasks, key)
			continue
		}
		if !wasUnreachable {
			m.recoverTaskResources(f, t)
		}
		m.completeTask(f, a, t, mesos.TASK_LOST, mesos.REASON_AGENT_RESTARTED, "Task was not found on the agent after it re-registered")
	}
	if wasUnreachable {
		for key, t := range a.tasks {
			f := m.frameworks[t.info.FrameworkID.Value]
			if f == nil {
				continue
			}
			rt := reported[key]
			if rt == nil {
				continue
			}
			t.info.State = rt.State
			if !f.partitionAware {
				// Mesos kills the tasks of non-partition-aware frameworks
				// that come back from a partition: they were told TASK_LOST.
				after = append(after, agentEvent(api.AgentEvent{Type: api.AgentKillTask, KillTask: &api.KillTask{FrameworkID: f.id, TaskID: t.info.TaskID.Value}}))
				continue
			}
			m.sendMasterUpdate(f, t.info.TaskID, t.info.AgentID, rt.GetState(), mesos.REASON_AGENT_REREGISTERED, "Agent re-registered")
		}
		m.alloc.AddAgent(allocator.AgentSpec{ID: a.id, Hostname: a.info.Hostname, Total: a.info.Resources}, m.agentUsed(a))
	}
	if !a.deactivated && !a.draining && !a.converting {
		m.alloc.ActivateAgent(a.id)
	}
	m.log.Info("agent re-registered", "agent", a.id, "hostname", a.info.Hostname, "was_unreachable", wasUnreachable)
	if wasUnreachable {
		m.publishAgentAdded(a)
	}
	m.sendRegistered(a)
	for _, ev := range after {
		a.out.push(ev)
	}
	m.requestAllocation()
	return a
}

// adoptReportedTasks takes over tasks an agent reports after a master
// restart, for frameworks that are known or that the agent describes.
//
// A task that ended while no master was there is adopted too, as long as
// its agent still waits for an acknowledgement (status_update_state and
// status_update_uuid name the oldest update not acknowledged): the agent
// retries that update until the framework acknowledges it, so the master
// keeps the task, without its resources, until then (acknowledge moves it
// to the completed ones). Dropping it would leave the master answering
// for a task it does not know — and the framework would never hear how it
// ended. A terminal task with nothing left to acknowledge is done on both
// sides and is not adopted.
//
// Tasks and executors of frameworks that were torn down (the registry has
// them completed) are not adopted: tornDown lists those frameworks, which
// the agent is told to shut down once it is registered.
func (m *Master) adoptReportedTasks(a *agent, reg *api.RegisterAgent) (tornDown []string) {
	gone := map[string]bool{}
	isGone := func(fid string) bool {
		if m.frameworks[fid] != nil || !m.tornDown(fid) {
			return false
		}
		if !gone[fid] {
			gone[fid] = true
			tornDown = append(tornDown, fid)
		}
		return true
	}
	// Once per agent, not per task: a failover re-admits every task.
	now, agentID := m.now(), mesos.AgentID{Value: a.id}
	for _, rt := range reg.Tasks {
		if rt == nil || isGone(rt.FrameworkID.Value) || (isTerminal(rt.GetState()) && rt.StatusUpdateState == nil) {
			continue
		}
		f := m.frameworks[rt.FrameworkID.Value]
		if f == nil {
			var fi *mesos.FrameworkInfo
			for _, x := range reg.Frameworks {
				if x != nil && x.GetID().GetValue() == rt.FrameworkID.Value {
					fi = x
				}
			}
			if fi == nil {
				continue
			}
			f = m.recoverFramework(fi)
		}
		t := &task{info: *rt, launched: now, unacked: rt.StatusUpdateState != nil}
		t.info.AgentID = agentID
		if len(rt.Resources) > 0 && rt.Resources[0].AllocationInfo != nil {
			t.role = rt.Resources[0].AllocationInfo.GetRole()
		} else {
			t.role = f.roles()[0]
		}
		if len(rt.Resources) == 0 || !allocated(rt.Resources) {
			t.info.Resources = withAllocationInfo(rt.Resources, t.role)
		} // else the decoded call's own, which nothing else holds
		f.tasks[rt.TaskID.Value] = t
		a.tasks[taskKey(f.id, rt.TaskID.Value)] = t
	}
	for _, e := range reg.Executors {
		if e != nil && e.FrameworkID != nil && !isGone(e.FrameworkID.Value) {
			a.executors[e.FrameworkID.Value+"/"+e.ExecutorID.Value] = e
		}
	}
	return tornDown
}

// recoverFramework creates a disconnected framework known only from an
// agent's report (the registry never recorded it: issued before frameworks
// were recorded, or its record was collected); it is removed if it does
// not re-subscribe within its failover timeout from now.
func (m *Master) recoverFramework(fi *mesos.FrameworkInfo) *framework {
	return m.newRecoveredFramework(fi, m.now())
}

// agentUsed lists the resources of an agent's non-terminal tasks and
// executors by framework, for the allocator, which sums them itself:
// they are not merged here (mesos.Resources.Add clones each resource it
// cannot merge, by reflection — the larger part of the master's work on
// an agent's tasks when it re-registers). Like Add, it leaves out
// resources that are invalid or empty.
func (m *Master) agentUsed(a *agent) map[string]mesos.Resources {
	used := map[string]mesos.Resources{}
	n := 0 // room for them all in each framework's list: mostly one
	for _, t := range a.tasks {
		n += len(t.info.Resources)
	}
	for _, e := range a.executors {
		n += len(e.Resources)
	}
	add := func(fid string, rs []mesos.Resource) {
		for i := range rs {
			if rs[i].Validate() != nil || rs[i].IsEmpty() {
				continue
			}
			list, ok := used[fid]
			if !ok {
				list = make(mesos.Resources, 0, n)
			}
			used[fid] = append(list, rs[i])
		}
	}
	for _, t := range a.tasks {
		if !isTerminal(t.state()) {
			add(t.info.FrameworkID.Value, t.info.Resources)
		}
	}
	for _, e := range a.executors {
		if e.FrameworkID != nil {
			add(e.FrameworkID.Value, e.Resources)
		}
	}
	return used
}

// completeTask moves a task to a terminal state decided by the master and
// tells its framework.
func (m *Master) completeTask(f *framework, a *agent, t *task, state mesos.TaskState, reason mesos.TaskStatus_Reason, msg string) {
	st := state
	t.info.State = &st
	t.info.Statuses = append(t.info.Statuses, mesos.TaskStatus{TaskID: t.info.TaskID, State: &st, Source: mesos.SOURCE_MASTER.Enum(),
		Reason: &reason, Message: &msg, AgentID: &mesos.AgentID{Value: a.id}, Timestamp: floatPtr(timeSecs(m.now()))})
	m.countTerminal(state)
	m.publishTaskUpdated(t, t.info.Statuses[len(t.info.Statuses)-1])
	delete(f.tasks, t.info.TaskID.Value)
	delete(a.tasks, taskKey(f.id, t.info.TaskID.Value))
	m.addCompleted(f, t)
	m.sendMasterUpdate(f, t.info.TaskID, t.info.AgentID, state, reason, msg)
}

// agentDisconnected handles the end of an agent's stream. The agent stays
// registered; ping timeouts decide when it is unreachable.
func (m *Master) agentDisconnected(a *agent, out *outbox) {
	out.close()
	if a.out != out {
		return
	}
	a.out = nil
	// Nothing can be launched there until it is back (Mesos rescinds a
	// disconnected agent's offers too).
	for _, o := range a.offers {
		m.rescindOffer(o, 0)
	}
	m.alloc.DeactivateAgent(a.id)
	m.log.Warn("agent disconnected", "agent", a.id, "hostname", a.info.Hostname)
}

// pingAgents sends PING to every agent and marks unreachable the ones that
// missed --max_agent_ping_timeouts pings in a row.
func (m *Master) pingAgents() {
	prev := m.pingSeq
	m.pingSeq++
	for _, a := range m.agents {
		if a.unreachable {
			continue
		}
		if prev > 0 && a.lastPongSeq < prev {
			a.missedPings++
		}
		if a.missedPings >= m.cfg.MaxAgentPingTimeouts {
			m.markUnreachable(a)
			continue
		}
		if a.out != nil {
			a.out.push(agentEvent(api.AgentEvent{Type: api.AgentPing, Ping: &api.Ping{Seq: m.pingSeq}}))
		}
	}
}

// markUnreachable removes an agent from allocation and reports its tasks
// TASK_UNREACHABLE (TASK_LOST to frameworks that are not partition-aware).
//
// The registry records the transition first: if it cannot, nothing
// changes, and the next ping round tries again (the agent keeps missing
// pings). Meanwhile the agent stays as it is; a ping round finds its
// change in flight and leaves it be.
func (m *Master) markUnreachable(a *agent) {
	if m.laneBusy(agentLane(a.id)) {
		return
	}
	now := m.now()
	rec := registry.AgentRecord{ID: a.id, State: registry.AgentUnreachable, Info: &a.info, Since: now, Principal: a.principal, PID: a.pid}
	m.commit(agentLane(a.id), []registry.Change{{Agent: &rec}}, func(err error) {
		if err != nil {
			m.log.Error("cannot record the agent as unreachable in the registry; it stays as it is until the write succeeds",
				"agent", a.id, "hostname", a.info.Hostname, "err", err)
			return
		}
		if m.agents[a.id] != a || a.unreachable {
			return
		}
		m.applyUnreachable(a, now)
	})
}

// applyUnreachable takes an agent the registry has as unreachable out of
// the cluster.
func (m *Master) applyUnreachable(a *agent, now time.Time) {
	m.log.Warn("agent unreachable: missed pings", "agent", a.id, "hostname", a.info.Hostname, "missed", a.missedPings)
	a.unreachable = true
	a.unreachableTime = now
	m.counters.agentRemovals++
	if a.out != nil {
		a.out.close()
		a.out = nil
	}
	for _, o := range a.offers {
		m.rescindOffer(o, 0)
	}
	m.alloc.RemoveAgent(a.id)
	m.publishAgentRemoved(a)
	msg := fmt.Sprintf("Agent %s (%s) is unreachable", a.id, a.info.Hostname)
	for _, t := range a.tasks {
		f := m.frameworks[t.info.FrameworkID.Value]
		if f == nil || isTerminal(t.state()) {
			continue
		}
		st := mesos.TASK_UNREACHABLE
		t.info.State = &st
		t.info.Statuses = append(t.info.Statuses, mesos.TaskStatus{TaskID: t.info.TaskID, State: &st, Source: mesos.SOURCE_MASTER.Enum(),
			Reason: mesos.REASON_AGENT_REMOVED.Enum(), Message: &msg, AgentID: &mesos.AgentID{Value: a.id}, Timestamp: floatPtr(timeSecs(now))})
		m.publishTaskUpdated(t, t.info.Statuses[len(t.info.Statuses)-1])
		m.sendMasterUpdate(f, t.info.TaskID, t.info.AgentID, mesos.TASK_UNREACHABLE, mesos.REASON_AGENT_REMOVED, msg)
	}
	m.requestAllocation()
}

func (m *Master) executorMessage(a *agent, msg *api.ExecutorMessage) {
	f := m.frameworks[msg.FrameworkID]
	if f == nil {
		return
	}
	m.sendEvent(f, schedMessageEvent(a.id, msg.ExecutorID, msg.Data))
}

func (m *Master) executorExited(a *agent, e *api.ExecutorExited) {
	key := e.FrameworkID + "/" + e.ExecutorID
	if ex := a.executors[key]; ex != nil && len(ex.Resources) > 0 && !a.unreachable {
		m.alloc.Recover(e.FrameworkID, a.id, mesos.Resources(ex.Resources), 0, m.now())
		m.requestAllocation()
	}
	delete(a.executors, key)
	f := m.frameworks[e.FrameworkID]
	if f == nil {
		return
	}
	m.sendEvent(f, schedFailureEvent(a.id, e.ExecutorID, e.Status))
}

// sameAgentInfo reports whether two AgentInfos are the same record
// (field by field: encoding both to compare was a tenth of the master's
// work per re-registering agent).
func sameAgentInfo(a, b *mesos.AgentInfo) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}
