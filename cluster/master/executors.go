package master

import (
	"errors"
	"fmt"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

// Executors in launches: custom executors named by TaskInfo.executor
// (LAUNCH) and the default executor of task groups (LAUNCH_GROUP).
//
// An executor's resources are taken from the offer once, by the launch that
// starts it; later tasks for an executor the agent already runs (the
// offer's executor_ids) add only their own. They are carried by the task
// that started the executor, so they return to the allocator when that task
// ends.

func executorKey(frameworkID, executorID string) string { return frameworkID + "/" + executorID }

// validateExecutorInfo checks what an ExecutorInfo must hold on its own.
func validateExecutorInfo(f *framework, ei *mesos.ExecutorInfo) error {
	id := ei.ExecutorID.Value
	switch {
	case id == "":
		return errors.New("executor ID is empty")
	case !taskIDRE.MatchString(id) || id == "." || id == "..":
		return fmt.Errorf("executor ID %q contains '/' or control characters", id)
	case ei.FrameworkID != nil && ei.FrameworkID.Value != f.id:
		return fmt.Errorf("executor %s names framework %s", id, ei.FrameworkID.Value)
	}
	switch ei.GetType() {
	case mesos.ExecutorInfo_DEFAULT:
		if ei.Command != nil {
			return fmt.Errorf("executor %s: 'command' must not be set for the DEFAULT executor", id)
		}
	default:
		if ei.Command == nil {
			return fmt.Errorf("executor %s: 'command' is required for a CUSTOM executor", id)
		}
	}
	for i := range ei.Resources {
		if err := ei.Resources[i].Validate(); err != nil {
			return fmt.Errorf("executor %s: resource %q is malformed: %v", id, ei.Resources[i].GetName(), err)
		}
	}
	return nil
}

// executorResourcesFor is what launching on ei takes from agent a beyond
// the tasks' own resources: the executor's resources when it does not run
// there yet, nothing when it does. An ExecutorInfo that does not match the
// running executor of the same ID is refused (as Mesos).
func (m *Master) executorResourcesFor(f *framework, a *agent, ei *mesos.ExecutorInfo, role string) (mesos.Resources, error) {
	running := a.executors[executorKey(f.id, ei.ExecutorID.Value)]
	if running == nil {
		return withAllocationInfo(ei.Resources, role), nil
	}
	if running.GetType() != ei.GetType() || running.GetCommand().GetValue() != ei.GetCommand().GetValue() {
		return nil, fmt.Errorf("executor %s is not compatible with the executor of that ID already running on agent %s (type or command differ)",
			ei.ExecutorID.Value, a.id)
	}
	return nil, nil
}

// registerExecutor notes that agent a runs ei for f (offers then list it in
// executor_ids) and returns the ExecutorInfo to send to the agent.
func (m *Master) registerExecutor(f *framework, a *agent, ei *mesos.ExecutorInfo, role string) *mesos.ExecutorInfo {
	exec := *ei
	exec.FrameworkID = &mesos.FrameworkID{Value: f.id}
	exec.Resources = withAllocationInfo(ei.Resources, role)
	key := executorKey(f.id, ei.ExecutorID.Value)
	if a.executors[key] == nil {
		stored := exec
		a.executors[key] = &stored
	}
	return &exec
}

// launchGroup handles a LAUNCH_GROUP operation: the group is validated as a
// whole, and either all of its tasks go to the agent in one RUN_TASK on
// the default executor, or all of them get TASK_ERROR with
// REASON_TASK_GROUP_INVALID. It returns the resources taken from the offer.
func (m *Master) launchGroup(f *framework, a *agent, lg *mesos.Offer_Operation_LaunchGroup, remaining mesos.Resources, inCall map[string]bool, now time.Time) mesos.Resources {
	tasks := lg.TaskGroup.Tasks
	taskRes, execRes, role, err := m.validateGroup(f, a, lg, remaining, inCall)
	for i := range tasks {
		inCall[tasks[i].TaskID.Value] = true
	}
	if err != nil {
		for i := range tasks {
			m.counters.tasksErrored++
			m.sendMasterUpdate(f, tasks[i].TaskID, tasks[i].AgentID, mesos.TASK_ERROR, mesos.REASON_TASK_GROUP_INVALID, err.Error())
		}
		return nil
	}
	var used mesos.Resources
	group := &mesos.TaskGroupInfo{Tasks: make([]mesos.TaskInfo, len(tasks))}
	for i := range tasks {
		res := taskRes[i]
		used = used.Plus(res...)
		m.recordTask(f, a, &tasks[i], &lg.Executor.ExecutorID, res, role, now)
		group.Tasks[i] = tasks[i]
		group.Tasks[i].Resources = taskRes[i]
	}
	used = used.Plus(execRes...) // the executor's own, held until it exits
	exec := m.registerExecutor(f, a, &lg.Executor, role)
	fi := f.info
	if a.out != nil {
		a.out.push(agentEvent(api.AgentEvent{Type: api.AgentRunTask, RunTask: &api.RunTask{Framework: &fi, Group: group, Executor: exec}}))
	}
	m.log.Info("task group launched", "framework", f.id, "agent", a.id, "executor", lg.Executor.ExecutorID.Value, "tasks", len(tasks))
	return used
}

// validateGroup checks a LAUNCH_GROUP: one DEFAULT executor with an ID and
// resources, tasks with unique IDs on this agent and without executors of
// their own, one role, and everything within the remaining offered
// resources. It returns each task's resources (with allocation_info), the
// executor's resources if it is launched now, and the role.
func (m *Master) validateGroup(f *framework, a *agent, lg *mesos.Offer_Operation_LaunchGroup, remaining mesos.Resources, inCall map[string]bool) ([]mesos.Resources, mesos.Resources, string, error) {
	ei := &lg.Executor
	tasks := lg.TaskGroup.Tasks
	if len(tasks) == 0 {
		return nil, nil, "", errors.New("task group has no tasks")
	}
	if ei.GetType() != mesos.ExecutorInfo_DEFAULT {
		return nil, nil, "", fmt.Errorf("task group executor %s must be of type DEFAULT, not %s", ei.ExecutorID.Value, ei.GetType())
	}
	if err := validateExecutorInfo(f, ei); err != nil {
		return nil, nil, "", fmt.Errorf("task group: %w", err)
	}
	if len(ei.Resources) == 0 {
		return nil, nil, "", fmt.Errorf("task group executor %s has no resources", ei.ExecutorID.Value)
	}
	seen := map[string]bool{}
	role := ""
	if !f.multiRole {
		role = f.roles()[0]
	}
	roleOf := func(what string, rs []mesos.Resource) error {
		if !f.multiRole {
			return nil
		}
		for i := range rs {
			r := rs[i].GetAllocationInfo().GetRole()
			if r == "" {
				return fmt.Errorf("%s: resource %q lacks allocation_info.role (required for MULTI_ROLE frameworks)", what, rs[i].Name)
			}
			if role != "" && r != role {
				return fmt.Errorf("task group uses resources allocated to several roles (%s, %s)", role, r)
			}
			role = r
		}
		return nil
	}
	if err := roleOf("executor "+ei.ExecutorID.Value, ei.Resources); err != nil {
		return nil, nil, "", err
	}
	taskRes := make([]mesos.Resources, len(tasks))
	var want mesos.Resources
	for i := range tasks {
		ti := &tasks[i]
		id := ti.TaskID.Value
		switch {
		case id == "":
			return nil, nil, "", errors.New("a task of the group has an empty task ID")
		case !taskIDRE.MatchString(id) || id == "." || id == "..":
			return nil, nil, "", fmt.Errorf("task ID %q contains '/' or control characters", id)
		case seen[id] || inCall[id]:
			return nil, nil, "", fmt.Errorf("task ID %q is used more than once in this ACCEPT", id)
		case f.tasks[id] != nil:
			return nil, nil, "", fmt.Errorf("task ID %q is already in use by an active task of this framework", id)
		case ti.AgentID.Value != a.id:
			return nil, nil, "", fmt.Errorf("task %s names agent %q but the offers are from agent %s", id, ti.AgentID.Value, a.id)
		case ti.Executor != nil:
			return nil, nil, "", fmt.Errorf("task %s must not have an executor of its own: the group runs on executor %s", id, ei.ExecutorID.Value)
		case ti.Command == nil:
			return nil, nil, "", fmt.Errorf("task %s has no command", id)
		case len(ti.Resources) == 0:
			return nil, nil, "", fmt.Errorf("task %s uses no resources", id)
		}
		seen[id] = true
		for j := range ti.Resources {
			if err := ti.Resources[j].Validate(); err != nil {
				return nil, nil, "", fmt.Errorf("task %s: resource %q is malformed: %v", id, ti.Resources[j].GetName(), err)
			}
		}
		if err := roleOf("task "+id, ti.Resources); err != nil {
			return nil, nil, "", err
		}
	}
	for i := range tasks {
		taskRes[i] = withAllocationInfo(tasks[i].Resources, role)
		want = want.Plus(taskRes[i]...)
	}
	execRes, err := m.executorResourcesFor(f, a, ei, role)
	if err != nil {
		return nil, nil, "", err
	}
	want = want.Plus(execRes...)
	if missing := uncontained(remaining, want); missing != "" {
		return nil, nil, "", fmt.Errorf("task group uses more resources than offered: %s not available in the remaining offered resources %s", missing, remaining.String())
	}
	return taskRes, execRes, role, nil
}
