// Package local runs a whole MapReduce job on this machine: the JobTracker
// core decides, a TaskTracker runs the attempts in parallel slots with the
// real Streaming processes, and reduces fetch map outputs over HTTP from a
// shuffle server on loopback, exactly as they would across a cluster. It
// proves the engine end to end and is the baseline the cluster benchmarks
// compare against.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/counters"
	"github.com/agora-cluster/agora/hadoop/format"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/shuffle"
	"github.com/agora-cluster/agora/hadoop/tasktracker"
)

// Options configure a local run.
type Options struct {
	MapSlots    int    // parallel maps; 0 means runtime.NumCPU()
	ReduceSlots int    // parallel reduces; 0 means runtime.NumCPU()
	WorkDir     string // TaskTracker scratch space; "" means a temporary directory
	Host        string // this machine's name for locality; "" means "localhost"
	TrackerID   string // the job ID's tracker part; "" means the start time
	Seq         int    // the job ID's sequence number; 0 means 1
	Logger      *slog.Logger
	// OnStatus, if set, sees the job's status whenever it changes.
	OnStatus func(jobtracker.Status)
}

// Result is how the job ended.
type Result struct {
	Job      job.ID
	Status   jobtracker.Status
	Counters counters.Counters
	Splits   int
}

// JobError is a job that ran and did not succeed.
type JobError struct {
	Job    job.ID
	State  jobtracker.JobState
	Reason string
}

func (e *JobError) Error() string {
	return fmt.Sprintf("job %s %s: %s", e.Job, e.State, e.Reason)
}

// Run validates, plans and runs a job to the end. A refused submission
// returns a *job.RefusedError before anything runs; a job that fails
// returns its Result and a *JobError naming the failed task.
func Run(ctx context.Context, spec job.Spec, opt Options) (Result, error) {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	resolve, err := job.Resolver(spec.Conf)
	if err != nil {
		return Result{}, err
	}
	if err := job.Validate(spec, resolve, nil); err != nil {
		return Result{}, err
	}
	plan, err := job.NewPlan(spec, resolve)
	if err != nil {
		return Result{}, err
	}
	cfg, err := jobtracker.ConfigFrom(spec.Conf)
	if err != nil {
		return Result{}, err
	}
	committer, err := format.NewCommitter(resolve, spec.Output())
	if err != nil {
		return Result{}, err
	}
	now := time.Now()
	id := job.ID{Tracker: opt.TrackerID, Seq: opt.Seq}
	if id.Tracker == "" {
		id.Tracker = now.Format("200601021504")
	}
	if id.Seq == 0 {
		id.Seq = 1
	}
	work := opt.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "agora-hadoop-"); err != nil {
			return Result{}, err
		}
		defer os.RemoveAll(work)
	}
	if err := committer.SetupJob(); err != nil {
		return Result{}, err
	}

	srv := shuffle.NewServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, err
	}
	mux := http.NewServeMux()
	mux.Handle(shuffle.Path, srv)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()

	// Every slot is in this process, so no map is more local to one than
	// to another: split hosts (HDFS datanodes) must not make maps wait.
	hosts := make([][]string, len(plan.Splits))
	r := &runner{
		ctx:       ctx,
		log:       log.With("job", id.String()),
		opt:       opt,
		plan:      plan,
		committer: committer,
		srv:       srv,
		url:       "http://" + ln.Addr().String(),
		tt:        &tasktracker.TaskTracker{WorkDir: work, Resolve: resolve, ReportInterval: 200 * time.Millisecond, Fetcher: &shuffle.Fetcher{Backoff: 50 * time.Millisecond}},
		core:      jobtracker.New(id, hosts, plan.NumReduces, cfg, now),
		rng:       rand.New(rand.NewPCG(uint64(now.UnixNano()), 0x6a6f62)),
		events:    make(chan any, 256),
		running:   map[job.AttemptID]context.CancelFunc{},
		outputs:   map[job.AttemptID]string{},
	}
	if r.opt.MapSlots <= 0 {
		r.opt.MapSlots = runtime.NumCPU()
	}
	if r.opt.ReduceSlots <= 0 {
		r.opt.ReduceSlots = runtime.NumCPU()
	}
	if r.opt.Host == "" {
		r.opt.Host = "localhost"
	}
	r.log.Info("job started", "maps", len(plan.Splits), "reduces", plan.NumReduces, "output", spec.Output())
	r.loop()
	for _, f := range srv.RemoveJob(id.String()) {
		os.Remove(f)
	}
	r.tt.RemoveJob(id)
	st := r.core.Status()
	res := Result{Job: id, Status: st, Counters: st.Counters, Splits: len(plan.Splits)}
	r.log.Info("job ended", "state", st.State, "seconds", time.Since(now).Seconds())
	if st.State != jobtracker.JobSucceeded {
		return res, &JobError{Job: id, State: st.State, Reason: st.Error}
	}
	return res, nil
}

// runner owns the core; only its loop goroutine touches it.
type runner struct {
	ctx       context.Context
	log       *slog.Logger
	opt       Options
	plan      job.Plan
	committer *format.Committer
	srv       *shuffle.Server
	url       string
	tt        *tasktracker.TaskTracker
	core      *jobtracker.Job
	rng       *rand.Rand

	events   chan any
	running  map[job.AttemptID]context.CancelFunc
	outputs  map[job.AttemptID]string // map outputs of attempts not yet accepted
	freeMaps int
	freeReds int
	waiters  []completionsAsk
	last     jobtracker.Status
}

func (r *runner) loop() {
	r.freeMaps, r.freeReds = r.opt.MapSlots, r.opt.ReduceSlots
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	done := r.ctx.Done()
	for {
		if r.core.State() == jobtracker.JobRunning {
			r.assign()
		}
		r.wake()
		r.notify()
		if r.core.State().Done() && len(r.running) == 0 {
			for _, w := range r.waiters {
				close(w.reply)
			}
			return
		}
		select {
		case <-done:
			done = nil
			r.apply(r.core.Kill(time.Now(), "interrupted: "+context.Cause(r.ctx).Error()))
		case <-tick.C:
			r.apply(r.core.Tick(time.Now()))
		case ev := <-r.events:
			r.handle(ev)
		}
	}
}

func (r *runner) assign() {
	for _, k := range []job.Kind{job.Map, job.Reduce} {
		free := &r.freeMaps
		if k == job.Reduce {
			free = &r.freeReds
		}
		for *free > 0 {
			l, _ := r.core.Assign(time.Now(), r.rng, r.opt.Host, k)
			if l == nil {
				break
			}
			*free--
			r.start(l)
		}
	}
}

func (r *runner) start(l *jobtracker.Launch) {
	id := l.Attempt
	a := tasktracker.Assignment{Spec: r.plan.Spec, Attempt: id, NumMaps: len(r.plan.Splits), NumReduces: r.plan.NumReduces}
	if id.Task.Kind == job.Map {
		s := r.plan.Splits[id.Task.Index]
		a.Split = &s
	}
	ctx, cancel := context.WithCancel(r.ctx)
	r.running[id] = cancel
	r.log.Debug("attempt started", "attempt", id.String(), "speculative", l.Speculative, "locality", l.Locality)
	rep := &reporter{r: r, id: id}
	go func() {
		var res tasktracker.Result
		var err error
		if id.Task.Kind == job.Map {
			res, err = r.tt.RunMap(ctx, a, rep)
		} else {
			res, err = r.tt.RunReduce(ctx, a, rep, rep)
		}
		if ctx.Err() != nil {
			err = ctx.Err() // killed: whatever it says, the attempt did not count
		}
		r.events <- attemptDone{id: id, res: res, err: err}
	}()
}

func (r *runner) handle(ev any) {
	now := time.Now()
	switch ev := ev.(type) {
	case attemptDone:
		if cancel, ok := r.running[ev.id]; ok {
			cancel()
			delete(r.running, ev.id)
		}
		if ev.id.Task.Kind == job.Map {
			r.freeMaps++
		} else {
			r.freeReds++
		}
		switch {
		case ev.err == nil:
			r.log.Debug("attempt succeeded", "attempt", ev.id.String())
			url := ""
			if ev.res.MapOutput != "" {
				url = r.url
			}
			r.apply(r.core.Succeeded(now, ev.id, jobtracker.Result{Counters: ev.res.Counters, ShuffleURL: url}))
			if a, ok := r.core.Attempt(ev.id); ev.res.MapOutput != "" {
				if ok && a.State == jobtracker.AttemptSucceeded {
					if err := r.srv.Register(ev.id.Task.Job.String(), ev.id.Task.Index, ev.id.String(), ev.res.MapOutput); err != nil {
						r.apply(r.core.Failed(now, ev.id, err.Error()))
					}
				} else {
					os.Remove(ev.res.MapOutput)
					os.Remove(ev.res.MapOutput + ".index")
				}
			}
		case errors.Is(ev.err, tasktracker.ErrCommitDenied), errors.Is(ev.err, context.Canceled):
			r.apply(r.core.Killed(now, ev.id, ev.err.Error()))
		default:
			r.log.Debug("attempt failed", "attempt", ev.id.String(), "err", ev.err)
			r.apply(r.core.Failed(now, ev.id, ev.err.Error()))
		}
	case progressed:
		r.core.Update(now, ev.id, ev.p)
	case commitAsk:
		ev.reply <- r.core.RequestCommit(now, ev.id)
	case completionsAsk:
		r.waiters = append(r.waiters, ev)
	case fetchFailed:
		r.apply(r.core.FetchFailed(now, ev.reduce, ev.mapIndex))
	}
}

// wake answers the reduces waiting for map completion events.
func (r *runner) wake() {
	kept := r.waiters[:0]
	for _, w := range r.waiters {
		if evs := r.core.MapCompletions(w.from); len(evs) > 0 {
			w.reply <- evs
			continue
		}
		kept = append(kept, w)
	}
	r.waiters = kept
}

func (r *runner) notify() {
	if r.opt.OnStatus == nil {
		return
	}
	st := r.core.Status()
	if st.State != r.last.State || st.Maps != r.last.Maps || st.Reduces != r.last.Reduces {
		r.last = st
		r.opt.OnStatus(st)
	}
}

func (r *runner) apply(ds []jobtracker.Decision) {
	now := time.Now()
	for _, d := range ds {
		switch d := d.(type) {
		case jobtracker.KillAttempt:
			r.log.Debug("killing attempt", "attempt", d.Attempt.String(), "reason", d.Reason)
			if cancel, ok := r.running[d.Attempt]; ok {
				cancel()
			}
		case jobtracker.CommitJob:
			mark, _ := r.plan.Spec.Conf.Bool(conf.MarkSuccess, true)
			if err := r.committer.CommitJob(mark); err != nil {
				r.apply(r.core.CommitFailed(now, err))
				continue
			}
			r.core.Committed(now)
		case jobtracker.AbortJob:
			if err := r.committer.AbortJob(); err != nil {
				r.log.Warn("abort job output", "err", err)
			}
		}
	}
}
