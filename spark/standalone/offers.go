package standalone

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mscheduler "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// Offer filters: offers that fit nothing wanted come back soon; with
// nothing wanted they are declined for long and offers suppressed (a
// revive undoes both).
const (
	shortRefuse = 5 * time.Second
	idleRefuse  = time.Hour
	// readyWithin bounds the wait for a started Master to answer, and
	// registerWithin for a launched Worker to register with it (JVMs
	// start slowly on a busy host).
	readyWithin    = 2 * time.Minute
	registerWithin = 5 * time.Minute
	// maxFailureWait is the longest an agent is passed over after workers
	// failed on it.
	maxFailureWait = time.Minute
)

const (
	masterClass = "org.apache.spark.deploy.master.Master"
	workerClass = "org.apache.spark.deploy.worker.Worker"
)

func (s *Scheduler) handler() scheduler.Handler {
	return scheduler.Funcs{
		OnSubscribed: s.subscribedEvent,
		OnOffers:     s.offers,
		OnUpdate:     s.update,
		OnDisconnected: func(_ context.Context, err error) {
			s.mu.Lock()
			s.subscribed = false
			s.mu.Unlock()
			s.log.Warn("lost the master", "err", err)
		},
	}
}

// subscribedEvent asks where the daemons are (after a master failover)
// and asks for offers.
func (s *Scheduler) subscribedEvent(ctx context.Context, sub *mscheduler.Event_Subscribed) {
	s.mu.Lock()
	s.subscribed = true
	var tasks []mscheduler.Call_Reconcile_Task
	for _, d := range s.daemonsLocked() {
		if d.active() {
			tasks = append(tasks, scheduler.ReconcileTask(d.TaskID, d.AgentID))
		}
	}
	s.reviveLocked()
	s.mu.Unlock()
	s.log.Info("subscribed", "framework_id", sub.FrameworkID.GetValue(), "reconciling", len(tasks))
	if len(tasks) > 0 {
		if err := s.sched.Reconcile(ctx, tasks); err != nil {
			s.log.Warn("reconcile the daemons", "err", err)
		}
	}
}

func (s *Scheduler) daemonsLocked() []*Daemon {
	var ds []*Daemon
	if s.master != nil {
		ds = append(ds, s.master)
	}
	for _, w := range s.workers {
		ds = append(ds, w)
	}
	return ds
}

// activeWorkersLocked counts the workers running or starting that are not
// being released.
func (s *Scheduler) activeWorkersLocked() int {
	n := 0
	for _, w := range s.workers {
		if w.active() && !w.Killed {
			n++
		}
	}
	return n
}

// wantsLocked says whether an offer could be used: for the Master, or
// for a worker short of the target once the Master answers.
func (s *Scheduler) wantsLocked() bool {
	if s.master == nil {
		return true
	}
	return s.master.Ready && s.activeWorkersLocked() < s.target
}

// offers launches the Master, then workers up to the target, one per
// agent, and declines the rest.
func (s *Scheduler) offers(ctx context.Context, offered []mesos.Offer) {
	type launch struct {
		offer mesos.OfferID
		tasks []mesos.TaskInfo
		ds    []*Daemon
	}
	var launches []launch
	byRefuse := map[time.Duration][]mesos.OfferID{}
	s.mu.Lock()
	for i := range offered {
		o := &offered[i]
		tasks, ds, refuse := s.packLocked(o)
		if len(tasks) == 0 {
			byRefuse[refuse] = append(byRefuse[refuse], o.ID)
			continue
		}
		launches = append(launches, launch{o.ID, tasks, ds})
	}
	idle := !s.wantsLocked()
	gen := s.gen
	s.mu.Unlock()

	for _, l := range launches {
		err := s.sched.Launch(ctx, []mesos.OfferID{l.offer}, l.tasks, scheduler.RefuseFor(shortRefuse))
		if err == nil {
			continue
		}
		s.log.Warn("launch", "err", err)
		s.mu.Lock()
		for _, d := range l.ds {
			d.State, d.Message = mesos.TASK_ERROR.String(), fmt.Sprintf("launch failed: %v", err)
			s.forgetLocked(d)
		}
		s.reviveLocked()
		s.mu.Unlock()
	}

	s.callMu.Lock()
	defer s.callMu.Unlock()
	s.mu.Lock()
	idle = idle && s.gen == gen // a change since wants offers again
	s.mu.Unlock()
	if idle {
		var all []mesos.OfferID
		for _, ids := range byRefuse {
			all = append(all, ids...)
		}
		byRefuse = map[time.Duration][]mesos.OfferID{idleRefuse: all}
	}
	for r, ids := range byRefuse {
		if len(ids) == 0 {
			continue
		}
		if err := s.sched.Decline(ctx, ids, r); err != nil {
			s.log.Warn("decline offers", "err", err)
		}
	}
	if idle {
		if err := s.sched.Suppress(ctx); err != nil {
			s.log.Warn("suppress offers", "err", err)
		}
	}
}

// packLocked takes what is wanted from one offer: the Master if there is
// none, a worker if the Master answers and workers are short. With
// nothing taken, refuse is how long to decline the offer for.
func (s *Scheduler) packLocked(o *mesos.Offer) ([]mesos.TaskInfo, []*Daemon, time.Duration) {
	pool := offers.NewPool(o)
	var tasks []mesos.TaskInfo
	var ds []*Daemon
	if s.master == nil {
		need := offers.Need{CPUs: masterCPUs, Mem: masterMemMB, Ports: 3, Role: s.cfg.Role}
		rs, ok := pool.Take(need)
		if !ok {
			s.log.Debug("the Master does not fit the offer", "agent", o.Hostname, "short", pool.Shortfall(need))
			return nil, nil, shortRefuse
		}
		s.seq++
		ports := portsOf(rs)
		m := &Daemon{TaskID: "spark-master-" + strconv.Itoa(s.seq), AgentID: o.AgentID.Value, Hostname: o.Hostname,
			Port: ports[0], UIPort: ports[1], RESTPort: ports[2], State: mesos.TASK_STAGING.String()}
		s.master = m
		tasks = append(tasks, s.masterTask(m, rs))
		ds = append(ds, m)
		s.log.Info("standalone Master launching", "agent", o.Hostname, "task", m.TaskID, "port", m.Port, "webui_port", m.UIPort, "rest_port", m.RESTPort)
		// Workers wait for the Master to answer.
		return tasks, ds, 0
	}
	if !s.wantsLocked() {
		return nil, nil, shortRefuse
	}
	if nb := s.notBefore[o.AgentID.Value]; time.Now().Before(nb) {
		return nil, nil, max(time.Second, time.Until(nb))
	}
	for _, w := range s.workers {
		if w.AgentID == o.AgentID.Value && w.active() {
			return nil, nil, shortRefuse // one worker per agent
		}
	}
	cores, memMB, why := s.workerSize(pool.Sum(s.cfg.Role))
	if why != "" {
		s.log.Debug("no worker from the offer", "agent", o.Hostname, "why", why)
		return nil, nil, shortRefuse
	}
	need := offers.Need{CPUs: float64(cores), Mem: memMB + workerDaemonMB, Ports: 2, Role: s.cfg.Role}
	rs, ok := pool.Take(need)
	if !ok {
		s.log.Debug("a worker does not fit the offer", "agent", o.Hostname, "short", pool.Shortfall(need))
		return nil, nil, shortRefuse
	}
	s.seq++
	ports := portsOf(rs)
	w := &Daemon{TaskID: "spark-worker-" + strconv.Itoa(s.seq), AgentID: o.AgentID.Value, Hostname: o.Hostname,
		Port: ports[0], UIPort: ports[1], Cores: cores, MemMB: memMB, State: mesos.TASK_STAGING.String(), Launched: time.Now()}
	s.workers[w.TaskID] = w
	s.lastCores = cores
	s.log.Info("standalone Worker launching", "agent", o.Hostname, "task", w.TaskID, "cores", cores, "mem_mb", memMB, "port", w.Port)
	return append(tasks, s.workerTask(w, rs)), append(ds, w), 0
}

// workerSize is a worker's SPARK_WORKER_CORES and SPARK_WORKER_MEMORY (MB)
// from what an offer has: the configured sizes, or the offer's whole cpus
// and its memory less the worker daemon's. why says why none fits.
func (s *Scheduler) workerSize(have offers.Scalars) (cores int, memMB float64, why string) {
	cores, memMB = s.cfg.WorkerCores, s.cfg.WorkerMemMB
	if cores == 0 {
		cores = int(math.Floor(have["cpus"]))
	}
	if memMB == 0 {
		memMB = math.Floor(have["mem"] - workerDaemonMB)
	}
	switch {
	case cores < 1 || float64(cores) > have["cpus"]:
		return 0, 0, fmt.Sprintf("%g cpus offered, a worker needs %d", have["cpus"], max(cores, 1))
	case memMB < minWorkerMemMB || memMB+workerDaemonMB > have["mem"]:
		return 0, 0, fmt.Sprintf("%g MB offered, a worker needs %g", have["mem"], max(memMB, minWorkerMemMB)+workerDaemonMB)
	}
	return cores, memMB, ""
}

func portsOf(rs []mesos.Resource) []uint64 {
	var ps []uint64
	for _, r := range rs {
		if r.Name != "ports" || r.Ranges == nil {
			continue
		}
		for _, rg := range r.Ranges.Range {
			for p := rg.Begin; p <= rg.End; p++ {
				ps = append(ps, p)
			}
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

// daemonOpts are the JVM options of both daemons: a port that is taken
// fails the daemon (its task is launched again elsewhere) instead of
// Spark moving to the next port, which the offer does not hold.
const daemonOpts = "-Dspark.port.maxRetries=0"

// masterTask runs the standalone Master on the offer's ports: RPC (what
// spark-submit --master spark://HOST:PORT names), web UI (read by the
// scheduler) and REST submission (cluster mode).
func (s *Scheduler) masterTask(m *Daemon, rs []mesos.Resource) mesos.TaskInfo {
	bin := path.Join(s.cfg.SparkHome, "bin", "spark-class")
	args := []string{bin, masterClass, "--host", m.Hostname,
		"--port", strconv.FormatUint(m.Port, 10), "--webui-port", strconv.FormatUint(m.UIPort, 10)}
	env := map[string]string{
		"SPARK_DAEMON_MEMORY":    masterHeap,
		"SPARK_DAEMON_JAVA_OPTS": daemonOpts + " -Dspark.master.rest.enabled=true -Dspark.master.rest.port=" + strconv.FormatUint(m.RESTPort, 10),
	}
	shell := false
	cmd := &mesos.CommandInfo{Shell: &shell, Value: &bin, Arguments: args, Environment: s.environment(env)}
	return mesos.TaskInfo{
		Name:      "Spark standalone Master",
		TaskID:    mesos.TaskID{Value: m.TaskID},
		AgentID:   mesos.AgentID{Value: m.AgentID},
		Resources: rs,
		Command:   cmd,
	}
}

// workerTask runs a standalone Worker of w's size, registered with the
// Master. Spark's Worker builds each executor's command line with Spark's
// launcher, which looks for the jars in SPARK_HOME/jars (and wants the
// Scala version of a build tree, or SPARK_SCALA_VERSION); the
// distribution keeps them in lib/. So the task runs the Worker from a view
// of the home in its sandbox — bin, conf and lib linked, and jars linked
// to lib — and its executors' work directories (their stdout and stderr)
// are in the sandbox too.
func (s *Scheduler) workerTask(w *Daemon, rs []mesos.Resource) mesos.TaskInfo {
	home := s.cfg.SparkHome
	master := "spark://" + net.JoinHostPort(s.master.Hostname, strconv.FormatUint(s.master.Port, 10))
	var b strings.Builder
	b.WriteString("mkdir -p spark-home work || exit 1\n")
	for _, d := range []string{"bin", "conf", "lib"} {
		fmt.Fprintf(&b, "ln -sfn %s spark-home/%s || exit 1\n", shellQuote(path.Join(home, d)), d)
	}
	fmt.Fprintf(&b, "ln -sfn %s spark-home/jars || exit 1\n", shellQuote(path.Join(home, "lib")))
	fmt.Fprintf(&b, "exec spark-home/bin/spark-class %s --host %s --port %d --webui-port %d --work-dir \"$PWD/work\" %s\n",
		workerClass, shellQuote(w.Hostname), w.Port, w.UIPort, shellQuote(master))
	script := b.String()
	env := map[string]string{
		"SPARK_WORKER_CORES":     strconv.Itoa(w.Cores),
		"SPARK_WORKER_MEMORY":    fmt.Sprintf("%dm", int(w.MemMB)),
		"SPARK_DAEMON_MEMORY":    workerHeap,
		"SPARK_DAEMON_JAVA_OPTS": daemonOpts,
		"SPARK_SCALA_VERSION":    "2.13",
	}
	shell := true
	cmd := &mesos.CommandInfo{Shell: &shell, Value: &script, Environment: s.environment(env)}
	return mesos.TaskInfo{
		Name:      fmt.Sprintf("Spark standalone Worker on %s (%d cores, %d MB)", w.Hostname, w.Cores, int(w.MemMB)),
		TaskID:    mesos.TaskID{Value: w.TaskID},
		AgentID:   mesos.AgentID{Value: w.AgentID},
		Resources: rs,
		Command:   cmd,
	}
}

// environment is env, with JAVA_HOME, as Mesos variables sorted by name.
func (s *Scheduler) environment(env map[string]string) *mesos.Environment {
	j := s.cfg.JavaHome
	if j == "" {
		j = os.Getenv("JAVA_HOME")
	}
	if j != "" {
		env["JAVA_HOME"] = j
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := &mesos.Environment{}
	for _, k := range keys {
		v := env[k]
		out.Variables = append(out.Variables, mesos.Environment_Variable{Name: k, Value: &v})
	}
	return out
}

func shellQuote(a string) string { return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'" }

// update follows the daemons' tasks. A Master that ended takes its workers
// with it (they are registered with its address): they are killed, and a
// new Master is launched on the next offer. A worker that ended is
// forgotten; one that failed is replaced (the target stays), though not
// on its agent for a while.
func (s *Scheduler) update(ctx context.Context, st mesos.TaskStatus) {
	s.mu.Lock()
	d := s.findLocked(st.TaskID.Value)
	if d == nil {
		s.mu.Unlock()
		return
	}
	was := d.State
	d.State, d.Message = st.GetState().String(), statusMessage(st)
	var kill [][2]string
	switch {
	case d.active():
		if d == s.master && d.State == mesos.TASK_RUNNING.String() && was != d.State {
			go s.probeMaster(d.TaskID)
		}
		if d.Killed {
			kill = append(kill, [2]string{d.TaskID, d.AgentID})
		}
	case d == s.master:
		if !d.Killed {
			s.log.Warn("standalone Master ended", "task", d.TaskID, "status", d.Message)
		}
		s.master = nil
		for _, w := range s.workers {
			if w.active() && !w.Killed {
				w.Killed = true
				kill = append(kill, [2]string{w.TaskID, w.AgentID})
			}
		}
		// The workers go with it; as many are launched for the next.
		s.reviveLocked()
	default:
		failed := !d.Killed && d.State != mesos.TASK_FINISHED.String()
		if failed {
			s.failures[d.AgentID]++
			wait := min(maxFailureWait, time.Duration(s.failures[d.AgentID])*5*time.Second)
			s.notBefore[d.AgentID] = time.Now().Add(wait)
			s.log.Warn("standalone Worker failed", "task", d.TaskID, "agent", d.Hostname, "status", d.Message, "agent_wait", wait)
		} else {
			s.log.Info("standalone Worker ended", "task", d.TaskID, "state", d.State)
		}
		s.forgetLocked(d)
		if s.wantsLocked() {
			s.reviveLocked()
		}
	}
	s.mu.Unlock()
	for _, k := range kill {
		if err := s.sched.Kill(ctx, k[0], k[1]); err != nil {
			s.log.Warn("kill", "task", k[0], "err", err)
		}
	}
}

func (s *Scheduler) findLocked(taskID string) *Daemon {
	if s.master != nil && s.master.TaskID == taskID {
		return s.master
	}
	return s.workers[taskID]
}

// forgetLocked drops an ended daemon.
func (s *Scheduler) forgetLocked(d *Daemon) {
	if d == s.master {
		s.master = nil
		return
	}
	delete(s.workers, d.TaskID)
}

// probeMaster marks the Master ready once its RPC port and web UI answer,
// and asks for offers for the workers.
func (s *Scheduler) probeMaster(taskID string) {
	s.mu.Lock()
	m := s.master
	if m == nil || m.TaskID != taskID {
		s.mu.Unlock()
		return
	}
	rpc := net.JoinHostPort(m.Hostname, strconv.FormatUint(m.Port, 10))
	ui := "http://" + net.JoinHostPort(m.Hostname, strconv.FormatUint(m.UIPort, 10))
	s.mu.Unlock()
	deadline := time.Now().Add(readyWithin)
	for {
		c, err := net.DialTimeout("tcp", rpc, 2*time.Second)
		if err == nil {
			c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = fetchState(ctx, s.http, ui)
			cancel()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			// Killed, it ends, and another is launched.
			s.log.Warn("the standalone Master does not answer: killing it", "task", taskID, "addr", rpc, "err", err)
			s.killDaemon(taskID)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.master != nil && s.master.TaskID == taskID && s.master.active() {
		s.master.Ready = true
		s.log.Info("standalone Master ready", "url", s.masterURLLocked(), "webui", ui)
		if s.wantsLocked() {
			s.reviveLocked()
		}
	}
}

// killDaemon kills a daemon's task, marked as killed here.
func (s *Scheduler) killDaemon(taskID string) {
	s.mu.Lock()
	d := s.findLocked(taskID)
	if d == nil || !d.active() {
		s.mu.Unlock()
		return
	}
	d.Killed = true
	agentID, sd := d.AgentID, s.sched
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sd.Kill(ctx, taskID, agentID); err != nil {
		s.log.Warn("kill", "task", taskID, "err", err)
	}
}

// reviveLocked asks for offers again: the generation moves, and the revive
// is sent after any decline or suppress under way (callMu).
func (s *Scheduler) reviveLocked() {
	s.gen++
	if !s.subscribed || s.sched == nil {
		return
	}
	sd := s.sched
	go func() {
		s.callMu.Lock()
		defer s.callMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := sd.Revive(ctx); err != nil {
			s.log.Warn("revive offers", "err", err)
		}
	}()
}

// statusMessage is a task status in words: its state, reason and message.
func statusMessage(st mesos.TaskStatus) string {
	m := st.GetState().String()
	if r := st.GetReason(); r != 0 {
		m += " (" + r.String() + ")"
	}
	if msg := st.GetMessage(); msg != "" {
		m += ": " + msg
	}
	return m
}
