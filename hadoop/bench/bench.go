// Package bench is `agora bench hadoop`: whole-system benchmarks of the
// Hadoop framework on a running cluster, each timed against a baseline run
// on the same machine, with the same data, in the same run.
//
//   - wordcount: the example Streaming scripts (examples/hadoop-wordcount)
//     over a generated corpus, against the same scripts as one local
//     pipeline, `cat | mapper.py | LC_ALL=C sort | reducer.py`; the two
//     outputs must agree;
//   - terasort: TeraGen's records (written by TeraGen on the cluster)
//     sorted by TeraSort on the cluster, against GNU sort (`LC_ALL=C sort --parallel=<cpus>`) of the same rows
//     in gensort's ASCII form (the only form sort(1) can read: one
//     100-byte line per record, the key first); TeraValidate on the
//     cluster must find the output sorted with TeraGen's checksum;
//   - terachain: TeraGen, TeraSort and TeraValidate on the cluster, one
//     after the other, each timed.
package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	wordcount "github.com/agora-cluster/agora/examples/hadoop-wordcount"
	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/fs"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/terasort"
)

// Config is a benchmark run.
type Config struct {
	// Hadoop is the framework's address (host:port).
	Hadoop string
	// Dir is where a new directory for the data and outputs is made; it
	// must be visible to the agents' containers (not under /tmp when they
	// isolate tasks). "" means ~/.agora/bench.
	Dir string
	// Keep keeps Dir afterwards.
	Keep bool
	// HDFS, an hdfs:// directory URI, puts the Tera chain's directories on
	// HDFS under it instead of under Dir.
	HDFS string
	// Size is the input size in bytes.
	Size int64
	// Reduces is the number of reduce tasks; 0 means 2.
	Reduces int
	// Props are extra job properties (-D).
	Props map[string]string
	// Log receives progress; nil discards it.
	Log io.Writer
}

// Result is one benchmark's numbers.
type Result struct {
	Job             string  `json:"job"`
	JobID           string  `json:"job_id"`
	Bytes           int64   `json:"bytes"`
	Seconds         float64 `json:"seconds"`
	MBPerS          float64 `json:"mb_per_s"`
	BaselineSeconds float64 `json:"baseline_seconds"`
	BaselineMBPerS  float64 `json:"baseline_mb_per_s"`
	// Speedup is baseline_seconds / seconds: the framework's throughput
	// as a multiple of the baseline's.
	Speedup  float64 `json:"speedup"`
	Baseline string  `json:"baseline"`
	Maps     int     `json:"maps"`
	Reduces  int     `json:"reduces"`
	CPUs     int     `json:"cpus"`
	Valid    bool    `json:"valid"`
}

func (c *Config) logf(format string, a ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "bench hadoop: "+format+"\n", a...)
	}
}

// setupHDFS makes a new directory under c.HDFS.
func (c *Config) setupHDFS(name string) (string, func(), error) {
	dir := strings.TrimSuffix(c.HDFS, "/") + fmt.Sprintf("/hadoop-%s-%s", name, time.Now().Format("20060102-150405.000"))
	fsys, p, err := fs.Lookup(dir, 0)
	if err != nil {
		return "", nil, err
	}
	if err := fsys.MkdirAll(p); err != nil {
		return "", nil, err
	}
	cleanup := func() {
		if c.Keep {
			c.logf("kept %s", dir)
			return
		}
		fsys.RemoveAll(p)
	}
	return dir, cleanup, nil
}

func (c *Config) setup(name string) (string, func(), error) {
	parent := c.Dir
	if parent == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", nil, err
		}
		parent = filepath.Join(home, ".agora", "bench")
	}
	dir := filepath.Join(parent, fmt.Sprintf("hadoop-%s-%s", name, time.Now().Format("20060102-150405.000")))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, err
	}
	cleanup := func() {
		if c.Keep {
			c.logf("kept %s", dir)
			return
		}
		os.RemoveAll(dir)
	}
	return dir, cleanup, nil
}

func (c *Config) reduces() int {
	if c.Reduces > 0 {
		return c.Reduces
	}
	return 2
}

// run submits a spec and times it to the end.
func (c *Config) run(ctx context.Context, spec job.Spec) (client.JobInfo, time.Duration, error) {
	for k, v := range c.Props {
		spec.Conf.Set(k, v)
	}
	cl := client.New(c.Hadoop)
	start := time.Now()
	info, err := cl.Submit(ctx, client.SubmitRequest{Spec: &spec})
	if err != nil {
		return client.JobInfo{}, 0, err
	}
	c.logf("job %s: %d maps, %d reduces", info.ID, info.Maps.Total, info.Reduces.Total)
	last := ""
	final, err := cl.Wait(ctx, info.ID, 100*time.Millisecond, func(j client.JobInfo) {
		line := fmt.Sprintf("map %3d%% reduce %3d%%", int(j.MapProgress*100), int(j.ReduceProgress*100))
		if line != last {
			last = line
			c.logf("  %s", line)
		}
	})
	elapsed := time.Since(start)
	if err != nil {
		return final, elapsed, err
	}
	if final.State != jobtracker.JobSucceeded {
		return final, elapsed, fmt.Errorf("job %s %s: %s", final.ID, final.State, final.Error)
	}
	return final, elapsed, nil
}

// timeShell runs a shell command in dir and times it.
func timeShell(ctx context.Context, dir, script string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("baseline %q: %v: %s", script, err, strings.TrimSpace(stderr.String()))
	}
	return time.Since(start), nil
}

func result(name string, info client.JobInfo, bytes int64, took, base time.Duration, baseline string) Result {
	mb := float64(bytes) / 1e6
	return Result{
		Job: name, JobID: info.ID, Bytes: bytes,
		Seconds: took.Seconds(), MBPerS: mb / took.Seconds(),
		BaselineSeconds: base.Seconds(), BaselineMBPerS: mb / base.Seconds(),
		Speedup:  base.Seconds() / took.Seconds(),
		Baseline: baseline, Maps: info.Maps.Total, Reduces: info.Reduces.Total,
		CPUs: runtime.NumCPU(),
	}
}

// WordCount runs the word count benchmark.
func WordCount(ctx context.Context, c Config) (Result, error) {
	if _, err := exec.LookPath("python3"); err != nil {
		return Result{}, errors.New("wordcount: python3 is needed to run the example scripts")
	}
	dir, cleanup, err := c.setup("wordcount")
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	for name, b := range map[string][]byte{"mapper.py": wordcount.Mapper, "reducer.py": wordcount.Reducer} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			return Result{}, err
		}
	}
	c.logf("generating a %d-byte corpus in %s", c.Size, dir)
	if err := writeCorpus(filepath.Join(dir, "in"), c.Size, runtime.NumCPU()); err != nil {
		return Result{}, err
	}
	const pipeline = "cat in/* | ./mapper.py | LC_ALL=C sort | ./reducer.py > baseline.txt"
	c.logf("baseline: %s", pipeline)
	base, err := timeShell(ctx, dir, pipeline)
	if err != nil {
		return Result{}, err
	}
	c.logf("baseline took %.1fs", base.Seconds())
	args := []string{
		"-files", filepath.Join(dir, "mapper.py") + "," + filepath.Join(dir, "reducer.py"),
		"-input", filepath.Join(dir, "in"), "-output", filepath.Join(dir, "out"),
		"-mapper", "mapper.py", "-reducer", "reducer.py", "-combiner", "reducer.py",
		"-numReduceTasks", strconv.Itoa(c.reduces()),
	}
	spec, err := job.ParseStreaming(args, dir)
	if err != nil {
		return Result{}, err
	}
	info, took, err := c.run(ctx, spec)
	if err != nil {
		return Result{}, err
	}
	r := result("wordcount", info, c.Size, took, base, pipeline)
	r.Valid, err = sameCounts(filepath.Join(dir, "baseline.txt"), filepath.Join(dir, "out"))
	if err != nil {
		return r, err
	}
	if !r.Valid {
		return r, errors.New("wordcount: the job's counts differ from the pipeline's")
	}
	return r, nil
}

// writeCorpus writes about size bytes of Zipf-distributed words in
// lines, in files written in parallel.
func writeCorpus(dir string, size int64, files int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files = max(files, 1)
	errs := make([]error, files)
	var wg sync.WaitGroup
	for i := 0; i < files; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = writeCorpusFile(filepath.Join(dir, fmt.Sprintf("part-%05d.txt", i)), size/int64(files), uint64(i))
		}(i)
	}
	wg.Wait()
	return errors.Join(errs...)
}

func writeCorpusFile(path string, size int64, seed uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(seed, 8))
	zipf := rand.NewZipf(rng, 1.2, 2, 50000)
	var n int64
	var buf []byte
	for n < size {
		buf = buf[:0]
		words := 1 + rng.IntN(14)
		for i := 0; i < words; i++ {
			if i > 0 {
				buf = append(buf, ' ')
			}
			z := zipf.Uint64()
			buf = strconv.AppendUint(buf, z*7919%99991, 36)
			if z%5 == 0 {
				buf = append(buf, "Ünï"...)
			}
		}
		buf = append(buf, '\n')
		if n+int64(len(buf)) > size {
			break
		}
		w.Write(buf)
		n += int64(len(buf))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sameCounts compares the pipeline's output with the job's part files.
func sameCounts(baseline, outDir string) (bool, error) {
	want, err := readCounts([]string{baseline})
	if err != nil {
		return false, err
	}
	parts, err := filepath.Glob(filepath.Join(outDir, "part-*"))
	if err != nil || len(parts) == 0 {
		return false, fmt.Errorf("no part files in %s", outDir)
	}
	got, err := readCounts(parts)
	if err != nil {
		return false, err
	}
	if len(got) != len(want) {
		return false, nil
	}
	for k, v := range want {
		if got[k] != v {
			return false, nil
		}
	}
	return true, nil
}

func readCounts(files []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), "\t")
			out[k] = v
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// TeraSort runs the TeraSort benchmark: TeraGen on the cluster writes
// the input, the baseline sorts the same rows (generated here in ASCII),
// TeraSort is timed, and TeraValidate on the cluster checks its output.
func TeraSort(ctx context.Context, c Config) (Result, error) {
	dir, cleanup, err := c.setup("terasort")
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	rows := uint64(c.Size / terasort.RecordLen)
	if rows == 0 {
		return Result{}, fmt.Errorf("terasort: --size %d is less than one 100-byte record", c.Size)
	}
	files := runtime.NumCPU()
	in, ascii, out := filepath.Join(dir, "in"), filepath.Join(dir, "ascii"), filepath.Join(dir, "out")
	c.logf("teragen on the cluster: %d rows (%d bytes) in %s", rows, rows*terasort.RecordLen, in)
	gen, _, err := c.run(ctx, terasort.GenSpec(rows, files, in))
	if err != nil {
		return Result{}, err
	}
	sum := terasort.GenChecksum(gen.Counters)
	c.logf("the same rows in ASCII for sort(1)")
	if _, err := terasort.GenerateDir(ctx, ascii, rows, files, true); err != nil {
		return Result{}, err
	}
	baseline := fmt.Sprintf("LC_ALL=C sort --parallel=%d -o sorted.txt ascii/part-*", runtime.NumCPU())
	c.logf("baseline: %s", baseline)
	base, err := timeShell(ctx, dir, baseline)
	if err != nil {
		return Result{}, err
	}
	c.logf("baseline took %.1fs", base.Seconds())
	os.RemoveAll(ascii)
	os.Remove(filepath.Join(dir, "sorted.txt"))
	spec := terasort.SortSpec(in, out, c.reduces())
	info, took, err := c.run(ctx, spec)
	if err != nil {
		return Result{}, err
	}
	r := result("terasort", info, int64(rows*terasort.RecordLen), took, base, baseline)
	rep, _, err := c.validate(ctx, out, filepath.Join(dir, "report"), rows, sum)
	if err != nil {
		return r, err
	}
	r.Valid = rep.OK() && rep.Checksum == sum && rep.Records == rows
	if !r.Valid {
		return r, fmt.Errorf("teravalidate: %d records (want %d), checksum %v (want %v), errors %v", rep.Records, rows, rep.Checksum, sum, rep.Errors)
	}
	return r, nil
}

// validate runs TeraValidate on the cluster and reads its report.
func (c *Config) validate(ctx context.Context, in, report string, rows uint64, sum terasort.Uint128) (terasort.Report, time.Duration, error) {
	c.logf("teravalidate on the cluster: %s", in)
	_, took, err := c.run(ctx, terasort.ValidateSpec(in, report, rows, sum))
	if err != nil {
		return terasort.Report{}, took, err
	}
	rep, err := terasort.ReadReport(report)
	return rep, took, err
}

// ChainResult is the TeraGen → TeraSort → TeraValidate chain's numbers.
type ChainResult struct {
	Rows            uint64  `json:"rows"`
	Bytes           int64   `json:"bytes"`
	GenMaps         int     `json:"teragen_maps"`
	SortMaps        int     `json:"terasort_maps"`
	Reduces         int     `json:"terasort_reduces"`
	GenSeconds      float64 `json:"teragen_seconds"`
	SortSeconds     float64 `json:"terasort_seconds"`
	ValidateSeconds float64 `json:"teravalidate_seconds"`
	TotalSeconds    float64 `json:"total_seconds"`
	Checksum        string  `json:"checksum"`
	CPUs            int     `json:"cpus"`
	Valid           bool    `json:"valid"`
	// Dir is where the data was: a local directory or an hdfs:// URI.
	Dir string `json:"dir"`
}

// TeraChain runs TeraGen, TeraSort and TeraValidate one after the other
// on the cluster, as Hadoop users run the benchmark, and times each; the
// report must have no errors, the generated row count and TeraGen's
// checksum. maps is TeraGen's map count (0: one per CPU).
func TeraChain(ctx context.Context, c Config, rows uint64, maps int) (ChainResult, error) {
	dir, cleanup, err := c.setup("terachain")
	if err != nil {
		return ChainResult{}, err
	}
	defer cleanup()
	if c.HDFS != "" {
		if dir, cleanup, err = c.setupHDFS("terachain"); err != nil {
			return ChainResult{}, err
		}
		defer cleanup()
	}
	if maps <= 0 {
		maps = runtime.NumCPU()
	}
	in, out, report := fs.Join(dir, "in"), fs.Join(dir, "out"), fs.Join(dir, "report")
	r := ChainResult{Rows: rows, Bytes: int64(rows * terasort.RecordLen), CPUs: runtime.NumCPU(), Dir: dir}
	start := time.Now()
	c.logf("teragen on the cluster: %d rows (%d bytes) in %s", rows, r.Bytes, in)
	gen, took, err := c.run(ctx, terasort.GenSpec(rows, maps, in))
	if err != nil {
		return r, err
	}
	sum := terasort.GenChecksum(gen.Counters)
	r.GenMaps, r.GenSeconds, r.Checksum = gen.Maps.Total, took.Seconds(), sum.String()
	c.logf("teragen took %.1fs; checksum %v", took.Seconds(), sum)
	srt, took, err := c.run(ctx, terasort.SortSpec(in, out, c.reduces()))
	if err != nil {
		return r, err
	}
	r.SortMaps, r.Reduces, r.SortSeconds = srt.Maps.Total, srt.Reduces.Total, took.Seconds()
	c.logf("terasort took %.1fs", took.Seconds())
	rep, took, err := c.validate(ctx, out, report, rows, sum)
	r.ValidateSeconds = took.Seconds()
	r.TotalSeconds = time.Since(start).Seconds()
	if err != nil {
		return r, err
	}
	c.logf("teravalidate took %.1fs", took.Seconds())
	r.Valid = rep.OK() && rep.Records == rows && rep.Checksum == sum
	if !r.Valid {
		return r, fmt.Errorf("teravalidate: %d records (want %d), checksum %v (want %v), errors %v", rep.Records, rows, rep.Checksum, sum, rep.Errors)
	}
	return r, nil
}

// ParseSize reads a size in bytes: a number with an optional suffix,
// k/KB, M/MB, G/GB (powers of 1000) or Ki/KiB, Mi/MiB, Gi/GiB (powers of
// 1024): "1GiB", "100MB", "5000000".
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRightFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.TrimSuffix(strings.ToLower(t[len(num):]), "b")
	mult := map[string]int64{"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30, "ti": 1 << 40}[unit]
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || mult == 0 || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number of bytes with an optional unit (KB, MB, GB, KiB, MiB, GiB)", s)
	}
	return n * mult, nil
}
