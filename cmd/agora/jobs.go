package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// `agora jobs` and `agora cron` are clients of the scheduled-jobs
// framework's Chronos API (agora chronos, or the one `agora dev` runs).

func init() {
	register(command{name: "jobs", summary: "Scheduled jobs (Chronos API): jobs list|show|run|delete", run: runJobs})
	register(command{name: "cron", summary: "Preview a scheduled job's next run times: cron next JOB [-n N]", run: runCron})
}

// jobsCommands are the subcommands of `agora jobs`.
var jobsCommands = map[string]command{
	"list":   {name: "list", summary: "List the jobs: schedule or parents, state, successes, errors, next run", run: func(args []string) int { return jobsList(args, os.Stdout, os.Stderr) }},
	"show":   {name: "show", summary: "Show one job: its definition, counters, current run and history", run: func(args []string) int { return jobsShow(args, os.Stdout, os.Stderr) }},
	"run":    {name: "run", summary: "Start a run of a job now (a manual run)", run: func(args []string) int { return jobsChange("run", args, os.Stdout, os.Stderr) }},
	"delete": {name: "delete", summary: "Delete a job (its running task is killed)", run: func(args []string) int { return jobsChange("delete", args, os.Stdout, os.Stderr) }},
}

const chronosAPIDefault = "127.0.0.1:4400"

func chronosAPI() string {
	if a := os.Getenv("AGORA_CHRONOS"); a != "" {
		return a
	}
	return chronosAPIDefault
}

func runJobs(args []string) int {
	return dispatchTo("agora jobs", "command", jobsCommands, func() {
		var b strings.Builder
		b.WriteString("Usage: agora jobs COMMAND [flags]\n\nAsks the scheduled-jobs framework's Chronos API (--chronos, or AGORA_CHRONOS; default " + chronosAPIDefault + ").\n\nCommands:\n")
		writeCommandList(&b, jobsCommands)
		b.WriteString("\nSee also: agora cron next JOB [-n N]\n")
		fmt.Fprint(os.Stderr, b.String())
	}, args)
}

func runCron(args []string) int {
	cmds := map[string]command{"next": {name: "next", summary: "Print a job's next N scheduled run times", run: func(args []string) int { return cronNext(args, os.Stdout, os.Stderr) }}}
	return dispatchTo("agora cron", "command", cmds, func() {
		fmt.Fprint(os.Stderr, "Usage: agora cron next JOB [-n N] [--json] [--chronos=HOST:PORT]\n\nPrints the next N (default 10) run times of a scheduled job, in UTC and in the job's time zone.\n")
	}, args)
}

// jobsFlags makes the flag set of a client command: --chronos and, with
// asJSON, --json.
func jobsFlags(prog, usage, about string, stderr io.Writer, api *serviceAPI, asJSON *bool) *flag.FlagSet {
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(stderr)
	api.register(fs, "chronos", chronosAPI(), "the Chronos API, host:port or http(s)://host:port (env AGORA_CHRONOS)")
	if asJSON != nil {
		fs.BoolVar(asJSON, "json", false, "print JSON instead of a table")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s %s\n\n%s\n\nFlags:\n", prog, usage, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseJobArgs parses flags given before or after the one JOB argument.
func parseJobArgs(fs *flag.FlagSet, args []string, stderr io.Writer) (job string, code int, done bool) {
	if code, done := parseFlags(fs, args); done {
		return "", code, true
	}
	rest := fs.Args()
	if len(rest) > 0 {
		job = rest[0]
		if code, done := parseFlags(fs, rest[1:]); done {
			return "", code, true
		}
		rest = fs.Args()
	} else {
		rest = nil
	}
	if job == "" || len(rest) > 0 {
		fmt.Fprintf(stderr, "%s: give exactly one JOB\n", fs.Name())
		return "", 2, true
	}
	return job, 0, false
}

// jobsError is an answer of the API that is not a success.
type jobsError struct {
	code int
	msg  string
	hint string // what to pass after a 401
}

func (e *jobsError) Error() string {
	hint := e.hint
	if e.msg == "" {
		return http.StatusText(e.code) + hint
	}
	return fmt.Sprintf("%s (%d)%s", e.msg, e.code, hint)
}

// chronosCall sends one request and decodes a JSON answer into out (nil:
// none expected).
func chronosCall(api serviceAPI, method, path string, out any) error {
	base := api.base()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		return err
	}
	resp, err := api.do(req)
	if err != nil {
		return fmt.Errorf("the Chronos API at %s: %w (is `agora chronos` or `agora dev` running? --chronos says where)", api, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		je := &jobsError{code: resp.StatusCode, msg: strings.TrimSpace(string(b))}
		if je.code == http.StatusUnauthorized {
			je.hint = api.unauthorizedHint()
		}
		return je
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not the JSON expected: %w", method, path, err)
	}
	return nil
}

// jobView is what the client reads of a job (Chronos's JSON).
type jobView struct {
	Name             string   `json:"name"`
	Command          string   `json:"command"`
	Schedule         string   `json:"schedule"`
	Cron             string   `json:"cron"`
	ScheduleTimeZone string   `json:"scheduleTimeZone"`
	Parents          []string `json:"parents"`
	Disabled         bool     `json:"disabled"`
	State            string   `json:"state"`
	SuccessCount     int      `json:"successCount"`
	ErrorCount       int      `json:"errorCount"`
	MissedCount      int      `json:"missedCount"`
	LastSuccess      string   `json:"lastSuccess"`
	LastError        string   `json:"lastError"`
	NextRun          string   `json:"nextRun"`
	Run              *struct {
		Instant string `json:"instant"`
		State   string `json:"state"`
		TaskID  string `json:"taskId"`
		Attempt int    `json:"attempt"`
	} `json:"currentRun"`
}

func (j jobView) when() string {
	switch {
	case len(j.Parents) > 0:
		return "after " + strings.Join(j.Parents, ",")
	case j.Cron != "":
		return "cron " + j.Cron + tzSuffix(j.ScheduleTimeZone)
	}
	return j.Schedule + tzSuffix(j.ScheduleTimeZone)
}

func tzSuffix(tz string) string {
	if tz == "" {
		return ""
	}
	return " (" + tz + ")"
}

func (j jobView) state() string {
	switch {
	case j.Disabled:
		return "disabled"
	case j.Run != nil:
		return j.Run.State
	}
	return j.State
}

// jobsFail reports err; exit 1 (the API answered no or is away).
func jobsFail(prog string, err error, stderr io.Writer) int {
	fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	return 1
}

func jobsList(args []string, stdout, stderr io.Writer) int {
	var api serviceAPI
	var asJSON bool
	fs := jobsFlags("agora jobs list", "[--json]", "Lists the scheduled jobs.", stderr, &api, &asJSON)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agora jobs list: unexpected arguments %q\n", fs.Args())
		return 2
	}
	var raw []json.RawMessage
	if err := chronosCall(api, "GET", "/v1/scheduler/jobs", &raw); err != nil {
		return jobsFail("agora jobs list", err, stderr)
	}
	if asJSON {
		return writeJSON(stdout, nonNilRows(raw))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCHEDULE\tSTATE\tSUCCESSES\tERRORS\tMISSED\tNEXT RUN")
	for _, r := range raw {
		var j jobView
		if err := json.Unmarshal(r, &j); err != nil {
			return jobsFail("agora jobs list", err, stderr)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", j.Name, j.when(), j.state(), j.SuccessCount, j.ErrorCount, j.MissedCount, orDash(j.NextRun))
	}
	tw.Flush()
	return 0
}

// findJob reads the job named name from the list (Chronos has no GET of
// one job).
func findJob(api serviceAPI, name string) (json.RawMessage, jobView, error) {
	var raw []json.RawMessage
	if err := chronosCall(api, "GET", "/v1/scheduler/jobs", &raw); err != nil {
		return nil, jobView{}, err
	}
	for _, r := range raw {
		var j jobView
		if err := json.Unmarshal(r, &j); err == nil && j.Name == name {
			return r, j, nil
		}
	}
	return nil, jobView{}, &jobsError{code: http.StatusNotFound, msg: fmt.Sprintf("no job %q", name)}
}

type runResult struct {
	Instant  string `json:"instant"`
	TaskID   string `json:"taskId"`
	Host     string `json:"host"`
	State    string `json:"taskState"`
	Message  string `json:"message"`
	Attempts int    `json:"attempts"`
	Manual   bool   `json:"manual"`
	Ended    string `json:"endTime"`
}

func jobsShow(args []string, stdout, stderr io.Writer) int {
	var api serviceAPI
	var asJSON bool
	fs := jobsFlags("agora jobs show", "JOB [--json]", "Shows a job: its definition, counters, current run and latest runs.", stderr, &api, &asJSON)
	name, code, done := parseJobArgs(fs, args, stderr)
	if done {
		return code
	}
	raw, j, err := findJob(api, name)
	if err != nil {
		return jobsFail("agora jobs show", err, stderr)
	}
	var stat struct {
		History []runResult `json:"taskStatHistory"`
	}
	if err := chronosCall(api, "GET", "/v1/scheduler/job/stat/"+url.PathEscape(name), &stat); err != nil {
		return jobsFail("agora jobs show", err, stderr)
	}
	if asJSON {
		return writeJSON(stdout, map[string]any{"job": raw, "history": nonNilRows(stat.History)})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", j.Name)
	fmt.Fprintf(tw, "Command:\t%s\n", j.Command)
	fmt.Fprintf(tw, "Schedule:\t%s\n", j.when())
	fmt.Fprintf(tw, "State:\t%s\n", j.state())
	fmt.Fprintf(tw, "Next run:\t%s\n", orDash(j.NextRun))
	fmt.Fprintf(tw, "Successes:\t%d (last %s)\n", j.SuccessCount, orDash(j.LastSuccess))
	fmt.Fprintf(tw, "Errors:\t%d (last %s)\n", j.ErrorCount, orDash(j.LastError))
	fmt.Fprintf(tw, "Missed:\t%d\n", j.MissedCount)
	if j.Run != nil {
		fmt.Fprintf(tw, "Current run:\t%s %s attempt %d task %s\n", j.Run.Instant, j.Run.State, j.Run.Attempt+1, orDash(j.Run.TaskID))
	}
	tw.Flush()
	if len(stat.History) == 0 {
		return 0
	}
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANT\tSTATE\tATTEMPTS\tHOST\tENDED\tMESSAGE")
	for i := len(stat.History) - 1; i >= 0; i-- {
		h := stat.History[i]
		inst := h.Instant
		if h.Manual {
			inst += " (manual)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", inst, h.State, h.Attempts, orDash(h.Host), h.Ended, h.Message)
	}
	tw.Flush()
	return 0
}

// jobsChange is `agora jobs run|delete JOB`.
func jobsChange(verb string, args []string, stdout, stderr io.Writer) int {
	prog := "agora jobs " + verb
	var api serviceAPI
	about := map[string]string{"run": "Starts a run of the job now (Chronos's PUT /v1/scheduler/job/JOB).",
		"delete": "Deletes the job; a run in flight is killed (DELETE /v1/scheduler/job/JOB)."}[verb]
	fs := jobsFlags(prog, "JOB", about, stderr, &api, nil)
	name, code, done := parseJobArgs(fs, args, stderr)
	if done {
		return code
	}
	method := map[string]string{"run": "PUT", "delete": "DELETE"}[verb]
	if err := chronosCall(api, method, "/v1/scheduler/job/"+url.PathEscape(name), nil); err != nil {
		return jobsFail(prog, err, stderr)
	}
	fmt.Fprintln(stdout, map[string]string{"run": "started a run of ", "delete": "deleted "}[verb]+name)
	return 0
}

func cronNext(args []string, stdout, stderr io.Writer) int {
	var api serviceAPI
	var asJSON bool
	fs := jobsFlags("agora cron next", "JOB [-n N] [--json]", "Prints the next N run times of a scheduled job, in UTC and in the job's time zone.", stderr, &api, &asJSON)
	n := fs.Int("n", 10, "how many run times (1 to 1000)")
	name, code, done := parseJobArgs(fs, args, stderr)
	if done {
		return code
	}
	if *n < 1 || *n > 1000 {
		fmt.Fprintf(stderr, "agora cron next: -n %d is not from 1 to 1000\n", *n)
		return 2
	}
	var next struct {
		Runs []string `json:"nextRuns"`
	}
	if err := chronosCall(api, "GET", "/v1/scheduler/job/next/"+url.PathEscape(name)+"?n="+strconv.Itoa(*n), &next); err != nil {
		return jobsFail("agora cron next", err, stderr)
	}
	if asJSON {
		return writeJSON(stdout, map[string]any{"name": name, "nextRuns": nonNilRows(next.Runs)})
	}
	var loc *time.Location
	if _, j, err := findJob(api, name); err == nil && j.ScheduleTimeZone != "" {
		loc, _ = time.LoadLocation(j.ScheduleTimeZone)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if loc != nil {
		fmt.Fprintf(tw, "UTC\t%s\n", loc)
	} else {
		fmt.Fprintln(tw, "UTC")
	}
	for _, s := range next.Runs {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return jobsFail("agora cron next", errors.New("a run time "+strconv.Quote(s)+" is not RFC 3339"), stderr)
		}
		if loc != nil {
			fmt.Fprintf(tw, "%s\t%s\n", t.UTC().Format(time.RFC3339), t.In(loc).Format("2006-01-02 15:04:05 MST"))
		} else {
			fmt.Fprintln(tw, t.UTC().Format(time.RFC3339))
		}
	}
	tw.Flush()
	if len(next.Runs) == 0 {
		fmt.Fprintf(stderr, "agora cron next: %s has no scheduled runs ahead (a dependent job, or a schedule that ended)\n", name)
	}
	return 0
}
