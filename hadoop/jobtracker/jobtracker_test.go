package jobtracker

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/job"
)

var (
	t0    = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	jobID = job.ID{Tracker: "202601011200", Seq: 1}
)

func testConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := ConfigFrom(conf.New())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func mustAssign(t *testing.T, j *Job, now time.Time, host string, k job.Kind) *Launch {
	t.Helper()
	l, why := j.Assign(now, rand.New(rand.NewPCG(1, 1)), host, k)
	if l == nil {
		t.Fatalf("nothing assigned on %s: %s", host, why)
	}
	return l
}

func noAssign(t *testing.T, j *Job, now time.Time, host string, k job.Kind, wantReason string) {
	t.Helper()
	l, why := j.Assign(now, rand.New(rand.NewPCG(1, 1)), host, k)
	if l != nil {
		t.Fatalf("assigned %v on %s, want none (%s)", l.Attempt, host, wantReason)
	}
	if !strings.Contains(why, wantReason) {
		t.Fatalf("reason %q, want it to mention %q", why, wantReason)
	}
}

// finish runs an attempt to success, asking to commit when it must.
func finish(t *testing.T, j *Job, now time.Time, id job.AttemptID) []Decision {
	t.Helper()
	if j.needsCommit(id.Task.Kind) && !j.RequestCommit(now, id) {
		t.Fatalf("%s was refused the commit", id)
	}
	return j.Succeeded(now, id, Result{ShuffleURL: "http://" + id.String()})
}

func hasDecision[T Decision](ds []Decision) (T, bool) {
	for _, d := range ds {
		if v, ok := d.(T); ok {
			return v, true
		}
	}
	var zero T
	return zero, false
}

func TestRetriesThenSucceeds(t *testing.T) {
	j := New(jobID, [][]string{nil, nil}, 1, testConfig(t), t0)
	for i := 0; i < 3; i++ {
		l := mustAssign(t, j, at(float64(i)), "h1", job.Map)
		if l.Attempt.Task.Index != 0 {
			// failed tasks are retried before fresh ones
			t.Fatalf("attempt %d went to %v", i, l.Attempt)
		}
		if ds := j.Failed(at(float64(i)), l.Attempt, "boom"); len(ds) != 0 {
			t.Fatalf("decisions after failure %d: %v", i, ds)
		}
	}
	l := mustAssign(t, j, at(4), "h1", job.Map)
	if l.Attempt.N != 3 {
		t.Fatalf("fourth attempt is %v", l.Attempt)
	}
	finish(t, j, at(5), l.Attempt)
	finish(t, j, at(6), mustAssign(t, j, at(6), "h1", job.Map).Attempt)
	r := mustAssign(t, j, at(7), "h1", job.Reduce)
	ds := finish(t, j, at(8), r.Attempt)
	if _, ok := hasDecision[CommitJob](ds); !ok || j.State() != JobCommitting {
		t.Fatalf("decisions %v, state %s", ds, j.State())
	}
	j.Committed(at(9))
	st := j.Status()
	if st.State != JobSucceeded || st.Counters.Get("org.apache.hadoop.mapreduce.JobCounter", "NUM_FAILED_MAPS") != 3 {
		t.Fatalf("status %+v", st)
	}
}

func TestJobFailsAfterMaxAttemptsNamingTaskAndStderr(t *testing.T) {
	j := New(jobID, [][]string{nil, nil}, 1, testConfig(t), t0)
	other := mustAssign(t, j, t0, "h1", job.Map) // map 0, stays running
	var ds []Decision
	for i := 0; i < 4; i++ {
		l := mustAssign(t, j, at(float64(i+1)), "h1", job.Map)
		if l.Attempt.Task.Index != 1 {
			t.Fatalf("attempt went to %v", l.Attempt)
		}
		ds = j.Failed(at(float64(i+1)), l.Attempt, "PipeMapRed.waitOutputThreads(): subprocess failed with code 3\nlast lines of stderr:\nbad record: POISON")
	}
	if j.State() != JobFailed {
		t.Fatalf("state %s", j.State())
	}
	for _, want := range []string{"task task_202601011200_0001_m_000001 failed 4 times", "attempt_202601011200_0001_m_000001_3", "bad record: POISON"} {
		if !strings.Contains(j.Err(), want) {
			t.Errorf("error %q lacks %q", j.Err(), want)
		}
	}
	k, ok := hasDecision[KillAttempt](ds)
	if !ok || k.Attempt != other.Attempt {
		t.Fatalf("the running map must be killed: %v", ds)
	}
	if _, ok := hasDecision[AbortJob](ds); !ok {
		t.Fatalf("no abort: %v", ds)
	}
	// Late reports about killed attempts change nothing.
	if ds := j.Succeeded(at(9), other.Attempt, Result{}); ds != nil || j.State() != JobFailed {
		t.Fatal("a stale success revived the job")
	}
	noAssign(t, j, at(10), "h1", job.Map, "job is FAILED")
}

func TestToleratedMapFailures(t *testing.T) {
	cfg := testConfig(t)
	cfg.MapMaxAttempts = 1
	cfg.MapFailuresPercent = 50
	j := New(jobID, [][]string{nil, nil}, 1, cfg, t0)
	a := mustAssign(t, j, t0, "h", job.Map)
	b := mustAssign(t, j, t0, "h", job.Map)
	j.Failed(t0, a.Attempt, "x")
	finish(t, j, t0, b.Attempt)
	if j.State() != JobRunning {
		t.Fatalf("one failed map of two is within 50%%: %s %s", j.State(), j.Err())
	}
	ev := j.MapCompletions(0)
	if len(ev) != 2 || ev[0].Status != MapTIPFailed || ev[1].Status != MapSucceeded {
		t.Fatalf("events %+v", ev)
	}
}

func TestRetryAvoidsHostWhereTaskFailed(t *testing.T) {
	j := New(jobID, [][]string{nil, nil}, 0, testConfig(t), t0)
	j.Assign(t0, nil, "h2", job.Reduce) // h2 is known to the job
	l := mustAssign(t, j, t0, "h1", job.Map)
	j.Failed(at(1), l.Attempt, "x")
	if got := mustAssign(t, j, at(2), "h1", job.Map); got.Attempt.Task.Index != 1 {
		t.Fatalf("h1 got %v; the failed map must wait for another host", got.Attempt)
	}
	if got := mustAssign(t, j, at(3), "h2", job.Map); got.Attempt.Task.Index != 0 || got.Attempt.N != 1 {
		t.Fatalf("h2 got %v", got.Attempt)
	}
}

func TestBlacklistsHostThatKeepsFailing(t *testing.T) {
	var maps [][]string
	for i := 0; i < 20; i++ {
		maps = append(maps, nil)
	}
	j := New(jobID, maps, 0, testConfig(t), t0)
	for _, h := range []string{"h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8"} {
		j.Assign(t0, nil, h, job.Reduce) // register the hosts
	}
	for i := 0; i < 3; i++ {
		l := mustAssign(t, j, at(float64(i)), "bad", job.Map)
		j.Failed(at(float64(i)), l.Attempt, "disk error")
	}
	noAssign(t, j, at(5), "bad", job.Map, "blacklisted")
	if !slices.Equal(j.Blacklisted(), []string{"bad"}) {
		t.Fatalf("blacklist %v", j.Blacklisted())
	}
	mustAssign(t, j, at(5), "h1", job.Map)
}

func TestSingleHostIsNeverBlacklisted(t *testing.T) {
	cfg := testConfig(t)
	cfg.MapMaxAttempts = 10
	j := New(jobID, [][]string{nil, nil, nil, nil}, 0, cfg, t0)
	for i := 0; i < 4; i++ {
		l := mustAssign(t, j, at(float64(i)), "only", job.Map)
		j.Failed(at(float64(i)), l.Attempt, "x")
	}
	if len(j.Blacklisted()) != 0 {
		t.Fatal("the only host was blacklisted; the job would hang")
	}
	mustAssign(t, j, at(5), "only", job.Map)
}

func TestDelaySchedulingWaitsForDataLocalSlot(t *testing.T) {
	cfg := testConfig(t)
	cfg.LocalityDelay = 3 * time.Second
	j := New(jobID, [][]string{{"h1"}, {"h1"}, {"h2"}, nil}, 0, cfg, t0)
	// A map without data preferences runs anywhere at once.
	if l := mustAssign(t, j, t0, "h3", job.Map); l.Locality != NoPreference {
		t.Fatalf("got %+v", l)
	}
	noAssign(t, j, t0, "h3", job.Map, "waiting 3s more for a data-local slot")
	noAssign(t, j, at(2), "h3", job.Map, "waiting 1s more")
	if l := mustAssign(t, j, at(2.5), "h1", job.Map); l.Locality != DataLocal || l.Attempt.Task.Index != 0 {
		t.Fatalf("h1 got %+v", l)
	}
	// The local launch restarted the wait.
	noAssign(t, j, at(4), "h3", job.Map, "waiting 3s more")
	l := mustAssign(t, j, at(7), "h3", job.Map)
	if l.Locality != OffSwitch {
		t.Fatalf("after the delay h3 got %+v", l)
	}
	// Once relaxed, the job keeps taking non-local slots until a local one.
	if l := mustAssign(t, j, at(7), "h4", job.Map); l.Locality != OffSwitch {
		t.Fatalf("h4 got %+v", l)
	}
	st := j.Status()
	if st.Counters.Get("org.apache.hadoop.mapreduce.JobCounter", "DATA_LOCAL_MAPS") != 1 || st.Counters.Get("org.apache.hadoop.mapreduce.JobCounter", "OTHER_LOCAL_MAPS") != 2 {
		t.Fatalf("counters %v", st.Counters)
	}
}

func TestSpeculatesStragglerOnAnotherHost(t *testing.T) {
	cfg := testConfig(t)
	cfg.SpeculativeLag = 30 * time.Second
	j := New(jobID, [][]string{nil, nil, nil, nil}, 0, cfg, t0)
	var ls []*Launch
	for _, h := range []string{"h1", "h2", "h3", "slow"} {
		ls = append(ls, mustAssign(t, j, t0, h, job.Map))
	}
	for i := 0; i < 3; i++ {
		finish(t, j, at(10+float64(i)), ls[i].Attempt)
	}
	j.Update(at(20), ls[3].Attempt, Progress{Progress: 0.1})
	noAssign(t, j, at(20), "h1", job.Map, "no map to run") // before the lag
	noAssign(t, j, at(40), "slow", job.Map, "no map to run")
	spec := mustAssign(t, j, at(40), "h1", job.Map)
	if !spec.Speculative || spec.Attempt.Task != ls[3].Attempt.Task || spec.Attempt.N != 1 {
		t.Fatalf("speculative launch %+v", spec)
	}
	// Only one extra attempt per task.
	noAssign(t, j, at(41), "h2", job.Map, "no map to run")
	ds := finish(t, j, at(45), spec.Attempt)
	k, ok := hasDecision[KillAttempt](ds)
	if !ok || k.Attempt != ls[3].Attempt || k.Host != "slow" {
		t.Fatalf("the straggler must be killed: %v", ds)
	}
	if _, ok := hasDecision[CommitJob](ds); !ok {
		t.Fatalf("job should commit: %v", ds)
	}
	// The straggler's late success is ignored.
	if ds := j.Succeeded(at(46), ls[3].Attempt, Result{}); ds != nil {
		t.Fatalf("late success: %v", ds)
	}
}

func TestNoSpeculationForTasksOnSchedule(t *testing.T) {
	cfg := testConfig(t)
	cfg.SpeculativeLag = 0
	j := New(jobID, [][]string{nil, nil, nil}, 0, cfg, t0)
	a := mustAssign(t, j, t0, "h1", job.Map)
	b := mustAssign(t, j, t0, "h2", job.Map)
	c := mustAssign(t, j, t0, "h3", job.Map)
	finish(t, j, at(10), a.Attempt)
	finish(t, j, at(10), b.Attempt)
	j.Update(at(9), c.Attempt, Progress{Progress: 0.9}) // expected total 10s
	noAssign(t, j, at(9), "h1", job.Map, "no map to run")
	cfg.MapSpeculative = false
	j2 := New(jobID, [][]string{nil, nil}, 0, cfg, t0)
	x := mustAssign(t, j2, t0, "h1", job.Map)
	mustAssign(t, j2, t0, "h2", job.Map)
	finish(t, j2, at(1), x.Attempt)
	noAssign(t, j2, at(100), "h1", job.Map, "no map to run")
}

func TestOnlyOneAttemptCommits(t *testing.T) {
	cfg := testConfig(t)
	cfg.SpeculativeLag = 0
	j := New(jobID, [][]string{nil}, 2, cfg, t0)
	finish(t, j, at(1), mustAssign(t, j, at(1), "h1", job.Map).Attempt)
	r0 := mustAssign(t, j, at(2), "h1", job.Reduce)
	r1 := mustAssign(t, j, at(2), "h2", job.Reduce)
	finish(t, j, at(5), r0.Attempt)
	spec := mustAssign(t, j, at(60), "h3", job.Reduce)
	if !spec.Speculative || spec.Attempt.Task != r1.Attempt.Task {
		t.Fatalf("expected a speculative reduce: %+v", spec)
	}
	if !j.RequestCommit(at(61), spec.Attempt) {
		t.Fatal("first to ask must be allowed")
	}
	if j.RequestCommit(at(62), r1.Attempt) {
		t.Fatal("second to ask must be refused")
	}
	if ds := j.Succeeded(at(63), r1.Attempt, Result{}); ds != nil {
		t.Fatalf("success without permission: %v", ds)
	}
	if a, _ := j.Attempt(r1.Attempt); a.State != AttemptKilled {
		t.Fatalf("refused attempt is %s", a.State)
	}
	if ds := j.Succeeded(at(64), spec.Attempt, Result{}); len(ds) != 1 {
		t.Fatalf("decisions %v", ds)
	}
	// If the committer dies, another attempt may commit.
	j2 := New(jobID, [][]string{nil}, 0, cfg, t0)
	m := mustAssign(t, j2, t0, "h1", job.Map)
	if !j2.RequestCommit(t0, m.Attempt) {
		t.Fatal("refused")
	}
	j2.Failed(at(1), m.Attempt, "crashed while committing")
	m2 := mustAssign(t, j2, at(2), "h1", job.Map)
	if !j2.RequestCommit(at(3), m2.Attempt) {
		t.Fatal("the retry must be allowed to commit")
	}
}

func TestSlowStartAndMapOnly(t *testing.T) {
	cfg := testConfig(t)
	cfg.SlowStart = 0.5
	j := New(jobID, [][]string{nil, nil, nil, nil}, 1, cfg, t0)
	noAssign(t, j, t0, "h", job.Reduce, "reduces wait until 2 of 4 maps are done (0 are)")
	finish(t, j, t0, mustAssign(t, j, t0, "h", job.Map).Attempt)
	finish(t, j, t0, mustAssign(t, j, t0, "h", job.Map).Attempt)
	mustAssign(t, j, t0, "h", job.Reduce)

	mo := New(jobID, [][]string{nil}, 0, cfg, t0)
	noAssign(t, mo, t0, "h", job.Reduce, "map-only")
	m := mustAssign(t, mo, t0, "h", job.Map)
	if ds := mo.Succeeded(t0, m.Attempt, Result{}); ds != nil {
		t.Fatal("a map-only map must commit first")
	}
	m = mustAssign(t, mo, t0, "h", job.Map)
	if _, ok := hasDecision[CommitJob](finish(t, mo, t0, m.Attempt)); !ok {
		t.Fatal("map-only job did not commit")
	}
	if len(mo.MapCompletions(0)) != 0 {
		t.Fatal("map-only jobs publish no map outputs")
	}
}

func TestLostHostAndFetchFailuresRerunMaps(t *testing.T) {
	j := New(jobID, [][]string{nil, nil}, 3, testConfig(t), t0)
	m0 := mustAssign(t, j, t0, "h1", job.Map)
	m1 := mustAssign(t, j, t0, "h2", job.Map)
	finish(t, j, at(1), m0.Attempt)
	finish(t, j, at(1), m1.Attempt)
	r0 := mustAssign(t, j, at(2), "h3", job.Reduce)
	r1 := mustAssign(t, j, at(2), "h3", job.Reduce)
	r2 := mustAssign(t, j, at(2), "h1", job.Reduce)
	ds := j.HostLost(at(3), "h1")
	if k, ok := hasDecision[KillAttempt](ds); !ok || k.Attempt != r2.Attempt {
		t.Fatalf("the reduce on the lost host: %v", ds)
	}
	ev := j.MapCompletions(2)
	if len(ev) != 1 || ev[0].Status != MapObsolete || ev[0].Map != 0 {
		t.Fatalf("events after loss: %+v", ev)
	}
	again := mustAssign(t, j, at(4), "h2", job.Map)
	if again.Attempt.Task.Index != 0 || again.Attempt.N != 1 {
		t.Fatalf("re-run %v", again.Attempt)
	}
	finish(t, j, at(5), again.Attempt)
	// Map 1's output cannot be fetched: three reports from distinct reduces
	// (or all running ones) re-run it, counting as a failure.
	j.FetchFailed(at(6), r0.Attempt, 1)
	if a, _ := j.Attempt(m1.Attempt); a.State != AttemptSucceeded {
		t.Fatal("one report must not re-run the map")
	}
	j.FetchFailed(at(6), r1.Attempt, 1)
	if a, _ := j.Attempt(m1.Attempt); a.State != AttemptFailed || !strings.Contains(a.Diagnostics, "Too many fetch-failures") {
		t.Fatalf("map 1 attempt: %+v", a)
	}
	ev = j.MapCompletions(0)
	if last := ev[len(ev)-1]; last.Map != 1 || last.Status != MapObsolete {
		t.Fatalf("events %+v", ev)
	}
}

func TestTaskTimeoutFailsSilentAttempts(t *testing.T) {
	cfg := testConfig(t)
	cfg.TaskTimeout = 10 * time.Second
	j := New(jobID, [][]string{nil}, 0, cfg, t0)
	l := mustAssign(t, j, t0, "h", job.Map)
	j.Update(at(5), l.Attempt, Progress{Progress: 0.5})
	if ds := j.Tick(at(14)); ds != nil {
		t.Fatalf("early timeout %v", ds)
	}
	ds := j.Tick(at(15))
	if k, ok := hasDecision[KillAttempt](ds); !ok || k.Attempt != l.Attempt {
		t.Fatalf("decisions %v", ds)
	}
	if a, _ := j.Attempt(l.Attempt); a.State != AttemptFailed || !strings.Contains(a.Diagnostics, "failed to report status for 10 seconds") {
		t.Fatalf("attempt %+v", a)
	}
}

func TestKillJob(t *testing.T) {
	j := New(jobID, [][]string{nil, nil}, 1, testConfig(t), t0)
	l := mustAssign(t, j, t0, "h", job.Map)
	ds := j.Kill(at(1), "")
	if k, ok := hasDecision[KillAttempt](ds); !ok || k.Attempt != l.Attempt {
		t.Fatalf("decisions %v", ds)
	}
	if a, ok := hasDecision[AbortJob](ds); !ok || a.State != JobKilled {
		t.Fatalf("decisions %v", ds)
	}
	st := j.Status()
	if st.State != JobKilled || st.Maps.Killed != 2 || st.Reduces.Killed != 1 {
		t.Fatalf("status %+v", st)
	}
	if j.Kill(at(2), "") != nil {
		t.Fatal("killing twice")
	}
}
