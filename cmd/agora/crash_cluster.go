package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// crashProc is one master or agent process of a crash round; its output
// goes to a log file that every restart appends to.
type crashProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// crashCluster is a master and an agent run as separate agora processes on
// loopback, each killed with SIGKILL and started again on demand with the
// same flags and work_dir.
type crashCluster struct {
	bin                   string
	logDir                string
	masterArgs, agentArgs []string
	masterURL, agentURL   string
	master, agent         *crashProc
}

func newCrashCluster(bin, dir string) (*crashCluster, error) {
	mport, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	aport, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	c := &crashCluster{
		bin:    bin,
		logDir: filepath.Join(dir, "logs"),
		// Long ping timeouts: a restarted agent must come back as itself,
		// not after the master gave it up as unreachable.
		masterArgs: []string{"master", "--work_dir=" + filepath.Join(dir, "master"), "--port=" + strconv.Itoa(mport),
			"--agent_ping_timeout=1s", "--max_agent_ping_timeouts=60", "--allocation_interval=100ms"},
		agentArgs: []string{"agent", "--master=127.0.0.1:" + strconv.Itoa(mport), "--work_dir=" + filepath.Join(dir, "agent"),
			"--port=" + strconv.Itoa(aport), "--resources=cpus:2;mem:2048;disk:1024"},
		masterURL: "http://127.0.0.1:" + strconv.Itoa(mport),
		agentURL:  "http://127.0.0.1:" + strconv.Itoa(aport),
	}
	return c, os.MkdirAll(c.logDir, 0o755)
}

// freeLoopbackPort returns a port that was free a moment ago.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (c *crashCluster) masterAddr() string { return c.masterURL[len("http://"):] }

func (c *crashCluster) start(args []string, name string) (*crashProc, error) {
	f, err := os.OpenFile(filepath.Join(c.logDir, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fmt.Fprintf(f, "=== %s: agora %v\n", time.Now().Format(time.RFC3339Nano), args)
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start agora %s: %w", name, err)
	}
	p := &crashProc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

func (c *crashCluster) startMaster() (err error) {
	c.master, err = c.start(c.masterArgs, "master")
	return err
}

func (c *crashCluster) startAgent() (err error) {
	c.agent, err = c.start(c.agentArgs, "agent")
	return err
}

// kill9 kills the process itself (not its group: an agent's tasks outlive
// it) and waits for it to be gone.
func kill9(p *crashProc) error {
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
	for _, p := range []*crashProc{c.agent, c.master} {
		if p == nil {
			continue
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
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
