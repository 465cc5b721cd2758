package master

import (
	"bytes"
	"net/http"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/registry"
)

// maxStatuses bounds the status history kept per task.
const maxStatuses = 20

// statusUpdate handles a STATUS_UPDATE from an agent.
//
// The agent retries an update until the framework acknowledges it; the
// master acknowledges on the framework's behalf only when no framework
// ever will: the framework was removed (torn down, or its failover
// timeout expired). A framework this master does not know (yet) may
// still re-subscribe after a master failover, and a task it does not know
// may be one whose ending it must not hide, so such updates are not
// acknowledged: the agent sends them again, with its backoff (so the
// master is not asked in a tight loop), and the framework gets them once
// it is back (resubscribe asks the agents to resend at once).
func (m *Master) statusUpdate(a *agent, u *api.StatusUpdate) {
	st := u.Status
	if st == nil || st.TaskID.Value == "" || len(st.UUID) == 0 || st.State == nil {
		m.counters.invalidStatusUpdates++
		m.log.Warn("dropping malformed status update", "agent", a.id)
		return
	}
	f := m.frameworks[u.FrameworkID]
	if f == nil {
		m.counters.invalidStatusUpdates++
		if m.frameworkRemoved(u.FrameworkID) {
			m.log.Info("acknowledging a status update of a removed framework on its behalf", "agent", a.id,
				"framework", u.FrameworkID, "task", st.TaskID.Value, "state", st.GetState().String())
			m.relayAck(a, u.FrameworkID, st.TaskID.Value, st.UUID)
			return
		}
		m.log.Info("status update for a framework not subscribed with this master; not acknowledged, the agent sends it again",
			"agent", a.id, "framework", u.FrameworkID, "task", st.TaskID.Value, "state", st.GetState().String())
		return
	}
	t := a.tasks[taskKey(u.FrameworkID, st.TaskID.Value)]
	if t == nil {
		m.counters.invalidStatusUpdates++
		m.unknownTaskUpdate(a, f, u)
		return
	}
	m.counters.validStatusUpdates++
	t.heard = true
	status := *st
	aid := mesos.AgentID{Value: a.id}
	status.AgentID = &aid
	if status.Timestamp == nil {
		status.Timestamp = floatPtr(timeSecs(m.now()))
	}
	latest := status.GetState()
	if u.LatestState != nil {
		latest = *u.LatestState
	}
	prev := t.state()
	wasTerminal := isTerminal(prev)
	t.info.State = &latest
	// A retry of the update the framework has not acknowledged yet is
	// recorded already; it only goes out again (and operators hear of the
	// task's latest state if it moved on meanwhile).
	if retry := t.unacked && bytes.Equal(t.info.StatusUpdateUUID, status.UUID); retry {
		if latest != prev {
			m.publishTaskUpdated(t, status)
		}
	} else {
		t.info.Statuses = append(t.info.Statuses, status)
		if n := len(t.info.Statuses) - maxStatuses; n > 0 {
			t.info.Statuses = t.info.Statuses[n:]
		}
		s := status.GetState()
		t.info.StatusUpdateState = &s
		t.info.StatusUpdateUUID = status.UUID
		t.unacked = true
		m.publishTaskUpdated(t, status)
	}
	m.observeLaunch(t, prev, latest)
	if !wasTerminal && isTerminal(latest) {
		m.recoverTaskResources(f, t)
		m.countTerminal(latest)
		m.requestAllocation()
		defer m.checkDrained(a)
	}
	m.forwardUpdate(a, f, t, status)
}

// forwardUpdate sends the framework an agent's update of t (if it is
// connected: otherwise the agent sends it again).
func (m *Master) forwardUpdate(a *agent, f *framework, t *task, status mesos.TaskStatus) {
	s := status.GetState()
	if s == mesos.TASK_KILLING && !f.killingState {
		// The framework does not understand TASK_KILLING: acknowledge it
		// ourselves rather than sending a state it cannot handle.
		t.unacked = false
		m.relayAck(a, f.id, status.TaskID.Value, status.UUID)
		return
	}
	ev := status
	state := m.stateFor(f, s)
	ev.State = &state
	if a.draining && s == mesos.TASK_KILLED {
		ev.Reason = mesos.REASON_AGENT_DRAINING.Enum()
	}
	m.sendEvent(f, &scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: ev}})
}

// unknownTaskUpdate handles an agent's update of a task of f that the
// master does not track on that agent. If it is the terminal update the
// framework already acknowledged (the acknowledgement did not reach the
// agent), that acknowledgement is relayed again. Otherwise the update
// goes to the framework as it is, without changing the master's state,
// as Mesos does: the framework decides, and its acknowledgement is
// relayed (acknowledge); until then the agent retries.
func (m *Master) unknownTaskUpdate(a *agent, f *framework, u *api.StatusUpdate) {
	st := u.Status
	for i := len(f.completed) - 1; i >= 0; i-- {
		done := f.completed[i]
		if done.info.TaskID.Value != st.TaskID.Value || done.info.AgentID.Value != a.id {
			continue
		}
		if !done.unacked && bytes.Equal(done.info.StatusUpdateUUID, st.UUID) {
			m.relayAck(a, f.id, st.TaskID.Value, st.UUID)
			return
		}
		break
	}
	m.log.Info("status update for a task this master does not track; forwarded, not acknowledged", "agent", a.id,
		"framework", f.id, "task", st.TaskID.Value, "state", st.GetState().String())
	status := *st
	status.AgentID = &mesos.AgentID{Value: a.id}
	ev := status
	state := m.stateFor(f, status.GetState())
	ev.State = &state
	m.sendEvent(f, &scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: ev}})
}

// frameworkRemoved reports whether framework id was removed from this
// master (torn down, or its failover timeout expired).
func (m *Master) frameworkRemoved(id string) bool {
	for _, f := range m.completedFrameworks {
		if f.id == id {
			return true
		}
	}
	return false
}

func (m *Master) countTerminal(s mesos.TaskState) {
	if m.counters.terminal == nil {
		m.counters.terminal = map[mesos.TaskState]uint64{}
	}
	m.counters.terminal[s]++
}

func (m *Master) relayAck(a *agent, frameworkID, taskID string, uuid []byte) {
	if a.out != nil {
		a.out.push(agentEvent(api.AgentEvent{Type: api.AgentAcknowledge, Acknowledge: &api.Acknowledge{
			FrameworkID: frameworkID, TaskID: taskID, UUID: uuid}}))
	}
}

// acknowledge handles ACKNOWLEDGE from a framework.
func (m *Master) acknowledge(f *framework, ack *scheduler.Call_Acknowledge) error {
	if len(ack.UUID) != 16 {
		return errorf(http.StatusBadRequest, "acknowledge: 'uuid' must be 16 bytes, got %d", len(ack.UUID))
	}
	a := m.agents[ack.AgentID.Value]
	if a == nil {
		return errorf(http.StatusBadRequest, "acknowledge: agent %s is not registered", ack.AgentID.Value)
	}
	m.counters.validAcks++
	// The acknowledgement goes to the agent even for a task the master
	// does not track (an update unknownTaskUpdate forwarded), as in
	// Mesos: only the agent knows which of its updates it matches.
	m.relayAck(a, f.id, ack.TaskID.Value, ack.UUID)
	t := f.tasks[ack.TaskID.Value]
	if t == nil || t.info.AgentID.Value != a.id || !bytes.Equal(t.info.StatusUpdateUUID, ack.UUID) {
		return nil
	}
	t.unacked = false
	if t.info.StatusUpdateState != nil && isTerminal(*t.info.StatusUpdateState) {
		// The terminal update was acknowledged: the task is complete.
		delete(f.tasks, ack.TaskID.Value)
		delete(a.tasks, taskKey(f.id, ack.TaskID.Value))
		m.addCompleted(f, t)
	}
	return nil
}

// killTask handles KILL.
func (m *Master) killTask(f *framework, taskID string, agentID *mesos.AgentID, policy *mesos.KillPolicy) {
	t := f.tasks[taskID]
	if t == nil {
		// Unknown task: Mesos answers TASK_LOST so the framework can move on.
		var aid mesos.AgentID
		if agentID != nil {
			aid = *agentID
		}
		m.sendMasterUpdate(f, mesos.TaskID{Value: taskID}, aid, mesos.TASK_LOST, mesos.REASON_RECONCILIATION, "Attempted to kill an unknown task")
		return
	}
	a := m.agents[t.info.AgentID.Value]
	if a == nil || a.out == nil {
		// The agent is unreachable; the kill is retried when it comes back
		// (its tasks are reconciled then).
		return
	}
	if policy == nil {
		policy = t.info.KillPolicy
	}
	a.out.push(agentEvent(api.AgentEvent{Type: api.AgentKillTask, KillTask: &api.KillTask{FrameworkID: f.id, TaskID: taskID, KillPolicy: policy}}))
}

// reconcile handles RECONCILE: explicit for the listed tasks, implicit (all
// known tasks) for an empty list.
//
// A known task is answered with the state of the update the framework is
// to see next from its agent (status_update_state), not the task's latest
// state, as Mesos does: a framework told FINISHED by reconciliation while
// its agent still retries an earlier RUNNING would see the task step
// back. A task the master does not know is answered as Mesos answers it,
// by what the master knows of the agent named with it:
//
//   - recovered from the registry after a master failover, not
//     re-registered yet (or no agent named while any such agent is left):
//     no answer. The task may be there; the framework asks again, and is
//     answered once the agent is back. Answering TASK_LOST would tell a
//     framework that is not partition-aware that a task is gone which
//     then comes back.
//   - registered: TASK_UNKNOWN, where Mesos answers TASK_GONE. The task is
//     not on the agent (a re-registering agent reports every task it has,
//     the ended ones not acknowledged included: adoptReportedTasks), but
//     after a master failover that covers two cases the master cannot
//     tell apart: a task whose launch died with the old master, and a
//     task that ended, was acknowledged and was forgotten before it (the
//     agent does not report forgotten tasks, and completed tasks are not
//     in the registry). TASK_GONE would contradict the outcome the
//     framework acknowledged for the second; TASK_UNKNOWN ("this master
//     has no knowledge of the task") is true of both and contradicts
//     nothing. A framework still waiting on such a task sees its agent
//     registered and the task unknown, and gives it up by its own policy.
//     Recording frameworks in the registry does not change this: what
//     tells the two cases apart is whether the agent once ran the task,
//     which only the agent could say (by reporting, when it re-registers,
//     the tasks it ended and forgot after their acknowledgement).
//   - unreachable: TASK_UNREACHABLE; marked gone: TASK_GONE_BY_OPERATOR;
//     unknown: TASK_UNKNOWN.
//
// A framework that is not partition-aware gets TASK_LOST instead of any of
// those.
func (m *Master) reconcile(f *framework, tasks []scheduler.Call_Reconcile_Task) {
	// Completed tasks are answered with their final state (the master's
	// own, for a task it ended), and so are the tasks of an unreachable
	// agent (the master's TASK_UNREACHABLE).
	send := func(t *task, active bool) {
		state := t.info.GetState()
		if active && t.info.StatusUpdateState != nil && state != mesos.TASK_UNREACHABLE {
			state = *t.info.StatusUpdateState
		}
		st := mesos.TaskStatus{
			TaskID:    t.info.TaskID,
			Source:    mesos.SOURCE_MASTER.Enum(),
			Reason:    mesos.REASON_RECONCILIATION.Enum(),
			AgentID:   &mesos.AgentID{Value: t.info.AgentID.Value},
			Timestamp: floatPtr(timeSecs(m.now())),
		}
		if n := len(t.info.Statuses); n > 0 {
			last := t.info.Statuses[n-1]
			st.Message = last.Message
			st.Healthy = last.Healthy
			st.ContainerStatus = last.ContainerStatus
		}
		state = m.stateFor(f, state)
		st.State = &state
		m.sendEvent(f, &scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: st}})
	}
	if len(tasks) == 0 {
		for _, t := range f.tasks {
			send(t, true)
		}
		return
	}
	// The completed tasks by ID, made on first need: a reconciliation of
	// many tasks the master does not hold (after a failover, before their
	// agents are back) would otherwise scan them once per task.
	var completed map[string]*task
	for _, rt := range tasks {
		if t := f.tasks[rt.TaskID.Value]; t != nil {
			send(t, true)
			continue
		}
		if completed == nil {
			completed = make(map[string]*task, len(f.completed))
			for _, t := range f.completed { // the later of a reused ID wins
				completed[t.info.TaskID.Value] = t
			}
		}
		if done := completed[rt.TaskID.Value]; done != nil {
			send(done, false)
			continue
		}
		var aid mesos.AgentID
		if rt.AgentID != nil {
			aid = *rt.AgentID
		}
		state, msg, ok := m.unknownTaskState(aid.Value)
		if !ok {
			m.log.Debug("not answering the reconciliation of a task: its agent has not re-registered since the master restarted",
				"framework", f.id, "task", rt.TaskID.Value, "agent", aid.Value)
			continue
		}
		m.sendMasterUpdate(f, rt.TaskID, aid, state, mesos.REASON_RECONCILIATION, msg) // TASK_LOST if f is not partition-aware
	}
}

// unknownTaskState is the reconciliation answer for a task the master does
// not know, on agent id ("": not named); false: no answer yet (see
// reconcile).
func (m *Master) unknownTaskState(id string) (mesos.TaskState, string, bool) {
	if id == "" {
		for _, rec := range m.admitted {
			if rec.State == registry.AgentAdmitted {
				return 0, "", false
			}
		}
		return mesos.TASK_UNKNOWN, "Reconciliation: Task is unknown", true
	}
	if a := m.agents[id]; a != nil {
		if a.unreachable {
			return mesos.TASK_UNREACHABLE, "Reconciliation: Task is unreachable", true
		}
		return mesos.TASK_UNKNOWN, "Reconciliation: Task is unknown to the master and the agent", true
	}
	rec, ok := m.admitted[id]
	switch {
	case !ok:
		return mesos.TASK_UNKNOWN, "Reconciliation: Task is unknown", true
	case rec.State == registry.AgentAdmitted:
		return 0, "", false
	case rec.State == registry.AgentUnreachable:
		return mesos.TASK_UNREACHABLE, "Reconciliation: Task is unreachable", true
	default:
		return mesos.TASK_GONE_BY_OPERATOR, "Reconciliation: Task is gone", true
	}
}
