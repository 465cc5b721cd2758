package master

import (
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/master"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/allocator"
	"github.com/agora-cluster/agora/cluster/api"
)

var roleRE = regexp.MustCompile(`^[^/\x00-\x20\x7f][^\x00-\x20\x7f]*$`)

// validateRole checks a role name as Mesos does.
func validateRole(r string) error {
	if r == "*" {
		return nil
	}
	if r == "" || r == "." || r == ".." || strings.HasPrefix(r, "-") || !roleRE.MatchString(r) || strings.HasSuffix(r, "/") {
		return errorf(http.StatusBadRequest, "invalid role %q: roles are non-empty paths like 'eng' or 'eng/frontend' without spaces, control characters, '.' or '..' parts or a leading '-'", r)
	}
	for _, part := range strings.Split(r, "/") {
		if part == "" || part == "." || part == ".." || part == "*" || strings.HasPrefix(part, "-") {
			return errorf(http.StatusBadRequest, "invalid role %q: bad path component %q", r, part)
		}
	}
	return nil
}

func hasCapability(fi *mesos.FrameworkInfo, c mesos.FrameworkInfo_Capability_Type) bool {
	for _, cap := range fi.Capabilities {
		if cap.GetType() == c {
			return true
		}
	}
	return false
}

// subscribe registers a new framework or re-subscribes (fails over) an
// existing one, and calls done on the loop: the framework's ID is in the
// registry before SUBSCRIBED goes out. It runs on the loop.
func (m *Master) subscribe(sub *scheduler.Call_Subscribe, conn *schedConn, done func(*framework, error)) {
	fi, err := validateSubscribe(sub)
	if err != nil {
		done(nil, err)
		return
	}
	id := fi.GetID().GetValue()
	if id == "" {
		id = m.newID("F")
	}
	m.inLane(frameworkLane(id), func() {
		// An ID this master does not know and never recorded is a
		// framework failing over to a new master, which Mesos accepts.
		if m.tornDown(id) {
			done(nil, errTornDown(id))
			return
		}
		now := m.now()
		info := *fi
		info.ID = &mesos.FrameworkID{Value: id}
		m.recordFramework(&info, now, func(err error) {
			if err != nil {
				// err is the registrar's 503, saying nothing changed.
				done(nil, errorf(http.StatusServiceUnavailable, "framework %s (%s) not subscribed, no ID handed out: %v", id, info.Name, err))
				return
			}
			var f *framework
			if old, ok := m.frameworks[id]; ok {
				f = m.resubscribe(old, &info, sub, conn, now)
			} else {
				f = m.addFramework(&info, sub, conn, now)
			}
			if conn.abandoned {
				// The subscriber left while the registry wrote.
				m.disconnected(f, conn)
			}
			done(f, nil)
		})
	})
}

// validateSubscribe checks a SUBSCRIBE's FrameworkInfo.
func validateSubscribe(sub *scheduler.Call_Subscribe) (*mesos.FrameworkInfo, error) {
	fi := sub.FrameworkInfo
	if fi == nil {
		return nil, errorf(http.StatusBadRequest, "failed to validate scheduler::Call: expecting 'subscribe.framework_info' to be present")
	}
	if fi.User == "" || fi.Name == "" {
		return nil, errorf(http.StatusBadRequest, "failed to validate scheduler::Call: 'framework_info' requires 'user' and 'name'")
	}
	multiRole := hasCapability(fi, mesos.FrameworkInfo_Capability_MULTI_ROLE)
	if multiRole && fi.Role != nil {
		return nil, errorf(http.StatusBadRequest, "'framework_info.role' must not be set for a MULTI_ROLE framework; use 'roles'")
	}
	if !multiRole && len(fi.Roles) > 0 {
		return nil, errorf(http.StatusBadRequest, "'framework_info.roles' requires the MULTI_ROLE capability; use 'role'")
	}
	roles := fi.Roles
	if !multiRole {
		roles = []string{fi.GetRole()}
	}
	for _, r := range roles {
		if err := validateRole(r); err != nil {
			return nil, err
		}
	}
	if ft := fi.GetFailoverTimeout(); ft < 0 {
		return nil, errorf(http.StatusBadRequest, "'framework_info.failover_timeout' must not be negative, got %v", ft)
	}
	return fi, nil
}

// addFramework adds a framework that subscribed to this master for the
// first time and sends it SUBSCRIBED.
func (m *Master) addFramework(info *mesos.FrameworkInfo, sub *scheduler.Call_Subscribe, conn *schedConn, now time.Time) *framework {
	f := &framework{
		id:             info.ID.Value,
		info:           *info,
		multiRole:      hasCapability(info, mesos.FrameworkInfo_Capability_MULTI_ROLE),
		partitionAware: hasCapability(info, mesos.FrameworkInfo_Capability_PARTITION_AWARE),
		killingState:   hasCapability(info, mesos.FrameworkInfo_Capability_TASK_KILLING_STATE),
		conn:           conn,
		tasks:          map[string]*task{},
		offers:         map[string]*offer{},
		registeredTime: now,
		suppressed:     map[string]bool{},
	}
	conn.fw = f
	for _, r := range sub.SuppressedRoles {
		f.suppressed[r] = true
	}
	m.frameworks[f.id] = f
	m.alloc.AddFramework(allocator.FrameworkSpec{ID: f.id, Roles: f.roles(), SuppressedRoles: sub.SuppressedRoles}, nil, true)
	m.log.Info("framework subscribed", "framework", f.id, "name", info.Name, "roles", f.roles())
	m.publishFramework(f, true)
	m.sendSubscribed(f)
	m.requestAllocation()
	return f
}

func (m *Master) resubscribe(f *framework, fi *mesos.FrameworkInfo, sub *scheduler.Call_Subscribe, conn *schedConn, now time.Time) *framework {
	if f.conn != nil {
		// Only one stream per framework: the old one learns it was replaced.
		f.conn.out.push(&scheduler.Event{Type: scheduler.Event_ERROR, Error: &scheduler.Event_Error{Message: "Framework failed over"}})
		f.conn.out.close()
	}
	// Outstanding offers were made to the old connection.
	m.rescindFrameworkOffers(f)
	info := *fi
	info.ID = &mesos.FrameworkID{Value: f.id}
	f.info = info
	f.multiRole = hasCapability(fi, mesos.FrameworkInfo_Capability_MULTI_ROLE)
	f.partitionAware = hasCapability(fi, mesos.FrameworkInfo_Capability_PARTITION_AWARE)
	f.killingState = hasCapability(fi, mesos.FrameworkInfo_Capability_TASK_KILLING_STATE)
	f.conn = conn
	conn.fw = f
	f.recovered = false
	f.failoverDeadline = time.Time{}
	f.reregisteredTime = now
	f.suppressed = map[string]bool{}
	for _, r := range sub.SuppressedRoles {
		f.suppressed[r] = true
	}
	m.alloc.UpdateFramework(allocator.FrameworkSpec{ID: f.id, Roles: f.roles(), SuppressedRoles: sub.SuppressedRoles})
	m.alloc.ActivateFramework(f.id)
	m.log.Info("framework re-subscribed", "framework", f.id, "name", info.Name)
	m.publishFramework(f, false)
	m.sendSubscribed(f)
	m.resendUnacknowledged(f)
	m.requestAllocation()
	return f
}

// resendUnacknowledged asks the agents to send again, now, the updates of
// f's tasks that f has not acknowledged. Those that came while f was away
// (a master failover: its tasks ended while no master was up) went
// nowhere, and the agents' own retries back off up to minutes. An update
// no copy of which has come since its agent registered is not asked for:
// the copy the agent sends once registered is on its way, and f gets it
// (if that copy does not get through, f gets the agent's retry of it).
func (m *Master) resendUnacknowledged(f *framework) {
	byAgent := map[*agent][]string{}
	for id, t := range f.tasks {
		if !t.unacked || !t.heard {
			continue
		}
		if a := m.agents[t.info.AgentID.Value]; a != nil && a.out != nil && !a.unreachable {
			byAgent[a] = append(byAgent[a], id)
		}
	}
	for a, ids := range byAgent {
		sort.Strings(ids)
		a.out.push(agentEvent(api.AgentEvent{Type: api.AgentReconcileTasks, ReconcileTasks: &api.ReconcileTasks{FrameworkID: f.id, TaskIDs: ids}}))
	}
}

func (m *Master) sendSubscribed(f *framework) {
	hb := m.cfg.HeartbeatInterval.Seconds()
	mi := m.info
	f.conn.out.push(&scheduler.Event{
		Type: scheduler.Event_SUBSCRIBED,
		Subscribed: &scheduler.Event_Subscribed{
			FrameworkID:              &mesos.FrameworkID{Value: f.id},
			HeartbeatIntervalSeconds: &hb,
			MasterInfo:               &mi,
		},
	})
	f.conn.out.push(&scheduler.Event{Type: scheduler.Event_HEARTBEAT})
}

// disconnected handles the end of a framework's stream.
func (m *Master) disconnected(f *framework, conn *schedConn) {
	conn.out.close()
	if f.conn != conn || f.removed {
		return // already replaced or removed
	}
	f.conn = nil
	now := m.now()
	f.unregisteredTime = now
	m.rescindFrameworkOffers(f)
	m.alloc.DeactivateFramework(f.id)
	timeout := failoverTimeout(&f.info)
	f.failoverDeadline = now.Add(timeout)
	if timeout <= 0 {
		m.log.Info("framework disconnected without failover timeout; removing it", "framework", f.id)
		// If the registry refuses, the housekeeping pass tries again.
		m.teardownFramework(f, "framework disconnected and has no failover_timeout", func(error) {})
		return
	}
	m.log.Info("framework disconnected; waiting for it to fail over", "framework", f.id, "failover_timeout", timeout)
}

// removeFramework tears a framework down: its tasks are killed, its offers
// rescinded and its executors shut down. The registry has it completed
// already (teardownFramework).
func (m *Master) removeFramework(f *framework, why string) {
	if f.removed {
		return
	}
	f.removed = true
	if f.conn != nil {
		f.conn.out.close()
		f.conn = nil
	}
	m.rescindFrameworkOffers(f)
	notified := map[*agent]bool{}
	now := m.now()
	for _, t := range f.tasks {
		a := m.agents[t.info.AgentID.Value]
		if !isTerminal(t.state()) {
			m.recoverTaskResources(f, t)
			st := mesos.TASK_KILLED
			t.info.State = &st
			t.info.Statuses = append(t.info.Statuses, mesos.TaskStatus{
				TaskID: t.info.TaskID, State: &st, Source: mesos.SOURCE_MASTER.Enum(),
				Reason: mesos.REASON_FRAMEWORK_REMOVED.Enum(), Message: &why,
				AgentID: &t.info.AgentID, Timestamp: floatPtr(timeSecs(now)),
			})
			m.publishTaskUpdated(t, t.info.Statuses[len(t.info.Statuses)-1])
		}
		if a != nil {
			delete(a.tasks, taskKey(f.id, t.info.TaskID.Value))
			if !notified[a] && a.out != nil {
				notified[a] = true
				a.out.push(agentEvent(shutdownFrameworkEvent(f.id)))
			}
		}
		m.addCompleted(f, t)
	}
	f.tasks = map[string]*task{}
	// Agents with executors but no tasks of this framework still need
	// telling; the executors' resources go with the framework.
	for _, a := range m.agents {
		had := false
		for key := range a.executors {
			if strings.HasPrefix(key, f.id+"/") {
				delete(a.executors, key)
				had = true
			}
		}
		if had && !notified[a] && a.out != nil {
			a.out.push(agentEvent(shutdownFrameworkEvent(f.id)))
		}
	}
	m.alloc.RemoveFramework(f.id)
	delete(m.frameworks, f.id)
	f.unregisteredTime = now
	m.completedFrameworks = append(m.completedFrameworks, f)
	if n := len(m.completedFrameworks) - m.cfg.MaxCompletedFrameworks; n > 0 {
		m.completedFrameworks = m.completedFrameworks[n:]
	}
	m.log.Info("framework removed", "framework", f.id, "reason", why)
	m.publishFrameworkRemoved(f)
	m.requestAllocation()
}

func (m *Master) addCompleted(f *framework, t *task) {
	f.completed = append(f.completed, t)
	if n := len(f.completed) - m.cfg.MaxCompletedTasksPerFramework; n > 0 {
		f.completed = f.completed[n:]
	}
}

// expire removes frameworks whose failover timeout passed and times out
// offers when --offer_timeout is set.
func (m *Master) expire() {
	now := m.now()
	m.expireRecoveredAgents(now) // reregister.go
	m.checkRecoveryGC(now)       // recoverygc.go
	m.gcRegistry(now)            // registry_gc.go
	for _, f := range m.frameworks {
		if f.conn == nil && !f.failoverDeadline.IsZero() && !now.Before(f.failoverDeadline) && !m.laneBusy(frameworkLane(f.id)) {
			m.log.Info("framework failover timeout expired", "framework", f.id, "recovered", f.recovered)
			m.teardownFramework(f, "framework failover timeout expired", func(error) {})
		}
	}
	if m.cfg.OfferTimeout > 0 {
		for _, o := range m.offers {
			if now.Sub(o.created) > m.cfg.OfferTimeout {
				m.rescindOffer(o, 0)
			}
		}
	}
}

// heartbeat sends HEARTBEAT to every connected framework.
func (m *Master) heartbeat() {
	for _, f := range m.frameworks {
		if f.conn != nil {
			f.conn.out.push(&scheduler.Event{Type: scheduler.Event_HEARTBEAT})
		}
	}
	// Operator subscribers too, as Mesos's master does: their SUBSCRIBED
	// names the interval, and a client that hears nothing for a few of
	// them takes the stream for dead.
	for sub := range m.operatorSubs {
		sub.out.push(&master.Event{Type: master.Event_HEARTBEAT})
	}
}

// sendEvent pushes an event to a framework if it is connected.
func (m *Master) sendEvent(f *framework, ev *scheduler.Event) {
	if f.conn != nil {
		f.conn.out.push(ev)
	}
}

func floatPtr(f float64) *float64 { return &f }
