package tasktracker

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/counters"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/program"
	"github.com/agora-cluster/agora/hadoop/streaming"
)

// processor is a mapper, reducer or combiner: records in, records out
// through emit.
type processor interface {
	Write(key, value []byte) error
	Close() error
}

// identity is IdentityMapper / IdentityReducer.
type identity struct{ emit streaming.Emit }

func (p identity) Write(k, v []byte) error { return p.emit(k, v) }
func (p identity) Close() error            { return nil }

type side int

const (
	mapSide side = iota
	reduceSide
	combineSide
)

// attemptState is what an attempt reports while it runs.
type attemptState struct {
	mu       sync.Mutex
	user     counters.Counters // from reporter:counter lines
	status   string
	sources  []func() uint64 // activity of the attempt's processes
	progress atomic.Uint64   // float64 bits
	activity atomic.Uint64   // records moved by the engine
}

// moved sums every sign of life: records moved and process output lines.
func (s *attemptState) moved() uint64 {
	n := s.activity.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.sources {
		n += f()
	}
	return n
}

func newAttemptState() *attemptState { return &attemptState{user: counters.New()} }

func (s *attemptState) setProgress(p float64) { s.progress.Store(math.Float64bits(p)) }
func (s *attemptState) getProgress() float64  { return math.Float64frombits(s.progress.Load()) }

func (s *attemptState) snapshot() (string, counters.Counters) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status, s.user.Clone()
}

// startProcessor starts cmd (an executable or a built-in class) for the
// given side of the attempt.
func startProcessor(ctx context.Context, cmd string, c conf.Conf, sd side, ignoreKey bool, dir string, env []string, stderr io.Writer, st *attemptState, emit streaming.Emit) (processor, error) {
	if p, ok := program.Lookup(cmd); ok {
		start := p.Map
		if sd != mapSide {
			start = p.Reduce
		}
		if start == nil {
			return nil, fmt.Errorf("built-in program %s has no %s side", cmd, map[bool]string{true: "map", false: "reduce"}[sd == mapSide])
		}
		return start(ctx, program.Task{
			Conf:    c,
			Emit:    emit,
			Counter: func(g, n string, v int64) { st.mu.Lock(); st.user.Add(g, n, v); st.mu.Unlock() },
			Status:  func(s string) { st.mu.Lock(); st.status = s; st.mu.Unlock() },
		})
	}
	if job.Builtin(cmd) {
		return identity{emit: emit}, nil
	}
	argv, err := streaming.SplitArgs(cmd)
	if err != nil {
		return nil, err
	}
	cfg := streaming.Config{
		Argv:      argv,
		Dir:       dir,
		Env:       env,
		Stderr:    stderr,
		OnCounter: func(g, n string, v int64) { st.mu.Lock(); st.user.Add(g, n, v); st.mu.Unlock() },
		OnStatus:  func(s string) { st.mu.Lock(); st.status = s; st.mu.Unlock() },
	}
	if on, _ := c.Bool(conf.ReporterEnabled, true); on {
		cfg.ReporterPrefix = c.Get(conf.ReporterPrefix)
	}
	cfg.NonZeroExitFails, _ = c.Bool(conf.NonZeroExitFails, true)
	if sd == mapSide {
		cfg.InputSep, cfg.IgnoreKey = []byte(c.Get(conf.MapInputSep)), ignoreKey
		cfg.OutputSep = []byte(c.Get(conf.MapOutputSep))
		n, _ := c.Int(conf.MapOutputKeyFields, 1)
		cfg.KeyFields = int(n)
	} else {
		cfg.InputSep = []byte(c.Get(conf.ReduceInputSep))
		cfg.OutputSep = []byte(c.Get(conf.ReduceOutputSep))
		n, _ := c.Int(conf.ReduceOutKeyFields, 1)
		cfg.KeyFields = int(n)
	}
	p, err := streaming.Start(ctx, cfg, emit)
	if err != nil {
		return nil, err
	}
	st.mu.Lock()
	st.sources = append(st.sources, p.Activity)
	st.mu.Unlock()
	return p, nil
}

// taskEnv is the environment of the attempt's processes.
func (tt *TaskTracker) taskEnv(c conf.Conf, a Assignment, tmp string) []string {
	base := tt.BaseEnv
	if base == nil {
		base = os.Environ()
	}
	return streaming.Environ(base, c, a.Spec.CmdEnv(), tmp)
}

// report sends progress every interval while something changes, until
// stop is called.
func (tt *TaskTracker) report(r Reporter, st *attemptState) (stop func()) {
	every := tt.ReportInterval
	if every <= 0 {
		every = time.Second
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		var lastP float64 = -1
		var lastA uint64
		lastS := ""
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			p := st.getProgress()
			a := st.moved()
			status, user := st.snapshot()
			if p == lastP && a == lastA && status == lastS {
				continue // nothing moved: let the task timeout see it
			}
			lastP, lastA, lastS = p, a, status
			r.Report(jobtracker.Progress{Progress: p, Status: status, Counters: user})
		}
	}()
	return func() { close(done); wg.Wait() }
}

// feed writes the records next yields to proc until they run out or proc
// stops reading (its Close then says why), calling tick after every 64
// records, and closes proc. It returns how many records proc took, the
// error Close gave and the error reading the input gave (io.EOF is the
// end, not an error): a process that failed explains a broken feed, so
// callers look at closeErr first.
func feed(proc processor, next func() (k, v []byte, err error), tick func(n int64)) (n int64, closeErr, readErr error) {
	for {
		k, v, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		if proc.Write(k, v) != nil {
			break
		}
		n++
		if tick != nil && n&63 == 0 {
			tick(n)
		}
	}
	return n, proc.Close(), readErr
}
