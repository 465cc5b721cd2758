// Package oneshot is a framework that runs one command as a task on some
// agent and reports how it ended, in the manner of mesos-execute and msh.
// `agora run` is built on it.
package oneshot

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mscheduler "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// Spec is the task to run.
type Spec struct {
	Name    string   // task name; default "agora-run"
	Command []string // argv; with Shell, joined into one /bin/sh -c string
	Shell   bool
	Env     map[string]string
	CPUs    float64
	Mem     float64 // MB
	Disk    float64 // MB
	Role    string  // default "*"
}

// Config configures a Job.
type Config struct {
	Masters            []string
	Codec              api.Codec // zero: protobuf
	Logger             *slog.Logger
	FrameworkName      string // default "agora-run"
	User               string // default: the current user
	MaxConnectFailures int    // see scheduler.Config; 0 retries forever
	// Principal and Secret authenticate the framework (see scheduler.Config).
	Principal, Secret string
	// TLS verifies the masters' certificates (see scheduler.Config).
	TLS  *tls.Config
	Task Spec
	// OnStatus, if set, sees every status update of the task, on the
	// driver's event goroutine; it must not block.
	OnStatus func(mesos.TaskStatus)
}

// Result is how the task ended.
type Result struct {
	FrameworkID string
	TaskID      string
	AgentID     string
	Status      mesos.TaskStatus // the terminal status
}

// ErrKilledBeforeLaunch is returned by Run when Kill came before any offer
// was accepted.
var ErrKilledBeforeLaunch = errors.New("oneshot: killed before the task was launched")

// Job is one run of the framework. Create it with New, then Run it.
type Job struct {
	cfg    Config
	log    *slog.Logger
	need   offers.Need
	taskID string
	d      *scheduler.Driver

	mu       sync.Mutex
	launched bool
	aborted  bool
	agentID  string

	done  chan mesos.TaskStatus
	fails chan error
}

// New checks cfg and prepares a Job; nothing is sent before Run.
func New(cfg Config) (*Job, error) {
	t := &cfg.Task
	if len(t.Command) == 0 || t.Command[0] == "" {
		return nil, errors.New("oneshot: no command to run")
	}
	if t.CPUs <= 0 && t.Mem <= 0 {
		return nil, errors.New("oneshot: the task asks for neither cpus nor mem")
	}
	if t.CPUs < 0 || t.Mem < 0 || t.Disk < 0 {
		return nil, fmt.Errorf("oneshot: negative resources (cpus %g, mem %g, disk %g)", t.CPUs, t.Mem, t.Disk)
	}
	if t.Name == "" {
		t.Name = "agora-run"
	}
	if t.Role == "" {
		t.Role = "*"
	}
	if cfg.FrameworkName == "" {
		cfg.FrameworkName = "agora-run"
	}
	j := &Job{
		cfg:    cfg,
		log:    cfg.Logger,
		need:   offers.Need{CPUs: t.CPUs, Mem: t.Mem, Disk: t.Disk, Role: t.Role},
		taskID: fmt.Sprintf("%s-%08x", taskIDSafe(t.Name), rand.Uint32()),
		done:   make(chan mesos.TaskStatus, 1),
		fails:  make(chan error, 1),
	}
	if j.log == nil {
		j.log = slog.New(slog.DiscardHandler)
	}
	zero := 0.0
	info := mesos.FrameworkInfo{
		User:            cfg.User,
		Name:            cfg.FrameworkName,
		Roles:           []string{t.Role},
		FailoverTimeout: &zero,
		Capabilities: scheduler.Capabilities(
			mesos.FrameworkInfo_Capability_MULTI_ROLE,
			mesos.FrameworkInfo_Capability_RESERVATION_REFINEMENT,
		),
	}
	d, err := scheduler.New(scheduler.Config{
		Masters:            cfg.Masters,
		Framework:          info,
		Codec:              cfg.Codec,
		Logger:             j.log,
		MaxConnectFailures: cfg.MaxConnectFailures,
		Principal:          cfg.Principal,
		Secret:             cfg.Secret,
		TLS:                cfg.TLS,
	}, j.handler())
	if err != nil {
		return nil, fmt.Errorf("oneshot: %w", err)
	}
	j.d = d
	return j, nil
}

// TaskID is the ID the task is (or will be) launched with.
func (j *Job) TaskID() string { return j.taskID }

// FrameworkID is the framework's ID once subscribed.
func (j *Job) FrameworkID() string { return j.d.FrameworkID() }

// Run subscribes, launches the task on the first offer that fits and waits
// for its terminal status; then it tears the framework down. It returns an
// error if the framework could not run the task at all.
func (j *Job) Run(ctx context.Context) (*Result, error) {
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- j.d.Run(dctx) }()
	finish := func() {
		tctx, tcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer tcancel()
		if err := j.d.Teardown(tctx); err != nil {
			j.log.Debug("teardown", "err", err)
		}
		cancel()
		<-errc
	}
	select {
	case st := <-j.done:
		finish()
		return &Result{FrameworkID: j.d.FrameworkID(), TaskID: j.taskID, AgentID: st.GetAgentID().GetValue(), Status: st}, nil
	case err := <-j.fails:
		finish()
		return nil, err
	case err := <-errc:
		if err == nil {
			err = errors.New("framework torn down before the task ended")
		}
		return nil, fmt.Errorf("oneshot framework %s: %w", j.cfg.FrameworkName, err)
	}
}

// Kill kills the task if it was launched; Run then returns its KILLED
// status. Before the launch, it makes Run return ErrKilledBeforeLaunch.
func (j *Job) Kill(ctx context.Context) error {
	j.mu.Lock()
	launched, agent := j.launched, j.agentID
	if !launched {
		j.aborted = true
	}
	j.mu.Unlock()
	if !launched {
		j.fail(ErrKilledBeforeLaunch)
		return nil
	}
	if err := j.d.Kill(ctx, j.taskID, agent); err != nil {
		return fmt.Errorf("kill task %s: %w", j.taskID, err)
	}
	return nil
}

func (j *Job) fail(err error) {
	select {
	case j.fails <- err:
	default:
	}
}

func (j *Job) handler() scheduler.Handler {
	return scheduler.Funcs{
		OnSubscribed: func(ctx context.Context, s *mscheduler.Event_Subscribed) {
			j.mu.Lock()
			launched, agent := j.launched, j.agentID
			j.mu.Unlock()
			if launched {
				// Re-subscribed: ask where the task is.
				_ = j.d.Reconcile(ctx, []mscheduler.Call_Reconcile_Task{scheduler.ReconcileTask(j.taskID, agent)})
			}
		},
		OnOffers: j.offers,
		OnUpdate: func(_ context.Context, st mesos.TaskStatus) {
			if st.TaskID.Value != j.taskID {
				return
			}
			j.log.Debug("task status", "task", j.taskID, "state", st.GetState().String(), "message", st.GetMessage())
			if j.cfg.OnStatus != nil {
				j.cfg.OnStatus(st)
			}
			if scheduler.IsTerminal(st.GetState()) {
				select {
				case j.done <- st:
				default:
				}
			}
		},
		OnDisconnected: func(_ context.Context, err error) {
			j.log.Warn("lost the master", "err", err)
		},
	}
}

// offers launches the task on the first offer that fits and declines the
// rest.
func (j *Job) offers(ctx context.Context, os []mesos.Offer) {
	var decline []mesos.OfferID
	for i := range os {
		o := &os[i]
		j.mu.Lock()
		busy := j.launched || j.aborted
		j.mu.Unlock()
		if busy {
			decline = append(decline, o.ID)
			continue
		}
		pool := offers.NewPool(o)
		rs, ok := pool.Take(j.need)
		if !ok {
			j.log.Debug("offer does not fit", "offer", o.ID.Value, "agent", o.Hostname, "why", pool.Shortfall(j.need))
			decline = append(decline, o.ID)
			continue
		}
		task := j.taskInfo(o.AgentID, rs)
		if err := j.d.Launch(ctx, []mesos.OfferID{o.ID}, []mesos.TaskInfo{task}, scheduler.RefuseFor(time.Hour)); err != nil {
			j.fail(fmt.Errorf("launch task %s on agent %s: %w", j.taskID, o.Hostname, err))
			return
		}
		j.mu.Lock()
		j.launched, j.agentID = true, o.AgentID.Value
		j.mu.Unlock()
		j.log.Info("launched", "task", j.taskID, "agent", o.Hostname)
		if err := j.d.Suppress(ctx); err != nil {
			j.log.Warn("suppress offers", "err", err)
		}
	}
	if len(decline) > 0 {
		refuse := 2 * time.Second
		if j.launchedYet() {
			refuse = time.Hour
		}
		if err := j.d.Decline(ctx, decline, refuse); err != nil {
			j.log.Warn("decline offers", "err", err)
		}
	}
}

func (j *Job) launchedYet() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.launched
}

// taskInfo builds the command task.
func (j *Job) taskInfo(agent mesos.AgentID, rs []mesos.Resource) mesos.TaskInfo {
	t := j.cfg.Task
	cmd := &mesos.CommandInfo{}
	if t.Shell {
		shell, value := true, strings.Join(t.Command, " ")
		cmd.Shell, cmd.Value = &shell, &value
	} else {
		shell, value := false, t.Command[0]
		cmd.Shell, cmd.Value, cmd.Arguments = &shell, &value, t.Command
	}
	if len(t.Env) > 0 {
		names := make([]string, 0, len(t.Env))
		for k := range t.Env {
			names = append(names, k)
		}
		sort.Strings(names)
		env := &mesos.Environment{}
		for _, k := range names {
			v := t.Env[k]
			env.Variables = append(env.Variables, mesos.Environment_Variable{Name: k, Value: &v})
		}
		cmd.Environment = env
	}
	return mesos.TaskInfo{
		Name:      t.Name,
		TaskID:    mesos.TaskID{Value: j.taskID},
		AgentID:   agent,
		Resources: rs,
		Command:   cmd,
	}
}

// taskIDSafe keeps the characters Mesos allows in IDs.
func taskIDSafe(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, name)
}
