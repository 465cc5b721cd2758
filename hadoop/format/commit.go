package format

import (
	"errors"
	"fmt"
	"path"

	"github.com/agora-cluster/agora/hadoop/fs"
)

// Committer is Hadoop's FileOutputCommitter for one job's output
// directory. Each attempt writes under its own directory in
// <output>/_temporary; committing the attempt renames its files into the
// output directory, so a task's output appears whole or not at all; the job
// commit removes _temporary and writes the _SUCCESS marker. Only one
// attempt of a task may be committed; the JobTracker decides which.
type Committer struct {
	fsys fs.FileSystem
	dir  string // output directory within fsys
	Out  string // output directory as the job names it
}

// TemporaryDir is the name of the staging directory inside the output.
const TemporaryDir = "_temporary"

// SuccessMarker is the file a successful job leaves in its output.
const SuccessMarker = "_SUCCESS"

// NewCommitter returns the committer of output directory out.
func NewCommitter(resolve fs.Resolver, out string) (*Committer, error) {
	fsys, p, err := resolve(out)
	if err != nil {
		return nil, err
	}
	return &Committer{fsys: fsys, dir: p, Out: out}, nil
}

// FS is the file system the output lives on.
func (c *Committer) FS() fs.FileSystem { return c.fsys }

// SetupJob creates the output and staging directories.
func (c *Committer) SetupJob() error {
	if err := c.fsys.MkdirAll(path.Join(c.dir, TemporaryDir)); err != nil {
		return fmt.Errorf("set up output %s: %w", c.Out, err)
	}
	return nil
}

// TaskDir is where attempt writes its output (within FS()).
func (c *Committer) TaskDir(attempt string) string {
	return path.Join(c.dir, TemporaryDir, "_"+attempt)
}

// CommitTask moves every file the attempt wrote into the output directory.
// A file that already exists there is an error (two commits of one task).
func (c *Committer) CommitTask(attempt string) error {
	dir := c.TaskDir(attempt)
	ents, err := c.fsys.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("commit %s: %w", attempt, err)
	}
	for _, e := range ents {
		dst := path.Join(c.dir, e.Name())
		exists, err := fs.Exists(c.fsys, dst)
		if err != nil {
			return fmt.Errorf("commit %s: %w", attempt, err)
		}
		if exists {
			return fmt.Errorf("commit %s: %s already exists in %s", attempt, e.Name(), c.Out)
		}
		if err := c.fsys.Rename(path.Join(dir, e.Name()), dst); err != nil {
			return fmt.Errorf("commit %s: %w", attempt, err)
		}
	}
	return c.fsys.RemoveAll(dir)
}

// AbortTask discards what the attempt wrote.
func (c *Committer) AbortTask(attempt string) error {
	return c.fsys.RemoveAll(c.TaskDir(attempt))
}

// CommitJob removes the staging directory and, if mark is set
// (mapreduce.fileoutputcommitter.marksuccessfuljobs), writes _SUCCESS.
func (c *Committer) CommitJob(mark bool) error {
	if err := c.fsys.RemoveAll(path.Join(c.dir, TemporaryDir)); err != nil {
		return fmt.Errorf("commit job output %s: %w", c.Out, err)
	}
	if !mark {
		return nil
	}
	if err := fs.WriteFile(c.fsys, path.Join(c.dir, SuccessMarker), nil); err != nil {
		return fmt.Errorf("commit job output %s: %w", c.Out, err)
	}
	return nil
}

// AbortJob removes the staging directory; committed task output stays.
func (c *Committer) AbortJob() error {
	err := c.fsys.RemoveAll(path.Join(c.dir, TemporaryDir))
	return errors.Join(err)
}
