package scheduler

import (
	"sort"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// Reconciler runs the explicit reconciliation algorithm of the Mesos
// reconciliation guide: ask for the state of every task the framework
// believes non-terminal, and ask again, with truncated exponential backoff,
// for those no update has arrived for since. It is pure: the framework feeds
// it updates and the time, and sends the calls it returns with
// Driver.Reconcile. Start a new Reconciler after every (re-)subscription;
// one in progress should then be dropped.
type Reconciler struct {
	backoff   Backoff
	remaining map[string]string // task ID → agent ID ("" if unknown)
	attempt   int
	next      time.Time
}

// NewReconciler reconciles tasks (task ID → agent ID, which may be ""),
// starting at once.
func NewReconciler(tasks map[string]string, now time.Time, b Backoff) *Reconciler {
	r := &Reconciler{backoff: b, remaining: make(map[string]string, len(tasks)), next: now}
	for t, a := range tasks {
		r.remaining[t] = a
	}
	return r
}

// Observe notes an update: its task is reconciled.
func (r *Reconciler) Observe(status mesos.TaskStatus) {
	delete(r.remaining, status.TaskID.Value)
}

// Done reports whether every task has been heard from.
func (r *Reconciler) Done() bool { return len(r.remaining) == 0 }

// Due returns the tasks to reconcile now (none if it is not yet time or
// all are done) and when to call Due again.
func (r *Reconciler) Due(now time.Time) ([]scheduler.Call_Reconcile_Task, time.Time) {
	if r.Done() {
		return nil, time.Time{}
	}
	if now.Before(r.next) {
		return nil, r.next
	}
	ids := make([]string, 0, len(r.remaining))
	for t := range r.remaining {
		ids = append(ids, t)
	}
	sort.Strings(ids)
	tasks := make([]scheduler.Call_Reconcile_Task, 0, len(ids))
	for _, t := range ids {
		tasks = append(tasks, ReconcileTask(t, r.remaining[t]))
	}
	r.next = now.Add(r.backoff.Delay(r.attempt, 1))
	r.attempt++
	return tasks, r.next
}
