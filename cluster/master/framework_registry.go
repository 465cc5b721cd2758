package master

import (
	"net/http"
	"sort"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/allocator"
	"github.com/agora-cluster/agora/cluster/registry"
)

// Frameworks in the registry. A framework's ID is recorded (active, with
// its FrameworkInfo) before SUBSCRIBED hands it out, so an ID anyone can
// use is durable; its teardown (TEARDOWN from the scheduler or the
// operator, or its failover timeout running out) is recorded (completed)
// before it takes effect. A re-subscription or UPDATE_FRAMEWORK writes
// only when the FrameworkInfo differs from the record: frameworks that
// reconnect cost the registry nothing.
//
// A master that recovers the registry (a restart, or a failover to a new
// leader) therefore knows:
//   - the active frameworks: each is kept, disconnected and marked
//     recovered, until it re-subscribes, and is torn down once its
//     failover_timeout has run out counted from the recovery, and not
//     before RecoveredFrameworkGrace: a master failing over is not the
//     framework disconnecting, so one that asked for no failover timeout
//     (its tasks go with its connection) still has the time to find the
//     new leader and re-subscribe, as it would with Mesos, which does not
//     remember frameworks across a failover at all;
//   - the completed ones: a re-subscription with their ID is refused
//     (403), and an agent that re-registers with their tasks is told to
//     shut them down at once.
//
// A framework ID the registry never held (issued by a master from before
// frameworks were recorded, or forgotten by the collection below) is
// accepted at SUBSCRIBE as Mesos accepts frameworks failing over to a new
// master, and is recorded then.
//
// Completed records are collected like gone agents: those older than
// RegistryMaxFrameworkAge, and the oldest beyond RegistryMaxFrameworkCount.
// Active records are never collected.

func frameworkLane(id string) string { return "framework/" + id }

// recoverFrameworks takes the registry's frameworks in, on New.
func (m *Master) recoverFrameworks(recs []registry.FrameworkRecord) {
	var completed []registry.FrameworkRecord
	for _, r := range recs {
		m.frameworkRecords[r.ID] = r
		if r.State == registry.FrameworkCompleted {
			completed = append(completed, r)
			continue
		}
		fi := r.Info
		if fi == nil {
			fi = &mesos.FrameworkInfo{}
		}
		fi.ID = &mesos.FrameworkID{Value: r.ID}
		f := m.newRecoveredFramework(fi, m.start)
		f.registeredTime = r.Since
	}
	// The most recent completed ones are shown as completed frameworks,
	// within the memory bound.
	sort.Slice(completed, func(i, j int) bool { return completed[i].Since.Before(completed[j].Since) })
	if n := len(completed) - m.cfg.MaxCompletedFrameworks; n > 0 {
		completed = completed[n:]
	}
	for _, r := range completed {
		f := &framework{id: r.ID, removed: true, tasks: map[string]*task{}, offers: map[string]*offer{},
			suppressed: map[string]bool{}, unregisteredTime: r.Since}
		if r.Info != nil {
			f.info = *r.Info
			f.multiRole = hasCapability(r.Info, mesos.FrameworkInfo_Capability_MULTI_ROLE)
		}
		m.completedFrameworks = append(m.completedFrameworks, f)
	}
	if len(recs) > 0 {
		m.log.Info("recovered frameworks from the registry", "active", len(recs)-len(completed), "completed", len(completed))
	}
}

// newRecoveredFramework adds a framework this master knows only from the
// registry or an agent's report: disconnected, inactive, removed once its
// failover timeout (at least RecoveredFrameworkGrace) counted from since
// runs out unless it re-subscribes.
func (m *Master) newRecoveredFramework(fi *mesos.FrameworkInfo, since time.Time) *framework {
	f := &framework{
		id: fi.GetID().GetValue(), info: *fi, recovered: true,
		multiRole:      hasCapability(fi, mesos.FrameworkInfo_Capability_MULTI_ROLE),
		partitionAware: hasCapability(fi, mesos.FrameworkInfo_Capability_PARTITION_AWARE),
		killingState:   hasCapability(fi, mesos.FrameworkInfo_Capability_TASK_KILLING_STATE),
		tasks:          map[string]*task{}, offers: map[string]*offer{}, suppressed: map[string]bool{},
		registeredTime: since, unregisteredTime: since,
		failoverDeadline: since.Add(max(failoverTimeout(fi), RecoveredFrameworkGrace)),
	}
	m.frameworks[f.id] = f
	m.alloc.AddFramework(allocator.FrameworkSpec{ID: f.id, Roles: f.roles()}, nil, false)
	return f
}

// RecoveredFrameworkGrace is the least time a framework a master knows
// only from the registry or an agent's report has to re-subscribe.
const RecoveredFrameworkGrace = time.Minute

func failoverTimeout(fi *mesos.FrameworkInfo) time.Duration {
	return time.Duration(fi.GetFailoverTimeout() * float64(time.Second))
}

// tornDown reports whether the framework with id was torn down: recorded
// completed, or completed in memory.
func (m *Master) tornDown(id string) bool {
	if r, ok := m.frameworkRecords[id]; ok {
		return r.State == registry.FrameworkCompleted
	}
	for _, done := range m.completedFrameworks {
		if done.id == id {
			return true
		}
	}
	return false
}

// errTornDown is Mesos's answer to a framework that comes back with an
// ID that was torn down.
func errTornDown(id string) error {
	return errorf(http.StatusForbidden, "Framework %s has been removed (torn down, or failed over past its failover_timeout); subscribe without an ID to start afresh", id)
}

// recordFramework makes info the framework's active record, then calls
// done on the loop; it writes nothing when the record already says so.
// The caller holds the framework's lane.
func (m *Master) recordFramework(info *mesos.FrameworkInfo, now time.Time, done func(error)) {
	id := info.GetID().GetValue()
	cur, ok := m.frameworkRecords[id]
	if ok && cur.State == registry.FrameworkActive && cur.Info != nil && cur.Info.Equal(info) {
		done(nil)
		return
	}
	rec := registry.FrameworkRecord{ID: id, State: registry.FrameworkActive, Info: info, Since: now}
	if ok && cur.State == registry.FrameworkActive {
		rec.Since = cur.Since
	}
	m.commit(frameworkLane(id), []registry.Change{{Framework: &rec}}, func(err error) {
		if err == nil {
			m.frameworkRecords[id] = rec
			m.counters.frameworkRecordWrites++
		}
		done(err)
	})
}

// teardownFramework records f completed and then removes it; done is
// called on the loop once it is removed (nil) or the registry refused
// (f stays as it was). A teardown already under way or done answers nil.
func (m *Master) teardownFramework(f *framework, why string, done func(error)) {
	m.inLane(frameworkLane(f.id), func() {
		if f.removed || m.frameworks[f.id] != f {
			done(nil)
			return
		}
		now := m.now()
		info := f.info
		rec := registry.FrameworkRecord{ID: f.id, State: registry.FrameworkCompleted, Info: &info, Since: now}
		m.commit(frameworkLane(f.id), []registry.Change{{Framework: &rec}}, func(err error) {
			if err != nil {
				m.log.Error("framework teardown not recorded; the framework stays", "framework", f.id, "reason", why, "err", err)
				done(err)
				return
			}
			m.frameworkRecords[f.id] = rec
			m.counters.frameworkRecordWrites++
			m.removeFramework(f, why)
			done(nil)
		})
	})
}

// gcFrameworkRecords forgets completed frameworks past the registry's
// bounds; gcRegistry calls it.
func (m *Master) gcFrameworkRecords(now time.Time) {
	var olds []registry.FrameworkRecord
	for _, r := range m.frameworkRecords {
		if r.State == registry.FrameworkCompleted {
			olds = append(olds, r)
		}
	}
	sort.Slice(olds, func(i, j int) bool { return olds[i].Since.Before(olds[j].Since) })
	excess := len(olds) - m.cfg.RegistryMaxFrameworkCount
	for i, o := range olds {
		if !(now.Sub(o.Since) > m.cfg.RegistryMaxFrameworkAge || i < excess) {
			continue
		}
		id := o.ID
		if m.laneBusy(frameworkLane(id)) {
			continue
		}
		m.inLane(frameworkLane(id), func() {
			r, ok := m.frameworkRecords[id]
			if !ok || r.State != registry.FrameworkCompleted {
				return
			}
			m.commit(frameworkLane(id), []registry.Change{{DeleteFramework: id}}, func(err error) {
				if err != nil {
					return // tried again at the next collection
				}
				if cur, ok := m.frameworkRecords[id]; ok && cur.State == registry.FrameworkCompleted {
					delete(m.frameworkRecords, id)
				}
				m.counters.registryFrameworksCollected++
				m.log.Info("forgot a completed framework the registry kept too long", "framework", id, "since", r.Since)
			})
		})
	}
}
