package dispatcher

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mscheduler "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// The framework's side: offers become driver tasks, status updates move
// the drivers' states. Every handler runs on the SDK's event goroutine and
// holds d.mu only while it decides and records.

func (d *Dispatcher) handler() scheduler.Handler {
	return scheduler.Funcs{
		OnSubscribed: d.subscribedEvent,
		OnOffers:     d.offers,
		OnUpdate:     d.update,
		OnDisconnected: func(_ context.Context, err error) {
			d.mu.Lock()
			d.subscribed = false
			d.mu.Unlock()
			d.log.Warn("lost the master", "err", err)
		},
	}
}

// subscribedEvent keeps the framework ID, then asks where the running
// drivers are and kills those a kill was asked for while away.
func (d *Dispatcher) subscribedEvent(ctx context.Context, s *mscheduler.Event_Subscribed) {
	d.mu.Lock()
	d.subscribed = true
	if id := s.FrameworkID.GetValue(); id != d.fw.FrameworkID {
		d.fw.FrameworkID = id
		if err := d.store.saveFramework(d.fw); err != nil {
			d.log.Error("record the framework ID", "err", err)
		}
	}
	var tasks []mscheduler.Call_Reconcile_Task
	var kills []*Driver
	for _, id := range d.order {
		dr := d.drivers[id]
		if dr.State != StateRunning {
			continue
		}
		tasks = append(tasks, scheduler.ReconcileTask(dr.TaskID, dr.AgentID))
		if dr.KillRequested {
			kills = append(kills, dr)
		}
	}
	d.mu.Unlock()
	d.log.Info("subscribed", "framework_id", s.FrameworkID.GetValue(), "reconciling", len(tasks))
	if len(tasks) > 0 {
		if err := d.sched.Reconcile(ctx, tasks); err != nil {
			d.log.Warn("reconcile drivers", "err", err)
		}
	}
	for _, dr := range kills {
		if err := d.sched.Kill(ctx, dr.TaskID, dr.AgentID); err != nil {
			d.log.Warn("kill driver task", "submission", dr.ID, "err", err)
		}
	}
}

// pendingLocked are the drivers that may launch now, oldest first, and
// whether any waits for later (a relaunch backoff).
func (d *Dispatcher) pendingLocked(now time.Time) (ready []*Driver, later bool) {
	for _, id := range d.order {
		dr := d.drivers[id]
		switch {
		case dr.State == StateQueued:
			ready = append(ready, dr)
		case dr.State == StateRelaunching && !now.Before(dr.RetryAt):
			ready = append(ready, dr)
		case dr.State == StateRelaunching:
			later = true
		}
	}
	return ready, later
}

// offers packs the waiting drivers into the offers, oldest first, and
// declines the rest; with nothing waiting it suppresses offers.
func (d *Dispatcher) offers(ctx context.Context, offered []mesos.Offer) {
	d.mu.Lock()
	ready, later := d.pendingLocked(d.cfg.Now())
	type launch struct {
		offer mesos.OfferID
		tasks []mesos.TaskInfo
		drs   []*Driver
	}
	var launches []launch
	var decline []mesos.OfferID
	for i := range offered {
		o := &offered[i]
		pool := offers.NewPool(o)
		l := launch{offer: o.ID}
		for j := 0; j < len(ready); j++ {
			dr := ready[j]
			rs, ok := pool.Take(offers.Need{CPUs: dr.CPUs, Mem: dr.MemMB, Role: d.cfg.Role})
			if !ok {
				continue
			}
			task, err := d.taskLocked(dr, o, rs)
			if err != nil {
				d.log.Warn("driver task", "submission", dr.ID, "err", err)
				continue
			}
			l.tasks, l.drs = append(l.tasks, task), append(l.drs, dr)
			ready = append(ready[:j], ready[j+1:]...)
			j--
		}
		if len(l.tasks) == 0 {
			decline = append(decline, o.ID)
			continue
		}
		launches = append(launches, l)
	}
	idle := len(ready) == 0 && len(launches) == 0 && !later
	gen := d.gen
	d.mu.Unlock()

	for _, l := range launches {
		err := d.sched.Launch(ctx, []mesos.OfferID{l.offer}, l.tasks, scheduler.RefuseFor(time.Second))
		d.mu.Lock()
		for _, dr := range l.drs {
			if err != nil {
				d.requeueLocked(dr, fmt.Sprintf("launch failed: %v", err))
				continue
			}
			d.log.Info("driver launched", "submission", dr.ID, "task", dr.TaskID, "agent", dr.Hostname)
		}
		d.mu.Unlock()
	}
	if idle && d.idleHook != nil {
		d.idleHook()
	}
	d.declineOrSuppress(ctx, decline, idle, gen)
}

// declineOrSuppress declines the offers no driver took: for an hour, and
// offers suppressed, when nothing waits. A driver submitted since the
// offers were looked at (the generation moved) makes it a short decline:
// the revive it sent waits for this (callMu), so it reaches the master
// after the decline and the suppress, and undoes them.
func (d *Dispatcher) declineOrSuppress(ctx context.Context, decline []mesos.OfferID, idle bool, gen uint64) {
	d.callMu.Lock()
	defer d.callMu.Unlock()
	d.mu.Lock()
	idle = idle && d.gen == gen
	d.mu.Unlock()
	if len(decline) > 0 {
		refuse := 2 * time.Second
		if idle {
			refuse = time.Hour
		}
		if err := d.sched.Decline(ctx, decline, refuse); err != nil {
			d.log.Warn("decline offers", "err", err)
		}
	}
	if idle {
		if err := d.sched.Suppress(ctx); err != nil {
			d.log.Warn("suppress offers", "err", err)
		}
	}
}

// taskLocked records dr as launched on o (before the launch is sent, so a
// restart reconciles it) and builds its task.
func (d *Dispatcher) taskLocked(dr *Driver, o *mesos.Offer, rs []mesos.Resource) (mesos.TaskInfo, error) {
	prev := *dr
	if dr.State == StateRelaunching {
		dr.Retries++
	}
	dr.TaskID = dr.ID
	if dr.Retries > 0 {
		dr.TaskID = fmt.Sprintf("%s-retry-%d", dr.ID, dr.Retries)
	}
	dr.State, dr.AgentID, dr.Hostname, dr.TaskState = StateRunning, o.AgentID.Value, o.Hostname, ""
	dr.FrameworkID = d.fw.FrameworkID
	dr.Launched, dr.Message = d.cfg.Now().UTC(), "launched on "+o.Hostname
	task, err := d.buildTask(dr, o.AgentID, rs)
	if err == nil {
		err = d.store.saveDriver(dr)
	}
	if err != nil {
		*dr = prev
		return mesos.TaskInfo{}, err
	}
	return task, nil
}

// requeueLocked puts a driver whose launch did not happen back in the
// queue.
func (d *Dispatcher) requeueLocked(dr *Driver, why string) {
	dr.State, dr.Message, dr.TaskID, dr.AgentID, dr.Hostname = StateQueued, why, "", "", ""
	if dr.Retries > 0 {
		dr.State = StateRelaunching
		dr.Retries--
	}
	if err := d.store.saveDriver(dr); err != nil {
		d.log.Error("record a driver back in the queue", "submission", dr.ID, "err", err)
	}
}

// update follows a driver's task: RUNNING, then how it ended. A
// supervised driver whose task failed or was lost is launched again after
// a backoff (1 s, doubled each time up to MaxRetryWait).
func (d *Dispatcher) update(ctx context.Context, st mesos.TaskStatus) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dr := d.byTaskLocked(st.TaskID.Value)
	if dr == nil {
		return
	}
	if dr.State != StateRunning {
		if Terminal(dr.State) && !scheduler.IsTerminal(st.GetState()) {
			// A task of a driver that has ended (killed between being
			// recorded as launched and the launch reaching the master):
			// it must not run on unowned.
			if err := d.sched.Kill(ctx, st.TaskID.Value, st.GetAgentID().GetValue()); err != nil {
				d.log.Warn("kill the task of an ended driver", "task", st.TaskID.Value, "err", err)
			}
		}
		return
	}
	state := st.GetState()
	if dr.TaskState == "" && st.GetReason() == mesos.REASON_RECONCILIATION &&
		(state == mesos.TASK_UNKNOWN || state == mesos.TASK_LOST || state == mesos.TASK_DROPPED) {
		// Recorded as launched, but the master never had it (the
		// dispatcher stopped before the launch was sent): queue it again.
		d.requeueLocked(dr, "not launched before the dispatcher stopped")
		d.reviveLocked()
		return
	}
	dr.TaskState = state.String()
	dr.Message = statusMessage(st)
	if state == mesos.TASK_FAILED && strings.Contains(st.GetMessage(), "exited with status 101") {
		// spark-submit's exit status for a main class it cannot load.
		dr.Message += fmt.Sprintf(": main class %s not found (spark-submit's exit status 101; agora spark logs %s --stderr)",
			dr.Request.MainClass, dr.ID)
	}
	if a := st.GetAgentID(); a != nil && a.Value != "" {
		dr.AgentID = a.Value
	}
	var err error
	switch {
	case state == mesos.TASK_FINISHED:
		err = d.end(dr, StateFinished, "")
	case dr.KillRequested && (scheduler.IsTerminal(state) || state == mesos.TASK_UNKNOWN):
		err = d.end(dr, StateKilled, "")
	case state == mesos.TASK_KILLED:
		err = d.end(dr, StateKilled, "")
	case state == mesos.TASK_ERROR:
		err = d.end(dr, StateError, "")
	case scheduler.IsTerminal(state) || state == mesos.TASK_UNKNOWN:
		if dr.Supervise {
			d.relaunchLocked(ctx, dr)
			return
		}
		err = d.end(dr, StateFailed, "")
	default:
		err = d.store.saveDriver(dr)
	}
	if err != nil {
		d.log.Error("record a driver's state", "submission", dr.ID, "err", err)
	}
}

func (d *Dispatcher) byTaskLocked(taskID string) *Driver {
	id, _, _ := strings.Cut(taskID, "-retry-")
	dr := d.drivers[id]
	if dr == nil || dr.TaskID != taskID {
		return nil // an earlier attempt's, or not ours
	}
	return dr
}

// relaunchLocked schedules a supervised driver's next launch.
func (d *Dispatcher) relaunchLocked(ctx context.Context, dr *Driver) {
	wait := time.Second
	if dr.RetryWait > 0 {
		wait = min(2*dr.RetryWait, d.cfg.MaxRetryWait)
	}
	dr.State, dr.RetryWait, dr.RetryAt = StateRelaunching, wait, d.cfg.Now().Add(wait).UTC()
	if err := d.store.saveDriver(dr); err != nil {
		d.log.Error("record a driver's relaunch", "submission", dr.ID, "err", err)
	}
	d.log.Info("driver relaunching", "submission", dr.ID, "in", wait, "after", dr.Message)
	id := dr.ID
	if t := d.timers[id]; t != nil {
		t.Stop()
	}
	d.timers[id] = time.AfterFunc(wait, func() {
		d.mu.Lock()
		delete(d.timers, id)
		d.reviveLocked()
		d.mu.Unlock()
	})
}

// reviveLocked asks for offers again (a new or relaunching driver): the
// generation moves, and the revive is sent after any decline or suppress
// under way (callMu).
func (d *Dispatcher) reviveLocked() {
	d.gen++
	if !d.subscribed || d.sched == nil {
		return
	}
	go func() {
		d.callMu.Lock()
		defer d.callMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := d.sched.Revive(ctx); err != nil {
			d.log.Warn("revive offers", "err", err)
		}
	}()
}

// statusMessage is a task status as a driver's message: its state, then
// the agent's message.
func statusMessage(st mesos.TaskStatus) string {
	m := st.GetState().String()
	if r := st.GetReason(); r != 0 {
		m += " (" + r.String() + ")"
	}
	if s := st.GetMessage(); s != "" {
		m += ": " + s
	}
	return m
}

// buildTask is the driver's task: the Spark home's bin/spark-submit in
// client mode, the application's master agora's Spark scheduler (with the
// cluster manager's jar) or else local[N] (N: the driver's cores), with
// the submission's properties and environment, and the application's jar
// fetched into the sandbox unless it is local: to the agent.
func (d *Dispatcher) buildTask(dr *Driver, agent mesos.AgentID, rs []mesos.Resource) (mesos.TaskInfo, error) {
	req := dr.Request
	props := req.SparkProperties
	home := d.cfg.SparkHome
	if h := props["spark.mesos.executor.home"]; h != "" {
		home = h
	}
	jar, uris, err := appResource(req.AppResource)
	if err != nil {
		return mesos.TaskInfo{}, err
	}
	for _, u := range splitList(props["spark.mesos.uris"]) {
		uris = append(uris, mesos.CommandInfo_URI{Value: u})
	}
	submit := path.Join(home, "bin", "spark-submit")
	master := fmt.Sprintf("local[%d]", max(1, int(math.Ceil(dr.CPUs))))
	var extra []string
	if d.executors() {
		master = d.cfg.ExecutorMaster
		extra = []string{"--jars", d.cfg.ClusterManagerJar}
	}
	args := []string{submit, "--name", dr.Name, "--master", master}
	args = append(args, extra...)
	args = append(args, "--deploy-mode", "client",
		"--driver-memory", fmt.Sprintf("%dm", int(dr.HeapMB)))
	if !IsPython(req.AppResource) {
		args = append(args, "--class", req.MainClass)
	}
	for _, k := range sortedKeys(props) {
		if skipProperty(k) || props[k] == "" {
			continue
		}
		args = append(args, "--conf", k+"="+props[k])
	}
	args = append(args, jar)
	args = append(args, req.AppArgs...)

	env := map[string]string{}
	for k, v := range req.EnvironmentVariables {
		env[k] = v
	}
	for k, v := range props {
		if name, ok := strings.CutPrefix(k, "spark.mesos.driverEnv."); ok {
			env[name] = v
		}
	}
	secEnv, secURIs, err := d.driverSecurity(dr) // tokens.go
	if err != nil {
		return mesos.TaskInfo{}, err
	}
	for k, v := range secEnv {
		env[k] = v
	}
	uris = append(uris, secURIs...)
	fwid := d.fw.FrameworkID + "-" + dr.TaskID
	env["SPARK_SUBMIT_OPTS"] = strings.TrimSpace(env["SPARK_SUBMIT_OPTS"] + " -Dspark.mesos.driver.frameworkId=" + fwid)
	if j := os.Getenv("JAVA_HOME"); j != "" && env["JAVA_HOME"] == "" {
		env["JAVA_HOME"] = j
	}
	shell := false
	cmd := &mesos.CommandInfo{Shell: &shell, Value: &submit, Arguments: args, URIs: uris, Environment: environment(env)}
	return mesos.TaskInfo{
		Name:      "Driver for " + dr.Name,
		TaskID:    mesos.TaskID{Value: dr.TaskID},
		AgentID:   agent,
		Resources: rs,
		Command:   cmd,
	}, nil
}

// skipProperty leaves out what the driver's own spark-submit is given
// otherwise (as Spark's dispatcher leaves out spark.jars,
// spark.submit.deployMode and spark.master).
func skipProperty(k string) bool {
	switch k {
	case "spark.jars", "spark.submit.deployMode", "spark.master", "spark.driver.memory",
		"spark.driver.supervise", "spark.app.name", "spark.master.rest.enabled":
		return true
	}
	return strings.HasPrefix(k, "spark.mesos.driverEnv.")
}

// appResource is how the driver's command names the application's jar,
// and the URIs that fetch it: a URL (http, https, hdfs, file) is fetched
// into the sandbox and named by its file name; local:/path and a bare
// absolute path are used where they are on the agent.
func appResource(res string) (string, []mesos.CommandInfo_URI, error) {
	if strings.HasPrefix(res, "/") {
		return res, nil, nil
	}
	u, err := url.Parse(res)
	if err != nil || u.Scheme == "" {
		return "", nil, fmt.Errorf("appResource %q is neither a URL nor an absolute path", res)
	}
	switch u.Scheme {
	case "local":
		return u.Path, nil, nil
	case "http", "https", "hdfs", "file":
		base := path.Base(u.Path)
		if base == "/" || base == "." {
			return "", nil, fmt.Errorf("appResource %q names no file", res)
		}
		f := false
		return base, []mesos.CommandInfo_URI{{Value: res, Extract: &f}}, nil
	}
	return "", nil, fmt.Errorf("appResource %q: the %s: scheme is not supported (http, https, hdfs, file, local)", res, u.Scheme)
}

// IsPython says whether an application resource is a PySpark script,
// which spark-submit runs without a main class.
func IsPython(res string) bool {
	if u, err := url.Parse(res); err == nil && u.Path != "" {
		res = u.Path
	}
	return strings.HasSuffix(res, ".py")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func environment(env map[string]string) *mesos.Environment {
	if len(env) == 0 {
		return nil
	}
	e := &mesos.Environment{}
	for _, k := range sortedKeys(env) {
		v := env[k]
		e.Variables = append(e.Variables, mesos.Environment_Variable{Name: k, Value: &v})
	}
	return e
}
