package framework

import (
	"context"
	"fmt"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	schedpb "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/frameworks/scheduler"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/umbilical"
)

// update turns an attempt's status update into core events: progress,
// success, failure (the message holds the diagnostics), a kill, or the
// loss of its tracker.
func (f *Framework) update(ctx context.Context, st mesos.TaskStatus) {
	if f.recon != nil {
		f.recon.Observe(st)
	}
	id := st.TaskID.Value
	state := st.GetState()
	ref := f.tasks[id]
	if ref == nil {
		if !scheduler.IsTerminal(state) {
			// Not a task of this scheduler: an attempt an earlier
			// incarnation started, or one of a tracker already given up.
			agent := st.GetAgentID().GetValue()
			f.log.Info("killing an attempt this scheduler does not run", "task", id, "state", state)
			go func() {
				if err := f.driver.Kill(ctx, id, agent); err != nil {
					f.log.Debug("kill unknown attempt", "task", id, "err", err)
				}
			}()
		}
		return
	}
	t, j, a := ref.tracker, ref.job, ref.attempt
	now := time.Now()
	if pid := st.GetContainerStatus().GetExecutorPID(); pid != 0 {
		t.pid = int(pid)
	}
	msg := st.GetMessage()
	switch state {
	case mesos.TASK_STAGING, mesos.TASK_STARTING, mesos.TASK_RUNNING:
		if state == mesos.TASK_RUNNING && t.state == trackerLaunching {
			t.state = trackerRunning
		}
		if len(st.Data) > 0 && j.core != nil {
			rep, err := umbilical.DecodeReport(st.Data)
			if err != nil {
				f.log.Warn("bad progress report", "attempt", a.String(), "err", err)
				return
			}
			j.core.Update(now, a, jobtracker.Progress{Progress: rep.Progress, Status: rep.Status, Counters: rep.Counters})
		}
		return
	case mesos.TASK_KILLING:
		return
	}
	delete(f.tasks, id)
	delete(t.running, id)
	defer f.offersAgain(ctx)
	if j.core == nil {
		return
	}
	switch state {
	case mesos.TASK_FINISHED:
		rep, err := umbilical.DecodeReport(st.Data)
		if err != nil {
			f.apply(ctx, j, j.core.Failed(now, a, err.Error()))
			return
		}
		url := ""
		if rep.MapOutput {
			url = t.url
		}
		ds := j.core.Succeeded(now, a, jobtracker.Result{Counters: rep.Counters, ShuffleURL: url})
		f.recordDone(j, a, t)
		f.apply(ctx, j, ds)
	case mesos.TASK_FAILED:
		switch st.GetReason() {
		case mesos.REASON_EXECUTOR_TERMINATED:
			f.trackerLost(ctx, t, or(msg, "the executor terminated"))
		case mesos.REASON_CONTAINER_LAUNCH_FAILED, mesos.REASON_EXECUTOR_REGISTRATION_TIMEOUT:
			// Every attempt sent to the tracker fails the same way (each
			// hears of it in its own update), and counts: a tracker that
			// cannot start must not keep a job waiting forever.
			f.trackerGone(t)
			f.apply(ctx, j, j.core.Failed(now, a, fmt.Sprintf("task tracker %s on %s did not start: %s", t.id, t.host, msg)))
		default:
			f.apply(ctx, j, j.core.Failed(now, a, or(msg, "failed")))
		}
	case mesos.TASK_KILLED, mesos.TASK_DROPPED:
		f.apply(ctx, j, j.core.Killed(now, a, or(msg, state.String())))
	case mesos.TASK_ERROR:
		f.apply(ctx, j, j.core.Failed(now, a, "the master refused the attempt: "+msg))
	default: // LOST, GONE, UNREACHABLE, GONE_BY_OPERATOR, UNKNOWN
		f.trackerLost(ctx, t, fmt.Sprintf("%s: %s", state, msg))
		f.apply(ctx, j, j.core.Killed(now, a, fmt.Sprintf("%s: %s", state, msg)))
	}
}

// failure handles a FAILURE event: an executor exited, or an agent was
// lost with every tracker on it.
func (f *Framework) failure(ctx context.Context, ev *schedpb.Event_Failure) {
	agent := ev.GetAgentID().GetValue()
	if exec := ev.GetExecutorID().GetValue(); exec != "" {
		t := f.trackers[exec]
		if t == nil {
			return
		}
		if t.state == trackerShutdown {
			t.state = trackerLost // as asked; it held nothing anyone needs
			return
		}
		f.trackerLost(ctx, t, fmt.Sprintf("the executor exited (status %d)", ev.GetStatus()))
		return
	}
	for _, t := range f.trackers {
		if t.agentID == agent {
			f.trackerLost(ctx, t, "agent "+agent+" lost")
		}
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// reviveEvery spaces the revives offersAgain makes.
const reviveEvery = 100 * time.Millisecond

// offersAgain asks for offers at once (REVIVE makes the master allocate
// now rather than at its next allocation cycle) when an attempt ended
// while a job has work waiting, so that the slot the attempt freed is
// used without waiting out the allocation interval: Spark's schedulers
// revive when tasks finish for the same reason.
func (f *Framework) offersAgain(ctx context.Context) {
	now := time.Now()
	if now.Sub(f.lastRevive) < reviveEvery {
		return
	}
	waiting := false
	for _, j := range f.activeRunning() {
		if m, r := j.core.Pending(); m+r > 0 {
			waiting = true
			break
		}
	}
	if !waiting {
		return
	}
	f.lastRevive = now
	f.suppressed = true // so that revive asks
	f.revive(ctx)
}
