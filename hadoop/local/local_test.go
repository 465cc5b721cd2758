package local

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/hadoop/counters"
	"github.com/agora-cluster/agora/hadoop/hadooptest"
	"github.com/agora-cluster/agora/hadoop/job"
)

func examples(t *testing.T) string { return hadooptest.Examples(t) }

func needPython(t *testing.T) { hadooptest.NeedPython(t) }

func run(t *testing.T, dir string, args ...string) (Result, error) {
	t.Helper()
	spec, err := job.ParseStreaming(args, dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return Run(ctx, spec, Options{MapSlots: 3, ReduceSlots: 2, WorkDir: filepath.Join(dir, "tt"), TrackerID: "test"})
}

func writeCorpus(t *testing.T, path string, size int) { hadooptest.WriteCorpus(t, path, size, 7) }

func readOutput(t *testing.T, out string) map[string]string { return hadooptest.ReadOutput(t, out) }

func TestWordCountMatchesUnixPipeline(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	ex := examples(t)
	os.MkdirAll(filepath.Join(dir, "in"), 0o755)
	writeCorpus(t, filepath.Join(dir, "in", "corpus.txt"), 3<<20)

	res, err := run(t, dir,
		"-D", "mapreduce.input.fileinputformat.split.maxsize=524288",
		"-files", filepath.Join(ex, "mapper.py")+","+filepath.Join(ex, "reducer.py"),
		"-input", "in", "-output", "out",
		"-mapper", "mapper.py", "-reducer", "reducer.py", "-combiner", "reducer.py",
		"-numReduceTasks", "2")
	if err != nil {
		t.Fatal(err)
	}
	if res.Splits < 6 {
		t.Fatalf("%d splits; split.maxsize should give at least 6", res.Splits)
	}
	got := readOutput(t, filepath.Join(dir, "out"))

	cmd := exec.Command("sh", "-c", "tr -s ' ' '\\n' < in/corpus.txt | sort | uniq -c")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		want[f[1]] = f[0]
	}
	if len(got) != len(want) {
		t.Fatalf("%d words, the pipeline counts %d", len(got), len(want))
	}
	for w, n := range want {
		if got[w] != n {
			t.Fatalf("word %q: %q, the pipeline says %s", w, got[w], n)
		}
	}
	for _, f := range []string{"_SUCCESS", "part-00000", "part-00001"} {
		if _, err := os.Stat(filepath.Join(dir, "out", f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "_temporary")); !os.IsNotExist(err) {
		t.Error("_temporary left in the output")
	}
	c := res.Counters
	if c.Get(counters.TaskGroup, counters.CombineInputRecords) == 0 ||
		c.Get(counters.TaskGroup, counters.ReduceInputRecords) >= c.Get(counters.TaskGroup, counters.MapOutputRecords) {
		t.Errorf("the combiner should shrink the shuffle: %v", c)
	}
}

func TestFailingMapperFailsJobAfterFourAttempts(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&b, "record %d\n", i)
		if i == 1500 {
			b.WriteString("POISON record\n")
		}
	}
	os.WriteFile(filepath.Join(dir, "input.txt"), []byte(b.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "mapper.sh"), []byte(`#!/bin/sh
while IFS= read -r line; do
  case "$line" in
    *POISON*) echo "cannot parse line: $line" >&2; exit 3;;
  esac
  echo "$line"
done
`), 0o755)
	res, err := run(t, dir, "-input", "input.txt", "-output", "out", "-mapper", "mapper.sh", "-file", "mapper.sh", "-reducer", "cat")
	var je *JobError
	if !errors.As(err, &je) {
		t.Fatalf("want a job failure, got %v", err)
	}
	for _, want := range []string{
		"task task_test_0001_m_00000", "failed 4 times", "_3 on localhost",
		"subprocess failed with code 3", "cannot parse line: POISON record",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if n := res.Counters.Get(counters.JobGroup, counters.NumFailedMaps); n != 4 {
		t.Errorf("NUM_FAILED_MAPS = %d", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "_SUCCESS")); !os.IsNotExist(err) {
		t.Error("a failed job must not write _SUCCESS")
	}
}

func TestBadSubmissionsAreRefusedBeforeAnythingRuns(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.txt"), []byte("x\n"), 0o644)
	marker := filepath.Join(dir, "ran")
	os.WriteFile(filepath.Join(dir, "touch.sh"), []byte("#!/bin/sh\ntouch "+marker+"\ncat\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "noexec.sh"), []byte("#!/bin/sh\ncat\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "taken"), 0o755)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-input", "nope.txt", "-output", "out", "-mapper", "./touch.sh"}, "input path does not exist"},
		{[]string{"-input", "in.txt", "-output", "taken", "-mapper", "./touch.sh"}, "output directory " + filepath.Join(dir, "taken") + " already exists"},
		{[]string{"-input", "in.txt", "-output", "out", "-mapper", "./touch.sh", "-reducer", filepath.Join(dir, "noexec.sh")}, "is not executable"},
		{[]string{"-input", "in.txt", "-output", "out", "-mapper", "./touch.sh", "-reducer", "missing-reducer-xyz"}, "not found on PATH"},
	} {
		_, err := run(t, dir, c.args...)
		if !errors.Is(err, job.ErrRefused) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want a refusal mentioning %q", c.args, err, c.want)
		}
	}
	if _, err := job.ParseStreaming([]string{"-input", "in.txt", "-bogus", "x"}, dir); err == nil || !strings.Contains(err.Error(), "unknown option -bogus") {
		t.Errorf("unknown option: %v", err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatal("a mapper ran for a refused job")
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Fatal("a refused job created its output directory")
	}
}

// A tiny sort buffer makes every map spill many runs and merge them in
// passes; the result is still every line, globally sorted (one reducer).
func TestTinySortBufferSpillsAndStillSorts(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(9, 10))
	var b strings.Builder
	var lines []string
	for i := 0; i < 60000; i++ {
		l := fmt.Sprintf("%x-%d", rng.Uint64(), rng.IntN(100))
		lines = append(lines, l)
		b.WriteString(l + "\n")
	}
	os.WriteFile(filepath.Join(dir, "in.txt"), []byte(b.String()), 0o644)
	res, err := run(t, dir,
		"-D", "agora.hadoop.sort.buffer.bytes=32768", "-D", "mapreduce.task.io.sort.factor=5",
		"-D", "mapreduce.job.maps=3",
		"-input", "in.txt", "-output", "out", "-mapper", "cat", "-reducer", "cat")
	if err != nil {
		t.Fatal(err)
	}
	c := res.Counters
	if spilled, out := c.Get(counters.TaskGroup, counters.SpilledRecords), c.Get(counters.TaskGroup, counters.MapOutputRecords); out != 60000 || spilled < 2*out {
		t.Fatalf("map output %d, spilled %d: the maps should have spilled and merged", out, spilled)
	}
	data, err := os.ReadFile(filepath.Join(dir, "out", "part-00000"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		got = append(got, strings.TrimSuffix(l, "\t")) // Streaming's key-only lines
	}
	slices.Sort(lines)
	if !slices.Equal(got, lines) {
		t.Fatalf("output is not the sorted input (%d lines vs %d)", len(got), len(lines))
	}
}

// A map-only job writes one part file per map with the mapper's output, and
// the task sees the job configuration in its environment.
func TestMapOnlyJobAndTaskEnvironment(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	os.WriteFile(filepath.Join(dir, "in.txt"), []byte(b.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "env.sh"), []byte(`#!/bin/sh
n=0
while IFS= read -r line; do n=$((n+1)); done
echo "$mapreduce_task_partition	$n $map_input_file $mapreduce_map_input_start $mapred_task_is_map $mapreduce_job_reduces $GREETING $my_custom_key"
`), 0o755)
	res, err := run(t, dir, "-D", "mapreduce.job.maps=3", "-D", "my.custom-key=yes",
		"-input", "in.txt", "-output", "out", "-mapper", "env.sh", "-file", "env.sh",
		"-reducer", "NONE", "-cmdenv", "GREETING=hi")
	if err != nil {
		t.Fatal(err)
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "out", "part-*"))
	if len(parts) != res.Splits || res.Splits < 3 {
		t.Fatalf("%d part files for %d maps", len(parts), res.Splits)
	}
	total := 0
	for _, p := range parts {
		b, _ := os.ReadFile(p)
		f := strings.Fields(string(b))
		if len(f) != 8 || f[2] != filepath.Join(dir, "in.txt") || f[4] != "true" || f[5] != "0" || f[6] != "hi" || f[7] != "yes" {
			t.Fatalf("%s: %q", filepath.Base(p), b)
		}
		if want := strings.TrimPrefix(filepath.Base(p), "part-"); fmt.Sprintf("%05s", f[0]) != want {
			t.Errorf("%s written by partition %s", p, f[0])
		}
		n, _ := strconv.Atoi(f[1])
		total += n
	}
	if total != 5000 {
		t.Fatalf("the maps read %d lines of 5000", total)
	}
}

// A local block size that does not parse fails the run before anything
// runs, with the configuration's error naming the property.
func TestBadBlockSizeFailsBeforeAnythingRuns(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.txt"), []byte("x\n"), 0o644)
	marker := filepath.Join(dir, "ran")
	os.WriteFile(filepath.Join(dir, "touch.sh"), []byte("#!/bin/sh\ntouch "+marker+"\ncat\n"), 0o755)
	_, err := run(t, dir, "-D", "fs.local.block.size=lots", "-input", "in.txt", "-output", "out", "-mapper", "./touch.sh")
	if want := `property fs.local.block.size="lots": not an integer`; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatal("a mapper ran with a block size that does not parse")
	}
}
