package framework

import (
	"context"
	"fmt"
	"math"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mscheduler "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// Offer filters: offers that fit nobody for want of resources come back
// soon; with nothing wanted they are declined for long and offers
// suppressed (a revive undoes both).
const (
	shortRefuse = 5 * time.Second
	idleRefuse  = time.Hour
	// minRefuse bounds how briefly an offer is declined (a locality wait
	// about to end), so that it is not sent back at once, over and over.
	minRefuse = time.Second
)

// executorClass is the class an executor task runs.
const executorClass = "org.apache.spark.executor.CoarseGrainedExecutorBackend"

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

// subscribedEvent asks where the active executors are (after a master
// failover) and asks for offers if an application wants executors.
func (s *Scheduler) subscribedEvent(ctx context.Context, sub *mscheduler.Event_Subscribed) {
	s.mu.Lock()
	s.subscribed = true
	s.frameworkID = sub.FrameworkID.GetValue()
	var tasks []mscheduler.Call_Reconcile_Task
	for _, id := range s.order {
		for _, e := range s.apps[id].executors {
			if e.active() {
				tasks = append(tasks, scheduler.ReconcileTask(e.TaskID, e.AgentID))
			}
		}
	}
	for _, ss := range s.shuffle {
		if ss.active() {
			tasks = append(tasks, scheduler.ReconcileTask(ss.TaskID, ss.AgentID))
		}
	}
	s.reviveLocked()
	s.mu.Unlock()
	s.log.Info("subscribed", "framework_id", sub.FrameworkID.GetValue(), "reconciling", len(tasks))
	if len(tasks) > 0 {
		if err := s.sched.Reconcile(ctx, tasks); err != nil {
			s.log.Warn("reconcile executors", "err", err)
		}
	}
}

type launch struct {
	offer   mesos.OfferID
	tasks   []mesos.TaskInfo
	execs   []*Executor
	shuffle []*ShuffleService
}

// offers packs executors of the applications that want them into the
// offers, one executor per application in turn, and declines the rest.
func (s *Scheduler) offers(ctx context.Context, offered []mesos.Offer) {
	s.mu.Lock()
	var launches []launch
	type decline struct {
		id     mesos.OfferID
		refuse time.Duration
	}
	var declines []decline
	for i := range offered {
		l, refuse := s.packLocked(&offered[i])
		if len(l.tasks) == 0 {
			declines = append(declines, decline{offered[i].ID, refuse})
			continue
		}
		launches = append(launches, l)
	}
	idle := true
	for _, id := range s.order {
		if want, _ := s.apps[id].wants(); want {
			idle = false
		}
	}
	gen := s.gen
	s.mu.Unlock()

	for _, l := range launches {
		err := s.sched.Launch(ctx, []mesos.OfferID{l.offer}, l.tasks, scheduler.RefuseFor(shortRefuse))
		if err == nil {
			continue
		}
		s.mu.Lock()
		for _, e := range l.execs {
			e.State, e.Message = mesos.TASK_ERROR.String(), fmt.Sprintf("launch failed: %v", err)
		}
		for _, ss := range l.shuffle {
			if s.shuffle[ss.Hostname] == ss {
				delete(s.shuffle, ss.Hostname)
			}
		}
		s.reviveLocked()
		s.mu.Unlock()
		s.log.Warn("launch executors", "err", err)
	}

	s.callMu.Lock()
	defer s.callMu.Unlock()
	s.mu.Lock()
	idle = idle && s.gen == gen // a change since wants offers again
	s.mu.Unlock()
	byRefuse := map[time.Duration][]mesos.OfferID{}
	for _, d := range declines {
		r := d.refuse
		if idle {
			r = idleRefuse
		}
		byRefuse[r] = append(byRefuse[r], d.id)
	}
	for r, ids := range byRefuse {
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

// packLocked takes executors out of one offer; with none, refuse is how
// long to decline it for: an application's spark.mesos.rejectOfferDuration
// when constraints or the blocklist rule the agent out for every
// application that wants executors, shortRefuse otherwise, and no longer
// than what is left of a locality wait that passed it over.
func (s *Scheduler) packLocked(o *mesos.Offer) (launch, time.Duration) {
	l := launch{offer: o.ID}
	pool := offers.NewPool(o)
	refuse := time.Duration(0)
	short := false
	now := s.cfg.Now()
	localWait := time.Duration(0) // the shortest locality wait left that passed over o
	for progress := true; progress; {
		progress = false
		for _, id := range s.order {
			a := s.apps[id]
			want, coresLeft := a.wants()
			if !want {
				continue
			}
			if a.blocklisted(o.AgentID.Value) {
				refuse = maxRefuse(refuse, a.Sizing.RejectFor)
				continue
			}
			if ok, why := a.Sizing.Constraints.Match(o.Attributes); !ok {
				a.Message = fmt.Sprintf("spark.mesos.constraints rule out %s: %s", o.Hostname, why)
				refuse = maxRefuse(refuse, a.Sizing.RejectFor)
				continue
			}
			if ok, left := a.localityAllows(o.Hostname, now); !ok {
				a.Message = a.localityMessage(o.Hostname, left)
				if localWait == 0 || left < localWait {
					localWait = left
				}
				continue
			}
			cores := float64(a.Sizing.Cores)
			if cores == 0 {
				cores = math.Floor(pool.Sum(a.Sizing.Role)["cpus"])
				if coresLeft > 0 {
					cores = math.Min(cores, math.Floor(coresLeft))
				}
				if cores < 1 {
					short = true
					continue
				}
			}
			need := offers.Need{CPUs: cores, Mem: a.Sizing.MemMB, Role: a.Sizing.Role}
			if !pool.Fits(need) {
				if pool.Tasks() == 0 {
					a.Message = fmt.Sprintf("an executor (%g cpus, %g MB) does not fit the offer from %s: %s", cores, a.Sizing.MemMB, o.Hostname, pool.Shortfall(need))
				}
				short = true
				continue
			}
			var ss *ShuffleService
			if a.Sizing.ShuffleService {
				if ss = s.shuffleServiceLocked(a, o, pool, &l); ss == nil {
					short = true
					continue
				}
			}
			rs, ok := pool.Take(need)
			if !ok {
				if pool.Tasks() == 0 {
					a.Message = fmt.Sprintf("an executor (%g cpus, %g MB) does not fit the offer from %s: %s", cores, a.Sizing.MemMB, o.Hostname, pool.Shortfall(need))
				}
				short = true
				continue
			}
			e := a.newExecutor(o, cores, now)
			l.tasks = append(l.tasks, s.executorTask(a, e, o, rs, ss))
			l.execs = append(l.execs, e)
			a.Message = ""
			progress = true
			s.log.Info("executor launching", "app", a.ID, "executor", e.ID, "task", e.TaskID, "agent", o.Hostname, "cpus", cores, "mem_mb", a.Sizing.MemMB)
		}
	}
	if short || refuse == 0 {
		refuse = shortRefuse
	}
	if localWait > 0 && localWait < refuse {
		// Back when the wait is over, when any host will do.
		refuse = max(localWait, minRefuse)
	}
	return l, refuse
}

func maxRefuse(a, b time.Duration) time.Duration {
	if a == 0 || b > a {
		return b
	}
	return a
}

// newExecutor records an executor as launched on o (before the launch is
// sent, so that its updates find it).
func (a *App) newExecutor(o *mesos.Offer, cores float64, now time.Time) *Executor {
	id := strconv.Itoa(a.nextID)
	a.nextID++
	e := &Executor{ID: id, TaskID: a.ID + "-" + id, AgentID: o.AgentID.Value, Hostname: o.Hostname,
		CPUs: cores, MemMB: a.Sizing.MemMB, State: mesos.TASK_STAGING.String(), Launched: now.UTC()}
	a.executors[id] = e
	a.execOrder = append(a.execOrder, id)
	return e
}

// executorTask is an executor's task: Spark's CoarseGrainedExecutorBackend
// from the Spark home's bin/spark-class (or, with spark.executor.uri, from
// the archive fetched into the sandbox), connecting to the driver.
func (s *Scheduler) executorTask(a *App, e *Executor, o *mesos.Offer, rs []mesos.Resource, ss *ShuffleService) mesos.TaskInfo {
	args := []string{executorClass,
		"--driver-url", a.DriverURL,
		"--executor-id", e.ID,
		"--hostname", o.Hostname,
		"--cores", strconv.Itoa(int(e.CPUs)),
		"--app-id", a.ID}
	var uris []mesos.CommandInfo_URI
	for _, u := range a.Sizing.URIs {
		uris = append(uris, mesos.CommandInfo_URI{Value: u})
	}
	cmd := &mesos.CommandInfo{URIs: uris}
	if a.Sizing.URI != "" {
		// As Spark's Mesos backend: the archive unpacks to spark-*/ in the
		// sandbox.
		extract := true
		cmd.URIs = append(cmd.URIs, mesos.CommandInfo_URI{Value: a.Sizing.URI, Extract: &extract})
		shell := true
		v := "cd spark-*/ && exec ./bin/spark-class " + shellJoin(args)
		cmd.Shell, cmd.Value = &shell, &v
	} else {
		home := s.cfg.SparkHome
		if a.Sizing.Home != "" {
			home = a.Sizing.Home
		}
		shell := false
		v := path.Join(home, "bin", "spark-class")
		cmd.Shell, cmd.Value, cmd.Arguments = &shell, &v, append([]string{v}, args...)
	}
	env := map[string]string{}
	for k, v := range a.Sizing.Env {
		env[k] = v
	}
	env["SPARK_EXECUTOR_MEMORY"] = fmt.Sprintf("%dm", int(a.Sizing.HeapMB))
	opts := a.Sizing.JavaOpts
	if ss != nil {
		// The host's shuffle service: a port setting, kept by the
		// executor over the driver's; the shuffle files in the
		// service's directory, outside the sandbox (and its private
		// /tmp), where the service reads them after the executor ends.
		opts = strings.TrimSpace(opts + " -Dspark.shuffle.service.port=" + strconv.FormatUint(ss.Port, 10))
		env["SPARK_LOCAL_DIRS"] = ss.Dir
	}
	if opts != "" {
		env["SPARK_EXECUTOR_OPTS"] = opts
	}
	if j := s.javaHome(a); j != "" {
		env["JAVA_HOME"] = j
	}
	cmd.Environment = environment(env)
	name := a.Name
	if name == "" {
		name = a.ID
	}
	return mesos.TaskInfo{
		Name:      fmt.Sprintf("Spark executor %s of %s", e.ID, name),
		TaskID:    mesos.TaskID{Value: e.TaskID},
		AgentID:   o.AgentID,
		Resources: rs,
		Command:   cmd,
	}
}

// shellJoin quotes args for sh.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// update follows an executor's task. An executor that failed (not killed
// by a request, not after its application ended) counts against its agent;
// an application short of executors asks for offers again.
func (s *Scheduler) update(ctx context.Context, st mesos.TaskStatus) {
	s.mu.Lock()
	if s.shuffleUpdateLocked(st) {
		s.mu.Unlock()
		return
	}
	a, e := s.findLocked(st.TaskID.Value)
	if e == nil {
		s.mu.Unlock()
		return
	}
	state := st.GetState()
	e.State = state.String()
	e.Message = statusMessage(st)
	var killTask bool
	switch {
	case !scheduler.IsTerminal(state):
		// An executor launched as its application ended: not wanted.
		killTask = a.State != AppRunning || e.Killed
	case state == mesos.TASK_FINISHED || state == mesos.TASK_KILLED || e.Killed || a.State != AppRunning:
		s.log.Info("executor ended", "app", a.ID, "executor", e.ID, "state", e.State)
	default:
		a.failures[e.AgentID]++
		s.log.Warn("executor failed", "app", a.ID, "executor", e.ID, "agent", e.Hostname, "status", e.Message,
			"failures_on_agent", a.failures[e.AgentID])
		if a.blocklisted(e.AgentID) {
			a.Message = fmt.Sprintf("agent %s blocklisted after %d failed executors (last: %s)", e.Hostname, a.failures[e.AgentID], e.Message)
			s.log.Warn("agent blocklisted for the application", "app", a.ID, "agent", e.Hostname)
		}
	}
	failed := a.State == AppRunning && scheduler.IsTerminal(state) && !e.Killed &&
		state != mesos.TASK_FINISHED && state != mesos.TASK_KILLED
	if want, _ := a.wants(); want && scheduler.IsTerminal(state) && !failed {
		s.reviveLocked()
	}
	taskID, agentID, appID, driver := e.TaskID, e.AgentID, a.ID, a.DriverURL
	s.mu.Unlock()
	if failed {
		// An executor also fails when its driver died without saying so:
		// then the application has ended, and replacing executors would
		// only fail again.
		go s.afterFailure(appID, driver)
	}
	if killTask {
		if err := s.sched.Kill(ctx, taskID, agentID); err != nil {
			s.log.Warn("kill an unwanted executor", "task", taskID, "err", err)
		}
	}
}

// afterFailure ends an application whose driver no longer answers, and
// otherwise asks for offers for a replacement.
func (s *Scheduler) afterFailure(appID, driverURL string) {
	if !s.driverAlive(driverURL) {
		s.log.Warn("the driver is gone: ending its application", "app", appID, "driver", driverURL)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := s.end(ctx, appID); err != nil {
			s.log.Warn("end the application of a gone driver", "app", appID, "err", err)
		}
		s.mu.Lock()
		if a := s.apps[appID]; a != nil {
			a.Message = "the driver at " + driverURL + " is gone"
		}
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.apps[appID]; a != nil {
		if want, _ := a.wants(); want {
			s.reviveLocked()
		}
	}
}

// driverAlive says whether the driver's RPC endpoint (spark://NAME@HOST:PORT)
// accepts connections.
func driverAlive(driverURL string) bool {
	addr := driverURL[strings.LastIndexByte(driverURL, '@')+1:]
	addr = strings.TrimPrefix(addr, "spark://")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// findLocked finds an executor by its task ID (APPID-N).
func (s *Scheduler) findLocked(taskID string) (*App, *Executor) {
	i := strings.LastIndexByte(taskID, '-')
	if i < 0 {
		return nil, nil
	}
	a := s.apps[taskID[:i]]
	if a == nil {
		return nil, nil
	}
	e := a.executors[taskID[i+1:]]
	if e == nil || e.TaskID != taskID {
		return nil, nil
	}
	return a, e
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
