package framework

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/umbilical"
)

type trackerState string

const (
	trackerLaunching trackerState = "LAUNCHING" // no attempt has reported from it yet
	trackerRunning   trackerState = "RUNNING"
	trackerShutdown  trackerState = "SHUTTING_DOWN"
	trackerLost      trackerState = "LOST"
)

// tracker is one TaskTracker: a custom executor on one agent with map and
// reduce slots, each slot running one attempt (a Mesos task) at a time.
type tracker struct {
	id      string // executor ID
	agentID string
	host    string
	port    uint64 // shuffle and logs
	url     string
	// token is the tracker's secret for the umbilical, sent in each of
	// its attempts' task data (umbilical.TaskToken), never in its
	// ExecutorInfo, which state views show; never logged.
	token       string
	info        mesos.ExecutorInfo
	mapSlots    int
	reduceSlots int
	running     map[string]job.Kind // live attempt tasks by Mesos task ID
	jobs        map[string]bool     // jobs whose attempts ran here
	ran         map[job.AttemptID]bool
	state       trackerState
	idle        int
	pid         int
	launched    time.Time
	// adopted trackers were launched by an earlier scheduler and kept for
	// the map outputs they serve; they get no slots.
	adopted bool
}

// taskRef is a live Mesos task: an attempt on a tracker.
type taskRef struct {
	job     *jobRun
	attempt job.AttemptID
	tracker *tracker
	agentID string
}

func (t *tracker) live() bool { return t.state == trackerLaunching || t.state == trackerRunning }

// free is how many slots of kind have no attempt.
func (t *tracker) free(kind job.Kind) int {
	n := t.mapSlots
	if kind == job.Reduce {
		n = t.reduceSlots
	}
	for _, k := range t.running {
		if k == kind {
			n--
		}
	}
	return n
}

func (t *tracker) infoForAPI() client.TrackerInfo {
	ti := client.TrackerInfo{ID: t.id, AgentID: t.agentID, Host: t.host, URL: t.url, PID: t.pid, State: string(t.state),
		MapSlots: t.mapSlots, ReduceSlots: t.reduceSlots, Launched: t.launched}
	for _, k := range t.running {
		if k == job.Map {
			ti.RunningMaps++
		} else {
			ti.RunningReduces++
		}
	}
	return ti
}

// newTracker prepares a tracker for an agent with the executor's
// resources (its share and one port); it counts once an attempt launches
// on it.
func (f *Framework) newTracker(agentID, host string, res []mesos.Resource, now time.Time) (*tracker, error) {
	var port uint64
	for _, r := range res {
		if r.Name == "ports" && len(r.GetRanges().GetRange()) > 0 {
			port = r.GetRanges().GetRange()[0].Begin
		}
	}
	if port == 0 {
		return nil, fmt.Errorf("no port in %v", res)
	}
	f.nextExec++
	id := fmt.Sprintf("tasktracker-%d-%d", f.state.Incarnation, f.nextExec)
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	env := []mesos.Environment_Variable{
		{Name: umbilical.EnvJobTracker, Value: &f.advertise},
		{Name: umbilical.EnvShufflePort, Value: ptr(strconv.FormatUint(port, 10))},
		{Name: umbilical.EnvTracker, Value: ptr(id)},
		{Name: umbilical.EnvMemory, Value: ptr(strconv.Itoa(int(f.sizing.TrackerMem + float64(f.sizing.MapMax+f.sizing.ReduceMax)*f.sizing.SlotMem)))},
		{Name: umbilical.EnvTrackerMemory, Value: ptr(strconv.Itoa(int(f.sizing.TrackerMem)))},
	}
	keys := make([]string, 0, len(f.cfg.ExecutorEnv))
	for k := range f.cfg.ExecutorEnv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, mesos.Environment_Variable{Name: k, Value: ptr(f.cfg.ExecutorEnv[k])})
	}
	shell := false
	bin := f.cfg.ExecutorBinary
	cmd := mesos.CommandInfo{Shell: &shell, Environment: &mesos.Environment{Variables: env}}
	if f.cfg.ServeExecutor {
		exe, cache := true, true
		cmd.URIs = []mesos.CommandInfo_URI{{Value: f.executorURI(), Executable: &exe, Cache: &cache}}
		bin = "./" + filepath.Base(bin)
	}
	cmd.Value = &bin
	cmd.Arguments = []string{bin, "hadoop", "tasktracker"}
	t := &tracker{
		id: id, agentID: agentID, host: host, port: port,
		url: "http://" + hostPort(host, port),
		info: mesos.ExecutorInfo{
			Type:       mesos.ExecutorInfo_CUSTOM,
			ExecutorID: mesos.ExecutorID{Value: id},
			Name:       ptr("Hadoop TaskTracker"),
			Source:     ptr("hadoop"),
			Command:    &cmd,
			Resources:  res,
		},
		token:    token,
		running:  map[string]job.Kind{},
		jobs:     map[string]bool{},
		ran:      map[job.AttemptID]bool{},
		state:    trackerLaunching,
		launched: now,
	}
	return t, nil
}

func hostPort(host string, port uint64) string {
	return host + ":" + strconv.FormatUint(port, 10)
}

func ptr[T any](v T) *T { return &v }

// trackerLost handles a TaskTracker that is gone (its executor died, or
// its agent did): every job loses the attempts that ran there, running or
// holding map output.
func (f *Framework) trackerLost(ctx context.Context, t *tracker, reason string) {
	if t.state == trackerLost {
		return
	}
	f.trackerGone(t)
	f.log.Warn("task tracker lost", "tracker", t.id, "agent", t.agentID, "host", t.host, "reason", reason)
	now := time.Now()
	for _, j := range f.active {
		if !t.jobs[j.id.String()] || j.core.State().Done() {
			continue
		}
		f.apply(ctx, j, j.core.AttemptsLost(now, func(a jobtracker.Attempt) bool { return t.ran[a.ID] }, "lost with task tracker "+t.id+" on "+t.host+" ("+reason+")"))
	}
	for id, ref := range f.tasks {
		if ref.tracker == t {
			delete(f.tasks, id)
		}
	}
	t.running = map[string]job.Kind{}
}

// trackerGone marks a tracker lost and counts it against its agent unless
// it was being shut down.
func (f *Framework) trackerGone(t *tracker) {
	if t.state == trackerLost {
		return
	}
	if t.state != trackerShutdown {
		h := f.agentFails[t.agentID]
		if h == nil {
			h = &agentHealth{}
			f.agentFails[t.agentID] = h
		}
		h.fails++
		h.last = time.Now()
	}
	t.state = trackerLost
	if f.byAgent[t.agentID] == t {
		delete(f.byAgent, t.agentID)
	}
}

// agentHealth counts the trackers that died on an agent.
type agentHealth struct {
	fails int
	last  time.Time
}

// badAgent reports whether an agent lost maxAgentFailures trackers and
// the last of them less than refuseBadAgent ago; after that it is tried
// again.
func (f *Framework) badAgent(agent string, now time.Time) bool {
	h := f.agentFails[agent]
	if h == nil || h.fails < maxAgentFailures {
		return false
	}
	if now.Sub(h.last) >= refuseBadAgent {
		h.fails = 0
		return false
	}
	return true
}

// idleCheck shuts down trackers that ran nothing for IdleChecks checks in
// a row and hold no output a running job needs, keeping MinExecutors and
// the trackers that hold the minimum hot slots.
func (f *Framework) idleCheck(ctx context.Context) {
	var live []*tracker
	for _, t := range f.trackers {
		if t.live() {
			live = append(live, t)
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].launched.Before(live[j].launched) })
	hotMaps, hotReduces := 0, 0
	for _, t := range live {
		hotMaps += t.mapSlots
		hotReduces += t.reduceSlots
	}
	left := len(live)
	for _, t := range live {
		if len(t.running) > 0 || len(t.jobs) > 0 {
			t.idle = 0
			continue
		}
		t.idle++
		if t.idle < f.sizing.IdleChecks || left <= f.sizing.MinExecutors {
			continue
		}
		if hotMaps-t.mapSlots < f.sizing.MinMapSlots || hotReduces-t.reduceSlots < f.sizing.MinReduceSlots {
			continue
		}
		f.log.Info("shutting down idle task tracker", "tracker", t.id, "host", t.host, "idle_checks", t.idle)
		f.shutdownTracker(ctx, t)
		left--
		hotMaps -= t.mapSlots
		hotReduces -= t.reduceSlots
	}
	// Forget trackers that are gone and hold nothing any more.
	for id, t := range f.trackers {
		if !t.live() && len(t.jobs) == 0 && len(t.running) == 0 && time.Since(t.launched) > time.Minute {
			delete(f.trackers, id)
		}
	}
}

func (f *Framework) shutdownTracker(ctx context.Context, t *tracker) {
	t.state = trackerShutdown
	if f.byAgent[t.agentID] == t {
		delete(f.byAgent, t.agentID)
	}
	f.shutdowns[t.id] = true
	agent, exec := t.agentID, t.id
	go func() {
		if err := f.driver.Shutdown(ctx, exec, agent); err != nil {
			f.log.Warn("shut down task tracker", "tracker", exec, "err", err)
		}
	}()
}

// newToken makes a tracker's umbilical token: 32 random bytes, in hex.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a TaskTracker's token: %w", err)
	}
	return hex.EncodeToString(b), nil
}
