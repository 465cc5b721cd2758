package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/terasort"
)

func init() {
	hadoopCommands["teragen"] = command{name: "teragen", summary: "Generate TeraSort input on the cluster (a map-only job)", run: runHadoopTeraGen}
	hadoopCommands["terasort"] = command{name: "terasort", summary: "Sort TeraGen's records on the cluster (total-order partitioner)", run: runHadoopTeraSort}
	hadoopCommands["teravalidate"] = command{name: "teravalidate", summary: "Check TeraSort's output on the cluster and write the report", run: runHadoopTeraValidate}
}

// teraFlags is the flag set of the tera commands: --hadoop and -D.
func teraFlags(name, usage, about, example string, api *serviceAPI, props propsFlag) *flag.FlagSet {
	fs := hadoopClientFlags(name, usage, about+"\n\nPaths are on the agents' file system (relative ones are taken from here);\n"+
		"agents that isolate tasks give them a /tmp of their own, so keep data elsewhere.", example, api, nil)
	fs.Var(props, "D", "job property key=value (repeatable)")
	return fs
}

// parseTwoArgs parses flags that may come before, between or after the two
// positional arguments of a tera command, and returns those; with more or
// fewer it prints the usage and exits 2.
func parseTwoArgs(fs *flag.FlagSet, args []string) (first, second string, code int, done bool) {
	var pos []string
	for {
		if code, done := parseFlags(fs, args); done {
			return "", "", code, true
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 2 {
		fs.Usage()
		return "", "", 2, true
	}
	return pos[0], pos[1], 0, false
}

func absPaths(ps ...*string) error {
	for _, p := range ps {
		a, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = a
	}
	return nil
}

// runTeraJob submits a job, follows it to the end and prints its counters.
func runTeraJob(name string, api serviceAPI, spec job.Spec, props conf.Conf) (client.JobInfo, int) {
	for k, v := range props {
		spec.Conf.Set(k, v)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := hadoopClient(api)
	if err != nil {
		return client.JobInfo{}, hadoopFailure(api, name, err)
	}
	user := ""
	if !spec.Conf.IsSet(conf.JobUser) {
		user = osUser()
	}
	info, err := c.Submit(ctx, client.SubmitRequest{Spec: &spec, User: user})
	if err != nil {
		return info, hadoopFailure(api, name, err)
	}
	fmt.Fprintf(os.Stderr, "agora hadoop %s: running job %s: %d maps, %d reduces, output %s\n", name, info.ID, info.Maps.Total, info.Reduces.Total, info.Output)
	last := ""
	final, err := c.Wait(ctx, info.ID, 500*time.Millisecond, func(j client.JobInfo) {
		line := fmt.Sprintf(" map %3d%% reduce %3d%%", int(j.MapProgress*100), int(j.ReduceProgress*100))
		if line != last {
			last = line
			fmt.Fprintf(os.Stderr, "agora hadoop %s: %s\n", name, line)
		}
	})
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(os.Stderr, "\nagora hadoop %s: stopped following; job %s keeps running (`agora hadoop kill %s` stops it)\n", name, info.ID, info.ID)
			return final, 130
		}
		return final, hadoopFailure(api, name, err)
	}
	if final.State != jobtracker.JobSucceeded {
		fmt.Fprintf(os.Stderr, "agora hadoop %s: job %s %s: %s\n", name, final.ID, strings.ToLower(string(final.State)), final.Error)
		return final, 1
	}
	fmt.Fprintf(os.Stderr, "agora hadoop %s: job %s completed successfully in %s\n", name, final.ID, final.Elapsed(time.Now()).Round(time.Millisecond))
	printCounters(os.Stderr, final.Counters)
	return final, 0
}

func runHadoopTeraGen(args []string) int {
	var api serviceAPI
	props := propsFlag{c: conf.New()}
	fs := teraFlags("teragen", "ROWS OUTPUT [--maps N]",
		"Runs Hadoop's TeraGen as a map-only job: N maps each write Hadoop's exact 100-byte\n"+
			"records for their share of the rows (ROWS takes k, m, b, t suffixes), into OUTPUT\n"+
			"(which must not exist). The data's checksum is printed (TeraValidate reports the same).",
		"agora hadoop teragen 10m /var/tmp/tera-in --maps 4", &api, props)
	maps := fs.Int("maps", 2, "map tasks (mapreduce.job.maps)")
	rowsArg, out, code, done := parseTwoArgs(fs, args)
	if done {
		return code
	}
	rows, err := terasort.ParseRows(rowsArg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora hadoop teragen:", err)
		return 2
	}
	if err := absPaths(&out); err != nil {
		return hadoopFailure(api, "teragen", err)
	}
	final, code := runTeraJob("teragen", api, terasort.GenSpec(rows, *maps, out), props.c)
	if code == 0 {
		fmt.Printf("%d rows in %s, checksum %v\n", rows, out, terasort.GenChecksum(final.Counters))
	}
	return code
}

func runHadoopTeraSort(args []string) int {
	var api serviceAPI
	props := propsFlag{c: conf.New()}
	fs := teraFlags("terasort", "INPUT OUTPUT [--reduces N]",
		"Runs Hadoop's TeraSort: TeraGen's records in INPUT sorted into OUTPUT by N reduces\n"+
			"with a total-order partitioner sampled from the input.",
		"agora hadoop terasort /var/tmp/tera-in /var/tmp/tera-out --reduces 2", &api, props)
	reduces := fs.Int("reduces", 2, "reduce tasks")
	in, out, code, done := parseTwoArgs(fs, args)
	if done {
		return code
	}
	if err := absPaths(&in, &out); err != nil {
		return hadoopFailure(api, "terasort", err)
	}
	_, code = runTeraJob("terasort", api, terasort.SortSpec(in, out, *reduces), props.c)
	return code
}

func runHadoopTeraValidate(args []string) int {
	var api serviceAPI
	props := propsFlag{c: conf.New()}
	fs := teraFlags("teravalidate", "INPUT REPORT [--rows N] [--checksum HEX]",
		"Runs Hadoop's TeraValidate: a map per file of INPUT checks the order within it, one\n"+
			"reduce the order between files and the total checksum, and writes the report\n"+
			"(checksum, error lines, rows) to REPORT/part-00000. With --rows and --checksum\n"+
			"(TeraGen's), a different row count or checksum is an error too. The exit status\n"+
			"is 0 only when the report has no errors.",
		"agora hadoop teravalidate /var/tmp/tera-out /var/tmp/tera-report", &api, props)
	rows := fs.String("rows", "", "the row count to expect")
	checksum := fs.String("checksum", "", "the checksum to expect (hex, as teragen prints it)")
	in, report, code, done := parseTwoArgs(fs, args)
	if done {
		return code
	}
	if err := absPaths(&in, &report); err != nil {
		return hadoopFailure(api, "teravalidate", err)
	}
	var n uint64
	var sum terasort.Uint128
	var err error
	if *rows != "" {
		if n, err = terasort.ParseRows(*rows); err != nil {
			fmt.Fprintln(os.Stderr, "agora hadoop teravalidate: --rows:", err)
			return 2
		}
	}
	if *checksum != "" {
		if sum, err = terasort.ParseUint128(*checksum); err != nil {
			fmt.Fprintln(os.Stderr, "agora hadoop teravalidate: --checksum:", err)
			return 2
		}
	}
	if _, code := runTeraJob("teravalidate", api, terasort.ValidateSpec(in, report, n, sum), props.c); code != 0 {
		return code
	}
	rep, err := terasort.ReadReport(report)
	if err != nil {
		return hadoopFailure(api, "teravalidate", err)
	}
	fmt.Printf("rows %d, checksum %v, %d errors\n", rep.Records, rep.Checksum, len(rep.Errors))
	for _, e := range rep.Errors {
		fmt.Println("error:", e)
	}
	if !rep.OK() {
		return 1
	}
	return 0
}
