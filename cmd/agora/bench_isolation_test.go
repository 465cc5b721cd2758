package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `agora bench launch --isolation` runs on a throw-away cluster and reports
// the CPU per task of the launches alone beside the total; --memprofile
// leaves an allocation profile of the run.
func TestBenchLaunchIsolationReportsCPUAndWritesAllocationProfile(t *testing.T) {
	work, err := os.MkdirTemp("/var/tmp", "agora-bench-isolation-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	prof := filepath.Join(t.TempDir(), "allocs.pprof")
	out, stderr, code := runClient(t, "127.0.0.1:1", "bench", "launch", "--isolation", "posix", "--tasks", "20",
		"--max-in-flight", "4", "--mem", "16", "--work_dir", work, "--memprofile", prof, "--json")
	var rs []struct {
		Finished int `json:"finished"`
	}
	if err := json.Unmarshal([]byte(out), &rs); err != nil || code != 0 || len(rs) != 1 || rs[0].Finished != 20 {
		t.Fatalf("bench launch --isolation posix: exit %d, %+v, %v\n%s\n%s", code, rs, err, out, stderr)
	}
	if !strings.Contains(stderr, "ms of CPU per task for the launches") || !strings.Contains(stderr, "with the cluster's start and removal") {
		t.Errorf("no CPU per task on stderr:\n%s", stderr)
	}
	f, err := os.Open(prof)
	if err != nil {
		t.Fatalf("--memprofile: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("--memprofile wrote no gzipped profile: %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	// The profile's string table names its sample types and the functions
	// that allocated, the bench framework's among them.
	for _, want := range []string{"alloc_space", "frameworks/bench."} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("the allocation profile does not mention %q", want)
		}
	}
}

// --rounds runs the benchmark again on the same throw-away agent once its
// collector has taken the previous round's sandboxes, and reports each
// round; without a short --gc_delay it refuses to wait a week.
func TestBenchLaunchRoundsOnOneAgent(t *testing.T) {
	work, err := os.MkdirTemp("/var/tmp", "agora-bench-rounds-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	out, stderr, code := runClient(t, "127.0.0.1:1", "bench", "launch", "--isolation", "posix", "--tasks", "20",
		"--max-in-flight", "4", "--mem", "16", "--work_dir", work, "--rounds", "2",
		"--gc_delay", "1secs", "--disk_watch_interval", "200ms", "--json")
	var rs []struct {
		Finished int `json:"finished"`
	}
	if err := json.Unmarshal([]byte(out), &rs); err != nil || code != 0 || len(rs) != 2 || rs[0].Finished != 20 || rs[1].Finished != 20 {
		t.Fatalf("bench launch --rounds 2: exit %d, %+v, %v\n%s\n%s", code, rs, err, out, stderr)
	}
	for _, want := range []string{"round 1: ", "round 2: ", "the collection of their sandboxes"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	_, stderr, code = runClient(t, "127.0.0.1:1", "bench", "launch", "--isolation", "posix", "--tasks", "1",
		"--work_dir", work, "--rounds", "2")
	if code != 2 || !strings.Contains(stderr, "--gc_delay") {
		t.Fatalf("--rounds without a short --gc_delay: exit %d\n%s", code, stderr)
	}
}
