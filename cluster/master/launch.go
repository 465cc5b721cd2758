package master

import (
	"fmt"
	"regexp"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
)

// accept handles ACCEPT: validates the offers, then each operation.
func (m *Master) accept(f *framework, acc *scheduler.Call_Accept) {
	now := m.now()
	refineOperations(acc.Operations) // resformat.go
	offers, err := m.validateOffers(f, acc.OfferIDs)
	if err != nil {
		// Recover whatever valid offers of this framework were named, and
		// drop every task: TASK_DROPPED (TASK_LOST) with REASON_INVALID_OFFERS.
		for _, id := range acc.OfferIDs {
			if o := f.offers[id.Value]; o != nil {
				m.removeOffer(o)
				m.alloc.Recover(f.id, o.agent.id, o.resources, 0, now)
			}
		}
		state := mesos.TASK_LOST
		if f.partitionAware {
			state = mesos.TASK_DROPPED
		}
		for _, op := range acc.Operations {
			for _, t := range operationTasks(op) {
				m.sendMasterUpdate(f, t.TaskID, t.AgentID, state, mesos.REASON_INVALID_OFFERS, "Task launched with invalid offers: "+err.Error())
			}
		}
		m.requestAllocation()
		return
	}
	a := offers[0].agent
	var remaining mesos.Resources
	for _, o := range offers {
		m.removeOffer(o)
		remaining.Add(o.resources...)
		m.counters.offersAccepted++
	}
	inCall := map[string]bool{}
	for _, op := range acc.Operations {
		switch op.GetType() {
		case mesos.Offer_Operation_LAUNCH:
			if op.Launch == nil {
				continue
			}
			for i := range op.Launch.TaskInfos {
				ti := &op.Launch.TaskInfos[i]
				res, role, verr := m.validateTask(f, a, ti, remaining, inCall)
				inCall[ti.TaskID.Value] = true
				if verr != nil {
					m.counters.tasksErrored++
					m.sendMasterUpdate(f, ti.TaskID, ti.AgentID, mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, verr.Error())
					continue
				}
				remaining.Subtract(res...)
				m.launchTask(f, a, ti, res, role, now)
			}
		case mesos.Offer_Operation_LAUNCH_GROUP:
			if op.LaunchGroup == nil {
				continue
			}
			used := m.launchGroup(f, a, op.LaunchGroup, remaining, inCall, now) // executors.go
			remaining.Subtract(used...)
		default:
			if !isResourceOperation(op.GetType()) {
				// Without operation feedback Mesos drops what it cannot do
				// silently too; an ERROR event would end the subscription.
				m.log.Warn("dropping unsupported offer operation; its resources are returned", "framework", f.id, "operation", op.GetType().String())
				continue
			}
			converted, err := m.applyOfferOperation(f, a, remaining, op)
			if err != nil {
				m.log.Warn("dropping invalid offer operation", "framework", f.id, "agent", a.id, "operation", op.GetType().String(), "err", err)
				continue
			}
			remaining = converted
		}
	}
	if len(remaining) > 0 {
		m.alloc.Recover(f.id, a.id, remaining, refuseDuration(acc.Filters), now)
	}
	m.requestAllocation()
}

func operationTasks(op mesos.Offer_Operation) []mesos.TaskInfo {
	switch {
	case op.Launch != nil:
		return op.Launch.TaskInfos
	case op.LaunchGroup != nil:
		return op.LaunchGroup.TaskGroup.Tasks
	}
	return nil
}

var taskIDRE = regexp.MustCompile(`^[^/\x00-\x1f\x7f]+$`)

// validateTask checks one task of a LAUNCH against the remaining offered
// resources. It returns the task's resources (with allocation_info) and role.
func (m *Master) validateTask(f *framework, a *agent, ti *mesos.TaskInfo, remaining mesos.Resources, inCall map[string]bool) (mesos.Resources, string, error) {
	id := ti.TaskID.Value
	switch {
	case id == "":
		return nil, "", fmt.Errorf("task ID is empty")
	case !taskIDRE.MatchString(id) || id == "." || id == "..":
		return nil, "", fmt.Errorf("task ID %q contains '/' or control characters", id)
	case inCall[id]:
		return nil, "", fmt.Errorf("task ID %q is used more than once in this ACCEPT", id)
	}
	if _, dup := f.tasks[id]; dup {
		return nil, "", fmt.Errorf("task ID %q is already in use by an active task of this framework", id)
	}
	if ti.AgentID.Value != a.id {
		return nil, "", fmt.Errorf("task %s names agent %q but the offers are from agent %s", id, ti.AgentID.Value, a.id)
	}
	if (ti.Command == nil) == (ti.Executor == nil) {
		return nil, "", fmt.Errorf("task %s must set exactly one of 'command' or 'executor'", id)
	}
	if ti.Executor != nil {
		if ti.Executor.GetType() == mesos.ExecutorInfo_DEFAULT {
			return nil, "", fmt.Errorf("task %s: an executor of type DEFAULT runs task groups (LAUNCH_GROUP); LAUNCH takes a CUSTOM executor or a command", id)
		}
		if err := validateExecutorInfo(f, ti.Executor); err != nil {
			return nil, "", fmt.Errorf("task %s: %w", id, err)
		}
	}
	if len(ti.Resources) == 0 {
		return nil, "", fmt.Errorf("task %s uses no resources", id)
	}
	for i := range ti.Resources {
		if err := ti.Resources[i].Validate(); err != nil {
			return nil, "", fmt.Errorf("task %s: resource %q is malformed: %v", id, ti.Resources[i].GetName(), err)
		}
	}
	res := mesos.Resources(ti.Resources)
	role := f.roles()[0]
	if f.multiRole {
		role = ""
		for i := range ti.Resources {
			r := ti.Resources[i].GetAllocationInfo().GetRole()
			if r == "" {
				return nil, "", fmt.Errorf("task %s: resource %q lacks allocation_info.role (required for MULTI_ROLE frameworks)", id, ti.Resources[i].Name)
			}
			if role != "" && r != role {
				return nil, "", fmt.Errorf("task %s uses resources allocated to several roles (%s, %s)", id, role, r)
			}
			role = r
		}
	} else {
		res = withAllocationInfo(ti.Resources, role)
	}
	if ti.Executor != nil {
		// The executor's resources count once, when it is launched.
		execRes, err := m.executorResourcesFor(f, a, ti.Executor, role)
		if err != nil {
			return nil, "", fmt.Errorf("task %s: %w", id, err)
		}
		res = res.Plus(execRes...)
	}
	if missing := uncontained(remaining, res); missing != "" {
		return nil, "", fmt.Errorf("task %s uses more resources than offered: %s not available in the remaining offered resources %s", id, missing, remaining.String())
	}
	return res, role, nil
}

// uncontained returns the first of want's resources not contained in have
// ("" when have contains all of want).
func uncontained(have, want mesos.Resources) string {
	var h, w mesos.Resources
	h.Add(have...)
	w.Add(want...)
	for i := range w {
		ok := false
		for j := range h {
			if h[j].Contains(w[i]) {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Sprintf("%s:%s", w[i].Name, api.FormatValue(w[i].GetType(), w[i].Scalar, w[i].Ranges, w[i].Set, nil))
		}
	}
	return ""
}

// launchTask records a validated task as STAGING and sends it to its agent.
//
// res is what the task takes from the offer, its executor's resources
// included when the executor starts now; the task itself is charged only
// its own resources, the executor's stay with the executor until it exits.
func (m *Master) launchTask(f *framework, a *agent, ti *mesos.TaskInfo, res mesos.Resources, role string, now time.Time) {
	m.recordTask(f, a, ti, nil, withAllocationInfo(ti.Resources, role), role, now)
	fi := f.info
	taskCopy := *ti
	taskCopy.Resources = withAllocationInfo(ti.Resources, role)
	if ti.Executor != nil {
		taskCopy.Executor = m.registerExecutor(f, a, ti.Executor, role)
	}
	if a.out != nil {
		a.out.push(agentEvent(api.AgentEvent{Type: api.AgentRunTask, RunTask: &api.RunTask{Framework: &fi, Task: &taskCopy}}))
	}
}

// recordTask records a validated task as STAGING; res is what it takes
// from the agent (its executor's resources too when it launches one).
// executorID names the executor of a task group's task.
func (m *Master) recordTask(f *framework, a *agent, ti *mesos.TaskInfo, executorID *mesos.ExecutorID, res mesos.Resources, role string, now time.Time) *task {
	st := mesos.TASK_STAGING
	t := &task{role: role, launched: now}
	t.info = mesos.Task{
		Name:        ti.Name,
		TaskID:      ti.TaskID,
		FrameworkID: mesos.FrameworkID{Value: f.id},
		AgentID:     mesos.AgentID{Value: a.id},
		State:       &st,
		Resources:   res,
		Labels:      ti.Labels,
		Discovery:   ti.Discovery,
		Container:   ti.Container,
		HealthCheck: ti.HealthCheck,
		KillPolicy:  ti.KillPolicy,
	}
	if ti.Executor != nil {
		e := ti.Executor.ExecutorID
		t.info.ExecutorID = &e
	}
	if executorID != nil {
		e := *executorID
		t.info.ExecutorID = &e
	}
	// The user the task runs as, as Mesos records it: the command's own,
	// else the executor's, else the framework's.
	if u := taskUser(f, ti); u != "" {
		t.info.User = &u
	}
	f.tasks[ti.TaskID.Value] = t
	a.tasks[taskKey(f.id, ti.TaskID.Value)] = t
	m.counters.tasksLaunched++
	m.publishTaskAdded(t)
	return t
}

// sendMasterUpdate sends a status generated by the master (no uuid, so the
// framework does not acknowledge it).
func (m *Master) sendMasterUpdate(f *framework, taskID mesos.TaskID, agentID mesos.AgentID, state mesos.TaskState, reason mesos.TaskStatus_Reason, msg string) {
	state = m.stateFor(f, state)
	st := mesos.TaskStatus{
		TaskID:    taskID,
		State:     &state,
		Source:    mesos.SOURCE_MASTER.Enum(),
		Reason:    &reason,
		Message:   &msg,
		Timestamp: floatPtr(timeSecs(m.now())),
	}
	if agentID.Value != "" {
		aid := agentID
		st.AgentID = &aid
	}
	m.sendEvent(f, &scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: st}})
}

// stateFor maps partition-aware states to TASK_LOST for frameworks without
// the PARTITION_AWARE capability.
func (m *Master) stateFor(f *framework, s mesos.TaskState) mesos.TaskState {
	if f.partitionAware {
		return s
	}
	switch s {
	case mesos.TASK_DROPPED, mesos.TASK_UNREACHABLE, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR, mesos.TASK_UNKNOWN:
		return mesos.TASK_LOST
	}
	return s
}
