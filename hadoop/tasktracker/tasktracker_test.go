package tasktracker

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/format"
	"github.com/agora-cluster/agora/hadoop/fs"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/shuffle"
)

var testJob = job.ID{Tracker: "tt", Seq: 1}

// grantAll lets every attempt commit and records progress reports.
type grantAll struct {
	mu      sync.Mutex
	reports int
}

func (g *grantAll) Report(jobtracker.Progress)              { g.mu.Lock(); g.reports++; g.mu.Unlock() }
func (g *grantAll) CanCommit(context.Context) (bool, error) { return true, nil }

// events is an in-memory MapOutputs: a list of completion events that the
// test extends, and the fetch failures reported.
type events struct {
	mu     sync.Mutex
	cond   *sync.Cond
	list   []jobtracker.MapCompletion
	failed []int
	onFail func(m int)
}

func newEvents() *events {
	e := &events{}
	e.cond = sync.NewCond(&e.mu)
	return e
}

func (e *events) add(c jobtracker.MapCompletion) {
	e.mu.Lock()
	c.Seq = len(e.list)
	e.list = append(e.list, c)
	e.mu.Unlock()
	e.cond.Broadcast()
}

func (e *events) Completions(ctx context.Context, from int) ([]jobtracker.MapCompletion, error) {
	stop := context.AfterFunc(ctx, e.cond.Broadcast)
	defer stop()
	e.mu.Lock()
	defer e.mu.Unlock()
	for len(e.list) <= from {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		e.cond.Wait()
	}
	return append([]jobtracker.MapCompletion(nil), e.list[from:]...), nil
}

func (e *events) FetchFailed(ctx context.Context, m int) error {
	e.mu.Lock()
	e.failed = append(e.failed, m)
	f := e.onFail
	e.mu.Unlock()
	if f != nil {
		go f(m)
	}
	return nil
}

// A reduce that cannot fetch a map's output reports it, and finishes once
// the map's re-run output appears.
func TestReduceRefetchesFromReRunMap(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("b\na\nc\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.txt"), []byte("e\nd\na\n"), 0o644)
	spec, err := job.ParseStreaming([]string{"-input", "a.txt,b.txt", "-output", "out", "-mapper", "cat", "-reducer", "cat"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := job.NewPlan(spec, fs0())
	if err != nil {
		t.Fatal(err)
	}
	c, _ := format.NewCommitter(fs0(), spec.Output())
	c.SetupJob()
	tt := &TaskTracker{WorkDir: filepath.Join(dir, "tt"), ReportInterval: 10 * time.Millisecond, Fetcher: &shuffle.Fetcher{Retries: 1, Backoff: time.Millisecond}}
	srv := shuffle.NewServer()
	mux := http.NewServeMux()
	mux.Handle(shuffle.Path, srv)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()

	ev := newEvents()
	var attempts []job.AttemptID
	for i, s := range plan.Splits {
		s := s
		id := job.AttemptID{Task: job.TaskID{Job: testJob, Kind: job.Map, Index: i}}
		res, err := tt.RunMap(context.Background(), Assignment{Spec: plan.Spec, Attempt: id, Split: &s, NumMaps: 2, NumReduces: 1}, &grantAll{})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Register(testJob.String(), i, id.String(), res.MapOutput); err != nil {
			t.Fatal(err)
		}
		attempts = append(attempts, id)
	}
	// Map 1 is announced on a tracker that is gone.
	ev.add(jobtracker.MapCompletion{Map: 0, Attempt: attempts[0], URL: hs.URL, Status: jobtracker.MapSucceeded})
	ev.add(jobtracker.MapCompletion{Map: 1, Attempt: attempts[1], URL: dead.URL, Status: jobtracker.MapSucceeded})
	var once sync.Once
	ev.onFail = func(m int) {
		once.Do(func() {
			ev.add(jobtracker.MapCompletion{Map: 1, Attempt: attempts[1], Status: jobtracker.MapObsolete})
			ev.add(jobtracker.MapCompletion{Map: 1, Attempt: attempts[1], URL: hs.URL, Status: jobtracker.MapSucceeded})
		})
	}
	rid := job.AttemptID{Task: job.TaskID{Job: testJob, Kind: job.Reduce, Index: 0}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := tt.RunReduce(ctx, Assignment{Spec: plan.Spec, Attempt: rid, NumMaps: 2, NumReduces: 1}, &grantAll{}, ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.failed) == 0 || ev.failed[0] != 1 {
		t.Fatalf("fetch failures reported: %v", ev.failed)
	}
	b, err := os.ReadFile(filepath.Join(dir, "out", "part-00000"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.ReplaceAll(string(b), "\t", ""); got != "a\na\nb\nc\nd\ne\n" {
		t.Fatalf("reduce output %q", b)
	}
	if n := res.Counters.Get("org.apache.hadoop.mapreduce.TaskCounter", "REDUCE_INPUT_RECORDS"); n != 6 {
		t.Fatalf("counters %v", res.Counters)
	}
	// The attempt cleaned up after itself; the maps' outputs stay until
	// the job is removed.
	if _, err := os.Stat(filepath.Join(tt.JobDir(testJob), rid.String())); !os.IsNotExist(err) {
		t.Fatal("reduce attempt directory left behind")
	}
	if err := tt.RemoveJob(testJob); err != nil {
		t.Fatal(err)
	}
}

func fs0() fs.Resolver { return fs.ResolverFor(0) }

// An Assignment survives the JSON trip to an executor.
func TestAssignmentEncodesToJSON(t *testing.T) {
	spec, err := job.ParseStreaming([]string{"-input", "/in", "-output", "/out", "-mapper", "cat", "-D", "mapred.reduce.tasks=2"}, "/")
	if err != nil {
		t.Fatal(err)
	}
	spec.SplitPoints = [][]byte{{0, 1, 0xff}, []byte("m")}
	a := Assignment{Spec: spec, Attempt: job.AttemptID{Task: job.TaskID{Job: testJob, Kind: job.Map, Index: 3}, N: 1},
		Split: &format.Split{Path: "/in/x", Start: 10, Length: 20, Hosts: []string{"h1"}}, NumMaps: 4, NumReduces: 2}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back Assignment
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, back) {
		t.Fatalf("round trip:\n%+v\n%+v", a, back)
	}
}

// The tracker's own resolver takes the local block size from the job's
// fs.local.block.size (32 MiB when unset) and, for a value that does
// not parse, which submission refuses, the local file system's default
// (0) instead of failing the attempt.
func TestResolverTakesTheJobsBlockSize(t *testing.T) {
	tt := &TaskTracker{WorkDir: t.TempDir()}
	for _, c := range []struct {
		value string
		want  int64
	}{
		{"", 32 << 20},
		{"1m", 1 << 20},
		{"4096", 4096},
		{"lots", 0},
	} {
		spec := job.Spec{Conf: conf.New()}
		if c.value != "" {
			spec.Conf.Set(conf.LocalBlockSize, c.value)
		}
		fsys, p, err := tt.resolver(spec.Conf)("file:///in/part-0")
		if err != nil {
			t.Fatalf("block size %q: %v", c.value, err)
		}
		if got, ok := fsys.(fs.Local); !ok || got.BlockSize != c.want || p != "/in/part-0" {
			t.Errorf("block size %q: %#v %q, want fs.Local{BlockSize: %d} /in/part-0", c.value, fsys, p, c.want)
		}
	}
}
