package tasktracker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/counters"
	"github.com/agora-cluster/agora/hadoop/format"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/mapoutput"
	"github.com/agora-cluster/agora/hadoop/shuffle"
)

// RunReduce runs a reduce attempt: it fetches its partition of every map's
// output (following map completion events, re-fetching when a map is run
// again, reporting outputs it cannot fetch), merges them, feeds the reducer
// the sorted records, writes part-NNNNN into the attempt's temporary
// directory and, once allowed, commits it into the output directory.
func (tt *TaskTracker) RunReduce(ctx context.Context, a Assignment, r Reporter, outputs MapOutputs) (res Result, err error) {
	if a.Attempt.Task.Kind != job.Reduce {
		return Result{}, fmt.Errorf("run reduce %s: not a reduce assignment", a.Attempt)
	}
	resolve := tt.resolver(a.Spec.Conf)
	d, err := tt.prepare(a, resolve)
	defer os.RemoveAll(d.root)
	if err != nil {
		return Result{}, err
	}
	committer, err := format.NewCommitter(resolve, a.Spec.Output())
	if err != nil {
		return Result{}, err
	}
	taskDir := committer.TaskDir(a.Attempt.String())
	c := taskConf(a, d, taskDir)
	st := newAttemptState()
	stop := tt.report(r, st)
	defer stop()
	stderr, err := os.Create(d.stderr)
	if err != nil {
		return Result{}, err
	}
	defer stderr.Close()
	cnt := counters.New()

	copies, err := c.Int(conf.ParallelCopies, 5)
	if err != nil {
		return Result{}, err
	}
	runs, shuffled, err := tt.shuffle(ctx, a, d, outputs, int(copies), st)
	if err != nil {
		return Result{}, err
	}
	cnt.Add(counters.TaskGroup, counters.ReduceShuffleBytes, shuffled)
	st.setProgress(1.0 / 3)

	factor, err := c.Int(conf.SortFactor, 10)
	if err != nil {
		return Result{}, err
	}
	var mst mapoutput.Stats
	runs, err = mapoutput.Reduce(runs, 1, int(factor), filepath.Join(d.root, "shuffle"), &mst)
	if err != nil {
		return Result{}, fmt.Errorf("merge map outputs: %w", err)
	}
	var total int64
	for _, run := range runs {
		total += run.Records()
	}
	merged, closer, err := mapoutput.OpenMerged(runs, 0)
	if err != nil {
		return Result{}, fmt.Errorf("merge map outputs: %w", err)
	}
	defer closer.Close()
	st.setProgress(2.0 / 3)

	f, err := committer.FS().Create(path.Join(taskDir, partName(a.Attempt)))
	if err != nil {
		return Result{}, err
	}
	writer, err := format.NewWriter(f, c)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		if writer != nil {
			writer.Close()
		}
		if err != nil {
			committer.AbortTask(a.Attempt.String())
		}
	}()
	var out int64
	emit := func(k, v []byte) error { out++; return writer.Write(k, v) }
	env := tt.taskEnv(c, a, d.tmp)
	reducer, err := startProcessor(ctx, a.Spec.Reducer(), c, reduceSide, false, d.work, env, stderr, st, emit)
	if err != nil {
		return Result{}, fmt.Errorf("start reducer: %w", err)
	}
	fed, cerr, rerr := feed(reducer, merged.Next, func(fed int64) {
		st.activity.Add(64)
		st.setProgress(2.0/3 + float64(fed)/float64(max(total, 1))/3)
	})
	if cerr != nil {
		return Result{}, cerr
	}
	if rerr != nil {
		return Result{}, fmt.Errorf("reading merged map output: %w", rerr)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	werr := writer.Close()
	writer = nil
	if werr != nil {
		return Result{}, fmt.Errorf("write %s: %w", partName(a.Attempt), werr)
	}
	st.setProgress(1)
	if err := commit(ctx, r, committer, a.Attempt); err != nil {
		return Result{}, err
	}
	cnt.Add(counters.TaskGroup, counters.ReduceInputRecords, fed)
	cnt.Add(counters.TaskGroup, counters.ReduceOutputRecords, out)
	_, user := st.snapshot()
	cnt.Merge(user)
	return Result{Counters: cnt}, nil
}

type fetchResult struct {
	mapIndex int
	url      string
	fetched  shuffle.Fetched
	err      error
}

// shuffle fetches this reduce's segment of every map output and returns
// them as runs in map order (so equal keys merge in map order) with the
// bytes fetched.
func (tt *TaskTracker) shuffle(ctx context.Context, a Assignment, d attemptDirs, outputs MapOutputs, copies int, st *attemptState) ([]mapoutput.Run, int64, error) {
	dir := filepath.Join(d.root, "shuffle")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, err
	}
	fetcher := tt.Fetcher
	if fetcher == nil {
		fetcher = &shuffle.Fetcher{}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	events := make(chan []jobtracker.MapCompletion)
	pollErr := make(chan error, 1)
	go func() {
		from := 0
		for {
			evs, err := outputs.Completions(ctx, from)
			if err != nil {
				pollErr <- err
				return
			}
			from += len(evs)
			select {
			case events <- evs:
			case <-ctx.Done():
				return
			}
		}
	}()

	type mapState struct {
		loc      *jobtracker.MapCompletion // latest usable location
		fetched  *mapoutput.Run
		failed   bool // TIPFAILED: skip
		inFlight bool
	}
	maps := make([]mapState, a.NumMaps)
	results := make(chan fetchResult)
	retry := make(chan int)
	sem := make(chan struct{}, max(copies, 1))
	job := a.Attempt.Task.Job.String()
	var shuffled int64
	remaining := a.NumMaps
	start := func(m int) {
		ms := &maps[m]
		if ms.loc == nil || ms.fetched != nil || ms.failed || ms.inFlight {
			return
		}
		ms.inFlight = true
		loc := shuffle.Location{Map: m, Attempt: ms.loc.Attempt.String(), URL: ms.loc.URL}
		go func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			got, err := fetcher.Fetch(ctx, job, loc, a.Attempt.Task.Index, filepath.Join(dir, fmt.Sprintf("map_%d.out", m)))
			<-sem
			select {
			case results <- fetchResult{mapIndex: m, url: loc.URL, fetched: got, err: err}:
			case <-ctx.Done():
			}
		}()
	}
	for remaining > 0 {
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case err := <-pollErr:
			return nil, 0, fmt.Errorf("map completion events: %w", err)
		case evs := <-events:
			for _, e := range evs {
				if e.Map < 0 || e.Map >= len(maps) {
					continue
				}
				ms := &maps[e.Map]
				switch e.Status {
				case jobtracker.MapSucceeded:
					e := e
					ms.loc = &e
					start(e.Map)
				case jobtracker.MapObsolete:
					if ms.loc != nil && ms.loc.Attempt == e.Attempt {
						ms.loc = nil // wait for the re-run; keep what we fetched
					}
				case jobtracker.MapTIPFailed:
					if !ms.failed && ms.fetched == nil {
						ms.failed = true
						remaining--
					}
				}
			}
		case res := <-results:
			ms := &maps[res.mapIndex]
			ms.inFlight = false
			if res.err == nil {
				if ms.fetched == nil && !ms.failed {
					f := res.fetched
					ms.fetched = &mapoutput.Run{Path: f.Path, Index: mapoutput.Index{{Offset: 0, Length: f.Bytes, Records: f.Records}}}
					shuffled += f.Bytes
					remaining--
					st.activity.Add(1)
					st.setProgress(float64(a.NumMaps-remaining) / float64(max(a.NumMaps, 1)) / 3)
				}
				continue
			}
			if errors.Is(res.err, context.Canceled) {
				return nil, 0, res.err
			}
			if err := outputs.FetchFailed(ctx, res.mapIndex); err != nil {
				return nil, 0, fmt.Errorf("report fetch failure of map %d: %w", res.mapIndex, err)
			}
			m := res.mapIndex
			time.AfterFunc(time.Second, func() {
				select {
				case retry <- m:
				case <-ctx.Done():
				}
			})
		case m := <-retry:
			start(m)
		}
	}
	var runs []mapoutput.Run
	for _, ms := range maps {
		if ms.fetched != nil && ms.fetched.Records() > 0 {
			runs = append(runs, *ms.fetched)
		}
	}
	return runs, shuffled, nil
}
