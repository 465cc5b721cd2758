package framework

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/format"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
)

func TestStoreRoundTripsAtomically(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fw, err := s.LoadFramework(now)
	if err != nil || fw.Tracker != "202601020304" || fw.NextSeq != 1 || fw.FrameworkID != "" {
		t.Fatalf("fresh state %+v, %v", fw, err)
	}
	fw.FrameworkID, fw.Incarnation, fw.NextSeq = "fw-1", 3, 7
	if err := s.SaveFramework(fw); err != nil {
		t.Fatal(err)
	}
	spec := job.Spec{Conf: conf.New()}
	spec.Conf.Set(conf.OutputDir, "/out")
	for i, id := range []string{"job_202601020304_0002", "job_202601020304_0001"} {
		rec := JobRecord{
			Plan: job.Plan{Spec: spec, Splits: []format.Split{{Path: "/in/a", Length: 10}}, NumReduces: 1},
			Info: client.JobInfo{ID: id, State: jobtracker.JobRunning, Submitted: now.Add(time.Duration(-i) * time.Minute)},
		}
		if err := s.SaveJob(rec); err != nil {
			t.Fatal(err)
		}
	}
	again, _ := OpenStore(dir)
	got, err := again.LoadFramework(time.Now())
	if err != nil || got != fw {
		t.Errorf("framework state %+v, %v; want %+v", got, err, fw)
	}
	recs, err := again.LoadJobs()
	if err != nil || len(recs) != 2 || recs[0].Info.ID != "job_202601020304_0001" || recs[1].Plan.Splits[0].Path != "/in/a" {
		t.Fatalf("jobs %+v, %v", recs, err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "jobs"))
	for _, e := range ents {
		if filepath.Ext(e.Name()) != ".json" {
			t.Errorf("left behind %s", e.Name())
		}
	}
	os.WriteFile(filepath.Join(dir, "framework.json"), []byte("{not json"), 0o644)
	if _, err := again.LoadFramework(time.Now()); err == nil {
		t.Error("a corrupt framework.json was accepted")
	}
}

// progressSeeds are the seeds of the crash tests: fixed ones, and one from
// the clock (logged) so that runs keep exploring; a failure names its seed,
// and PROGRESS_SEED=<n> runs that one alone.
func progressSeeds(t *testing.T) []uint64 {
	if s := os.Getenv("PROGRESS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PROGRESS_SEED=%q: %v", s, err)
		}
		return []uint64{n}
	}
	seeds := []uint64{}
	for s := uint64(1); s <= 40; s++ {
		seeds = append(seeds, s)
	}
	clock := uint64(time.Now().UnixNano())
	t.Logf("clock seed %d (PROGRESS_SEED=%d reproduces it)", clock, clock)
	return append(seeds, clock)
}

// done is the record of a successful attempt n of map i.
func done(i, n int) TaskDone {
	id := job.AttemptID{Task: job.TaskID{Job: job.ID{Tracker: "202601020304", Seq: 1}, Kind: job.Map, Index: i}, N: n}
	return TaskDone{Attempt: jobtracker.Attempt{ID: id, State: jobtracker.AttemptSucceeded}, Tracker: fmt.Sprintf("tt-%d", i%3), URL: "http://h:1"}
}

// sameProgress fails unless got is want: the same launch counts, the same
// successes in the same order.
func sameProgress(t *testing.T, what string, got, want Progress) {
	t.Helper()
	if len(got.Launched) != len(want.Launched) || len(got.Done) != len(want.Done) {
		t.Fatalf("%s: %d launch counts and %d successes, want %d and %d", what, len(got.Launched), len(got.Done), len(want.Launched), len(want.Done))
	}
	for k, n := range want.Launched {
		if got.Launched[k] != n {
			t.Fatalf("%s: %s launched %d, want %d", what, k, got.Launched[k], n)
		}
	}
	for i := range want.Done {
		if got.Done[i].Attempt.ID != want.Done[i].Attempt.ID || got.Done[i].Tracker != want.Done[i].Tracker {
			t.Fatalf("%s: success %d is %s on %s, want %s on %s", what, i,
				got.Done[i].Attempt.ID, got.Done[i].Tracker, want.Done[i].Attempt.ID, want.Done[i].Tracker)
		}
	}
}

// Two and three crashes in a row, each cutting the progress file at a
// random byte (within the last record, as a crash mid-append does, or
// anywhere, as if the later records never reached the disk), sometimes
// with zeros for the torn record's last bytes (blocks allocated, never
// written): every replay gives exactly the
// records whole before the cut, in order, and the records appended after
// a replay are not glued to a fragment (the next replay has them all).
func TestProgressSurvivesRepeatedCrashesAtRandomOffsets(t *testing.T) {
	seeds := progressSeeds(t)
	for _, crashes := range []int{2, 3} {
		for _, seed := range seeds {
			rng := rand.New(rand.NewPCG(seed, uint64(crashes)))
			s, err := OpenStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			l := s.NewProgress("job_202601020304_0001")
			l.minBytes = 1 << 30 // offsets are the test's: no rewrite
			path := s.progressPath("job_202601020304_0001")
			// ends[i] is where record i ends; want[i] what replaying
			// records 0..i gives.
			var ends []int64
			var want []Progress
			next := 0
			for crash := 0; crash < crashes; crash++ {
				for i := 0; i < 1+rng.IntN(8); i++ {
					d := Progress{Done: []TaskDone{done(next, rng.IntN(3))}}
					if rng.IntN(2) == 0 {
						d.Launched = map[string]int{fmt.Sprintf("m%d", next): 1 + rng.IntN(4)}
					}
					next++
					if err := l.Append(d); err != nil {
						t.Fatalf("crashes %d, seed %d: append: %v", crashes, seed, err)
					}
					ends = append(ends, l.size)
					w := Progress{}
					if len(want) > 0 {
						w = want[len(want)-1].clone()
					}
					w.merge(d)
					want = append(want, w)
				}
				from := int64(0) // the crash: cut somewhere after from
				if rng.IntN(2) == 0 && len(ends) > 1 {
					from = ends[len(ends)-2]
				}
				cut := from + rng.Int64N(ends[len(ends)-1]-from)
				if err := os.Truncate(path, cut); err != nil {
					t.Fatal(err)
				}
				kept := 0
				for kept < len(ends) && ends[kept] <= cut {
					kept++
				}
				if zeros := int64(rng.IntN(3) * rng.IntN(100)); zeros > 0 {
					// The torn record's last bytes were never written.
					whole := int64(0)
					if kept > 0 {
						whole = ends[kept-1]
					}
					at := max(cut-zeros, whole)
					f, _ := os.OpenFile(path, os.O_WRONLY, 0)
					f.WriteAt(make([]byte, cut-at), at)
					f.Close()
				}
				ends, want = ends[:kept], want[:kept]
				what := fmt.Sprintf("crashes %d, seed %d, crash %d at byte %d", crashes, seed, crash, cut)
				if l, err = s.OpenProgress("job_202601020304_0001"); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				l.minBytes = 1 << 30
				w := Progress{}
				if kept > 0 {
					w = want[kept-1]
					if l.size != ends[kept-1] {
						t.Fatalf("%s: the replayed file has %d bytes of records, want %d", what, l.size, ends[kept-1])
					}
				}
				sameProgress(t, what, l.Progress(), w)
				if st, err := os.Stat(path); err != nil || st.Size() != l.size {
					t.Fatalf("%s: the torn tail was not cut off: %v", what, err)
				}
			}
			// After the last crash: one more append, and a replay has
			// everything in order.
			d := Progress{Done: []TaskDone{done(next, 0)}}
			if err := l.Append(d); err != nil {
				t.Fatal(err)
			}
			w := Progress{}
			if len(want) > 0 {
				w = want[len(want)-1].clone()
			}
			w.merge(d)
			again, err := s.OpenProgress("job_202601020304_0001")
			if err != nil {
				t.Fatalf("crashes %d, seed %d: the last replay: %v", crashes, seed, err)
			}
			sameProgress(t, fmt.Sprintf("crashes %d, seed %d, after the last append", crashes, seed), again.Progress(), w)
		}
	}
}

// A record that does not check out with whole records after it is not a
// torn write but damage: the replay is refused, naming the file and the
// record's offset, and the file is left as it was.
func TestProgressRefusesADamagedRecordInTheMiddle(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l := s.NewProgress("job_1_0001")
	var ends []int64
	for i := 0; i < 4; i++ {
		if err := l.Append(Progress{Done: []TaskDone{done(i, 0)}}); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, l.size)
	}
	path := s.progressPath("job_1_0001")
	b, _ := os.ReadFile(path)
	for _, damage := range []struct {
		what string
		at   int64 // byte changed
		to   byte
	}{
		{"a flipped bit in the JSON", ends[1] + 40, 0},
		{"a lost newline", ends[2] - 1, ' '},
		{"a bad length", ends[0] + 3, 'z'},
	} {
		bad := bytes.Clone(b)
		if damage.to == 0 {
			bad[damage.at] ^= 0x04
		} else {
			bad[damage.at] = damage.to
		}
		if err := os.WriteFile(path, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		rec := int64(0)
		for _, e := range ends {
			if e <= damage.at {
				rec = e
			}
		}
		_, err := s.OpenProgress("job_1_0001")
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), fmt.Sprintf("at byte %d is damaged", rec)) {
			t.Errorf("%s: replay gave %v; want an error naming %s and byte %d", damage.what, err, path, rec)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(after, bad) {
			t.Errorf("%s: the replay changed the damaged file", damage.what)
		}
	}
}

// Past its bound, the file is rewritten whole (one record: the last
// success of each task, the largest launch counts), atomically: it stays
// small however many records were appended, replays to the same progress,
// and takes appends after.
func TestProgressIsRewrittenPastItsBound(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	l := s.NewProgress("job_1_0001")
	l.minBytes = 4 << 10
	last := map[int]int{}
	launched := map[string]int{}
	rewrites, prev := 0, int64(0)
	for i := 0; i < 2000; i++ {
		task, n := i%10, i/10
		d := Progress{Done: []TaskDone{done(task, n)}, Launched: map[string]int{fmt.Sprintf("m%d", task): n + 1}}
		if err := l.Append(d); err != nil {
			t.Fatal(err)
		}
		last[task], launched[fmt.Sprintf("m%d", task)] = n, n+1
		if l.size < prev {
			rewrites++
		}
		prev = l.size
	}
	if st, err := os.Stat(s.progressPath("job_1_0001")); err != nil || st.Size() > 2*4<<10+1024 {
		t.Fatalf("after 2000 records the file is %v bytes (%v); want it rewritten under about 9 KiB", st.Size(), err)
	}
	if rewrites == 0 || rewrites > 2000/5 {
		t.Errorf("%d rewrites for 2000 records", rewrites)
	}
	again, err := s.OpenProgress("job_1_0001")
	if err != nil {
		t.Fatal(err)
	}
	sameProgress(t, "after rewrites", again.Progress(), l.Progress())
	for k, n := range launched {
		if again.Launched(k) != n {
			t.Errorf("%s launched %d, want %d", k, again.Launched(k), n)
		}
	}
	for _, d := range again.Progress().compact().Done {
		if d.Attempt.ID.N != last[d.Attempt.ID.Task.Index] {
			t.Errorf("%s is kept; the task's last success is attempt %d", d.Attempt.ID, last[d.Attempt.ID.Task.Index])
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "jobs"))
	if len(ents) != 1 {
		t.Errorf("the jobs directory holds %d entries, want only the progress file", len(ents))
	}
}

// An append that fails (here: the file is /dev/full) says which file, and
// leaves the progress as it was; the next one that can be written is.
func TestProgressAppendFailureChangesNothing(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l := s.NewProgress("job_1_0001")
	if err := l.Append(Progress{Done: []TaskDone{done(0, 0)}}); err != nil {
		t.Fatal(err)
	}
	path := s.progressPath("job_1_0001")
	good, _ := os.ReadFile(path)
	os.Remove(path)
	if err := os.Symlink("/dev/full", path); err != nil {
		t.Fatal(err)
	}
	err = l.Append(Progress{Done: []TaskDone{done(1, 0)}, Launched: map[string]int{"m1": 1}})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("an append to a full disk: %v; want an error naming %s", err, path)
	}
	sameProgress(t, "after the failed append", l.Progress(), Progress{Done: []TaskDone{done(0, 0)}})
	os.Remove(path)
	os.WriteFile(path, good, 0o644)
	if err := l.Append(Progress{Done: []TaskDone{done(2, 0)}}); err != nil {
		t.Fatal(err)
	}
	again, err := s.OpenProgress("job_1_0001")
	if err != nil {
		t.Fatal(err)
	}
	sameProgress(t, "after the next append", again.Progress(), Progress{Done: []TaskDone{done(0, 0), done(2, 0)}})
}

// The whole-JSON progress file of an earlier version is read, and turned
// into records.
func TestProgressUpgradesTheEarlierFormat(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	old := Progress{Launched: map[string]int{"m0": 2}, Done: []TaskDone{done(0, 1)}}
	b, _ := json.MarshalIndent(old, "", " ")
	os.WriteFile(s.progressPath("job_1_0001"), b, 0o644)
	l, err := s.OpenProgress("job_1_0001")
	if err != nil {
		t.Fatal(err)
	}
	sameProgress(t, "the earlier format", l.Progress(), old)
	if err := l.Append(Progress{Done: []TaskDone{done(1, 0)}}); err != nil {
		t.Fatal(err)
	}
	again, err := s.OpenProgress("job_1_0001")
	if err != nil {
		t.Fatal(err)
	}
	sameProgress(t, "after an append", again.Progress(), Progress{Launched: old.Launched, Done: []TaskDone{done(0, 1), done(1, 0)}})
}
