package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/job"
)

func init() {
	hadoopCommands["jobs"] = command{name: "jobs", summary: "List Hadoop jobs, running and finished", run: runHadoopJobs}
	hadoopCommands["status"] = command{name: "status", summary: "Show a job's progress, counters and failed attempts", run: runHadoopStatus}
	hadoopCommands["kill"] = command{name: "kill", summary: "Kill a job", run: runHadoopKill}
	hadoopCommands["logs"] = command{name: "logs", summary: "Print an attempt's stderr", run: runHadoopLogs}
	hadoopCommands["trackers"] = command{name: "trackers", summary: "List the TaskTracker executors", run: runHadoopTrackers}
}

// hadoopRequestTimeout bounds one client command's request to the
// framework.
const hadoopRequestTimeout = 30 * time.Second

// hadoopClientFlags makes the flag set of a client command: --hadoop, the
// credentials and CA to call it with, and, with asJSON, --json.
func hadoopClientFlags(name, usage, about, example string, api *serviceAPI, asJSON *bool) *flag.FlagSet {
	fs := flag.NewFlagSet("agora hadoop "+name, flag.ContinueOnError)
	api.register(fs, "hadoop", hadoopAddrDefault(), "the Hadoop framework, host:port or http(s)://host:port (env AGORA_HADOOP)")
	if asJSON != nil {
		fs.BoolVar(asJSON, "json", false, "print JSON instead of a table")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: agora hadoop %s %s\n\n%s\n\nExample:\n  %s\n\nFlags:\n", name, usage, about, example)
		fs.PrintDefaults()
	}
	return fs
}

func hadoopFailure(api serviceAPI, cmd string, err error) int {
	var ae *client.APIError
	hint := ""
	if errors.As(err, &ae) && ae.Code == http.StatusUnauthorized {
		hint = api.unauthorizedHint()
	}
	if verr := tlsconf.VerifyError("the Hadoop framework", err); verr != nil {
		err = verr
		hint = "\n\nPass the CA that signed its certificate: --ca_file=FILE (or set AGORA_CA_FILE)."
	}
	fmt.Fprintf(os.Stderr, "agora hadoop %s: %v%s\n", cmd, err, hint)
	return 1
}

func printJSON(v any) int { return writeJSON(os.Stdout, v) }

func pct(f float64) string { return fmt.Sprintf("%d%%", int(f*100)) }

func since(d time.Duration) string {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// runHadoopList runs a listing command, `agora hadoop NAME [--json]`: one
// request, list, to the framework, whose answer it prints as JSON with
// --json and else through table.
func runHadoopList[T any](name, about string, args []string,
	list func(*client.Client, context.Context) ([]T, error), table func(*tabwriter.Writer, []T)) int {
	var api serviceAPI
	var asJSON bool
	fs := hadoopClientFlags(name, "[--json]", about, "agora hadoop "+name, &api, &asJSON)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), hadoopRequestTimeout)
	defer cancel()
	c, err := hadoopClient(api)
	if err != nil {
		return hadoopFailure(api, name, err)
	}
	items, err := list(c, ctx)
	if err != nil {
		return hadoopFailure(api, name, err)
	}
	if asJSON {
		return printJSON(items)
	}
	w := newTable()
	table(w, items)
	w.Flush()
	return 0
}

func runHadoopJobs(args []string) int {
	return runHadoopList("jobs", "Lists the jobs of the Hadoop framework: running ones first, then finished ones, newest first.",
		args, (*client.Client).Jobs, func(w *tabwriter.Writer, jobs []client.JobInfo) {
			fmt.Fprintln(w, "JOB ID\tSTATE\tUSER\tNAME\tMAPS\tREDUCES\tMAP\tREDUCE\tSUBMITTED\tELAPSED")
			now := time.Now()
			for _, j := range jobs {
				user := j.User
				if user == "" {
					user = "-"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d/%d\t%d/%d\t%s\t%s\t%s\t%s\n", j.ID, j.State, user, j.Name,
					j.Maps.Succeeded, j.Maps.Total, j.Reduces.Succeeded, j.Reduces.Total,
					pct(j.MapProgress), pct(j.ReduceProgress), j.Submitted.Local().Format("2006-01-02 15:04:05"), since(j.Elapsed(now)))
			}
		})
}

func runHadoopStatus(args []string) int {
	var api serviceAPI
	var asJSON bool
	fs := hadoopClientFlags("status", "JOB [--tasks] [--json]", "Shows a job: state, map and reduce progress, counters, and the attempts that failed.",
		"agora hadoop status job_202601011200_0001 --tasks", &api, &asJSON)
	tasks := fs.Bool("tasks", false, "list every task and attempt")
	id, code, done := parseWithID(fs, args)
	if done {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), hadoopRequestTimeout)
	defer cancel()
	c, err := hadoopClient(api)
	if err != nil {
		return hadoopFailure(api, "status", err)
	}
	d, err := c.Job(ctx, id, true)
	if err != nil {
		return hadoopFailure(api, "status", err)
	}
	if asJSON {
		if !*tasks {
			d.Tasks = nil
		}
		return printJSON(d)
	}
	j := d.JobInfo
	w := newTable()
	fmt.Fprintf(w, "Job:\t%s (%s)\n", j.ID, j.Name)
	fmt.Fprintf(w, "State:\t%s\n", j.State)
	if j.User != "" {
		fmt.Fprintf(w, "User:\t%s\n", j.User)
	}
	fmt.Fprintf(w, "Input:\t%s\n", strings.Join(j.Input, ","))
	fmt.Fprintf(w, "Output:\t%s\n", j.Output)
	fmt.Fprintf(w, "Mapper:\t%s\n", j.Mapper)
	fmt.Fprintf(w, "Reducer:\t%s\n", j.Reducer)
	if j.Combiner != "" {
		fmt.Fprintf(w, "Combiner:\t%s\n", j.Combiner)
	}
	fmt.Fprintf(w, "Maps:\t%s  (%d total, %d pending, %d running, %d succeeded, %d failed, %d killed)\n",
		pct(j.MapProgress), j.Maps.Total, j.Maps.Pending, j.Maps.Running, j.Maps.Succeeded, j.Maps.Failed, j.Maps.Killed)
	fmt.Fprintf(w, "Reduces:\t%s  (%d total, %d pending, %d running, %d succeeded, %d failed, %d killed)\n",
		pct(j.ReduceProgress), j.Reduces.Total, j.Reduces.Pending, j.Reduces.Running, j.Reduces.Succeeded, j.Reduces.Failed, j.Reduces.Killed)
	fmt.Fprintf(w, "Submitted:\t%s\n", j.Submitted.Local().Format(time.RFC3339))
	fmt.Fprintf(w, "Elapsed:\t%s\n", since(j.Elapsed(time.Now())))
	if j.Restarts > 0 {
		fmt.Fprintf(w, "Restarts:\t%d (run again from the start after scheduler restarts)\n", j.Restarts)
	}
	if len(j.Blacklisted) > 0 {
		fmt.Fprintf(w, "Blacklisted:\t%s\n", strings.Join(j.Blacklisted, ", "))
	}
	w.Flush()
	if j.Error != "" {
		fmt.Printf("Error: %s\n", j.Error)
	}
	fmt.Println()
	printCounters(os.Stdout, j.Counters)
	var failed []string
	for _, t := range d.Tasks {
		for _, a := range t.Attempts {
			if a.State == "FAILED" {
				failed = append(failed, fmt.Sprintf("%s on %s: %s", a.ID, a.Host, firstLine(a.Diagnostics)))
			}
		}
	}
	if len(failed) > 0 {
		fmt.Printf("\nFailed attempts (`agora hadoop logs ATTEMPT` prints one's stderr):\n")
		for _, f := range failed {
			fmt.Println("  " + f)
		}
	}
	if *tasks {
		fmt.Println()
		w := newTable()
		fmt.Fprintln(w, "ATTEMPT\tSTATE\tHOST\tPROGRESS\tLOCALITY\tSTATUS\tELAPSED")
		for _, t := range d.Tasks {
			if len(t.Attempts) == 0 {
				fmt.Fprintf(w, "%s\t%s\t\t\t\t\t\n", t.ID, t.State)
			}
			for _, a := range t.Attempts {
				end := a.Finish
				if end.IsZero() {
					end = time.Now()
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.State, a.Host, pct(a.Progress), a.Locality, a.Status, since(end.Sub(a.Start)))
			}
		}
		w.Flush()
	}
	return 0
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// parseWithID parses the flags of a command that names one job or
// attempt, before or after them; without one it prints the usage and
// exits 2.
func parseWithID(fs *flag.FlagSet, args []string) (id string, code int, done bool) {
	id, rest := splitFirstArg(args)
	if code, done := parseFlags(fs, rest); done {
		return "", code, true
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	if id == "" {
		fs.Usage()
		return "", 2, true
	}
	return id, 0, false
}

// splitFirstArg takes a leading positional argument off args, so that
// `status JOB --json` works as well as `status --json JOB`.
func splitFirstArg(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

func runHadoopKill(args []string) int {
	var api serviceAPI
	fs := hadoopClientFlags("kill", "JOB", "Kills a job: its running attempts are killed and its temporary output removed.",
		"agora hadoop kill job_202601011200_0001", &api, nil)
	id, code, done := parseWithID(fs, args)
	if done {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), hadoopRequestTimeout)
	defer cancel()
	c, err := hadoopClient(api)
	if err != nil {
		return hadoopFailure(api, "kill", err)
	}
	j, err := c.Kill(ctx, id)
	if err != nil {
		return hadoopFailure(api, "kill", err)
	}
	fmt.Printf("%s %s\n", j.ID, j.State)
	return 0
}

func runHadoopLogs(args []string) int {
	var api serviceAPI
	fs := hadoopClientFlags("logs", "ATTEMPT", "Prints an attempt's stderr (what its mapper, reducer or combiner wrote there).",
		"agora hadoop logs attempt_202601011200_0001_m_000003_0", &api, nil)
	id, code, done := parseWithID(fs, args)
	if done {
		return code
	}
	if _, err := job.ParseAttemptID(id); err != nil {
		return hadoopFailure(api, "logs", fmt.Errorf("%v (attempt IDs look like attempt_202601011200_0001_m_000003_0; `agora hadoop status JOB --tasks` lists them)", err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), hadoopRequestTimeout)
	defer cancel()
	c, err := hadoopClient(api)
	if err != nil {
		return hadoopFailure(api, "logs", err)
	}
	s, err := c.Log(ctx, id)
	if err != nil {
		return hadoopFailure(api, "logs", err)
	}
	fmt.Print(s)
	return 0
}

func runHadoopTrackers(args []string) int {
	return runHadoopList("trackers", "Lists the TaskTracker executors the framework runs on agents, with their slots.",
		args, (*client.Client).Trackers, func(w *tabwriter.Writer, ts []client.TrackerInfo) {
			fmt.Fprintln(w, "TRACKER\tSTATE\tHOST\tAGENT\tMAP SLOTS\tREDUCE SLOTS\tRUNNING\tURL")
			for _, t := range ts {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", t.ID, t.State, t.Host, t.AgentID, t.MapSlots, t.ReduceSlots, t.RunningMaps+t.RunningReduces, t.URL)
			}
		})
}
