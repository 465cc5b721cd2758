package master

import (
	"net/http"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/allocator"
)

// handleCall runs a non-SUBSCRIBE scheduler call on the loop and answers
// through reply: at once, or once the registry has what the call changes
// (TEARDOWN, UPDATE_FRAMEWORK).
func (m *Master) handleCall(c *scheduler.Call, streamID string, reply func(error)) {
	id := c.FrameworkID.Value
	f, ok := m.frameworks[id]
	if !ok || f.conn == nil {
		reply(errorf(http.StatusForbidden, "framework %s is not subscribed: SUBSCRIBE first", id))
		return
	}
	if streamID == "" {
		reply(errorf(http.StatusBadRequest, "all non-subscribe calls should include the 'Mesos-Stream-Id' header"))
		return
	}
	if streamID != f.conn.streamID {
		reply(errorf(http.StatusBadRequest, "the stream ID '%s' included in this request didn't match the stream ID currently associated with framework ID %s", streamID, id))
		return
	}
	switch c.GetType() {
	case scheduler.Call_TEARDOWN:
		m.teardownFramework(f, "framework sent TEARDOWN", reply)
	case scheduler.Call_UPDATE_FRAMEWORK:
		m.updateFramework(f, c.UpdateFramework, reply)
	default:
		reply(m.frameworkCall(f, c))
	}
}

// frameworkCall runs the calls that change nothing durable.
func (m *Master) frameworkCall(f *framework, c *scheduler.Call) error {
	switch c.GetType() {
	case scheduler.Call_ACCEPT:
		m.accept(f, c.Accept)
	case scheduler.Call_DECLINE:
		m.decline(f, c.Decline.OfferIDs, c.Decline.Filters)
	case scheduler.Call_REVIVE:
		roles := c.Revive.GetRoles()
		if err := m.checkRoles(f, roles); err != nil {
			return err
		}
		m.setSuppressed(f, roles, false)
		m.alloc.Revive(f.id, roles)
		m.requestAllocation()
	case scheduler.Call_SUPPRESS:
		roles := c.Suppress.GetRoles()
		if err := m.checkRoles(f, roles); err != nil {
			return err
		}
		m.setSuppressed(f, roles, true)
		m.alloc.Suppress(f.id, roles)
	case scheduler.Call_KILL:
		m.killTask(f, c.Kill.TaskID.Value, c.Kill.AgentID, c.Kill.KillPolicy)
	case scheduler.Call_SHUTDOWN:
		m.shutdownExecutor(f, c.Shutdown.AgentID.Value, c.Shutdown.ExecutorID.Value)
	case scheduler.Call_ACKNOWLEDGE:
		return m.acknowledge(f, c.Acknowledge)
	case scheduler.Call_RECONCILE:
		m.reconcile(f, c.Reconcile.Tasks)
	case scheduler.Call_MESSAGE:
		m.frameworkMessage(f, c.Message)
	case scheduler.Call_REQUEST:
		// Requests are ignored by the built-in allocator, as in Mesos.
	case scheduler.Call_ACCEPT_INVERSE_OFFERS:
		if c.AcceptInverseOffers != nil {
			m.answerInverseOffers(f, c.AcceptInverseOffers.InverseOfferIDs, true)
		}
	case scheduler.Call_DECLINE_INVERSE_OFFERS:
		if c.DeclineInverseOffers != nil {
			m.answerInverseOffers(f, c.DeclineInverseOffers.InverseOfferIDs, false)
		}
	default:
		return errorf(http.StatusNotImplemented, "call type %s is not implemented", c.GetType())
	}
	return nil
}

// updateFramework handles UPDATE_FRAMEWORK: a new FrameworkInfo (principal,
// user and checkpoint may not change) and suppressed roles, recorded in the
// registry (when it differs) before it applies. Offers made under the old
// roles are rescinded.
func (m *Master) updateFramework(f *framework, u *scheduler.Call_UpdateFramework, done func(error)) {
	if err := validateUpdate(f, u); err != nil {
		done(err)
		return
	}
	m.inLane(frameworkLane(f.id), func() {
		if f.removed || m.frameworks[f.id] != f {
			done(errorf(http.StatusForbidden, "framework %s is not subscribed: SUBSCRIBE first", f.id))
			return
		}
		fi := u.FrameworkInfo
		m.recordFramework(&fi, m.now(), func(err error) {
			if err != nil {
				done(err)
				return
			}
			if f.removed {
				done(errorf(http.StatusForbidden, "framework %s is not subscribed: SUBSCRIBE first", f.id))
				return
			}
			m.applyUpdate(f, u)
			done(nil)
		})
	})
}

// validateUpdate checks an UPDATE_FRAMEWORK against f.
func validateUpdate(f *framework, u *scheduler.Call_UpdateFramework) error {
	if u == nil {
		return missingField("update_framework")
	}
	fi := u.FrameworkInfo
	if id := fi.GetID().GetValue(); id != f.id {
		return errorf(http.StatusBadRequest, "'update_framework.framework_info.id' (%q) must be the framework's ID %s", id, f.id)
	}
	if fi.User != f.info.User || fi.GetPrincipal() != f.info.GetPrincipal() || fi.GetCheckpoint() != f.info.GetCheckpoint() {
		return errorf(http.StatusBadRequest, "UPDATE_FRAMEWORK may not change 'user', 'principal' or 'checkpoint'")
	}
	if fi.Name == "" {
		return errorf(http.StatusBadRequest, "'framework_info.name' is required")
	}
	multiRole := hasCapability(&fi, mesos.FrameworkInfo_Capability_MULTI_ROLE)
	roles := fi.Roles
	if !multiRole {
		if len(fi.Roles) > 0 {
			return errorf(http.StatusBadRequest, "'framework_info.roles' requires the MULTI_ROLE capability; use 'role'")
		}
		roles = []string{fi.GetRole()}
	}
	for _, r := range roles {
		if err := validateRole(r); err != nil {
			return err
		}
	}
	return nil
}

func (m *Master) applyUpdate(f *framework, u *scheduler.Call_UpdateFramework) {
	fi := u.FrameworkInfo
	multiRole := hasCapability(&fi, mesos.FrameworkInfo_Capability_MULTI_ROLE)
	m.rescindFrameworkOffers(f)
	f.info = fi
	f.multiRole = multiRole
	f.partitionAware = hasCapability(&fi, mesos.FrameworkInfo_Capability_PARTITION_AWARE)
	f.killingState = hasCapability(&fi, mesos.FrameworkInfo_Capability_TASK_KILLING_STATE)
	f.suppressed = map[string]bool{}
	for _, r := range u.SuppressedRoles {
		f.suppressed[r] = true
	}
	m.alloc.UpdateFramework(allocator.FrameworkSpec{ID: f.id, Roles: f.roles(), SuppressedRoles: u.SuppressedRoles})
	m.publishFramework(f, false)
	m.requestAllocation()
}

func (m *Master) checkRoles(f *framework, roles []string) error {
	mine := map[string]bool{}
	for _, r := range f.roles() {
		mine[r] = true
	}
	for _, r := range roles {
		if !mine[r] {
			return errorf(http.StatusBadRequest, "role %q is not one of framework %s's roles %v", r, f.id, f.roles())
		}
	}
	return nil
}

func (m *Master) setSuppressed(f *framework, roles []string, v bool) {
	if len(roles) == 0 {
		roles = f.roles()
	}
	for _, r := range roles {
		if v {
			f.suppressed[r] = true
		} else {
			delete(f.suppressed, r)
		}
	}
}

func (m *Master) frameworkMessage(f *framework, msg *scheduler.Call_Message) {
	a := m.agents[msg.AgentID.Value]
	if a == nil || a.out == nil {
		m.log.Warn("dropping framework message to an unknown or disconnected agent", "framework", f.id, "agent", msg.AgentID.Value)
		return
	}
	a.out.push(agentEventFrameworkMessage(f.id, msg.ExecutorID.Value, msg.Data))
}

func (m *Master) shutdownExecutor(f *framework, agentID, executorID string) {
	a := m.agents[agentID]
	if a == nil || a.out == nil {
		return
	}
	a.out.push(agentEventShutdownExecutor(f.id, executorID))
}

// recoverTaskResources returns a task's resources to the allocator.
func (m *Master) recoverTaskResources(f *framework, t *task) {
	m.alloc.Recover(f.id, t.info.AgentID.Value, mesos.Resources(t.info.Resources), 0, m.now())
}
