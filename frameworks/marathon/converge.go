package marathon

import (
	"context"
	"slices"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/frameworks/marathon/plan"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

func (a *app) configVersion() string {
	if a.def.VersionInfo == nil {
		return a.def.Version
	}
	return a.def.VersionInfo.LastConfigChangeAt
}

// soon asks the ticker to converge now: the status updates that arrive
// meanwhile are then acted on together, rather than each paying for a
// pass over every instance.
func (f *Framework) soon() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// wake asks the event loop to converge soon, clearing decline filters.
func (f *Framework) wake() {
	f.mu.Lock()
	f.reviveDue = true
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// converge brings every app toward its definition: decides what to kill
// and how many to launch, sends the kills, finishes deployments, and
// suppresses or revives offers.
func (f *Framework) converge(ctx context.Context) {
	now := time.Now()
	type kill struct{ task, agent string }
	var kills []kill
	f.mu.Lock()
	for _, a := range f.sortedApps() {
		f.planApp(a, now)
	}
	expunged := false
	for _, t := range f.tasks {
		if t.Goal == GoalDecommissioned && t.UnreachableSince != nil && t.confirmed {
			// The master drops kills for tasks on an agent it has lost:
			// an unreachable instance being killed is forgotten at once,
			// as Marathon does, and killed if its agent comes back.
			f.expunge(t, "expunging an unreachable instance being killed; it is killed if it comes back", now)
			expunged = true
			continue
		}
		if t.Goal == GoalDecommissioned && now.Sub(t.killSent) >= killAgain {
			t.killSent = now
			kills = append(kills, kill{t.ID, t.AgentID})
		}
	}
	f.finishDeployments(now)
	f.mu.Unlock()
	for _, k := range kills {
		if err := f.driver.Kill(ctx, k.task, k.agent); err != nil {
			f.log.Debug("kill", "task", k.task, "err", err)
		}
	}
	if expunged {
		f.soon() // plan again without them: a killed instance is replaced
	}
	f.adjustOffers(ctx, now)
}

// planApp decides which of an app's instances to kill (they are marked
// Decommissioned, durably) and how many to launch. Instances of an older
// config are replaced by Marathon's rolling arithmetic (plan.Restart,
// counting the instances the agent reports healthy, or running where the
// instance has no health check); otherwise the app is scaled to its
// count, killing by its killSelection. A new instance of an app with a
// readiness check counts as healthy only once ready. Call with f.mu held.
func (f *Framework) planApp(a *app, now time.Time) {
	var old, cur []*Task
	dying := 0
	ts := f.tasksOf(a.def.ID)
	if slices.ContainsFunc(ts, func(t *Task) bool { return !t.confirmed }) {
		a.want = 0 // wait for reconciliation to say what runs
		return
	}
	ts, inactive := f.unreachable(a, ts, now)
	for _, t := range ts {
		switch {
		case inactive[t]:
			// Replaced: it counts again only if it comes back.
		case t.Goal != GoalRunning:
			dying++
		case t.ConfigVersion == a.configVersion():
			cur = append(cur, t)
		default:
			old = append(old, t)
		}
	}
	n := a.def.Instances
	var doomed []*Task
	if len(old) > 0 {
		healthy := 0
		for _, t := range slices.Concat(old, cur) {
			if counts(a, t) {
				healthy++
			}
		}
		u := a.def.Strategy()
		k, _ := plan.Restart(n, u, healthy, len(old), len(cur))
		// Those not healthy go first, then the oldest.
		slices.SortStableFunc(old, func(x, y *Task) int {
			if x.healthy() != y.healthy() {
				if !x.healthy() {
					return -1
				}
				return 1
			}
			return x.StagedAt.Compare(y.StagedAt)
		})
		// Old instances that are not healthy hold no health capacity:
		// killing them is always safe, and frees room (a rollback's
		// failed instances go at once).
		for k < len(old) && !old[k].healthy() {
			k++
		}
		doomed = old[:k]
		// Capacity counts every instance still alive, those being killed
		// too (Marathon counts only those meant to run), so that the
		// instances running never exceed maxCapacity: a replacement starts
		// once the instance it replaces has ended.
		_, maxCapacity := plan.Capacity(n, u, healthy)
		a.want = max(0, min(n-len(cur), maxCapacity-len(old)-dying-len(cur)))
		if len(cur) > n {
			doomed = append(doomed, youngest(cur, a.def.KillSelection, len(cur)-n)...)
		}
	} else {
		if len(cur) > n {
			doomed = youngest(cur, a.def.KillSelection, len(cur)-n)
		}
		a.want = max(0, n-len(cur))
	}
	// A deployment launches an app's new instances once the apps it
	// depends on run healthy (Marathon's order: dependencies first).
	if a.want > 0 && len(a.def.Dependencies) > 0 && len(f.lockedBy(a.def.ID)) > 0 && len(f.waitingFor(a)) > 0 {
		a.want = 0
	}
	for _, t := range doomed {
		t.Goal = GoalDecommissioned
		if err := f.store.saveTask(t); err != nil {
			f.log.Error("save instance", "task", t.ID, "err", err)
		}
	}
	switch {
	case a.want > 0 && a.since.IsZero():
		a.since, a.stats = now, plan.OfferStats{}
	case a.want == 0:
		a.since = time.Time{}
	}
}

// noteReachability records when an instance became unreachable (the
// master's time when it says), or that it is reachable again.
func (t *Task) noteReachability(st mesos.TaskStatus, now time.Time) {
	if st.GetState() != mesos.TASK_UNREACHABLE {
		t.UnreachableSince, t.inactive = nil, false
		return
	}
	if t.UnreachableSince != nil {
		return
	}
	at := now
	if ut := st.GetUnreachableTime(); ut != nil {
		at = time.Unix(0, ut.Nanoseconds)
	}
	t.UnreachableSince = &at
}

// unreachable applies the app's unreachableStrategy to its unreachable
// instances: those away past expungeAfterSeconds are forgotten (and left
// out of the returned list), those away past inactiveAfterSeconds are
// returned as inactive, to be replaced. (Those being killed are
// expunged by converge at once.) Call with f.mu held.
func (f *Framework) unreachable(a *app, ts []*Task, now time.Time) ([]*Task, map[*Task]bool) {
	var inactive map[*Task]bool
	kept := ts[:0:0]
	for _, t := range ts {
		if t.Goal != GoalRunning || t.UnreachableSince == nil {
			kept = append(kept, t)
			continue
		}
		switch a.def.Unreachable(now.Sub(*t.UnreachableSince)) {
		case plan.UnreachableExpunge:
			f.expunge(t, "expunging an unreachable instance; it is killed if it comes back", now)
			continue
		case plan.UnreachableInactive:
			if inactive == nil {
				inactive = map[*Task]bool{}
			}
			inactive[t] = true
			if !t.inactive {
				// Offers declined before may be the replacement's.
				t.inactive, f.reviveDue = true, true
			}
		}
		kept = append(kept, t)
	}
	return kept, inactive
}

// expunge forgets unreachable instance t: should its agent come back,
// the task is one the framework does not know, and is killed. Call with
// f.mu held.
func (f *Framework) expunge(t *Task, why string, now time.Time) {
	f.log.Info(why, "task", t.ID, "app", t.AppID, "away", now.Sub(*t.UnreachableSince).Round(time.Second))
	f.removeTask(t)
	if err := f.store.removeTask(t.ID); err != nil {
		f.log.Error("remove instance", "task", t.ID, "err", err)
	}
	f.reviveDue = true
	f.terminated(t.AppID)
}

// terminated publishes app_terminated_event once a deleted app's last
// instance is gone. Call with f.mu held.
func (f *Framework) terminated(appID string) {
	if len(f.tasksOf(appID)) == 0 && f.apps[appID] == nil {
		f.events.publish("app_terminated_event", map[string]any{"appId": appID})
	}
}

// youngest picks n of ts to kill by the app's killSelection.
func youngest(ts []*Task, selection string, n int) []*Task {
	insts := make([]plan.Instance, 0, len(ts))
	byID := map[string]*Task{}
	for _, t := range ts {
		insts = append(insts, plan.Instance{ID: t.ID, Started: t.StagedAt})
		byID[t.ID] = t
	}
	var out []*Task
	for _, id := range plan.KillOrder(insts, selection, n) {
		out = append(out, byID[id])
	}
	return out
}

// waiting lists the apps that want instances now (not in a launch delay),
// longest waiting first. Call with f.mu held.
func (f *Framework) waiting(now time.Time) []*app {
	var out []*app
	for _, a := range f.sortedApps() {
		if a.want > 0 && !now.Before(a.delayUntil) {
			out = append(out, a)
		}
	}
	slices.SortStableFunc(out, func(x, y *app) int { return x.since.Compare(y.since) })
	return out
}

// adjustOffers revives offers when instances wait (and something changed
// since the last decline) and suppresses them when none does.
func (f *Framework) adjustOffers(ctx context.Context, now time.Time) {
	f.offersMu.Lock()
	defer f.offersMu.Unlock()
	f.mu.Lock()
	want := !f.stopping && len(f.waiting(now)) > 0
	revive := want && (f.suppressed || f.reviveDue)
	suppress := !want && !f.suppressed
	f.mu.Unlock()
	var err error
	switch {
	case revive:
		err = f.driver.Revive(ctx)
	case suppress:
		err = f.driver.Suppress(ctx)
	default:
		return
	}
	if err != nil {
		f.log.Debug("revive or suppress offers", "revive", revive, "err", err)
		return
	}
	f.mu.Lock()
	f.suppressed = suppress
	if revive {
		f.reviveDue = false
	}
	f.mu.Unlock()
}

// update follows an instance's task. A task the framework does not know
// is killed. An instance that ends while it should run is replaced, after
// the app's launch delay if it failed or finished.
func (f *Framework) update(ctx context.Context, st mesos.TaskStatus) {
	now := time.Now()
	id, state := st.TaskID.Value, st.GetState()
	f.mu.Lock()
	if f.reconciler != nil {
		f.reconciler.Observe(st)
	}
	t := f.tasks[id]
	if t == nil {
		f.mu.Unlock()
		// (An unreachable one cannot be killed until its agent is back;
		// it is killed then, when it reports again.)
		if !scheduler.IsTerminal(state) && state != mesos.TASK_UNKNOWN && state != mesos.TASK_UNREACHABLE {
			f.log.Info("killing a task it does not know", "task", id)
			_ = f.driver.Kill(ctx, id, st.GetAgentID().GetValue())
		}
		return
	}
	t.State = state.String()
	t.confirmed = true
	t.noteReachability(st, now)
	if state == mesos.TASK_RUNNING && t.StartedAt == nil {
		at := now
		t.StartedAt = &at
	}
	f.events.publish("status_update_event", map[string]any{"slaveId": t.AgentID, "taskId": t.ID,
		"taskStatus": t.State, "message": st.GetMessage(), "appId": t.AppID, "host": t.Host,
		"ports": t.Ports, "ipAddresses": []any{}, "version": t.Version})
	f.observeHealth(t, st, now)
	// TASK_UNKNOWN is the master's answer, to a partition-aware
	// framework, for a task it has no knowledge of (a launch that never
	// reached it): the instance is gone, as Marathon takes it.
	if !scheduler.IsTerminal(state) && state != mesos.TASK_UNKNOWN {
		// Not written to disk: a restarted framework learns the state
		// and health of its instances again by reconciliation.
		f.mu.Unlock()
		f.soon()
		return
	}
	f.removeTask(t)
	if err := f.store.removeTask(id); err != nil {
		f.log.Error("remove instance", "task", id, "err", err)
	}
	if a := f.apps[t.AppID]; a != nil && t.Goal == GoalRunning {
		switch state {
		case mesos.TASK_FAILED, mesos.TASK_FINISHED, mesos.TASK_ERROR:
			a.failures++
			a.delayUntil = now.Add(plan.LaunchDelay(&a.def, a.failures))
			a.lastFail = &TaskFailure{AppID: t.AppID, Host: t.Host, Message: st.GetMessage(), State: t.State,
				TaskID: t.ID, Timestamp: now, Version: t.Version}
		}
		f.reviveDue = true
		f.log.Info("instance ended; it will be replaced", "task", id, "app", t.AppID, "state", t.State,
			"message", st.GetMessage(), "delay", a.delayUntil.Sub(now).Round(time.Millisecond))
	}
	f.terminated(t.AppID)
	f.mu.Unlock()
	f.soon()
}

// observeHealth follows the health an update reports (the agent runs the
// checks): a change is published as health_status_changed_event, a
// failure as failed_health_check_event, and a kill for failing as
// unhealthy_task_kill_event. Call with f.mu held.
func (f *Framework) observeHealth(t *Task, st mesos.TaskStatus, now time.Time) {
	if st.Healthy == nil || !t.HealthChecked {
		return
	}
	healthy := *st.Healthy
	ev := func() map[string]any {
		return map[string]any{"appId": t.AppID, "taskId": t.ID, "instanceId": t.ID, "version": t.Version}
	}
	if scheduler.IsTerminal(st.GetState()) {
		if !healthy {
			e := ev()
			e["reason"] = "failed its health check too often"
			e["host"] = t.Host
			f.events.publish("unhealthy_task_kill_event", e)
		}
		return
	}
	if t.observeHealth(healthy, st.GetMessage(), now) {
		e := ev()
		e["alive"] = healthy
		f.events.publish("health_status_changed_event", e)
	}
	if !healthy {
		e := ev()
		e["host"] = t.Host
		if a := f.apps[t.AppID]; a != nil && len(a.def.HealthChecks) > 0 {
			e["healthCheck"] = a.def.HealthChecks[0]
		}
		f.events.publish("failed_health_check_event", e)
	}
}
