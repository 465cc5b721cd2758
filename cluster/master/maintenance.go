package master

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mallocator "github.com/mesos/mesos-go/api/v1/lib/allocator"
	mmaint "github.com/mesos/mesos-go/api/v1/lib/maintenance"
	"github.com/mesos/mesos-go/api/v1/lib/master"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/registry"
)

// Maintenance follows Mesos: the operator posts a schedule of windows for
// machines (hostname and/or IP); their agents are DRAINING — offers carry
// the unavailability and frameworks running there get inverse offers —
// until /machine/down takes them DOWN (agents removed, their tasks gone)
// and /machine/up brings them back. DRAIN_AGENT, DEACTIVATE_AGENT and
// REACTIVATE_AGENT act on single agents.

// maintenanceState is the loop-owned maintenance bookkeeping.
type maintenanceState struct {
	schedule mmaint.Schedule
	down     map[string]mesos.MachineID // by machineKey
	// inverse are outstanding inverse offers; responses by machine.
	inverse   map[string]*inverseOffer
	responses map[string][]mallocator.InverseOfferStatus
}

type inverseOffer struct {
	id    string
	fw    *framework
	agent *agent
}

func machineKey(id mesos.MachineID) string { return id.GetHostname() + "/" + id.GetIP() }

// agentMatches reports whether a machine ID names the agent's machine.
func (m *Master) agentMatches(a *agent, id mesos.MachineID) bool {
	if h := id.GetHostname(); h != "" && h != a.info.Hostname {
		return false
	}
	if ip := id.GetIP(); ip != "" && ip != agentIP(a) {
		return false
	}
	return id.GetHostname() != "" || id.GetIP() != ""
}

func (m *Master) machineDown(hostname, ip string) bool {
	for _, id := range m.maint.down {
		if (id.GetHostname() == "" || id.GetHostname() == hostname) && (id.GetIP() == "" || id.GetIP() == ip) {
			return true
		}
	}
	return false
}

func (m *Master) restoreMaintenance() error {
	m.maint.down = map[string]mesos.MachineID{}
	m.maint.inverse = map[string]*inverseOffer{}
	m.maint.responses = map[string][]mallocator.InverseOfferStatus{}
	if len(m.policy.Maintenance) > 0 {
		if err := json.Unmarshal(m.policy.Maintenance, &m.maint.schedule); err != nil {
			return fmt.Errorf("restore maintenance schedule: %w", err)
		}
	}
	for _, key := range m.policy.Down {
		var id mesos.MachineID
		if err := json.Unmarshal([]byte(key), &id); err == nil {
			m.maint.down[machineKey(id)] = id
		}
	}
	return nil
}

// maintenancePolicy is the policy with a maintenance schedule and set of
// down machines, for the registry.
func (m *Master) maintenancePolicy(schedule mmaint.Schedule, down map[string]mesos.MachineID) (registry.Policy, error) {
	p := m.policy
	b, err := json.Marshal(&schedule)
	if err != nil {
		return p, errorf(http.StatusInternalServerError, "encode the maintenance schedule: %v", err)
	}
	p.Maintenance = b
	p.Down = nil
	for _, id := range down {
		b, _ := json.Marshal(&id)
		p.Down = append(p.Down, string(b))
	}
	sort.Strings(p.Down)
	return p, nil
}

// commitMaintenance records a new schedule and set of down machines,
// then makes them the master's and calls done (on the loop); if the
// registry refuses, nothing changes and done gets the error. The caller
// is a start of the policy lane.
func (m *Master) commitMaintenance(schedule mmaint.Schedule, down map[string]mesos.MachineID, done func(error)) {
	p, err := m.maintenancePolicy(schedule, down)
	if err != nil {
		done(err)
		return
	}
	m.commit(policyLane, []registry.Change{{Policy: &p}}, func(err error) {
		if err != nil {
			done(err)
			return
		}
		m.policy = p
		m.maint.schedule = schedule
		m.maint.down = down
		done(nil)
	})
}

// windowFor returns the maintenance window covering an agent, if any.
func (m *Master) windowFor(a *agent) *mmaint.Window {
	for i := range m.maint.schedule.Windows {
		w := &m.maint.schedule.Windows[i]
		for _, id := range w.MachineIDs {
			if m.agentMatches(a, id) {
				return w
			}
		}
	}
	return nil
}

// applySchedule tells the allocator which agents are draining and sends
// inverse offers to frameworks running on them.
func (m *Master) applySchedule() {
	for _, a := range m.agents {
		if a.unreachable {
			continue
		}
		if w := m.windowFor(a); w != nil {
			start := time.Unix(0, w.Unavailability.Start.Nanoseconds)
			var dur time.Duration
			if w.Unavailability.Duration != nil {
				dur = time.Duration(w.Unavailability.Duration.Nanoseconds)
			}
			m.alloc.SetAgentUnavailability(a.id, start, dur)
		} else {
			m.alloc.ClearAgentUnavailability(a.id)
		}
	}
	m.sendInverseOffers()
	m.requestAllocation()
}

func (m *Master) sendInverseOffers() {
	// Withdraw the outstanding ones; the allocator says who holds what now.
	for id, io := range m.maint.inverse {
		delete(m.maint.inverse, id)
		m.sendEvent(io.fw, &scheduler.Event{Type: scheduler.Event_RESCIND_INVERSE_OFFER,
			RescindInverseOffer: &scheduler.Event_RescindInverseOffer{InverseOfferID: mesos.OfferID{Value: id}}})
	}
	byFramework := map[*framework][]mesos.InverseOffer{}
	for _, d := range m.alloc.InverseOffers() {
		f, a := m.frameworks[d.FrameworkID], m.agents[d.AgentID]
		if f == nil || a == nil || f.conn == nil {
			continue
		}
		id := m.newID("I")
		m.maint.inverse[id] = &inverseOffer{id: id, fw: f, agent: a}
		un := mesos.Unavailability{Start: mesos.TimeInfo{Nanoseconds: d.Unavailability.Start.UnixNano()}}
		if d.Unavailability.Duration > 0 {
			un.Duration = &mesos.DurationInfo{Nanoseconds: int64(d.Unavailability.Duration)}
		}
		aid := mesos.AgentID{Value: a.id}
		res := d.Resources
		if !f.multiRole {
			res = stripAllocationInfo(res)
		}
		if !refines(f) {
			res = toPreRefinement(res)
		}
		byFramework[f] = append(byFramework[f], mesos.InverseOffer{OfferID: mesos.OfferID{Value: id},
			FrameworkID: mesos.FrameworkID{Value: f.id}, AgentID: &aid, Unavailability: un, Resources: res})
	}
	for f, ios := range byFramework {
		m.sendEvent(f, &scheduler.Event{Type: scheduler.Event_INVERSE_OFFERS, InverseOffers: &scheduler.Event_InverseOffers{InverseOffers: ios}})
	}
}

// answerInverseOffers records ACCEPT/DECLINE_INVERSE_OFFERS.
func (m *Master) answerInverseOffers(f *framework, ids []mesos.OfferID, accept bool) {
	status := mallocator.InverseOfferStatus_DECLINE
	if accept {
		status = mallocator.InverseOfferStatus_ACCEPT
	}
	for _, id := range ids {
		io := m.maint.inverse[id.Value]
		if io == nil || io.fw != f {
			continue
		}
		delete(m.maint.inverse, id.Value)
		w := m.windowFor(io.agent)
		if w == nil {
			continue
		}
		for _, mid := range w.MachineIDs {
			if m.agentMatches(io.agent, mid) {
				key := machineKey(mid)
				m.maint.responses[key] = append(m.maint.responses[key], mallocator.InverseOfferStatus{
					Status: &status, FrameworkID: mesos.FrameworkID{Value: f.id}, Timestamp: mesos.TimeInfo{Nanoseconds: m.now().UnixNano()}})
			}
		}
	}
}

// updateSchedule replaces the schedule after validating it, once the
// registry has it.
func (m *Master) updateSchedule(s mmaint.Schedule, done func(error)) {
	m.inLane(policyLane, func() {
		if err := m.validateSchedule(s); err != nil {
			done(err)
			return
		}
		m.commitMaintenance(s, m.maint.down, func(err error) {
			if err == nil {
				m.applySchedule()
			}
			done(err)
		})
	})
}

func (m *Master) validateSchedule(s mmaint.Schedule) error {
	seen := map[string]bool{}
	for _, w := range s.Windows {
		if len(w.MachineIDs) == 0 {
			return errorf(http.StatusBadRequest, "a maintenance window lists no machines")
		}
		for _, id := range w.MachineIDs {
			if id.GetHostname() == "" && id.GetIP() == "" {
				return errorf(http.StatusBadRequest, "a machine ID needs a hostname or an ip")
			}
			if seen[machineKey(id)] {
				return errorf(http.StatusBadRequest, "machine %s appears in more than one window", machineKey(id))
			}
			seen[machineKey(id)] = true
		}
		if w.Unavailability.Duration != nil && w.Unavailability.Duration.Nanoseconds < 0 {
			return errorf(http.StatusBadRequest, "a maintenance window has a negative duration")
		}
	}
	// A down machine must stay in the schedule until it is brought up.
	for key, id := range m.maint.down {
		if !seen[key] {
			return errorf(http.StatusBadRequest, "machine %s is down; bring it up before removing it from the schedule", machineKey(id))
		}
	}
	return nil
}

// startMaintenance takes scheduled machines down: once the registry has
// them down, their agents are removed (each once the registry has it
// gone) and their tasks are gone. done is called when all that is over.
func (m *Master) startMaintenance(ids []mesos.MachineID, done func(error)) {
	m.inLane(policyLane, func() {
		for _, id := range ids {
			scheduled := false
			for _, w := range m.maint.schedule.Windows {
				for _, mid := range w.MachineIDs {
					if machineKey(mid) == machineKey(id) {
						scheduled = true
					}
				}
			}
			if !scheduled {
				done(errorf(http.StatusBadRequest, "machine %s is not in the maintenance schedule; schedule it first", machineKey(id)))
				return
			}
		}
		down := map[string]mesos.MachineID{}
		for k, id := range m.maint.down {
			down[k] = id
		}
		for _, id := range ids {
			down[machineKey(id)] = id
		}
		m.commitMaintenance(m.maint.schedule, down, func(err error) {
			if err != nil {
				done(err)
				return
			}
			m.removeMachinesAgents(ids, done)
		})
	})
}

// removeMachinesAgents removes the agents of machines now down, each
// once the registry has it gone, and calls done with the failures.
func (m *Master) removeMachinesAgents(ids []mesos.MachineID, done func(error)) {
	var targets []*agent
	for _, a := range m.sortedAgents() {
		for _, id := range ids {
			if m.agentMatches(a, id) {
				targets = append(targets, a)
				break
			}
		}
	}
	left := len(targets)
	var failed []string
	finish := func() {
		if len(failed) > 0 {
			done(errorf(http.StatusServiceUnavailable, "the machines are down, but the registry could not record these agents gone, so they stay (post /machine/down again to retry): %s", strings.Join(failed, "; ")))
			return
		}
		done(nil)
	}
	if left == 0 {
		finish()
		return
	}
	for _, a := range targets {
		a := a
		m.inLane(agentLane(a.id), func() {
			m.removeAgentForMaintenance(a, func(err error) {
				if err != nil {
					failed = append(failed, err.Error())
				}
				if left--; left == 0 {
					finish()
				}
			})
		})
	}
}

// stopMaintenance brings machines back up and out of the schedule.
func (m *Master) stopMaintenance(ids []mesos.MachineID, done func(error)) {
	m.inLane(policyLane, func() {
		for _, id := range ids {
			if _, ok := m.maint.down[machineKey(id)]; !ok {
				done(errorf(http.StatusBadRequest, "machine %s is not down", machineKey(id)))
				return
			}
		}
		down := map[string]mesos.MachineID{}
		for k, id := range m.maint.down {
			down[k] = id
		}
		gone := map[string]bool{}
		for _, id := range ids {
			delete(down, machineKey(id))
			gone[machineKey(id)] = true
		}
		var schedule mmaint.Schedule
		for _, w := range m.maint.schedule.Windows {
			var kept []mesos.MachineID
			for _, mid := range w.MachineIDs {
				if !gone[machineKey(mid)] {
					kept = append(kept, mid)
				}
			}
			if len(kept) > 0 {
				w.MachineIDs = kept
				schedule.Windows = append(schedule.Windows, w)
			}
		}
		m.commitMaintenance(schedule, down, func(err error) {
			if err == nil {
				for key := range gone {
					delete(m.maint.responses, key)
				}
			}
			done(err)
		})
	})
}

// removeAgentForMaintenance removes an agent of a machine going down,
// once the registry records it gone; if the registry cannot, nothing
// changes and done's error says so. The caller is a start of the agent's
// lane.
func (m *Master) removeAgentForMaintenance(a *agent, done func(error)) {
	if m.agents[a.id] != a {
		done(nil) // removed already
		return
	}
	rec := registry.AgentRecord{ID: a.id, State: registry.AgentGone, Info: &a.info, Since: m.now(), Principal: a.principal, PID: a.pid}
	m.commit(agentLane(a.id), []registry.Change{{Agent: &rec}}, func(err error) {
		if err != nil {
			m.log.Error("cannot record the agent as gone in the registry; it stays", "agent", a.id, "err", err)
			done(fmt.Errorf("agent %s (%s): %w", a.id, a.info.Hostname, err))
			return
		}
		if m.agents[a.id] == a {
			m.applyGone(a, rec)
		}
		done(nil)
	})
}

// applyGone removes an agent the registry has as gone.
func (m *Master) applyGone(a *agent, rec registry.AgentRecord) {
	m.log.Info("agent removed: its machine is down for maintenance", "agent", a.id, "hostname", a.info.Hostname)
	for _, o := range a.offers {
		m.rescindOffer(o, 0)
	}
	if a.out != nil {
		// The agent kills what it runs for these frameworks.
		for fid := range m.frameworkIDsOn(a) {
			a.out.push(agentEvent(shutdownFrameworkEvent(fid)))
		}
		a.out.close()
		a.out = nil
	}
	for _, t := range a.tasks {
		f := m.frameworks[t.info.FrameworkID.Value]
		if f == nil || isTerminal(t.state()) {
			continue
		}
		m.recoverTaskResources(f, t)
		m.completeTask(f, a, t, mesos.TASK_GONE_BY_OPERATOR, mesos.REASON_AGENT_REMOVED_BY_OPERATOR, "Agent "+a.id+" was taken down for maintenance")
	}
	m.alloc.RemoveAgent(a.id)
	m.publishAgentRemoved(a)
	delete(m.agents, a.id)
	m.admitted[a.id] = rec
	m.counters.agentRemovals++
	m.requestAllocation()
}

func (m *Master) frameworkIDsOn(a *agent) map[string]bool {
	out := map[string]bool{}
	for _, t := range a.tasks {
		out[t.info.FrameworkID.Value] = true
	}
	return out
}

// drainAgent deactivates an agent and kills its tasks (DRAIN_AGENT).
func (m *Master) drainAgent(agentID string, maxGrace *time.Duration, markGone bool) error {
	a := m.agents[agentID]
	if a == nil || a.unreachable {
		return errorf(http.StatusBadRequest, "agent %s is not registered", agentID)
	}
	a.draining = true
	a.drainMarkGone = markGone
	m.alloc.DeactivateAgent(a.id)
	for _, o := range a.offers {
		m.rescindOffer(o, 0)
	}
	for _, t := range a.tasks {
		if isTerminal(t.state()) || a.out == nil {
			continue
		}
		policy := t.info.KillPolicy
		if maxGrace != nil {
			g := *maxGrace
			if policy == nil || policy.GracePeriod == nil || time.Duration(policy.GracePeriod.Nanoseconds) > g {
				policy = &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(g)}}
			}
		}
		a.out.push(agentEvent(api.AgentEvent{Type: api.AgentKillTask, KillTask: &api.KillTask{
			FrameworkID: t.info.FrameworkID.Value, TaskID: t.info.TaskID.Value, KillPolicy: policy}}))
	}
	m.checkDrained(a)
	return nil
}

// checkDrained finishes a drain once the agent runs nothing.
func (m *Master) checkDrained(a *agent) {
	if !a.draining || a.drained {
		return
	}
	for _, t := range a.tasks {
		if !isTerminal(t.state()) {
			return
		}
	}
	if !a.drainMarkGone {
		a.drained = true
		m.log.Info("agent drained", "agent", a.id)
		return
	}
	if a.removing {
		return
	}
	a.removing = true
	m.inLane(agentLane(a.id), func() {
		m.removeAgentForMaintenance(a, func(err error) {
			a.removing = false
			if err != nil {
				return // drained but not yet gone: the next check tries again
			}
			a.drained = true
			m.log.Info("agent drained", "agent", a.id)
		})
	})
}

func (m *Master) reactivateAgent(agentID string) error {
	a := m.agents[agentID]
	if a == nil {
		return errorf(http.StatusBadRequest, "agent %s is not registered", agentID)
	}
	a.draining, a.drained, a.deactivated = false, false, false
	if !a.converting {
		m.alloc.ActivateAgent(a.id)
	}
	m.requestAllocation()
	return nil
}

func (m *Master) deactivateAgent(agentID string) error {
	a := m.agents[agentID]
	if a == nil {
		return errorf(http.StatusBadRequest, "agent %s is not registered", agentID)
	}
	a.deactivated = true
	m.alloc.DeactivateAgent(a.id)
	for _, o := range a.offers {
		m.rescindOffer(o, 0)
	}
	return nil
}

func (m *Master) maintenanceStatus() mmaint.ClusterStatus {
	var st mmaint.ClusterStatus
	draining := map[string]mesos.MachineID{}
	for _, w := range m.maint.schedule.Windows {
		for _, id := range w.MachineIDs {
			if _, down := m.maint.down[machineKey(id)]; !down {
				draining[machineKey(id)] = id
			}
		}
	}
	for _, key := range sortedKeys(draining) {
		st.DrainingMachines = append(st.DrainingMachines, mmaint.ClusterStatus_DrainingMachine{ID: draining[key], Statuses: m.maint.responses[key]})
	}
	for _, key := range sortedKeys(m.maint.down) {
		st.DownMachines = append(st.DownMachines, m.maint.down[key])
	}
	return st
}

// maintenanceCall answers the operator API's maintenance calls.
func (m *Master) maintenanceCall(c *master.Call) (resp *master.Response, handled bool, err error) {
	switch c.Type {
	case master.Call_GET_MAINTENANCE_SCHEDULE:
		return &master.Response{Type: master.Response_GET_MAINTENANCE_SCHEDULE, GetMaintenanceSchedule: &master.Response_GetMaintenanceSchedule{Schedule: m.maint.schedule}}, true, nil
	case master.Call_GET_MAINTENANCE_STATUS:
		return &master.Response{Type: master.Response_GET_MAINTENANCE_STATUS, GetMaintenanceStatus: &master.Response_GetMaintenanceStatus{Status: m.maintenanceStatus()}}, true, nil
	case master.Call_DRAIN_AGENT:
		if c.DrainAgent == nil {
			return nil, true, missingField("drain_agent")
		}
		var grace *time.Duration
		if g := c.DrainAgent.MaxGracePeriod; g != nil {
			d := time.Duration(g.Seconds)*time.Second + time.Duration(g.Nanos)
			grace = &d
		}
		return nil, true, m.drainAgent(c.DrainAgent.AgentID.Value, grace, c.DrainAgent.GetMarkGone())
	case master.Call_DEACTIVATE_AGENT:
		if c.DeactivateAgent == nil {
			return nil, true, missingField("deactivate_agent")
		}
		return nil, true, m.deactivateAgent(c.DeactivateAgent.AgentID.Value)
	case master.Call_REACTIVATE_AGENT:
		if c.ReactivateAgent == nil {
			return nil, true, missingField("reactivate_agent")
		}
		return nil, true, m.reactivateAgent(c.ReactivateAgent.AgentID.Value)
	}
	return nil, false, nil
}

// maintenanceChange starts the operator API's maintenance changes, which
// answer once the registry has them; handled is false for other calls.
func (m *Master) maintenanceChange(c *master.Call, done func(error)) (handled bool) {
	switch c.Type {
	case master.Call_UPDATE_MAINTENANCE_SCHEDULE:
		if c.UpdateMaintenanceSchedule == nil {
			done(missingField("update_maintenance_schedule"))
		} else {
			m.updateSchedule(c.UpdateMaintenanceSchedule.Schedule, done)
		}
	case master.Call_START_MAINTENANCE:
		if c.StartMaintenance == nil {
			done(missingField("start_maintenance"))
		} else {
			m.startMaintenance(c.StartMaintenance.Machines, done)
		}
	case master.Call_STOP_MAINTENANCE:
		if c.StopMaintenance == nil {
			done(missingField("stop_maintenance"))
		} else {
			m.stopMaintenance(c.StopMaintenance.Machines, done)
		}
	default:
		return false
	}
	return true
}

// serveSchedule is GET/POST /maintenance/schedule.
func (m *Master) serveSchedule(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		var s mmaint.Schedule
		m.do(r.Context(), func() { s = m.maint.schedule })
		writeJSON(w, r, &s)
	case http.MethodPost:
		if !m.authorizeHTTPUncovered(w, r) { // authz.go
			return
		}
		var s mmaint.Schedule
		if err := readJSONBody(r, &s); err != nil {
			writeError(w, err)
			return
		}
		m.serveCommit(w, r, http.StatusOK, func(done func(error)) { m.updateSchedule(s, done) })
	default:
		methodNotAllowed(w, r, "GET, POST", "GET or POST")
	}
}

// serveMachines is POST /machine/down and /machine/up with a JSON array of
// machine IDs.
func (m *Master) serveMachines(down bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			methodNotAllowed(w, r, "POST", "POST")
			return
		}
		if !m.authorizeHTTPUncovered(w, r) { // authz.go
			return
		}
		var ids []mesos.MachineID
		if err := readJSONBody(r, &ids); err != nil {
			writeError(w, err)
			return
		}
		m.serveCommit(w, r, http.StatusOK, func(done func(error)) {
			if down {
				m.startMaintenance(ids, done)
			} else {
				m.stopMaintenance(ids, done)
			}
		})
	}
}
