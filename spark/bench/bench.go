// Package bench times a Spark job on agora, its executors agora tasks of
// the Spark scheduler, against the same job in local[2] on this machine:
// `agora bench spark`. The job is the Java SparkPi or the PySpark word
// count of examples/spark-wordcount (whose counts are checked against
// ones counted here, in both runs).
package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	wordcount "github.com/agora-cluster/agora/examples/spark-wordcount"
	"github.com/agora-cluster/agora/spark/pyspark"
	"github.com/agora-cluster/agora/spark/testapps"
)

// Config configures a run.
type Config struct {
	// Master is the Spark scheduler's address (host:port; the
	// dispatcher's, which serves it).
	Master string
	// SparkHome runs spark-submit; ClusterManagerJar is spark/jvm's jar.
	SparkHome, ClusterManagerJar string
	// Executors of one core each (spark.cores.max); Slices of SparkPi.
	Executors, Slices int
	// ExecutorMemory is spark.executor.memory (default 512m).
	ExecutorMemory string
	// Job is "pi" (default) or "wordcount" (PySpark: SparkHome needs
	// spark/pyspark); Lines is the word count's input size (default
	// 200,000 lines), in Slices partitions.
	Job   string
	Lines int
	// Log receives progress; nil discards it.
	Log io.Writer
}

// Result is one run's numbers.
type Result struct {
	Job       string  `json:"job"`
	Slices    int     `json:"slices"`
	Executors int     `json:"executors"`
	Seconds   float64 `json:"seconds"`
	Pi        string  `json:"pi,omitempty"`
	// Words and Total: the word count's distinct words and words, the
	// same in both runs and as counted here (else Run fails).
	Words int `json:"words,omitempty"`
	Total int `json:"total_words,omitempty"`
	// Executor launch latency: from the application's registration with
	// the scheduler to each executor's registration with the driver, as
	// the driver logs them.
	Registered    int     `json:"executors_registered"`
	LaunchP50     float64 `json:"launch_p50_seconds"`
	LaunchP99     float64 `json:"launch_p99_seconds"`
	LocalSeconds  float64 `json:"local2_seconds"`
	LocalPi       string  `json:"local2_pi,omitempty"`
	LocalSpeedup  float64 `json:"agora_vs_local2"` // local2_seconds / seconds
	SubmitCommand string  `json:"submit"`
}

var (
	registeredApp = regexp.MustCompile(`registered (\S+) with agora's Spark scheduler`)
	registeredExe = regexp.MustCompile(`Registered executor .* with ID (\w+)`)
	piLine        = regexp.MustCompile(`Pi is roughly (\d\.\d+)`)
)

// Run builds the job, runs it on agora, then in local[2], and reports.
func Run(ctx context.Context, c Config) (Result, error) {
	if c.Executors <= 0 {
		c.Executors = 2
	}
	if c.Slices <= 0 {
		c.Slices = 50
	}
	if c.ExecutorMemory == "" {
		c.ExecutorMemory = "512m"
	}
	if c.Lines <= 0 {
		c.Lines = 200000
	}
	// Not under /tmp: the executors read the word count's input by its
	// path, and a task's /tmp may be its own.
	tmp := "/var/tmp"
	if _, err := os.Stat(tmp); err != nil {
		tmp = ""
	}
	dir, err := os.MkdirTemp(tmp, "agora-bench-spark-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	j, err := prepare(ctx, c, dir)
	if err != nil {
		return Result{}, err
	}
	res := Result{Job: j.name, Slices: c.Slices, Executors: c.Executors}
	args := append([]string{"--master", "mesos://" + c.Master, "--deploy-mode", "client", "--jars", c.ClusterManagerJar,
		"--driver-memory", "1g", "--conf", "spark.ui.enabled=false",
		"--conf", "spark.executor.cores=1", "--conf", "spark.cores.max=" + strconv.Itoa(c.Executors),
		"--conf", "spark.executor.memory=" + c.ExecutorMemory}, j.args...)
	res.SubmitCommand = "spark-submit " + strings.Join(args, " ")
	logf(c.Log, "agora: %s\n", res.SubmitCommand)
	run, err := submit(ctx, c.SparkHome, args, j.check)
	if err != nil {
		return res, fmt.Errorf("on agora: %w", err)
	}
	res.Seconds, res.Pi = run.took.Seconds(), run.pi
	res.Words, res.Total = run.words, run.total
	if run.registered.IsZero() {
		return res, errors.New("on agora: the driver did not register with agora's Spark scheduler (is --master the dispatcher with executors?)")
	}
	var lat []float64
	for _, at := range run.executors {
		lat = append(lat, at.Sub(run.registered).Seconds())
	}
	sort.Float64s(lat)
	res.Registered = len(lat)
	res.LaunchP50, res.LaunchP99 = quantile(lat, 0.50), quantile(lat, 0.99)

	local := append([]string{"--master", "local[2]", "--driver-memory", "1g", "--conf", "spark.ui.enabled=false"}, j.args...)
	logf(c.Log, "local[2]: spark-submit %s\n", strings.Join(local, " "))
	lrun, err := submit(ctx, c.SparkHome, local, j.check)
	if err != nil {
		return res, fmt.Errorf("in local[2]: %w", err)
	}
	res.LocalSeconds, res.LocalPi = lrun.took.Seconds(), lrun.pi
	if res.Seconds > 0 {
		res.LocalSpeedup = res.LocalSeconds / res.Seconds
	}
	return res, nil
}

// job is what spark-submit runs after its options, and how its stdout is
// checked.
type job struct {
	name  string
	args  []string
	check func(stdout string, run *submitRun) error
}

// prepare builds or writes out the job in dir.
func prepare(ctx context.Context, c Config, dir string) (job, error) {
	switch c.Job {
	case "", "pi":
		jar, err := testapps.Build(ctx, c.SparkHome, dir)
		if err != nil {
			return job{}, err
		}
		return job{name: "SparkPi", args: []string{"--class", testapps.PiClass, jar, strconv.Itoa(c.Slices)},
			check: func(stdout string, run *submitRun) error {
				m := piLine.FindStringSubmatch(stdout)
				if m == nil {
					return errors.New("no \"Pi is roughly\" in the output")
				}
				run.pi = m[1]
				return nil
			}}, nil
	case "wordcount":
		if !pyspark.Installed(c.SparkHome) {
			return job{}, fmt.Errorf("the word count needs PySpark in %s (agora spark pyspark)", c.SparkHome)
		}
		script, input := filepath.Join(dir, "wordcount.py"), filepath.Join(dir, "input.txt")
		text := Text(c.Lines)
		if err := os.WriteFile(script, wordcount.Script, 0o644); err != nil {
			return job{}, err
		}
		if err := os.WriteFile(input, []byte(text), 0o644); err != nil {
			return job{}, err
		}
		want := wordcount.Count(text)
		return job{name: "PySpark word count", args: []string{script, input, "--partitions", strconv.Itoa(c.Slices)},
			check: func(stdout string, run *submitRun) error {
				got, totalOK := wordcount.Parse(stdout)
				if !totalOK || !maps.Equal(got, want) {
					return fmt.Errorf("the counts are wrong: %d words (total line right: %v), want %d", len(got), totalOK, len(want))
				}
				run.words = len(got)
				for _, n := range got {
					run.total += n
				}
				return nil
			}}, nil
	}
	return job{}, fmt.Errorf("unknown job %q (pi, wordcount)", c.Job)
}

// Text is n lines of words drawn deterministically from a vocabulary of
// a few hundred, one to eight a line.
func Text(n int) string {
	var b strings.Builder
	x := uint32(1)
	next := func() uint32 { x = x*1664525 + 1013904223; return x >> 8 }
	for i := 0; i < n; i++ {
		k := 1 + int(next()%8)
		for j := 0; j < k; j++ {
			if j > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "w%d", next()%300)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

type submitRun struct {
	took         time.Duration
	pi           string
	words, total int
	registered   time.Time            // the application registered with the scheduler
	executors    map[string]time.Time // executor ID → registered with the driver
}

// submit runs spark-submit, timing it and noting when the driver logs
// the lines that matter (read as they come: the driver flushes each).
func submit(ctx context.Context, home string, args []string, check func(string, *submitRun) error) (submitRun, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(home, "bin", "spark-submit"), args...)
	pr, pw := io.Pipe()
	var stdout strings.Builder
	cmd.Stdout, cmd.Stderr = io.MultiWriter(pw, &stdout), pw
	cmd.WaitDelay = 10 * time.Second
	run := submitRun{executors: map[string]time.Time{}}
	var errs []string // the driver's first error lines
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			now, l := time.Now(), sc.Text()
			if m := registeredApp.FindStringSubmatch(l); m != nil {
				run.registered = now
			}
			if m := registeredExe.FindStringSubmatch(l); m != nil {
				if _, seen := run.executors[m[1]]; !seen {
					run.executors[m[1]] = now
				}
			}
			if len(errs) < 10 && (strings.Contains(l, "ERROR") || strings.Contains(l, "Exception") || strings.HasPrefix(l, "Error")) {
				errs = append(errs, l)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	start := time.Now()
	err := cmd.Run()
	run.took = time.Since(start)
	pw.Close()
	<-scanned
	if err == nil {
		err = check(stdout.String(), &run)
	}
	if err != nil {
		return run, fmt.Errorf("spark-submit: %v\n%s", err, strings.Join(errs, "\n"))
	}
	return run, nil
}

// quantile of sorted values (nearest rank); 0 without values.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func logf(w io.Writer, format string, a ...any) {
	if w != nil {
		fmt.Fprintf(w, format, a...)
	}
}
