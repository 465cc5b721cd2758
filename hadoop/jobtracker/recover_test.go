package jobtracker

import (
	"testing"

	"github.com/agora-cluster/agora/hadoop/job"
)

// TestRecoverKeepsWorkAndAttemptNumbers: a restarted scheduler recovers a
// committed reduce and a map whose output is still served; the others run
// again under attempt numbers the earlier scheduler never gave out.
func TestRecoverKeepsWorkAndAttemptNumbers(t *testing.T) {
	j := New(jobID, [][]string{nil, nil}, 2, testConfig(t), t0)
	m0 := job.TaskID{Job: jobID, Kind: job.Map, Index: 0}
	r0 := job.TaskID{Job: jobID, Kind: job.Reduce, Index: 0}
	r1 := job.TaskID{Job: jobID, Kind: job.Reduce, Index: 1}
	ds, err := j.Recover(at(0), []Recovered{
		{Task: m0, Launched: 2, Success: &Attempt{ID: job.AttemptID{Task: m0, N: 1}, Host: "h1", ShuffleURL: "http://h1:1"}},
		{Task: job.TaskID{Job: jobID, Kind: job.Map, Index: 1}, Launched: 1},
		{Task: r0, Launched: 1, Success: &Attempt{ID: job.AttemptID{Task: r0, N: 0}, Host: "h2"}},
		{Task: r1, Launched: 3},
	})
	if err != nil || len(ds) != 0 {
		t.Fatalf("recover: %v %v", ds, err)
	}
	if evs := j.MapCompletions(0); len(evs) != 1 || evs[0].Map != 0 || evs[0].URL != "http://h1:1" || evs[0].Attempt.N != 1 {
		t.Fatalf("completions %+v", evs)
	}
	st := j.Status()
	if st.Maps.Succeeded != 1 || st.Reduces.Succeeded != 1 || st.Maps.Pending != 1 || st.Reduces.Pending != 1 {
		t.Fatalf("status %+v %+v", st.Maps, st.Reduces)
	}
	l := mustAssign(t, j, at(1), "h1", job.Map)
	if l.Attempt.Task.Index != 1 || l.Attempt.N != 1 {
		t.Fatalf("launched %s, want map 1 attempt 1", l.Attempt)
	}
	finish(t, j, at(2), l.Attempt)
	l = mustAssign(t, j, at(3), "h1", job.Reduce)
	if l.Attempt.Task != r1 || l.Attempt.N != 3 {
		t.Fatalf("launched %s, want reduce 1 attempt 3", l.Attempt)
	}
	if _, ok := hasDecision[CommitJob](finish(t, j, at(4), l.Attempt)); !ok {
		t.Fatal("no commit after the last reduce")
	}
	if _, err := j.Recover(at(5), []Recovered{{Task: r0}}); err == nil {
		t.Fatal("recovered a task twice")
	}
}

func TestRecoverEverythingCommits(t *testing.T) {
	j := New(jobID, [][]string{nil}, 0, testConfig(t), t0)
	m0 := job.TaskID{Job: jobID, Kind: job.Map, Index: 0}
	ds, err := j.Recover(at(0), []Recovered{{Task: m0, Success: &Attempt{ID: job.AttemptID{Task: m0, N: 0}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := hasDecision[CommitJob](ds); !ok || j.State() != JobCommitting {
		t.Fatalf("decisions %v, state %s", ds, j.State())
	}
}
