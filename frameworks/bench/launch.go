// Package bench holds benchmark frameworks: ordinary SDK frameworks that
// measure a cluster from the outside, through the public API only.
package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strconv"
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
	Masters []string
	Codec   api.Codec    // zero: protobuf
	Logger  *slog.Logger // progress and diagnostics
	Name    string       // framework name; default "agora-bench"
	Role    string       // default "*"
	Tasks   int          // how many tasks to launch; default 1000
	// MaxInFlight bounds the tasks launched but not yet TASK_RUNNING (nor
	// ended) at any moment; 0 means no bound: every task an offer can hold
	// is launched at once, which measures saturated throughput, and the
	// latencies then mostly measure queueing.
	MaxInFlight        int
	CPUs, Mem          float64 // per task
	Command            string  // shell command each task runs; default "true"
	MaxConnectFailures int     // see scheduler.Config
	ProgressEvery      time.Duration
	Principal, Secret  string      // the framework's credentials (see scheduler.Config)
	TLS                *tls.Config // verifies the master's certificate (see scheduler.Config)
	// Trace, if set, gets one line per task once the run ends (TraceHeader
	// names the columns); TraceRun is the run's label in its first column
	// (default max_in_flight=N).
	Trace    io.Writer
	TraceRun string
}

// LaunchResult is what the launch benchmark measured. Seconds runs from
// SUBSCRIBED to the last terminal update (or to now, if tasks are left
// unfinished); tasks_per_s is finished tasks per second. Latencies are from
// the ACCEPT that launched a task to its first TASK_RUNNING and to its
// TASK_FINISHED, in milliseconds, as the framework saw them.
type LaunchResult struct {
	Tasks               int            `json:"tasks"`
	MaxInFlight         int            `json:"max_in_flight"` // 0: no limit
	PeakInFlight        int            `json:"peak_in_flight"`
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
	// Phases splits accept→running, see LaunchPhases; nil when no task
	// reported both TASK_STARTING and TASK_RUNNING.
	Phases *LaunchPhases `json:"phases_ms,omitempty"`
	// CPU is the CPU time the run cost per task (cpu.go); nil where this
	// machine's counters cannot be read or a task did not end.
	CPU *LaunchCPU `json:"cpu_ms_per_task,omitempty"`
}

// LaunchPhases splits each task's way from ACCEPT to TASK_RUNNING using the
// timestamps the agent puts in its status updates, so they are meaningful
// only when the agents' clocks agree with the framework's (agora dev, or
// one machine). AcceptToStarting + StartingDelivery + StartingToRunning is
// accept→running on the critical path; AgentStartingToRunning runs in
// parallel with StartingDelivery.
type LaunchPhases struct {
	// ACCEPT → the agent stamps TASK_STARTING: the master validates and
	// routes RUN_TASK, the agent prepares and checkpoints the sandbox.
	AcceptToStarting Percentiles `json:"accept_to_agent_starting"`
	// The agent stamps TASK_STARTING → the framework receives it: the
	// agent's update queue, the master, the framework's event stream.
	StartingDelivery Percentiles `json:"agent_starting_to_framework_starting"`
	// The framework receives TASK_STARTING → receives TASK_RUNNING: its
	// acknowledgement travels to the agent, which only then sends RUNNING.
	StartingToRunning Percentiles `json:"framework_starting_to_framework_running"`
	// The agent stamps TASK_STARTING → stamps TASK_RUNNING: fork/exec of
	// the command and the container checkpoint.
	AgentStartingToRunning Percentiles `json:"agent_starting_to_agent_running"`
}

// Percentiles are a p50 and a p99 in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

func percentiles(ds []time.Duration) Percentiles {
	return Percentiles{P50: ms(Percentile(ds, 50)), P99: ms(Percentile(ds, 99))}
}

// maxAcceptErrors ends the benchmark after this many failed ACCEPTs in a row.
const maxAcceptErrors = 10

// launched is what the benchmark saw of one task: framework-clock times of
// the ACCEPT and of the updates, and the agent's stamps.
type launched struct {
	agent         string
	accepted      time.Time
	startingSeen  time.Time
	startingStamp time.Time
	runningSeen   time.Time
	runningStamp  time.Time
	finished      time.Time
	ended         time.Time // any terminal update
	endState      mesos.TaskState
	inFlight      bool // accepted, not yet RUNNING nor ended
	terminal      bool
}

// launchRun is one run's state; the driver's event goroutine changes it,
// the progress reporter reads it.
type launchRun struct {
	cfg   LaunchConfig
	log   *slog.Logger
	need  offers.Need
	runID string
	d     *scheduler.Driver

	mu           sync.Mutex
	heldOffers   // guarded by mu
	start        time.Time
	end          time.Time
	cpuStart     cpuSample // at start
	cpuEnd       cpuSample // at the last terminal update (cpu.go)
	pending      []int     // task numbers not launched yet
	tasks        map[string]*launched
	inFlight     int
	peakInFlight int
	terminals    int
	finished     int
	failed       map[string]int
	agents       map[string]bool
	offersUsed   int
	accepts      int
	acceptErrs   int

	done  chan struct{}
	fatal chan error
}

// Launch runs the launch benchmark: it launches cfg.Tasks command tasks as
// fast as offers (and cfg.MaxInFlight) allow, packing as many into each
// offer as fit, and waits for all of them to end. The result is returned
// even when err is not nil (for example when ctx ends first), covering what
// was measured.
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
	if cfg.MaxInFlight < 0 {
		return nil, fmt.Errorf("bench launch: max in flight %d is negative (0 means no limit)", cfg.MaxInFlight)
	}
	r := &launchRun{
		cfg: cfg, log: cfg.Logger,
		need:  offers.Need{CPUs: cfg.CPUs, Mem: cfg.Mem, Role: cfg.Role},
		runID: fmt.Sprintf("%06x", rand.Uint32()&0xffffff),
		tasks: map[string]*launched{}, failed: map[string]int{}, agents: map[string]bool{},
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
		Principal:          cfg.Principal,
		Secret:             cfg.Secret,
		TLS:                cfg.TLS,
	}, scheduler.Funcs{
		OnSubscribed:   func(context.Context, *mscheduler.Event_Subscribed) { r.subscribed() },
		OnOffers:       func(ctx context.Context, os []mesos.Offer) { r.filler().offers(ctx, os) },
		OnRescind:      func(ctx context.Context, id mesos.OfferID) { r.filler().rescind(ctx, id) },
		OnUpdate:       r.update,
		OnDisconnected: func(context.Context, error) { r.filler().disconnected() },
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
			return r.traced(r.result(), fmt.Errorf("bench launch: %w", err))
		}
	}
	tctx, tcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer tcancel()
	if err := r.d.Teardown(tctx); err != nil {
		r.log.Debug("teardown", "err", err)
	}
	cancel()
	<-errc
	return r.traced(r.result(), runErr)
}

// traced writes the trace, if one was asked for, of a run that ended with
// res and err.
func (r *launchRun) traced(res *LaunchResult, err error) (*LaunchResult, error) {
	if r.cfg.Trace != nil {
		if werr := r.writeTrace(r.cfg.Trace); werr != nil && err == nil {
			err = fmt.Errorf("bench launch: write the trace: %w", werr)
		}
	}
	return res, err
}

// TraceHeader is the first line of a launch trace (LaunchConfig.Trace):
// tab-separated columns, one line per task in the order the tasks were
// accepted. Times are milliseconds from the run's SUBSCRIBED; agent_*
// are the stamps of the agent's updates (on the agent's clock, so
// comparable only on one machine), framework_* when the framework got
// them; an empty field is an update that did not come.
const TraceHeader = "run\ttask_id\tagent_id\tstate\taccepted_ms\tagent_starting_ms\tframework_starting_ms\tagent_running_ms\tframework_running_ms\tended_ms\n"

// writeTrace writes the run's tasks as TraceHeader describes.
func (r *launchRun) writeTrace(w io.Writer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	label := r.cfg.TraceRun
	if label == "" {
		label = "max_in_flight=" + strconv.Itoa(r.cfg.MaxInFlight)
	}
	ids := make([]string, 0, len(r.tasks))
	for id := range r.tasks {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := r.tasks[ids[i]], r.tasks[ids[j]]
		if !a.accepted.Equal(b.accepted) {
			return a.accepted.Before(b.accepted)
		}
		return ids[i] < ids[j]
	})
	at := func(b []byte, t time.Time) []byte {
		b = append(b, '\t')
		if t.IsZero() || r.start.IsZero() {
			return b
		}
		return strconv.AppendFloat(b, float64(t.Sub(r.start).Microseconds())/1000, 'f', 3, 64)
	}
	var line []byte
	for _, id := range ids {
		t := r.tasks[id]
		state := "TASK_STAGING"
		switch {
		case t.terminal:
			state = t.endState.String()
		case !t.runningSeen.IsZero():
			state = "TASK_RUNNING"
		case !t.startingSeen.IsZero():
			state = "TASK_STARTING"
		}
		line = append(line[:0], label...)
		line = append(append(line, '\t'), id...)
		line = append(append(line, '\t'), t.agent...)
		line = append(append(line, '\t'), state...)
		for _, x := range []time.Time{t.accepted, t.startingStamp, t.startingSeen, t.runningStamp, t.runningSeen, t.ended} {
			line = at(line, x)
		}
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return nil
}

func (r *launchRun) subscribed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.start.IsZero() {
		r.start = time.Now()
		r.cpuStart = sampleCPU()
	}
}

// filler is the run's part in the offer handling the benchmark
// frameworks share: tasks launch while the in-flight limit leaves room.
func (r *launchRun) filler() offerFiller {
	return offerFiller{
		mu: &r.mu, held: &r.heldOffers, pending: &r.pending,
		need: r.need, info: r.taskInfo, d: r.d, log: r.log,
		room: r.room, packed: r.packed, launch: r.launch,
	}
}

// room is how many more tasks may be launched now; r.mu is held.
func (r *launchRun) room() int {
	if r.cfg.MaxInFlight == 0 {
		return len(r.pending)
	}
	return min(len(r.pending), r.cfg.MaxInFlight-r.inFlight)
}

// packed starts the clock of the tasks just packed into an offer; r.mu is
// held.
func (r *launchRun) packed(o *mesos.Offer, _ []int, tasks []mesos.TaskInfo) {
	now := time.Now()
	for _, t := range tasks {
		r.tasks[t.TaskID.Value] = &launched{agent: o.AgentID.Value, accepted: now, inFlight: true}
	}
	r.inFlight += len(tasks)
	r.peakInFlight = max(r.peakInFlight, r.inFlight)
}

// launch sends one ACCEPT with tasks; on failure they go back to pending.
func (r *launchRun) launch(ctx context.Context, o *mesos.Offer, tasks []mesos.TaskInfo, nums []int) {
	err := r.d.Launch(ctx, []mesos.OfferID{o.ID}, tasks, scheduler.RefuseFor(0))
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		for _, t := range tasks {
			delete(r.tasks, t.TaskID.Value)
		}
		r.inFlight -= len(tasks)
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

// update records the times of a task's updates; a task that stops being in
// flight makes room for the next launch.
func (r *launchRun) update(ctx context.Context, st mesos.TaskStatus) {
	id, state, now := st.TaskID.Value, st.GetState(), time.Now()
	r.mu.Lock()
	t := r.tasks[id]
	if t == nil || t.terminal {
		r.mu.Unlock()
		return
	}
	stamp := agentStamp(st)
	switch {
	case state == mesos.TASK_STARTING:
		if t.startingSeen.IsZero() {
			t.startingSeen, t.startingStamp = now, stamp
		}
	case state == mesos.TASK_RUNNING:
		if t.runningSeen.IsZero() {
			t.runningSeen, t.runningStamp = now, stamp
		}
	case state == mesos.TASK_FINISHED:
		t.finished = now
		r.finished++
	case scheduler.IsTerminal(state):
		r.failed[state.String()]++
		r.log.Warn("task failed", "task", id, "state", state.String(), "reason", st.GetReason().String(), "message", st.GetMessage())
	}
	freed := t.inFlight && (state == mesos.TASK_RUNNING || scheduler.IsTerminal(state))
	if freed {
		t.inFlight = false
		r.inFlight--
	}
	if scheduler.IsTerminal(state) {
		t.terminal, t.ended, t.endState = true, now, state
		r.terminals++
		r.end = now
		if r.terminals == r.cfg.Tasks {
			r.cpuEnd = sampleCPU()
			close(r.done)
		}
	}
	r.mu.Unlock()
	if freed && r.cfg.MaxInFlight > 0 {
		r.filler().fill(ctx)
	}
}

// agentStamp is when the agent created an update (zero if it did not say).
func agentStamp(st mesos.TaskStatus) time.Time {
	if st.Timestamp == nil || st.GetSource() == mesos.SOURCE_MASTER {
		return time.Time{}
	}
	secs := st.GetTimestamp()
	return time.Unix(0, int64(secs*1e9))
}

func (r *launchRun) progress() {
	r.mu.Lock()
	defer r.mu.Unlock()
	failed := 0
	for _, n := range r.failed {
		failed += n
	}
	r.log.Info("progress", "launched", len(r.tasks), "in_flight", r.inFlight, "finished", r.finished, "failed", failed, "of", r.cfg.Tasks)
}

// result summarises the run so far.
func (r *launchRun) result() *LaunchResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &LaunchResult{
		Tasks: r.cfg.Tasks, MaxInFlight: r.cfg.MaxInFlight, PeakInFlight: r.peakInFlight,
		Launched: len(r.tasks), Finished: r.finished,
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
	var toRunning, toFinished, toStarting, startingDelivery, startingToRunning, agentStartingToRunning []time.Duration
	for _, t := range r.tasks {
		if !t.runningSeen.IsZero() {
			toRunning = append(toRunning, t.runningSeen.Sub(t.accepted))
		}
		if !t.finished.IsZero() {
			toFinished = append(toFinished, t.finished.Sub(t.accepted))
		}
		if t.startingSeen.IsZero() || t.runningSeen.IsZero() || t.startingStamp.IsZero() || t.runningStamp.IsZero() {
			continue
		}
		toStarting = append(toStarting, t.startingStamp.Sub(t.accepted))
		startingDelivery = append(startingDelivery, t.startingSeen.Sub(t.startingStamp))
		startingToRunning = append(startingToRunning, t.runningSeen.Sub(t.startingSeen))
		agentStartingToRunning = append(agentStartingToRunning, t.runningStamp.Sub(t.startingStamp))
	}
	res.AcceptToRunningP50 = ms(Percentile(toRunning, 50))
	res.AcceptToRunningP99 = ms(Percentile(toRunning, 99))
	res.AcceptToFinishedP50 = ms(Percentile(toFinished, 50))
	res.AcceptToFinishedP99 = ms(Percentile(toFinished, 99))
	if len(toStarting) > 0 {
		res.Phases = &LaunchPhases{
			AcceptToStarting:       percentiles(toStarting),
			StartingDelivery:       percentiles(startingDelivery),
			StartingToRunning:      percentiles(startingToRunning),
			AgentStartingToRunning: percentiles(agentStartingToRunning),
		}
	}
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
		// Only a run whose every task ended has a CPU per task: an
		// unfinished one's end is its teardown, not its last task.
		if res.Unfinished == 0 {
			res.CPU = launchCPU(r.cpuStart, r.cpuEnd, res.Finished+res.Failed)
		}
	}
	return res
}
