package framework_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
)

// TestSchedulerRestartKeepsJobs stops the scheduler in the middle of a
// job and starts it again on the same state directory: it takes its
// framework back (same framework ID), shuts down the trackers of its
// previous life, runs the job again and the job succeeds.
func TestSchedulerRestartKeepsJobs(t *testing.T) {
	needPython(t)
	e := startEnv(t)
	dir := t.TempDir()
	for i := 0; i < 2; i++ {
		writeCorpus(t, filepath.Join(dir, "in", fmt.Sprintf("%d.txt", i)), 300<<10, uint64(20+i))
	}
	slow := filepath.Join(dir, "slow_mapper.sh")
	os.WriteFile(slow, []byte("#!/bin/sh\nsleep 1\nexec ./mapper.py\n"), 0o755)
	args := wordcount(examples(t), "in", "out", "-file", slow, "-mapper", "slow_mapper.sh",
		"-D", "mapreduce.input.fileinputformat.split.maxsize=131072")
	ctx := context.Background()
	info, err := e.cl.Submit(ctx, client.SubmitRequest{Args: args, Cwd: dir})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a map to finish", func() bool {
		j, err := e.cl.Job(ctx, info.ID, false)
		return err == nil && j.Maps.Succeeded > 0
	})
	before, err := e.cl.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.stop()
	e.startFramework()
	after, err := e.cl.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.FrameworkID != before.FrameworkID || after.Incarnation != before.Incarnation+1 {
		t.Errorf("after the restart: framework %s incarnation %d; before: %s %d", after.FrameworkID, after.Incarnation, before.FrameworkID, before.Incarnation)
	}
	j := e.wait(info.ID)
	if j.State != jobtracker.JobSucceeded || j.Restarts != 1 {
		t.Fatalf("job %s (restarts %d): %s", j.State, j.Restarts, j.Error)
	}
	compareCounts(t, readOutput(t, filepath.Join(dir, "out")), unixCounts(t, filepath.Join(dir, "in")))
	ts, err := e.cl.Trackers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range ts {
		if !strings.HasPrefix(tr.ID, fmt.Sprintf("tasktracker-%d-", after.Incarnation)) {
			t.Errorf("tracker %s of an earlier incarnation is still used", tr.ID)
		}
	}
	waitFor(t, "the earlier trackers to be shut down", func() bool {
		st, err := e.c.State()
		if err != nil {
			return false
		}
		for _, f := range st.Frameworks {
			for _, task := range f.Tasks {
				if strings.HasSuffix(task.ID, fmt.Sprintf(".%d", before.Incarnation)) {
					return false
				}
			}
		}
		return true
	})
}
