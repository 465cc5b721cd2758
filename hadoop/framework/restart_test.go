package framework_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/counters"
	"github.com/agora-cluster/agora/hadoop/framework"
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
		if !strings.HasPrefix(tr.ID, fmt.Sprintf("tasktracker-%d-", after.Incarnation)) && tr.MapSlots+tr.ReduceSlots > 0 {
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

// TestSchedulerRestartKeepsCommittedWork stops the scheduler once two of
// a job's four reduces have committed and starts it again: the committed
// reduces are not run again (same successful attempts, no new ones), the
// maps are not either (their TaskTrackers outlived the scheduler and
// still serve their outputs), the other reduces run under new attempt
// numbers, and the output is byte for byte that of an undisturbed run.
func TestSchedulerRestartKeepsCommittedWork(t *testing.T) {
	needPython(t)
	e := startEnv(t)
	dir := t.TempDir()
	for i := 0; i < 2; i++ {
		writeCorpus(t, filepath.Join(dir, "in", fmt.Sprintf("%d.txt", i)), 300<<10, uint64(40+i))
	}
	slow := filepath.Join(dir, "slow_reducer.sh")
	os.WriteFile(slow, []byte("#!/bin/sh\nif [ \"${mapreduce_task_partition:-0}\" -ge 2 ]; then sleep 6; fi\nexec ./reducer.py\n"), 0o755)
	job := func(out string) []string {
		return wordcount(examples(t), "in", out, "-file", slow, "-reducer", "slow_reducer.sh", "-numReduceTasks", "4",
			"-D", "mapreduce.input.fileinputformat.split.maxsize=131072")
	}
	ctx := context.Background()
	info, err := e.cl.Submit(ctx, client.SubmitRequest{Args: job("out"), Cwd: dir})
	if err != nil {
		t.Fatal(err)
	}
	var before client.JobDetail
	waitFor(t, "reduces 0 and 1 to commit", func() bool {
		d, err := e.cl.Job(ctx, info.ID, true)
		if err != nil {
			return false
		}
		before = d
		return taskState(d.Tasks, jobtracker.TaskSucceeded, "r", 0) && taskState(d.Tasks, jobtracker.TaskSucceeded, "r", 1)
	})
	if before.State != jobtracker.JobRunning || before.Reduces.Succeeded != 2 {
		t.Fatalf("before the restart: %s, %d reduces done; want 2 of 4 done", before.State, before.Reduces.Succeeded)
	}
	e.stop()
	checkRecorded(t, e.stateDir, before)
	// The scheduler is then as if killed mid-append: a torn record ends
	// the progress file. The restart cuts it off and keeps the work.
	tornRecord(t, e.stateDir, info.ID)
	e.startFramework()
	j := e.wait(info.ID)
	if j.State != jobtracker.JobSucceeded || j.Restarts != 1 {
		t.Fatalf("job %s (restarts %d): %s", j.State, j.Restarts, j.Error)
	}
	after, err := e.cl.Job(ctx, info.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, bt := range before.Tasks {
		at := findTask(t, after.Tasks, bt.ID.String())
		if bt.State == jobtracker.TaskSucceeded {
			if got, want := successful(at), successful(bt); got == nil || got.ID != want.ID {
				t.Errorf("%s succeeded with %v before the restart, with %v after: it ran again", bt.ID, want.ID, got)
			}
			for _, a := range at.Attempts[len(bt.Attempts):] {
				t.Errorf("%s was already done; attempt %s ran after the restart", bt.ID, a.ID)
			}
			continue
		}
		for _, a := range at.Attempts[:min(len(bt.Attempts), len(at.Attempts))] {
			if a.State == jobtracker.AttemptSucceeded {
				t.Errorf("%s: attempt %s of the earlier scheduler counts as the success", bt.ID, a.ID)
			}
		}
		if s := successful(at); s == nil || s.ID.N < len(bt.Attempts) {
			t.Errorf("%s: succeeded with %v; want a new attempt numbered from %d", bt.ID, s, len(bt.Attempts))
		}
	}
	if _, err := os.Stat(filepath.Join(e.stateDir, "jobs", info.ID+".progress")); !os.IsNotExist(err) {
		t.Errorf("the progress of the finished job is still kept: %v", err)
	}

	// The same job, undisturbed, writes the same bytes.
	clean := e.run(dir, job("clean")...)
	if clean.State != jobtracker.JobSucceeded {
		t.Fatalf("undisturbed run %s: %s", clean.State, clean.Error)
	}
	for i := 0; i < 4; i++ {
		name := fmt.Sprintf("part-%05d", i)
		got, err1 := os.ReadFile(filepath.Join(dir, "out", name))
		want, err2 := os.ReadFile(filepath.Join(dir, "clean", name))
		if err1 != nil || err2 != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from the undisturbed run's (%d and %d bytes; %v %v)", name, len(got), len(want), err1, err2)
		}
	}
	for _, n := range []string{"MAP_INPUT_RECORDS", "MAP_OUTPUT_RECORDS", "REDUCE_INPUT_RECORDS", "REDUCE_OUTPUT_RECORDS"} {
		if g, w := j.Counters.Get(counters.TaskGroup, n), clean.Counters.Get(counters.TaskGroup, n); g != w || g == 0 {
			t.Errorf("counter %s = %d after the restart, %d undisturbed", n, g, w)
		}
	}
	compareCounts(t, readOutput(t, filepath.Join(dir, "out")), unixCounts(t, filepath.Join(dir, "in")))
}

func taskState(ts []jobtracker.Task, st jobtracker.TaskState, kind string, i int) bool {
	for _, t := range ts {
		if string(rune(t.ID.Kind)) == kind && t.ID.Index == i {
			return t.State == st
		}
	}
	return false
}

func findTask(t *testing.T, ts []jobtracker.Task, id string) jobtracker.Task {
	t.Helper()
	for _, task := range ts {
		if task.ID.String() == id {
			return task
		}
	}
	t.Fatalf("no task %s", id)
	return jobtracker.Task{}
}

func successful(t jobtracker.Task) *jobtracker.Attempt {
	for _, a := range t.Attempts {
		if a.State == jobtracker.AttemptSucceeded {
			return a
		}
	}
	return nil
}

// checkRecorded checks a stopped scheduler's progress file against what
// its API showed: every success shown is recorded, and every attempt
// shown is counted as launched.
func checkRecorded(t *testing.T, stateDir string, shown client.JobDetail) {
	t.Helper()
	s, err := framework.OpenStore(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.OpenProgress(shown.ID)
	if err != nil {
		t.Fatal(err)
	}
	p := l.Progress()
	done := map[string]bool{}
	for _, d := range p.Done {
		done[d.Attempt.ID.String()] = true
	}
	for _, task := range shown.Tasks {
		if p.Launched[task.ID.String()] < len(task.Attempts) {
			t.Errorf("%s: %d attempts shown, %d recorded as launched", task.ID, len(task.Attempts), p.Launched[task.ID.String()])
		}
		if a := successful(task); a != nil && !done[a.ID.String()] {
			t.Errorf("%s: the success of %s was shown but not recorded", task.ID, a.ID)
		}
	}
}

// tornRecord appends the first bytes of a record to a job's progress
// file, as a crash in the middle of an append leaves it.
func tornRecord(t *testing.T, stateDir, id string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(stateDir, "jobs", id+".progress"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(`00000200 0badc0de {"done":[{"attempt":{"id":"attempt_`); err != nil {
		t.Fatal(err)
	}
}
