package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mscheduler "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// CrashConfig configures a crash workload: a checkpointing, partition-aware
// framework that launches command tasks whose outcome is known in advance
// and records every update each one gets, so that a test can crash the
// cluster under it and then check that no outcome was lost or changed.
type CrashConfig struct {
	Masters []string
	Logger  *slog.Logger
	Name    string // framework name; default "agora-crash"
	Tasks   int    // default 200
	// MaxInFlight bounds the tasks launched and not yet ended; default 8.
	MaxInFlight int
	CPUs, Mem   float64 // per task; default 0.1 and 32
	// Task gives task i's shell command and the terminal state its command
	// implies (TASK_FINISHED or TASK_FAILED). Required.
	Task func(i int) (command string, want mesos.TaskState)
	// Progress, when set, is called from the event goroutine with the number
	// of distinct (task, state) pairs the agents have reported so far, each
	// time it grows, after the update was recorded and acknowledged. It may
	// block (to crash the cluster at that moment); events wait meanwhile.
	Progress func(n int)
	// ReconcileAfter is how long a launched task may go without any update
	// before it is reconciled explicitly; default 3s.
	ReconcileAfter time.Duration
}

// CrashUpdate is one update a task got, as the framework saw it.
type CrashUpdate struct {
	State   mesos.TaskState `json:"state"`
	Reason  string          `json:"reason,omitempty"`
	Source  string          `json:"source,omitempty"`
	Message string          `json:"message,omitempty"`
	// Reliable updates carry a uuid and must be acknowledged; Acked says the
	// master accepted the ACKNOWLEDGE.
	Reliable bool `json:"reliable"`
	Acked    bool `json:"acked,omitempty"`
	// Reconciliation marks an answer to RECONCILE (no uuid,
	// REASON_RECONCILIATION).
	Reconciliation bool `json:"reconciliation,omitempty"`
}

func (u CrashUpdate) String() string {
	s := u.State.String()
	if u.Reason != "" {
		s += "/" + u.Reason
	}
	switch {
	case u.Reconciliation:
		s += " (reconciliation)"
	case u.Acked:
		s += " (acked)"
	case !u.Reliable:
		s += " (from the master)"
	}
	if u.Message != "" {
		s += fmt.Sprintf(" %q", u.Message)
	}
	return s
}

// CrashTask is one task of the workload and what happened to it.
type CrashTask struct {
	Index    int             `json:"index"`
	ID       string          `json:"id"`
	Want     mesos.TaskState `json:"want"`
	Launched bool            `json:"launched"`
	Updates  []CrashUpdate   `json:"updates,omitempty"`
	// GaveUp is set when the workload gave the task up as never launched:
	// it heard nothing of it from any agent, and the master answered its
	// reconciliations TASK_UNKNOWN (its agent registered, the task not
	// there) lostAfter times — its launch died with a master.
	GaveUp bool `json:"gave_up,omitempty"`
}

// lostAfter is how many TASK_UNKNOWN answers make the workload give up a
// task no agent ever reported.
const lostAfter = 3

// Outcome is the first terminal update the agents or the master sent the
// task, else the first terminal answer to a reconciliation, if any.
func (t *CrashTask) Outcome() (CrashUpdate, bool) {
	var answer *CrashUpdate
	for i, u := range t.Updates {
		if !scheduler.IsTerminal(u.State) {
			continue
		}
		if !u.Reconciliation {
			return u, true
		}
		if answer == nil {
			answer = &t.Updates[i]
		}
	}
	if answer != nil {
		return *answer, true
	}
	if t.GaveUp {
		return t.Updates[len(t.Updates)-1], true
	}
	return CrashUpdate{}, false
}

// launchLost reports whether t's updates say its launch never reached an
// agent: no update from an agent or the master's own, and lostAfter
// TASK_UNKNOWN answers to reconciliation.
func (t *CrashTask) launchLost() bool {
	unknown := 0
	for _, u := range t.Updates {
		if u.Reliable {
			return false
		}
		if u.Reconciliation && u.State == mesos.TASK_UNKNOWN {
			unknown++
		}
	}
	return unknown >= lostAfter
}

// CrashWorkload runs the tasks of a CrashConfig; create it with
// NewCrashWorkload and start it with Run.
type CrashWorkload struct {
	cfg  CrashConfig
	log  *slog.Logger
	need offers.Need
	d    *scheduler.Driver

	mu         sync.Mutex
	heldOffers // guarded by mu
	tasks      []*CrashTask
	byID       map[string]*CrashTask
	heard      map[string]time.Time // last update or reconcile request, by task ID
	agentOf    map[string]string
	pending    []int
	inFlight   int
	ended      int
	seen       map[string]bool // task ID + "/" + state of reliable updates
	resubs     int

	done chan struct{}
}

// NewCrashWorkload checks cfg and prepares the workload.
func NewCrashWorkload(cfg CrashConfig) (*CrashWorkload, error) {
	if cfg.Task == nil {
		return nil, errors.New("crash workload: no Task function")
	}
	if cfg.Tasks <= 0 {
		cfg.Tasks = 200
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 8
	}
	if cfg.CPUs <= 0 {
		cfg.CPUs = 0.1
	}
	if cfg.Mem <= 0 {
		cfg.Mem = 32
	}
	if cfg.Name == "" {
		cfg.Name = "agora-crash"
	}
	if cfg.ReconcileAfter <= 0 {
		cfg.ReconcileAfter = 3 * time.Second
	}
	w := &CrashWorkload{
		cfg: cfg, log: cfg.Logger, need: offers.Need{CPUs: cfg.CPUs, Mem: cfg.Mem, Role: "*"},
		byID: map[string]*CrashTask{}, heard: map[string]time.Time{}, agentOf: map[string]string{},
		seen: map[string]bool{}, done: make(chan struct{}),
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	for i := 0; i < cfg.Tasks; i++ {
		_, want := cfg.Task(i)
		if want != mesos.TASK_FINISHED && want != mesos.TASK_FAILED {
			return nil, fmt.Errorf("crash workload: task %d: expected outcome %s is neither TASK_FINISHED nor TASK_FAILED", i, want)
		}
		t := &CrashTask{Index: i, ID: fmt.Sprintf("crash-%04d", i), Want: want}
		w.tasks = append(w.tasks, t)
		w.byID[t.ID] = t
		w.pending = append(w.pending, i)
	}
	checkpoint, failover := true, 3600.0
	d, err := scheduler.New(scheduler.Config{
		Masters: cfg.Masters,
		Framework: mesos.FrameworkInfo{
			Name: cfg.Name, Checkpoint: &checkpoint, FailoverTimeout: &failover,
			Capabilities: scheduler.Capabilities(mesos.FrameworkInfo_Capability_PARTITION_AWARE),
		},
		Codec:       api.Protobuf,
		Logger:      w.log,
		ManualAcks:  true,
		CallTimeout: 5 * time.Second,
		Backoff:     scheduler.Backoff{Min: 100 * time.Millisecond, Max: time.Second},
	}, scheduler.Funcs{
		OnSubscribed:   w.subscribed,
		OnOffers:       func(ctx context.Context, os []mesos.Offer) { w.filler().offers(ctx, os) },
		OnRescind:      func(ctx context.Context, id mesos.OfferID) { w.filler().rescind(ctx, id) },
		OnUpdate:       w.update,
		OnDisconnected: func(context.Context, error) { w.filler().disconnected() },
	})
	if err != nil {
		return nil, fmt.Errorf("crash workload: %w", err)
	}
	w.d = d
	return w, nil
}

// Done is closed once every task has a terminal state.
func (w *CrashWorkload) Done() <-chan struct{} { return w.done }

// FrameworkID is the ID the master gave the framework ("" before that).
func (w *CrashWorkload) FrameworkID() string { return w.d.FrameworkID() }

// Subscribed reports whether the framework's event stream is up.
func (w *CrashWorkload) Subscribed() bool { return w.d.Subscribed() }

// Run subscribes and runs the workload until ctx ends; it returns the
// driver's error (ctx's error when ctx ended).
func (w *CrashWorkload) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- w.d.Run(ctx) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			return err
		case <-tick.C:
			w.reconcileStale(ctx)
		}
	}
}

// Progress counts the distinct (task, state) pairs reported, the tasks
// ended and those launched and not yet ended.
func (w *CrashWorkload) Progress() (reported, ended, inFlight int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen), w.ended, w.inFlight
}

// Tasks returns a copy of every task's record.
func (w *CrashWorkload) Tasks() []CrashTask {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]CrashTask, len(w.tasks))
	for i, t := range w.tasks {
		out[i] = *t
		out[i].Updates = slices.Clone(t.Updates)
	}
	return out
}

// ReconcileAll asks the master for the state of every launched task and
// waits, at most wait, until an answer for each has arrived. It returns the
// IDs of the tasks no answer came for.
func (w *CrashWorkload) ReconcileAll(ctx context.Context, wait time.Duration) ([]string, error) {
	w.mu.Lock()
	answered := map[string]int{}
	var req []mscheduler.Call_Reconcile_Task
	for _, t := range w.tasks {
		if t.Launched {
			answered[t.ID] = countReconciliations(t)
			req = append(req, scheduler.ReconcileTask(t.ID, w.agentOf[t.ID]))
		}
	}
	w.mu.Unlock()
	if err := w.d.Reconcile(ctx, req); err != nil {
		return nil, fmt.Errorf("crash workload: reconcile %d tasks: %w", len(req), err)
	}
	var missing []string
	for deadline := time.Now().Add(wait); ; {
		missing = missing[:0]
		w.mu.Lock()
		for id, n := range answered {
			if countReconciliations(w.byID[id]) == n {
				missing = append(missing, id)
			}
		}
		w.mu.Unlock()
		if len(missing) == 0 || time.Now().After(deadline) {
			slices.Sort(missing)
			return missing, nil
		}
		select {
		case <-ctx.Done():
			return missing, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func countReconciliations(t *CrashTask) int {
	n := 0
	for _, u := range t.Updates {
		if u.Reconciliation {
			n++
		}
	}
	return n
}

// Teardown removes the framework from the master.
func (w *CrashWorkload) Teardown(ctx context.Context) error { return w.d.Teardown(ctx) }

// subscribed reconciles, after a re-subscription, every task not ended:
// updates may have been lost with the master.
func (w *CrashWorkload) subscribed(ctx context.Context, _ *mscheduler.Event_Subscribed) {
	w.mu.Lock()
	w.resubs++
	first := w.resubs == 1
	if !first {
		for id := range w.heard {
			w.heard[id] = time.Time{}
		}
	}
	w.mu.Unlock()
	if !first {
		w.reconcileStale(ctx)
	}
}

// reconcileStale reconciles the launched tasks not ended that have had no
// update for ReconcileAfter.
func (w *CrashWorkload) reconcileStale(ctx context.Context) {
	if !w.d.Subscribed() {
		return
	}
	now := time.Now()
	var req []mscheduler.Call_Reconcile_Task
	w.mu.Lock()
	for _, t := range w.tasks {
		if _, ended := t.Outcome(); !t.Launched || ended || now.Sub(w.heard[t.ID]) < w.cfg.ReconcileAfter {
			continue
		}
		w.heard[t.ID] = now
		req = append(req, scheduler.ReconcileTask(t.ID, w.agentOf[t.ID]))
	}
	w.mu.Unlock()
	if len(req) == 0 {
		return
	}
	w.log.Info("reconciling tasks with no recent update", "tasks", len(req))
	if err := w.d.Reconcile(ctx, req); err != nil {
		w.log.Warn("reconcile", "err", err)
	}
}

// filler is the workload's part in the offer handling the benchmark
// frameworks share: tasks launch while MaxInFlight allows.
func (w *CrashWorkload) filler() offerFiller {
	return offerFiller{
		mu: &w.mu, held: &w.heldOffers, pending: &w.pending,
		need: w.need, info: w.taskInfo, d: w.d, log: w.log,
		room:   func() int { return min(len(w.pending), w.cfg.MaxInFlight-w.inFlight) },
		packed: w.packed,
		launch: w.launch,
	}
}

// packed marks the tasks nums as launched on o's agent; w.mu is held.
func (w *CrashWorkload) packed(o *mesos.Offer, nums []int, infos []mesos.TaskInfo) {
	now := time.Now()
	for _, n := range nums {
		t := w.tasks[n]
		t.Launched = true
		w.heard[t.ID] = now
		w.agentOf[t.ID] = o.AgentID.Value
	}
	w.inFlight += len(infos)
}

// launch sends one ACCEPT. Tasks go back to pending only when the master
// certainly did not take it (no subscription, the connection was refused,
// or a 4xx); otherwise whether they were launched is for reconciliation to
// say.
func (w *CrashWorkload) launch(ctx context.Context, o *mesos.Offer, infos []mesos.TaskInfo, nums []int) {
	err := w.d.Launch(ctx, []mesos.OfferID{o.ID}, infos, scheduler.RefuseFor(0))
	if err == nil {
		return
	}
	var apiErr *scheduler.APIError
	notTaken := errors.Is(err, scheduler.ErrNotSubscribed) || errors.Is(err, syscall.ECONNREFUSED) ||
		(errors.As(err, &apiErr) && apiErr.ClientError())
	if !notTaken {
		w.log.Warn("accept failed; the tasks' fate is left to reconciliation", "tasks", len(infos), "err", err)
		return
	}
	w.log.Warn("accept refused; tasks go back to pending", "tasks", len(infos), "err", err)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range nums {
		w.tasks[n].Launched = false
	}
	w.inFlight -= len(nums)
	w.pending = append(nums, w.pending...)
}

func (w *CrashWorkload) taskInfo(n int, agent mesos.AgentID, rs []mesos.Resource) mesos.TaskInfo {
	cmd, _ := w.cfg.Task(n)
	shell := true
	return mesos.TaskInfo{
		Name:      fmt.Sprintf("crash-%d", n),
		TaskID:    mesos.TaskID{Value: w.tasks[n].ID},
		AgentID:   agent,
		Resources: rs,
		Command:   &mesos.CommandInfo{Shell: &shell, Value: &cmd},
	}
}

// update records an update, acknowledges it, and reports progress.
func (w *CrashWorkload) update(ctx context.Context, st mesos.TaskStatus) {
	u := CrashUpdate{
		State: st.GetState(), Source: st.GetSource().String(), Message: st.GetMessage(),
		Reliable: len(st.UUID) > 0,
	}
	if st.Reason != nil {
		u.Reason = st.Reason.String()
	}
	u.Reconciliation = !u.Reliable && st.GetReason() == mesos.REASON_RECONCILIATION
	if u.Reliable {
		if err := w.d.Acknowledge(ctx, st); err != nil {
			w.log.Warn("acknowledge", "task", st.TaskID.Value, "state", u.State.String(), "err", err)
		} else {
			u.Acked = true
		}
	}
	w.mu.Lock()
	t := w.byID[st.TaskID.Value]
	if t == nil {
		w.mu.Unlock()
		w.log.Warn("update for a task this workload never had", "task", st.TaskID.Value, "state", u.State.String())
		return
	}
	_, wasEnded := t.Outcome()
	t.Updates = append(t.Updates, u)
	if !wasEnded && t.launchLost() {
		t.GaveUp = true
		w.log.Info("giving the task up: its launch never reached an agent", "task", t.ID)
	}
	w.heard[t.ID] = time.Now()
	if st.AgentID != nil && st.AgentID.Value != "" {
		w.agentOf[t.ID] = st.AgentID.Value
	}
	freed := false
	if !wasEnded && (scheduler.IsTerminal(u.State) || t.GaveUp) {
		freed = true
		w.inFlight--
		w.ended++
		if w.ended == len(w.tasks) {
			close(w.done)
		}
	}
	progress := 0
	if key := t.ID + "/" + u.State.String(); u.Reliable && !w.seen[key] {
		w.seen[key] = true
		progress = len(w.seen)
	}
	w.mu.Unlock()
	if progress > 0 && w.cfg.Progress != nil {
		w.cfg.Progress(progress)
	}
	if freed {
		w.filler().fill(ctx)
	}
}

// History lists the task's updates in order, runs of the same update
// folded into one ("×N").
func (t *CrashTask) History() string {
	var parts []string
	for i := 0; i < len(t.Updates); {
		j := i + 1
		for j < len(t.Updates) && t.Updates[j] == t.Updates[i] {
			j++
		}
		s := t.Updates[i].String()
		if j-i > 1 {
			s += fmt.Sprintf(" ×%d", j-i)
		}
		parts = append(parts, s)
		i = j
	}
	return strings.Join(parts, ", ")
}
