package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/master"
	"golang.org/x/sys/unix"
)

func init() {
	register(command{name: "top", summary: "A live terminal view of the agents and tasks, redrawn on every change", run: runTop})
}

// topRedraw is the least time between two frames: a burst of events
// draws once.
const topRedraw = 250 * time.Millisecond

// topEnded is how many ended tasks the view keeps, newest first.
const topEnded = 10

func runTop(args []string) int {
	var o clientOptions
	var once bool
	fs := newClientFlags("top", "[--once [--json]]",
		"Shows the cluster's agents (resources used of total) and its tasks, live: the view\n"+
			"is built from the master's event stream and redrawn as tasks, agents and frameworks\n"+
			"change (no polling of the master's state). On a terminal it redraws in place;\n"+
			"otherwise each change prints a new frame. Colour only on a terminal, never with\n"+
			"NO_COLOR set. When the stream is lost (a failover, a restart) it says so and\n"+
			"subscribes again. Ctrl-C quits.",
		"agora top --master 10.0.0.5:5050", &o, true)
	fs.BoolVar(&once, "once", false, "print one frame of the current state and exit")
	if code, done := o.parse(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "agora top: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if o.json && !once {
		fmt.Fprintln(os.Stderr, "agora top: --json prints one view: use it with --once (agora events --json streams)")
		return 2
	}
	ctx, stop := interruptible(context.Background())
	defer stop()
	s, err := subscribeEvents(ctx, &o)
	if err != nil {
		return masterFailure("top", o.master, err)
	}
	defer s.Close()

	term := isTerminal(os.Stdout)
	v := newTopView(o.master)
	v.colour = term && os.Getenv("NO_COLOR") == ""
	events := make(chan *master.Event, 64)
	streamErr := make(chan error, 1)
	go func() { streamErr <- pumpEvents(ctx, s, events) }()
	if term && !once {
		os.Stdout.WriteString("\x1b[?25l") // hide the cursor while drawing
		defer os.Stdout.WriteString("\x1b[?25h\n")
	}
	draw := func() {
		var b bytes.Buffer
		rows := 0
		if term && !once {
			b.WriteString("\x1b[H\x1b[2J") // home, clear
			_, rows = terminalSize(os.Stdout)
		} else if v.frames > 0 {
			b.WriteString("\n")
		}
		v.render(&b, rows, time.Now())
		os.Stdout.Write(b.Bytes())
		v.frames++
	}
	winch := make(chan os.Signal, 1) // the terminal was resized
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	tick := time.NewTicker(topRedraw)
	defer tick.Stop()
	subscribed, dirty := false, false
	for {
		select {
		case ev := <-events:
			v.apply(ev)
			if ev.GetType() == master.Event_SUBSCRIBED {
				subscribed = true
				if once && o.json {
					return v.writeJSON(os.Stdout)
				}
				if once {
					draw()
					return 0
				}
			}
			dirty = dirty || ev.GetType() != master.Event_HEARTBEAT
		case err := <-streamErr:
			if ctx.Err() != nil {
				return 0
			}
			if once {
				return masterFailure("top", o.master, err)
			}
			// A live view outlasts a master's failover or restart: it
			// says what happened and subscribes again, rebuilding the
			// view from the next SUBSCRIBED.
			v.notice = fmt.Sprintf("lost the master's event stream (%v); reconnecting", rootCause(err))
			draw()
			go func() { streamErr <- resubscribe(ctx, &o, events) }()
		case <-ctx.Done():
			return 0
		case <-winch:
			dirty = true
		case <-tick.C:
			if subscribed && dirty {
				draw()
				dirty = false
			}
		}
	}
}

// topRetry is how long top waits between attempts to subscribe again.
const topRetry = time.Second

// pumpEvents copies s's events to events until s fails or ctx ends.
func pumpEvents(ctx context.Context, s *eventStream, events chan<- *master.Event) error {
	for {
		ev, _, err := s.next()
		if err != nil {
			return err
		}
		select {
		case events <- ev:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// resubscribe subscribes again, every topRetry until it succeeds or ctx
// ends, and pumps the new stream's events until it fails in turn.
func resubscribe(ctx context.Context, o *clientOptions, events chan<- *master.Event) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(topRetry):
		}
		if s, err := subscribeEvents(ctx, o); err == nil {
			defer s.Close()
			return pumpEvents(ctx, s, events)
		}
	}
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	return err == nil
}

// terminalSize is f's columns and rows, or 0, 0 when not known.
func terminalSize(f *os.File) (cols, rows int) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0, 0
	}
	return int(ws.Col), int(ws.Row)
}

// topView is the cluster as the event stream describes it.
type topView struct {
	master     string
	notice     string // a problem to show above the view, until the next SUBSCRIBED
	colour     bool
	frames     int
	agents     map[string]*topAgent
	frameworks map[string]string // ID → name
	tasks      map[string]*topTask
	ended      []*topTask // newest last, at most topEnded
}

type topAgent struct {
	id, hostname string
	total        map[string]float64
}

type topTask struct {
	id, name, framework, agent string
	state                      mesos.TaskState
	resources                  map[string]float64
	updated                    time.Time
}

func newTopView(masterAddr string) *topView {
	return &topView{master: masterAddr, agents: map[string]*topAgent{}, frameworks: map[string]string{}, tasks: map[string]*topTask{}}
}

// apply folds one event into the view.
func (v *topView) apply(ev *master.Event) {
	switch ev.GetType() {
	case master.Event_SUBSCRIBED:
		st := ev.GetSubscribed().GetGetState()
		*v = topView{master: v.master, colour: v.colour, frames: v.frames,
			agents: map[string]*topAgent{}, frameworks: map[string]string{}, tasks: map[string]*topTask{}}
		for _, a := range st.GetGetAgents().GetAgents() {
			v.addAgent(a)
		}
		for _, f := range st.GetGetFrameworks().GetFrameworks() {
			v.frameworks[f.FrameworkInfo.GetID().GetValue()] = f.FrameworkInfo.Name
		}
		ts := st.GetGetTasks()
		for _, t := range append(ts.GetTasks(), ts.GetUnreachableTasks()...) {
			v.addTask(t)
		}
		done := ts.GetCompletedTasks()
		for _, t := range done[max(0, len(done)-topEnded):] {
			v.ended = append(v.ended, newTopTask(t))
		}
	case master.Event_AGENT_ADDED:
		v.addAgent(ev.GetAgentAdded().Agent)
	case master.Event_AGENT_REMOVED:
		delete(v.agents, ev.GetAgentRemoved().AgentID.Value)
	case master.Event_FRAMEWORK_ADDED:
		fi := ev.GetFrameworkAdded().Framework.FrameworkInfo
		v.frameworks[fi.GetID().GetValue()] = fi.Name
	case master.Event_FRAMEWORK_UPDATED:
		fi := ev.GetFrameworkUpdated().Framework.FrameworkInfo
		v.frameworks[fi.GetID().GetValue()] = fi.Name
	case master.Event_FRAMEWORK_REMOVED:
		delete(v.frameworks, ev.GetFrameworkRemoved().FrameworkInfo.GetID().GetValue())
	case master.Event_TASK_ADDED:
		v.addTask(ev.GetTaskAdded().Task)
	case master.Event_TASK_UPDATED:
		u := ev.GetTaskUpdated()
		key := u.FrameworkID.Value + "/" + u.Status.TaskID.Value
		t, ok := v.tasks[key]
		if !ok {
			return
		}
		t.state = u.GetState()
		t.updated = time.Now()
		if terminalState(t.state) {
			delete(v.tasks, key)
			v.ended = append(v.ended, t)
			if len(v.ended) > topEnded {
				v.ended = v.ended[len(v.ended)-topEnded:]
			}
		}
	}
}

func (v *topView) addAgent(a master.Response_GetAgents_Agent) {
	id := a.AgentInfo.GetID().GetValue()
	v.agents[id] = &topAgent{id: id, hostname: a.AgentInfo.Hostname, total: scalarSums(a.TotalResources)}
}

func (v *topView) addTask(t mesos.Task) {
	tt := newTopTask(t)
	v.tasks[tt.framework+"/"+tt.id] = tt
}

func newTopTask(t mesos.Task) *topTask {
	return &topTask{id: t.TaskID.Value, name: t.Name, framework: t.FrameworkID.Value, agent: t.AgentID.Value,
		state: t.GetState(), resources: scalarSums(t.Resources), updated: time.Now()}
}

// render writes one frame; rows > 0 cuts the task list to fit a screen
// of that many rows.
func (v *topView) render(w io.Writer, rows int, now time.Time) {
	used, count := v.usage()
	fmt.Fprintf(w, "%s  master %s  %s\n", v.paint("agora top", "1"), v.master, now.Format("15:04:05"))
	fmt.Fprintf(w, "agents=%d frameworks=%d tasks=%d\n", len(v.agents), len(v.frameworks), len(v.tasks))
	if v.notice != "" {
		fmt.Fprintln(w, v.paint(v.notice, "31"))
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, v.paint("AGENT\tHOSTNAME\tCPUS\tMEM\tDISK\tTASKS", "7"))
	agents := v.sortedAgents()
	for _, a := range agents {
		u := used[a.id]
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s/%s\t%s/%s\t%d\n", a.id, a.hostname,
			num(u["cpus"]), num(a.total["cpus"]), num(u["mem"]), num(a.total["mem"]), num(u["disk"]), num(a.total["disk"]), count[a.id])
	}
	tw.Flush()

	list := v.sortedTasks()
	for i := len(v.ended) - 1; i >= 0; i-- {
		list = append(list, v.ended[i])
	}
	if room := rows - 6 - len(agents); rows > 0 && len(list) > room {
		list = list[:max(room, 0)]
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, v.paint("TASK\tNAME\tFRAMEWORK\tAGENT\tSTATE\tCPUS\tMEM", "7"))
	for _, t := range list {
		fw := v.frameworks[t.framework]
		if fw == "" {
			fw = t.framework
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.id, t.name, fw, t.agent,
			v.paint(t.state.String(), stateColour(t.state)), num(t.resources["cpus"]), num(t.resources["mem"]))
	}
	tw.Flush()
}

// usage sums the active tasks' resources and counts them, by agent.
func (v *topView) usage() (used map[string]map[string]float64, count map[string]int) {
	used, count = map[string]map[string]float64{}, map[string]int{}
	for _, t := range v.tasks {
		u := used[t.agent]
		if u == nil {
			u = map[string]float64{}
			used[t.agent] = u
		}
		for k, x := range t.resources {
			u[k] += x
		}
		count[t.agent]++
	}
	return used, count
}

// sortedAgents is the agents by hostname, then ID.
func (v *topView) sortedAgents() []*topAgent {
	agents := make([]*topAgent, 0, len(v.agents))
	for _, a := range v.agents {
		agents = append(agents, a)
	}
	sort.Slice(agents, func(i, j int) bool {
		if agents[i].hostname != agents[j].hostname {
			return agents[i].hostname < agents[j].hostname
		}
		return agents[i].id < agents[j].id
	})
	return agents
}

// sortedTasks is the active tasks by name, then ID.
func (v *topView) sortedTasks() []*topTask {
	tasks := make([]*topTask, 0, len(v.tasks))
	for _, t := range v.tasks {
		tasks = append(tasks, t)
	}
	sort.Slice(tasks, func(i, j int) bool {
		if tasks[i].name != tasks[j].name {
			return tasks[i].name < tasks[j].name
		}
		return tasks[i].id < tasks[j].id
	})
	return tasks
}

// writeJSON prints the view as one JSON object: agents with the
// resources their tasks use, active tasks and recently ended ones.
func (v *topView) writeJSON(w io.Writer) int {
	type agentJSON struct {
		ID       string             `json:"id"`
		Hostname string             `json:"hostname"`
		Total    map[string]float64 `json:"total"`
		Used     map[string]float64 `json:"used"`
		Tasks    int                `json:"tasks"`
	}
	type taskJSON struct {
		ID          string             `json:"id"`
		Name        string             `json:"name"`
		FrameworkID string             `json:"framework_id"`
		Framework   string             `json:"framework"`
		AgentID     string             `json:"agent_id"`
		State       string             `json:"state"`
		Resources   map[string]float64 `json:"resources"`
	}
	out := struct {
		Agents []agentJSON `json:"agents"`
		Tasks  []taskJSON  `json:"tasks"`
		Ended  []taskJSON  `json:"ended"`
	}{Agents: []agentJSON{}, Tasks: []taskJSON{}, Ended: []taskJSON{}}
	tj := func(t *topTask) taskJSON {
		return taskJSON{t.id, t.name, t.framework, v.frameworks[t.framework], t.agent, t.state.String(), t.resources}
	}
	used, count := v.usage()
	for _, a := range v.sortedAgents() {
		u := used[a.id]
		if u == nil {
			u = map[string]float64{}
		}
		out.Agents = append(out.Agents, agentJSON{a.id, a.hostname, a.total, u, count[a.id]})
	}
	for _, t := range v.sortedTasks() {
		out.Tasks = append(out.Tasks, tj(t))
	}
	for i := len(v.ended) - 1; i >= 0; i-- {
		out.Ended = append(out.Ended, tj(v.ended[i]))
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora top:", err)
		return 1
	}
	fmt.Fprintln(w, string(b))
	return 0
}

// paint wraps s in the ANSI attribute sgr when colour is on.
func (v *topView) paint(s, sgr string) string {
	if !v.colour || sgr == "" {
		return s
	}
	// Each tab-separated cell is painted on its own so that tabwriter
	// measures the cells, not the escapes (they have the same length in
	// every cell of a column, so the columns stay aligned).
	cells := strings.Split(s, "\t")
	for i, c := range cells {
		cells[i] = "\x1b[" + sgr + "m" + c + "\x1b[0m"
	}
	return strings.Join(cells, "\t")
}

// stateColour is the ANSI colour of a task state: green running, yellow
// on its way, red failed, the default for the rest.
func stateColour(s mesos.TaskState) string {
	switch s {
	case mesos.TASK_RUNNING:
		return "32"
	case mesos.TASK_STAGING, mesos.TASK_STARTING, mesos.TASK_KILLING:
		return "33"
	case mesos.TASK_FAILED, mesos.TASK_LOST, mesos.TASK_ERROR, mesos.TASK_DROPPED, mesos.TASK_UNREACHABLE:
		return "31"
	}
	return "39" // the default colour: every state cell has escapes of one length
}
