// Package framework runs a lambda pipeline's layers as agora tasks: a
// framework (the scheduler SDK) that keeps an ingest task and a speed-layer
// task running — launching a new one when one dies — and runs the batch
// job as a task on its period or on demand, launching a new attempt when
// one fails. Each task is `agora lambda ingest|speed|recompute` from the
// same binary, over the work directory and brokers they share.
//
// The layers' own guarantees make a dead task harmless: the ingester
// resumes after its last committed chunk, the speed layer rebuilds its
// view from the batch watermark on, and a batch attempt writes its view by
// a rename, so a killed attempt leaves the previous view whole.
package framework

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mscheduler "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// Layer names, also the tasks' subcommands.
const (
	Ingest = "ingest"
	Speed  = "speed"
	Batch  = "recompute"
)

// Config is one pipeline's framework.
type Config struct {
	Masters []string
	// Name is the pipeline's name; the framework is lambda-NAME.
	Name string
	// Command runs a layer: Command + [layer] + Args[layer].
	Command []string
	// Verbs replace a layer's name in its command (the speed layer as a
	// Storm topology is `storm-speed`).
	Verbs map[string]string
	Args  map[string][]string
	// CPUs and Mem are each task's resources (default 0.5 and 256 MB).
	CPUs, Mem float64
	// Restart spaces the launches of one layer after a failure (default 1s).
	Restart time.Duration
	// MaxConnectFailures ends Run after this many failed subscriptions in
	// a row (0: it retries forever).
	MaxConnectFailures int
	Log                *slog.Logger
	// Principal and Secret, if set, are the framework's credentials, for
	// a master with --authenticate_frameworks; TLS, if set, calls masters
	// given as host:port over HTTPS, verified with its roots.
	Principal, Secret string
	TLS               *tls.Config
}

// TaskStatus is one layer's current task.
type TaskStatus struct {
	Layer    string `json:"layer"`
	TaskID   string `json:"task_id,omitempty"`
	State    string `json:"state"`
	Launches int    `json:"launches"`
	Addr     string `json:"addr,omitempty"` // the speed task's query API
}

// slot is a layer and its current task.
type slot struct {
	layer     string
	want      bool // a task should run (for the batch job: one is due)
	taskID    string
	agentID   string
	state     mesos.TaskState
	live      bool // launched and not ended
	launches  int
	notBefore time.Time
	addr      string // host:port, for the speed task, once launched
	running   bool
}

// Framework is a running pipeline framework.
type Framework struct {
	cfg Config
	d   *scheduler.Driver

	mu    sync.Mutex
	slots map[string]*slot
	// The waiters of the batch run under way, and of the one after it:
	// a run asked for while one is under way starts when it ends, so that
	// it covers what was ingested before it was asked for.
	batchWaiters, nextWaiters []chan error
}

// New prepares the framework; Run subscribes it.
func New(cfg Config) (*Framework, error) {
	if len(cfg.Masters) == 0 || len(cfg.Command) == 0 || cfg.Name == "" {
		return nil, errors.New("lambda framework: masters, a command and a pipeline name are needed")
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 0.5
	}
	if cfg.Mem == 0 {
		cfg.Mem = 256
	}
	if cfg.Restart == 0 {
		cfg.Restart = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	f := &Framework{cfg: cfg, slots: map[string]*slot{
		Ingest: {layer: Ingest, want: true},
		Speed:  {layer: Speed, want: true},
		Batch:  {layer: Batch},
	}}
	zero := 0.0
	d, err := scheduler.New(scheduler.Config{
		Masters: cfg.Masters,
		// Without a failover timeout the master ends the tasks when the
		// framework goes: the pipeline does not outlive `up`.
		Framework: mesos.FrameworkInfo{Name: "lambda-" + cfg.Name, Roles: []string{"*"}, FailoverTimeout: &zero,
			Capabilities: scheduler.Capabilities(mesos.FrameworkInfo_Capability_MULTI_ROLE)},
		Logger:             cfg.Log,
		MaxConnectFailures: cfg.MaxConnectFailures,
		Principal:          cfg.Principal, Secret: cfg.Secret, TLS: cfg.TLS,
	}, f.handler())
	if err != nil {
		return nil, fmt.Errorf("lambda framework: %w", err)
	}
	f.d = d
	return f, nil
}

// Run keeps the layers' tasks running until ctx ends, then tears the
// framework down (the master kills its tasks).
func (f *Framework) Run(ctx context.Context) error {
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- f.d.Run(dctx) }()
	select {
	case err := <-errc:
		return fmt.Errorf("lambda framework: %w", err)
	case <-ctx.Done():
	}
	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer tcancel()
	if err := f.d.Teardown(tctx); err != nil {
		f.cfg.Log.Warn("teardown", "err", err)
	}
	cancel()
	<-errc
	return nil
}

// SpeedAddr is the running speed task's query API ("" while none runs).
func (f *Framework) SpeedAddr() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.slots[Speed]; s.running {
		return s.addr
	}
	return ""
}

// Tasks reports each layer's task.
func (f *Framework) Tasks() []TaskStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []TaskStatus
	for _, l := range []string{Ingest, Speed, Batch} {
		s := f.slots[l]
		st := TaskStatus{Layer: l, TaskID: s.taskID, Launches: s.launches, Addr: s.addr}
		switch {
		case s.taskID == "" && s.want:
			st.State = "PENDING"
		case s.taskID == "":
			st.State = "IDLE"
		default:
			st.State = s.state.String()
		}
		out = append(out, st)
	}
	return out
}

// RunBatch has a batch job run (joining the one under way, if any) and
// waits until an attempt finishes or ctx ends.
func (f *Framework) RunBatch(ctx context.Context) error {
	done := make(chan error, 1)
	f.mu.Lock()
	if s := f.slots[Batch]; !s.want {
		s.want, s.launches, s.notBefore = true, 0, time.Time{}
		f.batchWaiters = append(f.batchWaiters, done)
	} else {
		f.nextWaiters = append(f.nextWaiters, done)
	}
	f.mu.Unlock()
	f.revive()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("lambda framework: the batch job: %w", ctx.Err())
	}
}

func (f *Framework) handler() scheduler.Handler {
	return scheduler.Funcs{
		OnSubscribed: func(ctx context.Context, _ *mscheduler.Event_Subscribed) {
			// Re-subscribed: ask where the live tasks are.
			var ts []mscheduler.Call_Reconcile_Task
			f.mu.Lock()
			for _, s := range f.slots {
				if s.live {
					ts = append(ts, scheduler.ReconcileTask(s.taskID, s.agentID))
				}
			}
			f.mu.Unlock()
			if len(ts) > 0 {
				_ = f.d.Reconcile(ctx, ts)
			}
		},
		OnOffers: f.offers,
		OnUpdate: f.update,
		OnDisconnected: func(_ context.Context, err error) {
			f.cfg.Log.Warn("lost the master", "err", err)
		},
	}
}

// maxBatchAttempts ends a batch run that failed this many times in a row.
const maxBatchAttempts = 5

func (f *Framework) update(_ context.Context, st mesos.TaskStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s *slot
	for _, c := range f.slots {
		if c.taskID == st.TaskID.Value {
			s = c
		}
	}
	if s == nil {
		return // an earlier task of a layer
	}
	s.state = st.GetState()
	s.running = s.state == mesos.TASK_RUNNING
	if !scheduler.IsTerminal(s.state) {
		return
	}
	if !s.live {
		return // a duplicate
	}
	s.live = false
	f.cfg.Log.Info("task ended", "layer", s.layer, "task", s.taskID, "state", s.state.String(), "message", st.GetMessage())
	if s.layer == Batch {
		switch {
		case s.state == mesos.TASK_FINISHED:
			s.want = false
			f.batchDone(nil)
			return
		case s.launches >= maxBatchAttempts:
			s.want = false
			f.batchDone(fmt.Errorf("lambda framework: the batch job failed %d times; the last attempt ended %s: %s", s.launches, s.state, st.GetMessage()))
			return
		}
	}
	// A layer that must run (or a batch run not done) gets a new task.
	s.want = true
	s.notBefore = time.Now().Add(f.cfg.Restart)
	go f.revive()
}

// batchDone ends the waits of the run under way and starts the next run
// if one was asked for meanwhile; f.mu is held.
func (f *Framework) batchDone(err error) {
	for _, c := range f.batchWaiters {
		c <- err
	}
	f.batchWaiters, f.nextWaiters = f.nextWaiters, nil
	if len(f.batchWaiters) > 0 {
		s := f.slots[Batch]
		s.want, s.launches, s.notBefore = true, 0, time.Time{}
		go f.revive()
	}
}

func (f *Framework) revive() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.d.Revive(ctx); err != nil {
		f.cfg.Log.Warn("revive offers", "err", err)
	}
}

// offers launches the tasks that are due and declines the rest.
func (f *Framework) offers(ctx context.Context, os []mesos.Offer) {
	now := time.Now()
	for i := range os {
		o := &os[i]
		pool := offers.NewPool(o)
		var tasks []mesos.TaskInfo
		f.mu.Lock()
		for _, l := range []string{Ingest, Speed, Batch} {
			s := f.slots[l]
			if !s.want || s.live || now.Before(s.notBefore) {
				continue
			}
			need := offers.Need{CPUs: f.cfg.CPUs, Mem: f.cfg.Mem}
			if l == Speed {
				need.Ports = 1
			}
			rs, ok := pool.Take(need)
			if !ok {
				f.cfg.Log.Debug("offer does not fit", "layer", l, "why", pool.Shortfall(need))
				continue
			}
			s.launches++
			s.taskID = fmt.Sprintf("%s-%s-%d-%d", f.cfg.Name, l, now.UnixMilli(), s.launches)
			s.agentID, s.live, s.running, s.state = o.AgentID.Value, true, false, mesos.TASK_STAGING
			verb := l
			if v := f.cfg.Verbs[l]; v != "" {
				verb = v
			}
			args := append([]string{verb}, f.cfg.Args[l]...)
			if l == Speed {
				port := firstPort(rs)
				s.addr = net.JoinHostPort(o.Hostname, strconv.Itoa(int(port)))
				args = append(args, "--api", net.JoinHostPort("", strconv.Itoa(int(port))))
			}
			tasks = append(tasks, f.taskInfo(s.taskID, l, o.AgentID, rs, args))
		}
		f.mu.Unlock()
		if len(tasks) == 0 {
			if err := f.d.Decline(ctx, []mesos.OfferID{o.ID}, time.Second); err != nil {
				f.cfg.Log.Warn("decline offer", "err", err)
			}
			continue
		}
		if err := f.d.Launch(ctx, []mesos.OfferID{o.ID}, tasks, scheduler.RefuseFor(time.Second)); err != nil {
			// The tasks were not launched: their slots want a new one.
			f.cfg.Log.Warn("launch", "err", err)
			f.mu.Lock()
			for _, t := range tasks {
				for _, s := range f.slots {
					if s.taskID == t.TaskID.Value {
						s.live = false
					}
				}
			}
			f.mu.Unlock()
			continue
		}
		for _, t := range tasks {
			f.cfg.Log.Info("launched", "task", t.TaskID.Value, "agent", o.Hostname)
		}
	}
}

func (f *Framework) taskInfo(id, layer string, agent mesos.AgentID, rs []mesos.Resource, args []string) mesos.TaskInfo {
	shell, value := false, f.cfg.Command[0]
	argv := append(append([]string{}, f.cfg.Command...), args...)
	return mesos.TaskInfo{
		Name:      "lambda-" + f.cfg.Name + "-" + layer,
		TaskID:    mesos.TaskID{Value: id},
		AgentID:   agent,
		Resources: rs,
		Command:   &mesos.CommandInfo{Shell: &shell, Value: &value, Arguments: argv},
	}
}

func firstPort(rs []mesos.Resource) uint64 {
	for _, r := range rs {
		if r.Name == "ports" && r.Ranges != nil && len(r.Ranges.Range) > 0 {
			return r.Ranges.Range[0].Begin
		}
	}
	return 0
}
