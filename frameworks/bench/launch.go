// Package bench holds benchmark frameworks: ordinary SDK frameworks that
// measure a cluster from the outside, through the public API only.
package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mscheduler "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// LaunchConfig configures the launch benchmark.
type LaunchConfig struct {
	Masters            []string
	Codec              api.Codec    // zero: protobuf
	Logger             *slog.Logger // progress and diagnostics
	Name               string       // framework name; default "agora-bench"
	Role               string       // default "*"
	Tasks              int          // how many tasks to launch; default 1000
	CPUs, Mem          float64      // per task
	Command            string       // shell command each task runs; default "true"
	MaxConnectFailures int          // see scheduler.Config
	ProgressEvery      time.Duration
}

// LaunchResult is what the launch benchmark measured. Seconds runs from
// SUBSCRIBED to the last terminal update (or to now, if tasks are left
// unfinished); tasks_per_s is finished tasks per second. Latencies are from
// the ACCEPT that launched a task to its first TASK_RUNNING and to its
// TASK_FINISHED, in milliseconds.
type LaunchResult struct {
	Tasks               int            `json:"tasks"`
	Launched            int            `json:"launched"`
	Finished            int            `json:"finished"`
	Failed              int            `json:"failed"`
	Unfinished          int            `json:"unfinished"`
	FailedStates        map[string]int `json:"failed_states,omitempty"`
	Seconds             float64        `json:"seconds"`
	TasksPerSecond      float64        `json:"tasks_per_s"`
	AcceptToRunningP50  float64        `json:"accept_to_running_p50_ms"`
	AcceptToRunningP99  float64        `json:"accept_to_running_p99_ms"`
	AcceptToFinishedP50 float64        `json:"accept_to_finished_p50_ms"`
	AcceptToFinishedP99 float64        `json:"accept_to_finished_p99_ms"`
	Offers              int            `json:"offers_used"`
	Accepts             int            `json:"accepts"`
	Agents              int            `json:"agents"`
}

// maxAcceptErrors ends the benchmark after this many failed ACCEPTs in a row.
const maxAcceptErrors = 10

// launchRun is one run's state; the driver's event goroutine changes it,
// the progress reporter reads it.
type launchRun struct {
	cfg   LaunchConfig
	log   *slog.Logger
	need  offers.Need
	runID string
	d     *scheduler.Driver

	mu         sync.Mutex
	start      time.Time
	end        time.Time
	pending    []int // task numbers not launched yet
	accepted   map[string]time.Time
	running    map[string]time.Time
	finished   map[string]time.Time
	terminal   map[string]bool
	failed     map[string]int
	agents     map[string]bool
	offersUsed int
	accepts    int
	acceptErrs int
	suppressed bool

	done  chan struct{}
	fatal chan error
}

// Launch runs the launch benchmark: it launches cfg.Tasks command tasks as
// fast as offers allow, packing as many into each offer as fit, and waits
// for all of them to end. The result is returned even when err is not nil
// (for example when ctx ends first), covering what was measured.
func Launch(ctx context.Context, cfg LaunchConfig) (*LaunchResult, error) {
	if cfg.Tasks <= 0 {
		cfg.Tasks = 1000
	}
	if cfg.Name == "" {
		cfg.Name = "agora-bench"
	}
	if cfg.Role == "" {
		cfg.Role = "*"
	}
	if cfg.Command == "" {
		cfg.Command = "true"
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = time.Second
	}
	if cfg.CPUs <= 0 && cfg.Mem <= 0 {
		return nil, errors.New("bench launch: tasks ask for neither cpus nor mem")
	}
	r := &launchRun{
		cfg: cfg, log: cfg.Logger,
		need:     offers.Need{CPUs: cfg.CPUs, Mem: cfg.Mem, Role: cfg.Role},
		runID:    fmt.Sprintf("%06x", rand.Uint32()&0xffffff),
		accepted: map[string]time.Time{}, running: map[string]time.Time{}, finished: map[string]time.Time{},
		terminal: map[string]bool{}, failed: map[string]int{}, agents: map[string]bool{},
		done: make(chan struct{}), fatal: make(chan error, 1),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	for i := 0; i < cfg.Tasks; i++ {
		r.pending = append(r.pending, i)
	}
	zero := 0.0
	d, err := scheduler.New(scheduler.Config{
		Masters: cfg.Masters,
		Framework: mesos.FrameworkInfo{
			Name: cfg.Name, Roles: []string{cfg.Role}, FailoverTimeout: &zero,
			Capabilities: scheduler.Capabilities(mesos.FrameworkInfo_Capability_MULTI_ROLE, mesos.FrameworkInfo_Capability_RESERVATION_REFINEMENT),
		},
		Codec:              cfg.Codec,
		Logger:             r.log,
		MaxConnectFailures: cfg.MaxConnectFailures,
	}, scheduler.Funcs{
		OnSubscribed: func(context.Context, *mscheduler.Event_Subscribed) { r.subscribed() },
		OnOffers:     r.offers,
		OnUpdate:     r.update,
	})
	if err != nil {
		return nil, fmt.Errorf("bench launch: %w", err)
	}
	r.d = d
	return r.run(ctx)
}

func (r *launchRun) run(ctx context.Context) (*LaunchResult, error) {
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- r.d.Run(dctx) }()
	tick := time.NewTicker(r.cfg.ProgressEvery)
	defer tick.Stop()
	var runErr error
loop:
	for {
		select {
		case <-tick.C:
			r.progress()
		case <-r.done:
			break loop
		case err := <-r.fatal:
			runErr = err
			break loop
		case err := <-errc:
			if err == nil {
				err = errors.New("framework torn down")
			}
			return r.result(), fmt.Errorf("bench launch: %w", err)
		}
	}
	tctx, tcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer tcancel()
	if err := r.d.Teardown(tctx); err != nil {
		r.log.Debug("teardown", "err", err)
	}
	cancel()
	<-errc
	return r.result(), runErr
}

func (r *launchRun) subscribed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.start.IsZero() {
		r.start = time.Now()
	}
}

// offers packs pending tasks into each offer and declines what is left.
func (r *launchRun) offers(ctx context.Context, os []mesos.Offer) {
	var decline []mesos.OfferID
	for i := range os {
		o := &os[i]
		pool := offers.NewPool(o)
		r.mu.Lock()
		var tasks []mesos.TaskInfo
		var nums []int
		for len(r.pending) > 0 {
			rs, ok := pool.Take(r.need)
			if !ok {
				break
			}
			n := r.pending[0]
			r.pending = r.pending[1:]
			nums = append(nums, n)
			tasks = append(tasks, r.taskInfo(n, o.AgentID, rs))
		}
		r.mu.Unlock()
		if len(tasks) == 0 {
			decline = append(decline, o.ID)
			continue
		}
		r.launch(ctx, o, tasks, nums)
	}
	r.mu.Lock()
	allLaunched := len(r.pending) == 0
	suppress := allLaunched && !r.suppressed
	r.suppressed = r.suppressed || suppress
	r.mu.Unlock()
	if suppress {
		if err := r.d.Suppress(ctx); err != nil {
			r.log.Warn("suppress offers", "err", err)
		}
	}
	if len(decline) > 0 {
		refuse := time.Second
		if allLaunched {
			refuse = time.Hour
		}
		if err := r.d.Decline(ctx, decline, refuse); err != nil {
			r.log.Warn("decline offers", "err", err)
		}
	}
}

// launch sends one ACCEPT with tasks; on failure they go back to pending.
func (r *launchRun) launch(ctx context.Context, o *mesos.Offer, tasks []mesos.TaskInfo, nums []int) {
	now := time.Now()
	r.mu.Lock()
	for _, t := range tasks {
		r.accepted[t.TaskID.Value] = now
	}
	r.mu.Unlock()
	err := r.d.Launch(ctx, []mesos.OfferID{o.ID}, tasks, scheduler.RefuseFor(0))
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		for _, t := range tasks {
			delete(r.accepted, t.TaskID.Value)
		}
		r.pending = append(nums, r.pending...)
		r.acceptErrs++
		r.log.Warn("accept failed; tasks go back to pending", "offer", o.ID.Value, "tasks", len(tasks), "err", err)
		if r.acceptErrs >= maxAcceptErrors {
			select {
			case r.fatal <- fmt.Errorf("bench launch: %d ACCEPTs in a row failed, last: %w", r.acceptErrs, err):
			default:
			}
		}
		return
	}
	r.acceptErrs = 0
	r.accepts++
	r.offersUsed++
	r.agents[o.AgentID.Value] = true
	r.log.Debug("launched", "tasks", len(tasks), "agent", o.Hostname)
}

func (r *launchRun) taskInfo(n int, agent mesos.AgentID, rs []mesos.Resource) mesos.TaskInfo {
	shell, value := true, r.cfg.Command
	return mesos.TaskInfo{
		Name:      fmt.Sprintf("bench-%d", n),
		TaskID:    mesos.TaskID{Value: fmt.Sprintf("bench-%s-%06d", r.runID, n)},
		AgentID:   agent,
		Resources: rs,
		Command:   &mesos.CommandInfo{Shell: &shell, Value: &value},
	}
}

// update records the times of TASK_RUNNING and of the terminal state.
func (r *launchRun) update(_ context.Context, st mesos.TaskStatus) {
	id, state, now := st.TaskID.Value, st.GetState(), time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ours := r.accepted[id]; !ours || r.terminal[id] {
		return
	}
	switch {
	case state == mesos.TASK_RUNNING:
		if _, seen := r.running[id]; !seen {
			r.running[id] = now
		}
	case state == mesos.TASK_FINISHED:
		r.finished[id] = now
	case scheduler.IsTerminal(state):
		r.failed[state.String()]++
		r.log.Warn("task failed", "task", id, "state", state.String(), "reason", st.GetReason().String(), "message", st.GetMessage())
	}
	if scheduler.IsTerminal(state) {
		r.terminal[id] = true
		r.end = now
		if len(r.terminal) == r.cfg.Tasks {
			close(r.done)
		}
	}
}

func (r *launchRun) progress() {
	r.mu.Lock()
	defer r.mu.Unlock()
	failed := 0
	for _, n := range r.failed {
		failed += n
	}
	r.log.Info("progress", "launched", len(r.accepted), "running", len(r.running)-len(r.finished), "finished", len(r.finished), "failed", failed, "of", r.cfg.Tasks)
}

// result summarises the run so far.
func (r *launchRun) result() *LaunchResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &LaunchResult{
		Tasks: r.cfg.Tasks, Launched: len(r.accepted), Finished: len(r.finished),
		Offers: r.offersUsed, Accepts: r.accepts, Agents: len(r.agents),
	}
	for s, n := range r.failed {
		res.Failed += n
		if res.FailedStates == nil {
			res.FailedStates = map[string]int{}
		}
		res.FailedStates[s] = n
	}
	res.Unfinished = res.Tasks - res.Finished - res.Failed
	var toRunning, toFinished []time.Duration
	for id, t := range r.running {
		toRunning = append(toRunning, t.Sub(r.accepted[id]))
	}
	for id, t := range r.finished {
		toFinished = append(toFinished, t.Sub(r.accepted[id]))
	}
	res.AcceptToRunningP50 = ms(Percentile(toRunning, 50))
	res.AcceptToRunningP99 = ms(Percentile(toRunning, 99))
	res.AcceptToFinishedP50 = ms(Percentile(toFinished, 50))
	res.AcceptToFinishedP99 = ms(Percentile(toFinished, 99))
	end := r.end
	if end.IsZero() || res.Unfinished > 0 {
		end = time.Now()
	}
	if !r.start.IsZero() {
		secs := end.Sub(r.start).Seconds()
		res.Seconds = float64(int64(secs*1000)) / 1000
		if secs > 0 {
			res.TasksPerSecond = float64(int64(float64(res.Finished)/secs*10)) / 10
		}
	}
	return res
}
