package master

import (
	"bytes"
	"net/http"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
)

// maxStatuses bounds the status history kept per task.
const maxStatuses = 20

// statusUpdate handles a STATUS_UPDATE from an agent.
func (m *Master) statusUpdate(a *agent, u *api.StatusUpdate) {
	st := u.Status
	if st == nil || st.TaskID.Value == "" || len(st.UUID) == 0 || st.State == nil {
		m.counters.invalidStatusUpdates++
		m.log.Warn("dropping malformed status update", "agent", a.id)
		return
	}
	f := m.frameworks[u.FrameworkID]
	t := a.tasks[taskKey(u.FrameworkID, st.TaskID.Value)]
	if f == nil || t == nil {
		// The framework or the task is gone (removed, or the task already
		// completed): acknowledge on the framework's behalf so the agent
		// stops retrying.
		m.counters.invalidStatusUpdates++
		if a.out != nil {
			a.out.push(agentEvent(api.AgentEvent{Type: api.AgentAcknowledge, Acknowledge: &api.Acknowledge{
				FrameworkID: u.FrameworkID, TaskID: st.TaskID.Value, UUID: st.UUID}}))
		}
		return
	}
	m.counters.validStatusUpdates++
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
	wasTerminal := isTerminal(t.state())
	t.info.State = &latest
	t.info.Statuses = append(t.info.Statuses, status)
	if n := len(t.info.Statuses) - maxStatuses; n > 0 {
		t.info.Statuses = t.info.Statuses[n:]
	}
	s := status.GetState()
	t.info.StatusUpdateState = &s
	t.info.StatusUpdateUUID = status.UUID
	m.publishTaskUpdated(t, status)
	if !wasTerminal && isTerminal(latest) {
		m.recoverTaskResources(f, t)
		m.countTerminal(latest)
		m.requestAllocation()
		defer m.checkDrained(a)
	}
	if s == mesos.TASK_KILLING && !f.killingState {
		// The framework does not understand TASK_KILLING: acknowledge it
		// ourselves rather than sending a state it cannot handle.
		m.relayAck(a, f.id, st.TaskID.Value, status.UUID)
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
	t := f.tasks[ack.TaskID.Value]
	if t == nil || t.info.AgentID.Value != a.id {
		// Already completed or never known: nothing to do (Mesos logs and drops).
		return nil
	}
	m.counters.validAcks++
	m.relayAck(a, f.id, ack.TaskID.Value, ack.UUID)
	if bytes.Equal(t.info.StatusUpdateUUID, ack.UUID) && t.info.StatusUpdateState != nil && isTerminal(*t.info.StatusUpdateState) {
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
// non-terminal known tasks) for an empty list.
func (m *Master) reconcile(f *framework, tasks []scheduler.Call_Reconcile_Task) {
	send := func(t *task) {
		st := mesos.TaskStatus{
			TaskID:    t.info.TaskID,
			State:     t.info.State,
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
		state := m.stateFor(f, st.GetState())
		st.State = &state
		m.sendEvent(f, &scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: st}})
	}
	if len(tasks) == 0 {
		for _, t := range f.tasks {
			send(t)
		}
		return
	}
	for _, rt := range tasks {
		if t := f.tasks[rt.TaskID.Value]; t != nil {
			send(t)
			continue
		}
		// Completed tasks are reported with their final state.
		var done *task
		for i := len(f.completed) - 1; i >= 0; i-- {
			if f.completed[i].info.TaskID.Value == rt.TaskID.Value {
				done = f.completed[i]
				break
			}
		}
		if done != nil {
			send(done)
			continue
		}
		var aid mesos.AgentID
		if rt.AgentID != nil {
			aid = *rt.AgentID
		}
		state := mesos.TASK_LOST
		if f.partitionAware {
			state = mesos.TASK_UNKNOWN
			if a, ok := m.admitted[aid.Value]; ok && a.State == "gone" {
				state = mesos.TASK_GONE
			}
		}
		m.sendMasterUpdate(f, rt.TaskID, aid, state, mesos.REASON_RECONCILIATION, "Reconciliation: task is unknown")
	}
}
