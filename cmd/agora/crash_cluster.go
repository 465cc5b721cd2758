package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// childProc is an agora process this binary runs (a master or an agent of
// a crash round, a benchmark's master); its output goes to a log file that
// every restart appends to.
type childProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited
}

// startChild starts bin with args (agora's subcommand first) in a process
// group of its own, its output appended to logPath after a line naming the
// run; from is where this run's output starts in the log.
func startChild(bin, logPath string, args []string) (p *childProc, from int64, err error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fmt.Fprintf(f, "=== %s: agora %v\n", time.Now().Format(time.RFC3339Nano), args)
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("start agora %s: %w", args[0], err)
	}
	p = &childProc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, st.Size(), nil
}

func (p *childProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends p: SIGTERM (an agent then kills its tasks), and SIGKILL of its
// process group if it does not end in time.
func (p *childProc) stop() {
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// crashCluster is a master and an agent run as separate agora processes on
// loopback, each killed with SIGKILL and started again on demand with the
// same flags, work_dir and port.
type crashCluster struct {
	bin                   string
	logDir                string
	masterArgs, agentArgs []string
	masterURL, agentURL   string // known once each has first started
	master, agent         *childProc
}

func newCrashCluster(bin, dir string) (*crashCluster, error) {
	c := &crashCluster{
		bin:    bin,
		logDir: filepath.Join(dir, "logs"),
		// Each binds a free port on its first start and keeps it when
		// restarted (startMaster, startAgent). Long ping timeouts: a
		// restarted agent must come back as itself, not after the master
		// gave it up as unreachable.
		masterArgs: []string{"master", "--work_dir=" + filepath.Join(dir, "master"), "--port=0",
			"--agent_ping_timeout=1s", "--max_agent_ping_timeouts=60", "--allocation_interval=100ms"},
		agentArgs: []string{"agent", "--work_dir=" + filepath.Join(dir, "agent"), "--port=0",
			"--resources=cpus:2;mem:2048;disk:1024"},
	}
	return c, os.MkdirAll(c.logDir, 0o755)
}

// listeningLine is the line `agora master`, `agora agent` and `agora dev`
// print on stderr once they have bound their port.
var listeningLine = regexp.MustCompile(`(?m)^agora [a-z]+: listening on (\S+)$`)

// listeningAddr returns the HOST:PORT of the first listening line in out.
func listeningAddr(out string) (string, bool) {
	m := listeningLine.FindStringSubmatch(out)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// withPort returns args with --port=port in place of any --port flag.
func withPort(args []string, port string) []string {
	out := make([]string, 0, len(args)+1)
	for _, a := range args {
		if !strings.HasPrefix(a, "--port=") {
			out = append(out, a)
		}
	}
	return append(out, "--port="+port)
}

// errPortTaken is a start that failed because its port was bound by
// another process.
var errPortTaken = errors.New("port already in use")

// startBound starts agora with args and waits for the address it bound.
// A restart names the port of the first run (its peers and executors know
// that one); another process on this machine may have bound it since the
// kill, usually for a moment, so a start refused with "address already in
// use" is tried again, at most 5 times.
func (c *crashCluster) startBound(args []string, name string) (*childProc, string, error) {
	for attempt := 1; ; attempt++ {
		p, from, err := c.start(args, name)
		if err != nil {
			return nil, "", err
		}
		addr, err := c.awaitListening(p, name, from, time.Minute)
		if err == nil {
			return p, addr, nil
		}
		kill9(p) // if it still runs, silent
		if attempt == 5 || !errors.Is(err, errPortTaken) {
			return nil, "", fmt.Errorf("agora %s (attempt %d): %w", name, attempt, err)
		}
		time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
	}
}

// awaitListening waits, at most limit, for the listening line in name's
// log past offset from, which p's run writes.
func (c *crashCluster) awaitListening(p *childProc, name string, from int64, limit time.Duration) (string, error) {
	deadline := time.Now().Add(limit)
	for {
		exited := false
		select {
		case <-p.done:
			exited = true // its whole output is in the log now
		default:
		}
		out := c.logSince(name, from)
		if addr, ok := listeningAddr(out); ok {
			return addr, nil
		}
		switch {
		case exited && strings.Contains(out, "address already in use"):
			return "", fmt.Errorf("%w: %s", errPortTaken, lastLine(out))
		case exited:
			return "", fmt.Errorf("exited (%v) before it listened: %s", p.cmd.ProcessState, lastLine(out))
		case time.Now().After(deadline):
			return "", fmt.Errorf("no %q line within %s", "listening on", limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *crashCluster) logSince(name string, from int64) string {
	b, _ := os.ReadFile(filepath.Join(c.logDir, name+".log"))
	if int64(len(b)) < from {
		return ""
	}
	return string(b[from:])
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

func (c *crashCluster) masterAddr() string { return strings.TrimPrefix(c.masterURL, "http://") }

// start starts agora with args, its output appended to name's log, which
// this run writes past the returned offset.
func (c *crashCluster) start(args []string, name string) (*childProc, int64, error) {
	return startChild(c.bin, filepath.Join(c.logDir, name+".log"), args)
}

// startMaster starts the master; the first start binds a free port, which
// every restart keeps and the agent is pointed at.
func (c *crashCluster) startMaster() error {
	p, addr, err := c.startBound(c.masterArgs, "master")
	if err != nil {
		return err
	}
	c.master = p
	if c.masterURL == "" {
		_, port, _ := net.SplitHostPort(addr)
		c.masterArgs = withPort(c.masterArgs, port)
		c.agentArgs = append(c.agentArgs, "--master="+addr)
		c.masterURL = "http://" + addr
	}
	return nil
}

// startAgent starts the agent (after the master); the first start binds a
// free port, which every restart keeps: the executors it left running
// reconnect to it there.
func (c *crashCluster) startAgent() error {
	if c.masterURL == "" {
		return errors.New("the agent starts after the master")
	}
	p, addr, err := c.startBound(c.agentArgs, "agent")
	if err != nil {
		return err
	}
	c.agent = p
	if c.agentURL == "" {
		_, port, _ := net.SplitHostPort(addr)
		c.agentArgs = withPort(c.agentArgs, port)
		c.agentURL = "http://" + addr
	}
	return nil
}

// kill9 kills the process itself (not its group: an agent's tasks outlive
// it) and waits for it to be gone.
func kill9(p *childProc) error {
	if p == nil {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		select {
		case <-p.done:
			return fmt.Errorf("it had already exited (%v)", p.cmd.ProcessState)
		default:
			return err
		}
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("pid %d still runs 10 s after SIGKILL", p.cmd.Process.Pid)
	}
}

// kill kills the processes kind names ("agent", "master" or "both").
func (c *crashCluster) kill(kind string) error {
	if kind != "agent" {
		if err := kill9(c.master); err != nil {
			return fmt.Errorf("kill -9 master: %w", err)
		}
	}
	if kind != "master" {
		if err := kill9(c.agent); err != nil {
			return fmt.Errorf("kill -9 agent: %w", err)
		}
	}
	return nil
}

// restart starts again what kill killed, the master first.
func (c *crashCluster) restart(kind string) error {
	if kind != "agent" {
		if err := c.startMaster(); err != nil {
			return err
		}
	}
	if kind != "master" {
		return c.startAgent()
	}
	return nil
}

// stop ends both processes: SIGTERM (the agent then kills its tasks), and
// SIGKILL of the process group for one that does not end in time.
func (c *crashCluster) stop() {
	for _, p := range []*childProc{c.agent, c.master} {
		if p != nil {
			p.stop()
		}
	}
}

// logTail returns the last n bytes of a process's log.
func (c *crashCluster) logTail(name string, n int) string {
	b, _ := os.ReadFile(filepath.Join(c.logDir, name+".log"))
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// crashAgentView is what the master and the agent say about the agent.
type crashAgentView struct {
	MasterIDs   []string // agents the master lists
	Connected   bool     // the master has a connection to the (only) agent
	Recovered   int      // agents the master recovered from its registry and still waits for
	AgentID     string   // the ID the agent process reports
	Registered  bool     // the agent process says it is registered
	MasterError error
	AgentError  error
}

func (c *crashCluster) agentView() crashAgentView {
	var v crashAgentView
	var ms struct {
		Slaves []struct {
			ID        string `json:"id"`
			Active    bool   `json:"active"`
			Connected bool   `json:"connected"`
		} `json:"slaves"`
		Recovered []json.RawMessage `json:"recovered_slaves"`
	}
	if v.MasterError = getJSON(c.masterURL+"/master/state", &ms); v.MasterError == nil {
		for _, s := range ms.Slaves {
			v.MasterIDs = append(v.MasterIDs, s.ID)
			v.Connected = s.Active && s.Connected
		}
		v.Recovered = len(ms.Recovered)
	}
	var as struct {
		ID         string `json:"id"`
		Registered bool   `json:"registered"`
	}
	if v.AgentError = getJSON(c.agentURL+"/state", &as); v.AgentError == nil {
		v.AgentID, v.Registered = as.ID, as.Registered
	}
	return v
}

func getJSON(url string, v any) error {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// waitAgent waits, at most wait, until the master lists exactly one agent,
// connected, and the agent process says it is registered; it returns that
// agent's ID as the master and the agent give it.
func (c *crashCluster) waitAgent(ctx context.Context, wait time.Duration) (crashAgentView, error) {
	deadline := time.Now().Add(wait)
	for {
		v := c.agentView()
		if len(v.MasterIDs) == 1 && v.Connected && v.Registered && v.Recovered == 0 {
			return v, nil
		}
		if time.Now().After(deadline) {
			return v, fmt.Errorf("the agent did not (re-)register within %s: master lists %v (connected %v, %d recovered and waited for; err %v), agent says id %q registered %v (err %v)",
				wait, v.MasterIDs, v.Connected, v.Recovered, v.MasterError, v.AgentID, v.Registered, v.AgentError)
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// crashMasterTask is a task as the master's /master/state lists it.
type crashMasterTask struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

// frameworkTasks returns the state of every task of framework fid that the
// master lists (active, unreachable or completed), by task ID.
func (c *crashCluster) frameworkTasks(fid string) (map[string]string, error) {
	type fw struct {
		ID          string            `json:"id"`
		Tasks       []crashMasterTask `json:"tasks"`
		Unreachable []crashMasterTask `json:"unreachable_tasks"`
		Completed   []crashMasterTask `json:"completed_tasks"`
	}
	var st struct {
		Frameworks []fw `json:"frameworks"`
		Completed  []fw `json:"completed_frameworks"`
	}
	if err := getJSON(c.masterURL+"/master/state", &st); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, f := range append(st.Frameworks, st.Completed...) {
		if f.ID != fid {
			continue
		}
		// Completed first: a task listed twice is reported by its live entry.
		for _, ts := range [][]crashMasterTask{f.Completed, f.Unreachable, f.Tasks} {
			for _, t := range ts {
				out[t.ID] = t.State
			}
		}
	}
	return out, nil
}
