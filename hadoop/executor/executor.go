// Package executor is the Hadoop framework's TaskTracker: the custom Mesos
// executor (`agora hadoop tasktracker`, built on frameworks/executor) that
// runs map and reduce attempts. Each attempt arrives as a Mesos task whose
// data is a tasktracker.Assignment with the tracker's umbilical token
// (umbilical.TaskToken); the executor runs it with
// tasktracker.RunMap or RunReduce under its sandbox (mapred.local.dir is
// $MESOS_SANDBOX/mapred, as in mesos/hadoop's MesosExecutor), reports
// progress and counters as TASK_RUNNING updates and ends the task with
// TASK_FINISHED, TASK_FAILED (the diagnostics, with the tail of the
// process's stderr, as the message) or TASK_KILLED. Map outputs are served
// to reduces by a shuffle.Server on the port the scheduler took from the
// offer, next to each attempt's stderr (umbilical.LogPath). What an
// attempt must ask the JobTracker goes over the umbilical.
package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	sdk "github.com/agora-cluster/agora/frameworks/executor"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/shuffle"
	// The built-in programs jobs may name (agora:teragen, agora:teravalidate).
	"github.com/agora-cluster/agora/hadoop/tasktracker"
	_ "github.com/agora-cluster/agora/hadoop/terasort"
	"github.com/agora-cluster/agora/hadoop/umbilical"
)

// Config configures a TaskTracker executor; FromEnv fills it from the
// environment the agent and the scheduler give it.
type Config struct {
	Executor    sdk.Config
	JobTracker  string // http://host:port of the scheduler
	ShufflePort int
	// ReportInterval is how often running attempts report; 0 means 1s.
	ReportInterval time.Duration
	// MemoryMB, if set, is the memory the tracker and its slots hold: the
	// Go runtime collects garbage harder as the process nears it (the sort
	// buffers of concurrent maps are the bulk of it).
	MemoryMB int
	// TrackerMemoryMB, if set, is the tracker's own memory. The agent
	// holds the tracker's container to it plus the memory of the attempts
	// running there, so the Go runtime's soft limit follows the same sum
	// (less a share for the attempts' Streaming processes).
	TrackerMemoryMB int
	// EnablePprof serves Go's profiles of the TaskTracker under
	// /debug/pprof/ on the shuffle port (EnvEnablePprof); off by default,
	// since anyone who reaches the port could read them.
	EnablePprof bool
	Logger      *slog.Logger
}

// EnvEnablePprof, set to true in the executors' environment (the Hadoop
// framework's Config.ExecutorEnv), turns on Config.EnablePprof.
const EnvEnablePprof = "AGORA_HADOOP_ENABLE_PPROF"

// FromEnv reads the configuration from MESOS_* and AGORA_HADOOP_*.
func FromEnv() (Config, error) {
	ec, err := sdk.FromEnv()
	if err != nil {
		return Config{}, err
	}
	c := Config{Executor: ec, JobTracker: os.Getenv(umbilical.EnvJobTracker)}
	if c.JobTracker == "" {
		return c, fmt.Errorf("%s is not set (this command is started by the Hadoop framework)", umbilical.EnvJobTracker)
	}
	if c.ShufflePort, err = strconv.Atoi(os.Getenv(umbilical.EnvShufflePort)); err != nil || c.ShufflePort <= 0 {
		return c, fmt.Errorf("%s=%q: want the shuffle port", umbilical.EnvShufflePort, os.Getenv(umbilical.EnvShufflePort))
	}
	if v := os.Getenv(umbilical.EnvMemory); v != "" {
		mb, err := strconv.Atoi(v)
		if err != nil || mb < 0 {
			return c, fmt.Errorf("%s=%q: want megabytes", umbilical.EnvMemory, v)
		}
		c.MemoryMB = mb
	}
	if v := os.Getenv(umbilical.EnvTrackerMemory); v != "" {
		mb, err := strconv.Atoi(v)
		if err != nil || mb < 0 {
			return c, fmt.Errorf("%s=%q: want megabytes", umbilical.EnvTrackerMemory, v)
		}
		c.TrackerMemoryMB = mb
	}
	if c.EnablePprof, err = parsePprofEnv(); err != nil {
		return c, err
	}
	if v := os.Getenv("AGORA_HADOOP_REPORT_INTERVAL"); v != "" {
		if c.ReportInterval, err = time.ParseDuration(v); err != nil {
			return c, fmt.Errorf("AGORA_HADOOP_REPORT_INTERVAL: %w", err)
		}
	}
	return c, nil
}

func parsePprofEnv() (bool, error) {
	v := os.Getenv(EnvEnablePprof)
	if v == "" {
		return false, nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want true or false", EnvEnablePprof, v)
	}
	return on, nil
}

// TaskTracker is a running executor.
type TaskTracker struct {
	cfg    Config
	log    *slog.Logger
	tt     *tasktracker.TaskTracker
	srv    *shuffle.Server
	driver *sdk.Driver

	mu       sync.Mutex
	attempts map[string]context.CancelFunc // by Mesos task ID
	mem      map[string]float64            // running attempts' mem, by Mesos task ID
	wg       sync.WaitGroup
}

// Run runs the executor until the agent shuts it down (nil) or the
// subscription is lost for good.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sandbox := cfg.Executor.Sandbox
	if sandbox == "" {
		sandbox = cfg.Executor.Directory
	}
	if cfg.MemoryMB > 0 && cfg.TrackerMemoryMB <= 0 {
		debug.SetMemoryLimit(int64(cfg.MemoryMB) << 20)
	}
	interval := cfg.ReportInterval
	if interval <= 0 {
		interval = time.Second
	}
	t := &TaskTracker{
		cfg: cfg, log: log,
		tt: &tasktracker.TaskTracker{
			WorkDir:        filepath.Join(sandbox, "mapred"),
			LogDir:         filepath.Join(sandbox, "logs"),
			ReportInterval: interval,
			Fetcher:        &shuffle.Fetcher{},
		},
		srv:      shuffle.NewServer(),
		attempts: map[string]context.CancelFunc{},
		mem:      map[string]float64{},
	}
	t.setMemoryLimit()
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.ShufflePort))
	if err != nil {
		return fmt.Errorf("task tracker: the shuffle port: %w", err)
	}
	hs := &http.Server{Handler: t.handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg.Executor.Logger = log
	d, err := sdk.New(cfg.Executor, sdk.Funcs{
		OnLaunch:   func(ctx context.Context, task mesos.TaskInfo) { t.launch(ctx, task) },
		OnKill:     func(_ context.Context, id mesos.TaskID, _ *mesos.KillPolicy) { t.kill(id.Value) },
		OnMessage:  func(_ context.Context, data []byte) { t.message(data) },
		OnShutdown: func(sctx context.Context) { t.shutdown(sctx) },
	})
	if err != nil {
		return err
	}
	t.driver = d
	log.Info("task tracker up", "shuffle_port", cfg.ShufflePort, "jobtracker", cfg.JobTracker, "work_dir", t.tt.WorkDir)
	err = d.Run(ctx)
	cancel()
	t.wg.Wait()
	return err
}

// goHeapShare is the part of the container's memory the Go runtime aims
// to stay under; the rest is for the attempts' Streaming processes and
// the kernel's buffers, which the container is charged for too.
const goHeapShare = 0.7

func (t *TaskTracker) setMemoryLimit() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.setMemoryLimitLocked()
}

// setMemoryLimitLocked sets the Go runtime's soft memory limit from the
// tracker's memory and its running attempts' (t.mu held).
func (t *TaskTracker) setMemoryLimitLocked() {
	if t.cfg.TrackerMemoryMB <= 0 {
		return
	}
	mb := float64(t.cfg.TrackerMemoryMB)
	for _, m := range t.mem {
		mb += m
	}
	debug.SetMemoryLimit(int64(goHeapShare * mb * (1 << 20)))
}

// launchData is an attempt's TaskInfo.data: the assignment and the
// tracker's umbilical token.
type launchData struct {
	tasktracker.Assignment
	umbilical.TaskToken
}

// launch starts an attempt in a goroutine of its own.
func (t *TaskTracker) launch(ctx context.Context, task mesos.TaskInfo) {
	id := task.TaskID
	var d launchData
	if err := json.Unmarshal(task.Data, &d); err != nil {
		t.send(ctx, id, mesos.TASK_FAILED, fmt.Sprintf("bad assignment in the task's data: %v", err))
		return
	}
	if d.Token == "" {
		t.send(ctx, id, mesos.TASK_FAILED, "the task's data carries no umbilical token (umbilical_token): the attempt could not talk to the JobTracker")
		return
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t.mu.Lock()
	if _, dup := t.attempts[id.Value]; dup {
		t.mu.Unlock()
		cancel()
		return
	}
	t.attempts[id.Value] = cancel
	for _, r := range task.Resources {
		if r.Name == "mem" && r.Scalar != nil {
			t.mem[id.Value] += r.Scalar.Value
		}
	}
	t.setMemoryLimitLocked()
	t.mu.Unlock()
	t.send(ctx, id, mesos.TASK_RUNNING, "")
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer func() {
			t.mu.Lock()
			delete(t.attempts, id.Value)
			delete(t.mem, id.Value)
			t.setMemoryLimitLocked()
			t.mu.Unlock()
			cancel()
		}()
		t.run(actx, id, d.Assignment, d.Token)
	}()
}

// run runs an attempt; token is its tracker's for the umbilical. It lives
// only in this process's memory, so the attempts' processes (Streaming's
// mappers and reducers) never see it.
func (t *TaskTracker) run(ctx context.Context, id mesos.TaskID, a tasktracker.Assignment, token string) {
	uc := &umbilical.Client{JobTracker: t.cfg.JobTracker, Task: id.Value, Token: token}
	rep := &reporter{t: t, id: id, Client: uc}
	start := time.Now()
	var res tasktracker.Result
	var err error
	if a.Attempt.Task.Kind == job.Map {
		res, err = t.tt.RunMap(ctx, a, rep)
	} else {
		res, err = t.tt.RunReduce(ctx, a, rep, uc)
	}
	sctx := context.WithoutCancel(ctx)
	switch {
	case ctx.Err() != nil || errors.Is(err, umbilical.ErrAttemptGone):
		t.dropOutput(res)
		t.send(sctx, id, mesos.TASK_KILLED, "killed")
	case errors.Is(err, tasktracker.ErrCommitDenied):
		t.dropOutput(res)
		t.send(sctx, id, mesos.TASK_KILLED, err.Error())
	case err != nil:
		t.dropOutput(res)
		t.log.Info("attempt failed", "attempt", a.Attempt.String(), "err", err)
		t.send(sctx, id, mesos.TASK_FAILED, err.Error()+t.tmpHint(a, err))
	default:
		r := umbilical.Report{Progress: 1, Counters: res.Counters}
		if res.MapOutput != "" {
			if err := t.srv.Register(a.Attempt.Task.Job.String(), a.Attempt.Task.Index, a.Attempt.String(), res.MapOutput); err != nil {
				t.dropOutput(res)
				t.send(sctx, id, mesos.TASK_FAILED, err.Error())
				return
			}
			r.MapOutput = true
		}
		t.log.Info("attempt succeeded", "attempt", a.Attempt.String(), "seconds", time.Since(start).Seconds())
		t.sendReport(sctx, id, mesos.TASK_FINISHED, r)
	}
}

// tmpHint explains a missing file under /tmp when this container has a
// /tmp of its own (the agent's isolation mounts the sandbox's tmp there):
// the job's data is not where the submitter saw it.
func (t *TaskTracker) tmpHint(a tasktracker.Assignment, err error) string {
	if !errors.Is(err, os.ErrNotExist) && !strings.Contains(err.Error(), "no such file") {
		return ""
	}
	paths := append([]string{a.Spec.Output()}, a.Spec.Inputs()...)
	if a.Split != nil {
		paths = append(paths, a.Split.Path)
	}
	inTmp := false
	for _, p := range paths {
		inTmp = inTmp || strings.HasPrefix(p, "/tmp/")
	}
	root, err1 := os.Stat("/tmp")
	own, err2 := os.Stat(filepath.Join(t.cfg.Executor.Sandbox, "tmp"))
	if !inTmp || err1 != nil || err2 != nil || !os.SameFile(root, own) {
		return ""
	}
	return "\n(this TaskTracker runs in a container with a /tmp of its own, so job data under /tmp is not visible to tasks: keep input and output elsewhere)"
}

func (t *TaskTracker) dropOutput(res tasktracker.Result) {
	if res.MapOutput != "" {
		os.Remove(res.MapOutput)
		os.Remove(res.MapOutput + ".index")
	}
}

func (t *TaskTracker) kill(task string) {
	t.mu.Lock()
	cancel := t.attempts[task]
	t.mu.Unlock()
	if cancel != nil {
		cancel()
		return
	}
	// Not running here (any more): answer so the task ends.
	t.send(context.Background(), mesos.TaskID{Value: task}, mesos.TASK_KILLED, "not running")
}

// message handles the scheduler's framework messages.
func (t *TaskTracker) message(data []byte) {
	var m umbilical.Message
	if err := json.Unmarshal(data, &m); err != nil {
		t.log.Warn("bad message from the scheduler", "err", err)
		return
	}
	if m.JobDone == "" {
		return
	}
	id, err := job.ParseID(m.JobDone)
	if err != nil {
		return
	}
	for _, f := range t.srv.RemoveJob(id.String()) {
		os.Remove(f)
	}
	if err := t.tt.RemoveJob(id); err != nil {
		t.log.Warn("remove job files", "job", id.String(), "err", err)
	}
	t.log.Info("job done: its files are gone", "job", id.String())
}

// shutdown kills every attempt and waits (within the grace period) for
// their terminal updates.
func (t *TaskTracker) shutdown(ctx context.Context) {
	t.mu.Lock()
	for _, cancel := range t.attempts {
		cancel()
	}
	t.mu.Unlock()
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// handler serves the shuffle port: map outputs, attempts' logs and, with
// Config.EnablePprof, Go's profiles of the TaskTracker for operators.
func (t *TaskTracker) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(shuffle.Path, t.srv)
	mux.HandleFunc("GET "+umbilical.LogPath+"{attempt}", t.serveLog)
	if t.cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	return mux
}

// serveLog serves an attempt's stderr.
func (t *TaskTracker) serveLog(w http.ResponseWriter, r *http.Request) {
	id, err := job.ParseAttemptID(r.PathValue("attempt"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p := t.tt.LogPath(id)
	if _, err := os.Stat(p); err != nil {
		http.Error(w, "no log of "+id.String()+" here", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	http.ServeFile(w, r, p)
}

func (t *TaskTracker) send(ctx context.Context, id mesos.TaskID, state mesos.TaskState, msg string) {
	if err := t.driver.SendStatus(ctx, id, state, truncate(msg, 16<<10)); err != nil {
		t.log.Debug("status update not delivered yet", "task", id.Value, "state", state, "err", err)
	}
}

func (t *TaskTracker) sendReport(ctx context.Context, id mesos.TaskID, state mesos.TaskState, r umbilical.Report) {
	st := mesos.TaskStatus{TaskID: id, State: state.Enum(), Data: r.Encode()}
	if err := t.driver.Update(ctx, st); err != nil {
		t.log.Debug("status update not delivered yet", "task", id.Value, "state", state, "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// reporter is an attempt's Reporter: progress goes out as TASK_RUNNING
// updates, commit questions over the umbilical.
type reporter struct {
	t  *TaskTracker
	id mesos.TaskID
	*umbilical.Client
}

func (r *reporter) Report(p jobtracker.Progress) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.t.sendReport(ctx, r.id, mesos.TASK_RUNNING, umbilical.Report{Progress: p.Progress, Status: p.Status, Counters: p.Counters})
}

var _ tasktracker.Reporter = (*reporter)(nil)
var _ tasktracker.MapOutputs = (*umbilical.Client)(nil)
