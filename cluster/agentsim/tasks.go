package agentsim

import (
	"bytes"
	"crypto/rand"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

// maxUpdateRetry caps the retry backoff of an unacknowledged update
// (Mesos's STATUS_UPDATE_RETRY_INTERVAL_MAX).
const maxUpdateRetry = 10 * time.Minute

// maxUpdateBatch bounds the updates sent in one call.
const maxUpdateBatch = 512

type taskKey struct{ framework, task string }

// task is a simulated task: a state, the queue of its unacknowledged
// updates (the head is the one in flight) and the timer that ends it.
type task struct {
	name      string
	framework *mesos.FrameworkInfo // interned (Fleet.framework)
	resources []mesos.Resource
	state     mesos.TaskState
	last      *mesos.TaskStatus // the newest status
	pending   []*api.StatusUpdate
	due       time.Time     // when the head is sent (again); zero: now
	backoff   time.Duration // the head's next retry interval
	end       *time.Timer   // FINISHED after the task's duration
}

func (t *task) stop() {
	if t.end != nil {
		t.end.Stop()
	}
}

func terminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_LOST, mesos.TASK_ERROR,
		mesos.TASK_DROPPED, mesos.TASK_GONE:
		return true
	}
	return false
}

// runTask starts the tasks of a RUN_TASK (one, or a task group): each is
// STARTING and RUNNING at once, and FINISHED after its duration.
func (a *agent) runTask(rt *api.RunTask) {
	if rt == nil {
		return
	}
	fw := a.fleet.framework(rt.Framework)
	var infos []*mesos.TaskInfo
	if rt.Group != nil {
		for i := range rt.Group.Tasks {
			infos = append(infos, &rt.Group.Tasks[i])
		}
	} else if rt.Task != nil {
		infos = append(infos, rt.Task)
	}
	if fw == nil || len(infos) == 0 {
		return
	}
	a.mu.Lock()
	for _, ti := range infos {
		k := taskKey{fw.ID.Value, ti.TaskID.Value}
		if a.tasks[k] != nil {
			continue // a duplicate RUN_TASK
		}
		t := &task{name: ti.Name, framework: fw, resources: ti.Resources}
		a.tasks[k] = t
		a.updateLocked(k, t, mesos.TASK_STARTING)
		a.updateLocked(k, t, mesos.TASK_RUNNING)
		if d := a.duration(ti); d > 0 {
			t.end = time.AfterFunc(d, func() { a.finish(k, t) })
		}
	}
	a.mu.Unlock()
	a.fleet.count(func(s *Stats) { s.TasksLaunched += int64(len(infos)) })
	a.flush()
}

// duration is how long a task runs: its DurationLabel, or the default.
func (a *agent) duration(ti *mesos.TaskInfo) time.Duration {
	if ti.Labels != nil {
		for _, l := range ti.Labels.Labels {
			if l.Key == DurationLabel {
				if d, err := time.ParseDuration(l.GetValue()); err == nil {
					return d
				}
			}
		}
	}
	return a.fleet.cfg.TaskDuration
}

func (a *agent) finish(k taskKey, t *task) {
	a.mu.Lock()
	if a.tasks[k] != t || terminal(t.state) {
		a.mu.Unlock()
		return
	}
	a.updateLocked(k, t, mesos.TASK_FINISHED)
	a.mu.Unlock()
	a.fleet.count(func(s *Stats) { s.TasksFinished++ })
	a.flush()
}

// kill handles KILL_TASK: the task is KILLED.
func (a *agent) kill(k taskKey) {
	a.mu.Lock()
	t := a.tasks[k]
	if t == nil || terminal(t.state) {
		a.mu.Unlock()
		return
	}
	t.stop()
	a.updateLocked(k, t, mesos.TASK_KILLED)
	a.mu.Unlock()
	a.fleet.count(func(s *Stats) { s.TasksKilled++ })
	a.flush()
}

// shutdownFramework forgets a removed framework's tasks: nobody will
// acknowledge their updates any more.
func (a *agent) shutdownFramework(fid string) {
	a.mu.Lock()
	n := 0
	for k, t := range a.tasks {
		if k.framework == fid {
			t.stop()
			delete(a.tasks, k)
			n++
		}
	}
	if n > 0 {
		a.changedLocked()
	}
	a.mu.Unlock()
	a.fleet.count(func(s *Stats) { s.TasksKilled += int64(n) })
}

// updateLocked records a new state of t and queues its update; a.mu is
// held.
func (a *agent) updateLocked(k taskKey, t *task, state mesos.TaskState) {
	now := float64(time.Now().UnixNano()) / 1e9
	uuid := make([]byte, 16)
	_, _ = rand.Read(uuid)
	st := &mesos.TaskStatus{
		TaskID: mesos.TaskID{Value: k.task}, State: state.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(),
		AgentID: &mesos.AgentID{Value: a.id}, Timestamp: &now, UUID: uuid,
	}
	t.state, t.last = state, st
	t.pending = append(t.pending, &api.StatusUpdate{FrameworkID: k.framework, Status: st})
	a.changedLocked()
}

// acknowledge handles ACKNOWLEDGE: the head update of the task is done,
// and a task whose terminal update is acknowledged is forgotten.
func (a *agent) acknowledge(ack *api.Acknowledge) {
	if ack == nil {
		return
	}
	k := taskKey{ack.FrameworkID, ack.TaskID}
	a.mu.Lock()
	t := a.tasks[k]
	if t == nil || len(t.pending) == 0 || !bytes.Equal(t.pending[0].Status.UUID, ack.UUID) {
		a.mu.Unlock()
		return
	}
	t.pending[0] = nil
	t.pending = t.pending[1:]
	t.due, t.backoff = time.Time{}, 0
	a.changedLocked()
	if len(t.pending) == 0 {
		t.pending = nil
		if terminal(t.state) {
			delete(a.tasks, k)
		}
	}
	a.mu.Unlock()
	a.fleet.count(func(s *Stats) { s.Acknowledgments++ })
	a.flush()
}

// reconcile handles RECONCILE_TASKS: an unacknowledged head is due at
// once; a task with nothing pending sends its latest status again.
func (a *agent) reconcile(rt *api.ReconcileTasks) {
	if rt == nil {
		return
	}
	var again []*api.StatusUpdate
	a.mu.Lock()
	ctx := a.session
	consider := func(k taskKey, t *task) {
		if len(t.pending) > 0 {
			t.due = time.Time{}
			return
		}
		latest := t.state
		again = append(again, &api.StatusUpdate{FrameworkID: k.framework, Status: t.last, LatestState: &latest})
	}
	if len(rt.TaskIDs) == 0 {
		for k, t := range a.tasks {
			if k.framework == rt.FrameworkID {
				consider(k, t)
			}
		}
	} else {
		for _, id := range rt.TaskIDs {
			if k := (taskKey{rt.FrameworkID, id}); a.tasks[k] != nil {
				consider(k, a.tasks[k])
			}
		}
	}
	a.mu.Unlock()
	if len(again) > 0 && ctx != nil {
		go a.call(ctx, &api.AgentCall{Type: api.AgentStatusUpdate, AgentID: a.ID(), Updates: again})
	}
	a.flush()
}

// flush sends, in one call, the head update of every task that is due,
// unless a call is in flight already (it flushes again when it ends).
// Heads not acknowledged are sent again with backoff.
func (a *agent) flush() {
	f := a.fleet
	a.mu.Lock()
	if a.sending || !a.online {
		a.mu.Unlock()
		return
	}
	now := time.Now()
	var out []*api.StatusUpdate
	var next time.Time
	for _, t := range a.tasks {
		if len(t.pending) == 0 {
			continue
		}
		if t.due.After(now) {
			if next.IsZero() || t.due.Before(next) {
				next = t.due
			}
			continue
		}
		if len(out) == maxUpdateBatch {
			next = now
			continue
		}
		u := *t.pending[0]
		latest := t.state
		u.LatestState = &latest
		out = append(out, &u)
		if t.backoff == 0 {
			t.backoff = f.cfg.UpdateRetry
		}
		t.due = now.Add(t.backoff)
		t.backoff = min(2*t.backoff, maxUpdateRetry)
		if next.IsZero() || t.due.Before(next) {
			next = t.due
		}
	}
	if !next.IsZero() {
		if a.retry == nil {
			a.retry = time.AfterFunc(time.Until(next), a.flush)
		} else {
			a.retry.Reset(time.Until(next))
		}
	}
	if len(out) == 0 {
		a.mu.Unlock()
		return
	}
	a.sending = true
	ctx, id := a.session, a.id
	a.mu.Unlock()
	go func() {
		err := a.call(ctx, &api.AgentCall{Type: api.AgentStatusUpdate, AgentID: id, Updates: out})
		f.count(func(s *Stats) {
			s.UpdateCalls++
			if err != nil {
				s.UpdateFailures++
			}
		})
		a.mu.Lock()
		a.sending = false
		a.mu.Unlock()
		a.flush()
	}()
}
