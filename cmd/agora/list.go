package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agora-cluster/agora/frameworks/state"
)

func init() {
	register(command{name: "agents", summary: "List the agents registered with the master", run: runAgents})
	register(command{name: "frameworks", summary: "List the frameworks subscribed with the master", run: runFrameworks})
	register(command{name: "tasks", summary: "List tasks (running ones; --all adds completed ones)", run: runTasks})
}

// rawState is /master/state kept as raw JSON elements, for --json.
type rawState struct {
	Slaves              []json.RawMessage `json:"slaves"`
	Frameworks          []rawFramework    `json:"frameworks"`
	CompletedFrameworks []rawFramework    `json:"completed_frameworks"`
}

type rawFramework struct {
	Tasks          []json.RawMessage `json:"tasks"`
	CompletedTasks []json.RawMessage `json:"completed_tasks"`
	raw            json.RawMessage
}

func (f *rawFramework) UnmarshalJSON(b []byte) error {
	type plain rawFramework
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*f = rawFramework(p)
	f.raw = append(json.RawMessage(nil), b...)
	return nil
}

// fetchState gets /master/state both typed and raw.
func fetchState(c state.Client, master string) (*state.Master, *rawState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var body json.RawMessage
	if err := c.Get(ctx, master, "/master/state", &body); err != nil {
		return nil, nil, err
	}
	var typed state.Master
	var raw rawState
	if err := json.Unmarshal(body, &typed); err != nil {
		return nil, nil, fmt.Errorf("master %s: /master/state: %w", master, err)
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, nil, fmt.Errorf("master %s: /master/state: %w", master, err)
	}
	return &typed, &raw, nil
}

func printJSONArray(elems []json.RawMessage) int {
	if elems == nil {
		elems = []json.RawMessage{}
	}
	b, err := json.MarshalIndent(elems, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora:", err)
		return 1
	}
	fmt.Println(string(b))
	return 0
}

func newTable() *tabwriter.Writer { return tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0) }

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func runAgents(args []string) int {
	var o clientOptions
	fs := newClientFlags("agents", "[--json]",
		"Lists the agents registered with the master, with their total and used resources.",
		"agora agents --master 10.0.0.5:5050", &o, true)
	if code, done := o.parse(fs, args); done {
		return code
	}
	st, raw, err := fetchState(o.state(), o.master)
	if err != nil {
		return masterFailure("agents", o.master, err)
	}
	if o.json {
		return printJSONArray(raw.Slaves)
	}
	w := newTable()
	fmt.Fprintln(w, "ID\tHOSTNAME\tCPUS\tMEM\tDISK\tUSED CPUS\tUSED MEM\tACTIVE")
	for _, a := range st.Slaves {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%t\n", a.ID, a.Hostname,
			num(a.Resources.CPUs), num(a.Resources.Mem), num(a.Resources.Disk),
			num(a.UsedResources.CPUs), num(a.UsedResources.Mem), a.Active)
	}
	w.Flush()
	return 0
}

func runFrameworks(args []string) int {
	var o clientOptions
	var all bool
	fs := newClientFlags("frameworks", "[--all] [--json]",
		"Lists the frameworks subscribed with the master, with their tasks and the resources they use.",
		"agora frameworks --all", &o, true)
	fs.BoolVar(&all, "all", false, "include completed (torn down) frameworks")
	if code, done := o.parse(fs, args); done {
		return code
	}
	st, raw, err := fetchState(o.state(), o.master)
	if err != nil {
		return masterFailure("frameworks", o.master, err)
	}
	fws, raws := st.Frameworks, raw.Frameworks
	if all {
		fws = append(fws, st.CompletedFrameworks...)
		raws = append(raws, raw.CompletedFrameworks...)
	}
	if o.json {
		var elems []json.RawMessage
		for _, f := range raws {
			elems = append(elems, f.raw)
		}
		return printJSONArray(elems)
	}
	w := newTable()
	fmt.Fprintln(w, "ID\tNAME\tROLES\tACTIVE\tTASKS\tCPUS\tMEM")
	for _, f := range fws {
		fmt.Fprintf(w, "%s\t%s\t%s\t%t\t%d\t%s\t%s\n", f.ID, f.Name, strings.Join(f.RoleNames(), ","),
			f.Active, len(f.Tasks), num(f.UsedResources.CPUs), num(f.UsedResources.Mem))
	}
	w.Flush()
	return 0
}

func runTasks(args []string) int {
	var o clientOptions
	var all bool
	fs := newClientFlags("tasks", "[--all] [--json]",
		"Lists the tasks of subscribed frameworks; --all adds completed tasks and those of removed frameworks.",
		"agora tasks --all --json", &o, true)
	fs.BoolVar(&all, "all", false, "include completed tasks")
	if code, done := o.parse(fs, args); done {
		return code
	}
	st, raw, err := fetchState(o.state(), o.master)
	if err != nil {
		return masterFailure("tasks", o.master, err)
	}
	type row struct {
		t   state.Task
		raw json.RawMessage
	}
	var rows []row
	add := func(ts []state.Task, raws []json.RawMessage) {
		for i, t := range ts {
			var r json.RawMessage
			if i < len(raws) {
				r = raws[i]
			}
			rows = append(rows, row{t, r})
		}
	}
	for i, f := range st.Frameworks {
		add(f.Tasks, raw.Frameworks[i].Tasks)
		if all {
			add(f.CompletedTasks, raw.Frameworks[i].CompletedTasks)
		}
	}
	if all {
		for i, f := range st.CompletedFrameworks {
			add(f.Tasks, raw.CompletedFrameworks[i].Tasks)
			add(f.CompletedTasks, raw.CompletedFrameworks[i].CompletedTasks)
		}
	}
	if o.json {
		var elems []json.RawMessage
		for _, r := range rows {
			elems = append(elems, r.raw)
		}
		return printJSONArray(elems)
	}
	w := newTable()
	fmt.Fprintln(w, "ID\tNAME\tFRAMEWORK\tAGENT\tSTATE")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.t.ID, r.t.Name, r.t.FrameworkID, r.t.SlaveID, r.t.State)
	}
	w.Flush()
	return 0
}
