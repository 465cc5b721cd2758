package framework

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/frameworks/scheduler"
	"github.com/agora-cluster/agora/hadoop/format"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/umbilical"
)

const (
	// refuseBusy keeps what a job could not use right now (slots full, a
	// map waiting for a data-local slot, reduces waiting for maps) away
	// only briefly.
	refuseBusy = time.Second
	// refuseIdle is for offers that arrive while no job runs.
	refuseIdle = 10 * time.Second
	// refuseBadAgent is for agents where executors keep dying.
	refuseBadAgent = time.Minute
	// maxAgentFailures is how many executors may die on an agent before
	// the framework stops using it.
	maxAgentFailures = 3
)

// offers answers a batch of offers: each is used to launch attempts on
// its agent's tracker (launching the tracker first if the agent has none
// and slots are needed) or declined.
func (f *Framework) offers(ctx context.Context, offs []mesos.Offer) {
	now := time.Now()
	running := f.activeRunning()
	needMaps, needReduces := 0, 0
	if len(running) > 0 {
		pm, pr := 0, 0
		for _, j := range running {
			m, r := j.core.Pending()
			pm, pr = pm+m, pr+r
		}
		im, ir := 0, 0
		for _, t := range f.trackers {
			if t.live() {
				im, ir = im+max(t.free(job.Map), 0), ir+max(t.free(job.Reduce), 0)
			}
		}
		needMaps, needReduces = f.sizing.Needed(pm, pr, im, ir)
	}
	var decline, bad []mesos.OfferID
	for i := range offs {
		o := &offs[i]
		f.shutdownStrangers(ctx, o)
		f.checkAdopted(ctx, o)
		switch {
		case len(running) == 0:
			decline = append(decline, o.ID)
		case f.badAgent(o.AgentID.Value, now):
			bad = append(bad, o.ID)
		case !f.useOffer(ctx, now, o, running, &needMaps, &needReduces):
			decline = append(decline, o.ID)
		}
	}
	refuse := refuseBusy
	if len(running) == 0 {
		refuse = refuseIdle
	}
	for _, d := range []struct {
		ids    []mesos.OfferID
		refuse time.Duration
	}{{decline, refuse}, {bad, refuseBadAgent}} {
		if len(d.ids) == 0 {
			continue
		}
		if err := f.driver.Decline(ctx, d.ids, d.refuse); err != nil {
			f.log.Debug("decline offers", "err", err)
		}
	}
}

// shutdownStrangers shuts down executors of this framework that the offer
// lists and this scheduler does not know: trackers an earlier incarnation
// launched.
func (f *Framework) shutdownStrangers(ctx context.Context, o *mesos.Offer) {
	for _, e := range o.ExecutorIDs {
		if _, ok := f.trackers[e.Value]; ok || f.shutdowns[e.Value] {
			continue
		}
		f.shutdowns[e.Value] = true
		f.log.Info("shutting down a task tracker of an earlier scheduler", "tracker", e.Value, "agent", o.AgentID.Value)
		agent, exec := o.AgentID.Value, e.Value
		go func() {
			if err := f.driver.Shutdown(ctx, exec, agent); err != nil {
				f.log.Warn("shut down old task tracker", "tracker", exec, "err", err)
			}
		}()
	}
}

// checkAdopted reconciles the trackers adopted from an earlier scheduler
// with the master: an offer from an agent lists this framework's
// executors running there, so an adopted tracker missing from it is gone
// (it may have died while no scheduler was subscribed to hear of it).
func (f *Framework) checkAdopted(ctx context.Context, o *mesos.Offer) {
	for _, t := range f.trackers {
		if !t.adopted || !t.live() || t.agentID != o.AgentID.Value {
			continue
		}
		found := false
		for _, e := range o.ExecutorIDs {
			found = found || e.Value == t.id
		}
		if !found {
			f.trackerLost(ctx, t, "the master no longer lists its executor on agent "+t.agentID)
		}
	}
}

// useOffer launches what it can on one offer and reports whether it did.
func (f *Framework) useOffer(ctx context.Context, now time.Time, o *mesos.Offer, running []*jobRun, needMaps, needReduces *int) bool {
	s := f.sizing
	agent := o.AgentID.Value
	pool := offers.NewPool(o)
	t := f.byAgent[agent]
	fresh := t == nil
	if fresh {
		if *needMaps+*needReduces <= 0 || s.MaxExecutors > 0 && f.liveTrackers() >= s.MaxExecutors {
			return false
		}
		port, ok := pickPort(o, f.rng)
		if !ok {
			f.log.Debug("offer has no port for a task tracker", "agent", agent)
			return false
		}
		own := offers.Need{CPUs: s.TrackerCPUs, Mem: s.TrackerMem, Disk: s.TrackerDisk}
		res, ok := pool.Take(own)
		if !ok {
			f.log.Debug("offer too small for a task tracker", "agent", agent, "short", pool.Shortfall(own))
			return false
		}
		res = append(res, port)
		free := pool.Sum("")
		m, r := s.Slots(free["cpus"], free["mem"], free["disk"], *needMaps, *needReduces, s.MapMax, s.ReduceMax)
		if m+r < 1 {
			f.log.Debug("offer has no room for a slot", "agent", agent, "free", free)
			return false
		}
		var err error
		if t, err = f.newTracker(agent, o.Hostname, res, now); err != nil {
			f.log.Warn("task tracker", "agent", agent, "err", err)
			return false
		}
		t.mapSlots, t.reduceSlots = m, r
	} else if *needMaps > 0 && t.mapSlots < s.MapMax || *needReduces > 0 && t.reduceSlots < s.ReduceMax {
		// The tracker grows into what the offer has, as mesos/hadoop
		// would launch another TaskTracker on the host.
		free := pool.Sum("")
		m, r := s.Slots(free["cpus"], free["mem"], free["disk"], *needMaps, *needReduces, s.MapMax-t.mapSlots, s.ReduceMax-t.reduceSlots)
		t.mapSlots, t.reduceSlots = t.mapSlots+m, t.reduceSlots+r
		*needMaps, *needReduces = *needMaps-m, *needReduces-r
	}
	slot := offers.Need{CPUs: s.SlotCPUs, Mem: s.SlotMem, Disk: s.SlotDisk}
	var tasks []mesos.TaskInfo
	var refs []*taskRef
	for _, kind := range []job.Kind{job.Map, job.Reduce} {
		for t.free(kind) > 0 && pool.Fits(slot) {
			j, l := f.assign(now, running, o.Hostname, kind)
			if l == nil {
				break
			}
			res, _ := pool.Take(slot)
			ti := f.taskInfo(j, l.Attempt, t, res, o.AgentID)
			ref := &taskRef{job: j, attempt: l.Attempt, tracker: t, agentID: agent}
			f.tasks[ti.TaskID.Value] = ref
			t.running[ti.TaskID.Value] = kind
			t.jobs[j.id.String()] = true
			t.ran[l.Attempt] = true
			j.trackers[l.Attempt] = t.id
			tasks = append(tasks, ti)
			refs = append(refs, ref)
		}
	}
	if len(tasks) == 0 {
		return false
	}
	if fresh {
		f.trackers[t.id], f.byAgent[agent] = t, t
		*needMaps, *needReduces = *needMaps-t.mapSlots, *needReduces-t.reduceSlots
		f.log.Info("launching task tracker", "tracker", t.id, "agent", agent, "host", t.host, "port", t.port, "map_slots", t.mapSlots, "reduce_slots", t.reduceSlots)
	}
	unlaunch := func(why string) {
		for i, ref := range refs {
			delete(f.tasks, tasks[i].TaskID.Value)
			delete(t.running, tasks[i].TaskID.Value)
			f.apply(ctx, ref.job, ref.job.core.Killed(now, ref.attempt, why))
		}
		if fresh {
			delete(f.trackers, t.id)
			delete(f.byAgent, agent)
		}
	}
	if err := f.recordLaunches(refs); err != nil {
		f.log.Error("attempts not launched: their launch could not be recorded", "agent", agent, "attempts", len(tasks), "err", err)
		unlaunch("not launched: " + err.Error())
		return false // declined
	}
	err := f.driver.Launch(ctx, []mesos.OfferID{o.ID}, tasks, scheduler.RefuseFor(refuseBusy))
	if err != nil {
		f.log.Warn("launch attempts", "agent", agent, "attempts", len(tasks), "err", err)
		unlaunch("launch failed: " + err.Error())
		return true // the offer is spent either way
	}
	for _, ref := range refs {
		f.log.Debug("attempt launched", "attempt", ref.attempt.String(), "tracker", t.id)
	}
	return true
}

func (f *Framework) liveTrackers() int {
	n := 0
	for _, t := range f.trackers {
		if t.live() {
			n++
		}
	}
	return n
}

// assign asks the running jobs, oldest first (Hadoop's
// JobQueueTaskScheduler), for an attempt to run in a free slot of kind on
// host.
func (f *Framework) assign(now time.Time, running []*jobRun, host string, kind job.Kind) (*jobRun, *jobtracker.Launch) {
	for _, j := range running {
		if j.core.State() != jobtracker.JobRunning {
			continue
		}
		if l, _ := j.core.Assign(now, f.rng, host, kind); l != nil {
			f.changes.Bump()
			return j, l
		}
	}
	return nil, nil
}

// assignment is tasktracker.Assignment with the job's spec encoded once,
// and the tracker's umbilical token.
type assignment struct {
	Spec       json.RawMessage `json:"spec"`
	Attempt    job.AttemptID   `json:"attempt"`
	Split      *format.Split   `json:"split,omitempty"`
	NumMaps    int             `json:"num_maps"`
	NumReduces int             `json:"num_reduces"`
	umbilical.TaskToken
}

// taskInfo is the Mesos task of an attempt on tracker t: the slot's
// resources, the tracker's executor, the assignment and the tracker's
// token as data (see umbilical.TaskToken for why there).
func (f *Framework) taskInfo(j *jobRun, a job.AttemptID, t *tracker, res []mesos.Resource, agent mesos.AgentID) mesos.TaskInfo {
	if j.specJSON == nil {
		j.specJSON, _ = json.Marshal(j.plan.Spec) // plain data: cannot fail
	}
	as := assignment{Spec: j.specJSON, Attempt: a, NumMaps: len(j.plan.Splits), NumReduces: j.plan.NumReduces,
		TaskToken: umbilical.TaskToken{Token: t.token}}
	if a.Task.Kind == job.Map {
		s := j.plan.Splits[a.Task.Index]
		as.Split = &s
	}
	data, _ := json.Marshal(as)
	exec := t.info
	return mesos.TaskInfo{
		Name:      a.String(),
		TaskID:    mesos.TaskID{Value: umbilical.TaskID(a, f.state.Incarnation)},
		AgentID:   agent,
		Executor:  &exec,
		Resources: res,
		Data:      data,
	}
}

// pickPort takes one port at random from the offer's port ranges (as
// mesos/hadoop does, so trackers of agents sharing a host and range
// rarely collide), keeping the resource's role and allocation.
func pickPort(o *mesos.Offer, rng *rand.Rand) (mesos.Resource, bool) {
	var total uint64
	for _, r := range o.Resources {
		if r.Name == "ports" && r.GetType() == mesos.RANGES && !r.IsRevocable() {
			for _, rg := range r.GetRanges().GetRange() {
				total += rg.End - rg.Begin + 1
			}
		}
	}
	if total == 0 {
		return mesos.Resource{}, false
	}
	n := rng.Uint64N(total)
	for _, r := range o.Resources {
		if r.Name != "ports" || r.GetType() != mesos.RANGES || r.IsRevocable() {
			continue
		}
		for _, rg := range r.GetRanges().GetRange() {
			size := rg.End - rg.Begin + 1
			if n < size {
				p := rg.Begin + n
				r.Ranges = &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: p, End: p}}}
				return r, true
			}
			n -= size
		}
	}
	return mesos.Resource{}, false
}
