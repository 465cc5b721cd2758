// Package tasktracker runs map and reduce attempts on one machine, the
// TaskTracker's side of a MapReduce job: a map reads its split, feeds the
// mapper, and partitions, sorts, spills, combines and merges its output
// into a file the shuffle server hands to reduces; a reduce fetches its
// partition of every map output, merges them, feeds the reducer sorted
// records and commits its part file. Attempts report progress and ask for
// commit permission through a Reporter, which the executor maps onto Mesos
// status updates and the local runner onto the JobTracker core directly.
package tasktracker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/counters"
	"github.com/agora-cluster/agora/hadoop/format"
	"github.com/agora-cluster/agora/hadoop/fs"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/shuffle"
)

// Assignment is everything needed to run one attempt; it encodes to JSON
// (an executor receives it as the Mesos task's data).
type Assignment struct {
	Spec       job.Spec      `json:"spec"`
	Attempt    job.AttemptID `json:"attempt"`
	Split      *format.Split `json:"split,omitempty"` // maps only
	NumMaps    int           `json:"num_maps"`
	NumReduces int           `json:"num_reduces"`
}

// Reporter carries an attempt's messages to the JobTracker.
type Reporter interface {
	// Report sends progress; it must not block for long.
	Report(p jobtracker.Progress)
	// CanCommit asks whether this attempt may commit its output.
	CanCommit(ctx context.Context) (bool, error)
}

// MapOutputs tells a reduce where map outputs are.
type MapOutputs interface {
	// Completions returns map completion events from seq from on, waiting
	// until there is at least one or ctx ends.
	Completions(ctx context.Context, from int) ([]jobtracker.MapCompletion, error)
	// FetchFailed reports that a map's output could not be fetched.
	FetchFailed(ctx context.Context, mapIndex int) error
}

// Result is what a successful attempt produced.
type Result struct {
	Counters counters.Counters
	// MapOutput is the map output file (maps of jobs with reduces), to be
	// registered with the shuffle server.
	MapOutput string
}

// ErrCommitDenied means another attempt of the task was allowed to commit;
// this one's output was discarded. Report it as killed, not failed.
var ErrCommitDenied = errors.New("commit denied: another attempt of the task commits")

// TaskTracker runs attempts under WorkDir. It is safe for concurrent use;
// each attempt runs in its caller's goroutine.
type TaskTracker struct {
	// WorkDir is the TaskTracker's local directory (mapred.local.dir):
	// <WorkDir>/<job>/<attempt>/ holds each attempt's files and
	// <WorkDir>/<job>/files the job's shipped files.
	WorkDir string
	// Resolve finds file systems; nil means the default with the job's
	// fs.local.block.size.
	Resolve fs.Resolver
	// BaseEnv is the environment tasks start from; nil means os.Environ().
	BaseEnv []string
	// ReportInterval is how often progress is reported; 0 means 1s.
	ReportInterval time.Duration
	// Fetcher downloads map outputs; nil means a default Fetcher.
	Fetcher *shuffle.Fetcher
	// LogDir, if set, keeps each attempt's stderr as <LogDir>/<attempt>.stderr
	// after the attempt ends (for `agora hadoop logs`); otherwise stderr
	// lives and goes with the attempt's directory.
	LogDir string

	mu    sync.Mutex
	files map[string]*localized
}

type localized struct {
	once sync.Once
	dir  string
	err  error
}

func (tt *TaskTracker) resolver(c conf.Conf) fs.Resolver {
	if tt.Resolve != nil {
		return tt.Resolve
	}
	resolve, err := job.Resolver(c)
	if err != nil {
		// A block size that does not parse was refused at submission
		// (job.Prepare); one that reaches an attempt anyway gets the
		// local file system's default (0: 32 MiB) rather than failing it.
		return fs.ResolverWith(0, c.Get("fs.defaultFS"))
	}
	return resolve
}

// JobDir is where a job's attempts keep their files.
func (tt *TaskTracker) JobDir(id job.ID) string { return filepath.Join(tt.WorkDir, id.String()) }

// LogPath is where an attempt's stderr is kept when LogDir is set.
func (tt *TaskTracker) LogPath(a job.AttemptID) string {
	return filepath.Join(tt.LogDir, a.String()+".stderr")
}

// RemoveJob deletes everything the job left here (map outputs included).
func (tt *TaskTracker) RemoveJob(id job.ID) error {
	tt.mu.Lock()
	delete(tt.files, id.String())
	tt.mu.Unlock()
	return os.RemoveAll(tt.JobDir(id))
}

// localize copies the job's shipped files into <job>/files once, made
// executable as Streaming's -file does.
func (tt *TaskTracker) localize(a Assignment, resolve fs.Resolver) (string, error) {
	key := a.Attempt.Task.Job.String()
	tt.mu.Lock()
	if tt.files == nil {
		tt.files = map[string]*localized{}
	}
	l := tt.files[key]
	if l == nil {
		l = &localized{dir: filepath.Join(tt.JobDir(a.Attempt.Task.Job), "files")}
		tt.files[key] = l
	}
	tt.mu.Unlock()
	l.once.Do(func() {
		if err := os.MkdirAll(l.dir, 0o755); err != nil {
			l.err = err
			return
		}
		for _, f := range a.Spec.Files {
			if err := copyExecutable(resolve, f, filepath.Join(l.dir, filepath.Base(f))); err != nil {
				l.err = fmt.Errorf("localize %s: %w", f, err)
				return
			}
		}
	})
	return l.dir, l.err
}

func copyExecutable(resolve fs.Resolver, src, dst string) error {
	fsys, p, err := resolve(src)
	if err != nil {
		return err
	}
	in, err := fsys.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// attemptDirs prepares <job>/<attempt>/{work,tmp} with the shipped files
// linked into work, the task's working directory.
type attemptDirs struct {
	root, work, tmp, stderr string
}

func (tt *TaskTracker) prepare(a Assignment, resolve fs.Resolver) (attemptDirs, error) {
	root := filepath.Join(tt.JobDir(a.Attempt.Task.Job), a.Attempt.String())
	d := attemptDirs{root: root, work: filepath.Join(root, "work"), tmp: filepath.Join(root, "tmp"), stderr: filepath.Join(root, "stderr")}
	os.RemoveAll(root) // a leftover of an earlier run of this tracker
	if tt.LogDir != "" {
		if err := os.MkdirAll(tt.LogDir, 0o755); err != nil {
			return d, err
		}
		d.stderr = tt.LogPath(a.Attempt)
	}
	for _, dir := range []string{d.work, d.tmp} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return d, err
		}
	}
	if len(a.Spec.Files) == 0 {
		return d, nil
	}
	files, err := tt.localize(a, resolve)
	if err != nil {
		return d, err
	}
	for _, f := range a.Spec.Files {
		name := filepath.Base(f)
		if err := os.Symlink(filepath.Join(files, name), filepath.Join(d.work, name)); err != nil {
			return d, err
		}
	}
	return d, nil
}

// taskConf is the job configuration with the attempt's own properties, as
// Hadoop sets them for each task.
func taskConf(a Assignment, d attemptDirs, outputDir string) conf.Conf {
	c := a.Spec.Conf.Clone()
	t := a.Attempt.Task
	c.Set(conf.JobID, t.Job.String())
	c.Set(conf.TaskID, t.String())
	c.Set(conf.TaskAttemptID, a.Attempt.String())
	c.Set(conf.TaskIsMap, strconv.FormatBool(t.Kind == job.Map))
	c.Set(conf.TaskPartition, strconv.Itoa(t.Index))
	c.Set(conf.JobLocalDir, d.work)
	c.Set(conf.LocalDir, d.root)
	c.Set(conf.NumReduces, strconv.Itoa(a.NumReduces))
	if outputDir != "" {
		c.Set(conf.TaskOutputDir, outputDir)
	}
	if s := a.Split; s != nil {
		c.Set(conf.MapInputFile, s.Path)
		c.Set(conf.MapInputStart, strconv.FormatInt(s.Start, 10))
		c.Set(conf.MapInputLen, strconv.FormatInt(s.Length, 10))
	}
	return c
}

func partName(a job.AttemptID) string { return fmt.Sprintf("part-%05d", a.Task.Index) }

// commit asks for permission and moves the attempt's output into place.
func commit(ctx context.Context, r Reporter, c *format.Committer, a job.AttemptID) error {
	ok, err := r.CanCommit(ctx)
	if err != nil {
		c.AbortTask(a.String())
		return fmt.Errorf("asking to commit %s: %w", a, err)
	}
	if !ok {
		c.AbortTask(a.String())
		return ErrCommitDenied
	}
	if err := c.CommitTask(a.String()); err != nil {
		return err
	}
	return nil
}
