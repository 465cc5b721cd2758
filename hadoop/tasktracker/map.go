package tasktracker

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/counters"
	"github.com/agora-cluster/agora/hadoop/format"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/mapoutput"
	"github.com/agora-cluster/agora/hadoop/streaming"
)

// MapOutputFile is the name of a map's output file in its attempt
// directory (Hadoop's file.out; its index is file.out.index).
const MapOutputFile = "file.out"

// RunMap runs a map attempt: it reads the split, feeds the mapper, and
// either sorts the output into a partitioned map output file (Result.
// MapOutput) or, for a map-only job, writes part-NNNNN and commits it. The
// error of a failed attempt carries its diagnostics (for Streaming, the exit
// status and the tail of stderr).
func (tt *TaskTracker) RunMap(ctx context.Context, a Assignment, r Reporter) (res Result, err error) {
	if a.Split == nil || a.Attempt.Task.Kind != job.Map {
		return Result{}, fmt.Errorf("run map %s: not a map assignment", a.Attempt)
	}
	resolve := tt.resolver(a.Spec.Conf)
	d, err := tt.prepare(a, resolve)
	defer func() {
		if err != nil {
			os.RemoveAll(d.root)
		} else {
			os.RemoveAll(d.work)
			os.RemoveAll(d.tmp)
		}
	}()
	if err != nil {
		return Result{}, err
	}
	var committer *format.Committer
	outputDir := ""
	if a.NumReduces == 0 {
		committer, err = format.NewCommitter(resolve, a.Spec.Output())
		if err != nil {
			return Result{}, err
		}
		outputDir = committer.TaskDir(a.Attempt.String())
	}
	c := taskConf(a, d, outputDir)
	st := newAttemptState()
	stop := tt.report(r, st)
	defer stop()
	stderr, err := os.Create(d.stderr)
	if err != nil {
		return Result{}, err
	}
	defer stderr.Close()
	env := tt.taskEnv(c, a, d.tmp)
	cnt := counters.New()

	// Where the mapper's output goes.
	var emit streaming.Emit
	var mapOnlyOut int64
	var sorter *mapoutput.Sorter
	var writer format.RecordWriter
	if a.NumReduces > 0 {
		part, err := a.Spec.Partitioner()
		if err != nil {
			return Result{}, err
		}
		if sorter, err = newSorter(ctx, tt, a, c, d, env, stderr, st, a.NumReduces); err != nil {
			return Result{}, err
		}
		n := a.NumReduces
		emit = func(k, v []byte) error { return sorter.Add(part.Partition(k, n), k, v) }
		if n == 1 {
			emit = func(k, v []byte) error { return sorter.Add(0, k, v) }
		}
	} else {
		f, err := committer.FS().Create(path.Join(outputDir, partName(a.Attempt)))
		if err != nil {
			return Result{}, err
		}
		if writer, err = format.NewWriter(f, c); err != nil {
			return Result{}, err
		}
		defer func() {
			if writer != nil {
				writer.Close()
			}
		}()
		emit = func(k, v []byte) error { mapOnlyOut++; return writer.Write(k, v) }
	}

	in, err := format.Open(resolve, *a.Split, c)
	if err != nil {
		return Result{}, err
	}
	defer in.Close()
	ignoreKey, err := a.Spec.IgnoreMapInputKey()
	if err != nil {
		return Result{}, err
	}
	mapper, err := startProcessor(ctx, a.Spec.Mapper(), c, mapSide, ignoreKey, d.work, env, stderr, st, emit)
	if err != nil {
		return Result{}, fmt.Errorf("start mapper: %w", err)
	}
	records, cerr, rerr := feed(mapper, in.Next, func(int64) {
		st.activity.Add(64)
		st.setProgress(in.Progress() * mapPhase(a))
	})
	if cerr != nil {
		return Result{}, cerr
	}
	if rerr != nil {
		return Result{}, fmt.Errorf("reading split %s: %w", a.Split, rerr)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	cnt.Add(counters.TaskGroup, counters.MapInputRecords, records)
	cnt.Add(counters.FSGroup, counters.FileBytesRead, in.BytesRead())
	st.setProgress(mapPhase(a))

	if sorter != nil {
		out := filepath.Join(d.root, MapOutputFile)
		if _, err := sorter.Finish(out); err != nil {
			return Result{}, fmt.Errorf("sort map output: %w", err)
		}
		s := sorter.Stats()
		cnt.Add(counters.TaskGroup, counters.MapOutputRecords, s.Records)
		cnt.Add(counters.TaskGroup, counters.MapOutputBytes, s.Bytes)
		cnt.Add(counters.TaskGroup, counters.SpilledRecords, s.SpilledRecs)
		if s.CombineInput > 0 || a.Spec.Combiner() != "" {
			cnt.Add(counters.TaskGroup, counters.CombineInputRecords, s.CombineInput)
			cnt.Add(counters.TaskGroup, counters.CombineOutputRecords, s.CombineOutput)
		}
		if fi, err := os.Stat(out); err == nil {
			cnt.Add(counters.FSGroup, counters.FileBytesWritten, fi.Size())
		}
		_, user := st.snapshot()
		cnt.Merge(user)
		return Result{Counters: cnt, MapOutput: out}, nil
	}
	werr := writer.Close()
	writer = nil
	if werr != nil {
		return Result{}, fmt.Errorf("write map output: %w", werr)
	}
	if err := commit(ctx, r, committer, a.Attempt); err != nil {
		return Result{}, err
	}
	cnt.Add(counters.TaskGroup, counters.MapOutputRecords, mapOnlyOut)
	_, user := st.snapshot()
	cnt.Merge(user)
	return Result{Counters: cnt}, nil
}

// mapPhase is the share of map progress that reading input represents: all
// of it for a map-only job, two thirds when the output must be sorted.
func mapPhase(a Assignment) float64 {
	if a.NumReduces == 0 {
		return 1
	}
	return 2.0 / 3
}

// newSorter sets up the sort buffer from mapreduce.task.io.sort.mb,
// mapreduce.map.sort.spill.percent and mapreduce.task.io.sort.factor, with
// the job's combiner.
func newSorter(ctx context.Context, tt *TaskTracker, a Assignment, c conf.Conf, d attemptDirs, env []string, stderr io.Writer, st *attemptState, n int) (*mapoutput.Sorter, error) {
	mb, err := c.Int(conf.SortMB, 100)
	if err != nil {
		return nil, err
	}
	spill, err := c.Float(conf.SpillPercent, 0.8)
	if err != nil {
		return nil, err
	}
	buf := int(float64(mb<<20) * spill)
	if b, err := c.Int(conf.SortBufferBytes, 0); err == nil && b > 0 {
		buf = int(b)
	}
	factor, err := c.Int(conf.SortFactor, 10)
	if err != nil {
		return nil, err
	}
	minSpills, err := c.Int(conf.CombineMinSpill, 3)
	if err != nil {
		return nil, err
	}
	spillDir := filepath.Join(d.root, "spill")
	if err := os.MkdirAll(spillDir, 0o755); err != nil {
		return nil, err
	}
	cfg := mapoutput.SortConfig{Partitions: n, BufferBytes: buf, Factor: int(factor), Dir: spillDir, MinSpillsForCombine: int(minSpills)}
	if cmd := a.Spec.Combiner(); cmd != "" {
		cfg.Combine = func(p int, in mapoutput.Records, emit func(k, v []byte) error) error {
			proc, err := startProcessor(ctx, cmd, c, combineSide, false, d.work, env, stderr, st, emit)
			if err != nil {
				return fmt.Errorf("start combiner: %w", err)
			}
			_, cerr, rerr := feed(proc, in.Next, nil)
			if cerr != nil {
				return fmt.Errorf("combiner: %w", cerr)
			}
			return rerr
		}
	}
	return mapoutput.NewSorter(cfg), nil
}
