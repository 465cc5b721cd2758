// Package clustertest runs real in-process agora clusters for tests: a
// master and agents, each on its own loopback TCP port, talking over the
// real HTTP protocols. Nothing is mocked; only the process boundary is
// saved.
package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/registry"
	"github.com/agora-cluster/agora/frameworks/state"
)

// Options shape a test cluster.
type Options struct {
	// Agents is the number of agents (default 1).
	Agents int
	// AgentResources in Mesos syntax (default "cpus:4;mem:4096;disk:10000;ports:[31000-32000]").
	AgentResources string
	// Master and Agent adjust the configurations before start.
	Master func(*master.Config)
	Agent  func(i int, c *agent.Config)
	// Registry, if set, is the master's registry (default: in memory).
	Registry registry.Registry
	// Verbose sends the cluster's logs to the test log.
	Verbose bool
	// UI, if set, is served by the master for paths it does not own (the
	// web UI), as `agora dev` does.
	UI http.Handler
	// Credential, if set, is presented on the cluster's own reads of the
	// master (State, WaitFor), for a master that asks for credentials.
	Credential auth.Credential
}

// Cluster is a running test cluster.
type Cluster struct {
	t      testing.TB
	opts   Options
	Master *master.Master
	// MasterAddr is host:port; MasterURL is http://host:port.
	MasterAddr string
	MasterURL  string
	Agents     []*RunningAgent

	masterCancel context.CancelFunc
	masterDone   chan struct{}
	srv          *http.Server
	logger       *slog.Logger
	base         string // parent of the agents' work directories
}

// RunningAgent is one agent of the cluster.
type RunningAgent struct {
	*agent.Agent
	Config agent.Config
	cancel context.CancelFunc
	done   chan error
}

// Start runs a cluster and stops it when the test ends.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Agents == 0 {
		opts.Agents = 1
	}
	if opts.AgentResources == "" {
		opts.AgentResources = "cpus:4;mem:4096;disk:10000;ports:[31000-32000]"
	}
	// The agents' directories are made before Stop is registered, so they
	// are removed only after the agents have stopped (cleanups run last
	// first).
	c := &Cluster{t: t, opts: opts, base: t.TempDir()}
	c.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if opts.Verbose || os.Getenv("AGORA_TEST_LOG") != "" {
		c.logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if c.opts.Registry == nil {
		// Kept across StopMaster and StartMaster, as a file would be.
		c.opts.Registry = registry.NewMemory()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.MasterAddr = ln.Addr().String()
	c.MasterURL = "http://" + c.MasterAddr
	c.runMaster(ln)
	t.Cleanup(c.Stop)
	for i := 0; i < opts.Agents; i++ {
		c.StartAgent(i, "")
	}
	c.WaitFor("agents registered", func(s *State) bool { return len(s.Slaves) == opts.Agents })
	// The master lists an agent before the agent has read its REGISTERED:
	// wait until every agent knows its ID too.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		all := true
		for _, a := range c.Agents {
			all = all && a.ID() != ""
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the agents to learn their IDs")
		}
	}
	return c
}

// runMaster starts a master on ln with the cluster's registry.
func (c *Cluster) runMaster(ln net.Listener) {
	c.t.Helper()
	cfg := master.Config{
		Hostname:           "localhost",
		IP:                 "127.0.0.1",
		Port:               ln.Addr().(*net.TCPAddr).Port,
		AllocationInterval: 100 * time.Millisecond,
		Registry:           c.opts.Registry,
		Logger:             c.logger,
	}
	if c.opts.Master != nil {
		c.opts.Master(&cfg)
	}
	m, err := master.New(cfg)
	if err != nil {
		ln.Close()
		c.t.Fatal(err)
	}
	c.Master = m
	ctx, cancel := context.WithCancel(context.Background())
	c.masterCancel = cancel
	c.masterDone = make(chan struct{})
	c.srv = m.Server(c.opts.UI)
	go func() { m.Run(ctx); close(c.masterDone) }()
	go c.srv.Serve(ln)
}

// StopMaster stops the master as a crash would, as far as its peers can
// tell: its connections break and its memory is lost; the registry stays.
// The agents keep running and try to register again.
func (c *Cluster) StopMaster() {
	if c.masterCancel == nil {
		return
	}
	c.srv.Close()
	c.masterCancel()
	<-c.masterDone
	c.masterCancel = nil
	// Kept-alive connections to it are dead: the next request to the
	// master's address (a POST is not retried) must not pick one.
	if tr, ok := http.DefaultTransport.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
}

// StartMaster starts a new master (a new master ID, nothing in memory) on
// the stopped one's address and registry, as a restarted master process.
func (c *Cluster) StartMaster() {
	c.t.Helper()
	if c.masterCancel != nil {
		c.t.Fatal("clustertest: StartMaster while the master runs; StopMaster first")
	}
	var ln net.Listener
	var err error
	// The old listener is closed; its port is free again at once.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ln, err = net.Listen("tcp", c.MasterAddr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		c.t.Fatalf("clustertest: listen on the master's address %s again: %v", c.MasterAddr, err)
	}
	c.runMaster(ln)
}

// StartAgent starts agent i (a new one if i == len(Agents)); workDir ""
// means a fresh temporary directory, or the agent's previous one on restart.
func (c *Cluster) StartAgent(i int, workDir string) *RunningAgent {
	c.t.Helper()
	var cfg agent.Config
	if i < len(c.Agents) && c.Agents[i] != nil {
		cfg = c.Agents[i].Config
	} else {
		cfg = agent.Config{
			MasterAddr:          c.MasterAddr,
			WorkDir:             filepath.Join(c.base, fmt.Sprintf("agent%d", i)),
			Hostname:            "localhost",
			Resources:           c.opts.AgentResources,
			RegistrationBackoff: 50 * time.Millisecond,
			StatusUpdateRetry:   500 * time.Millisecond,
			KillGracePeriod:     time.Second,
			Logger:              c.logger.With("agent", i),
		}
		if c.opts.Agent != nil {
			c.opts.Agent(i, &cfg)
		}
	}
	if workDir != "" {
		cfg.WorkDir = workDir
	}
	cfg.Listener = c.agentListener(cfg.Listener)
	a, err := agent.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ra := &RunningAgent{Agent: a, Config: cfg, cancel: cancel, done: make(chan error, 1)}
	go func() { ra.done <- a.Run(ctx) }()
	for len(c.Agents) <= i {
		c.Agents = append(c.Agents, nil)
	}
	c.Agents[i] = ra
	return ra
}

// agentListener listens for an agent: on the address it had before (prev)
// when it restarts, as a real agent comes back on its configured port —
// the master tells a returning agent from an impostor by hostname, port
// and address — or on a fresh port if that one has been taken meanwhile.
func (c *Cluster) agentListener(prev net.Listener) net.Listener {
	if prev != nil {
		if ln, err := net.Listen("tcp", prev.Addr().String()); err == nil {
			return ln
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	return ln
}

// Stop stops agent i and waits for it.
func (ra *RunningAgent) Stop() {
	if ra == nil || ra.cancel == nil {
		return
	}
	ra.cancel()
	select {
	case <-ra.done:
	case <-time.After(30 * time.Second):
	}
	ra.cancel = nil
}

// Stop stops the whole cluster (agents first).
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for _, a := range c.Agents {
		wg.Add(1)
		go func(a *RunningAgent) { defer wg.Done(); a.Stop() }(a)
	}
	wg.Wait()
	c.StopMaster()
}

// State is /master/state as tools read it.
type State = state.Master

// State fetches /master/state.
func (c *Cluster) State() (*State, error) {
	req, err := http.NewRequest(http.MethodGet, c.MasterURL+"/master/state", nil)
	if err != nil {
		return nil, err
	}
	c.opts.Credential.Apply(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/master/state: %s", resp.Status)
	}
	var s State
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, fmt.Errorf("decode /master/state: %w", err)
	}
	return &s, nil
}

// WaitFor polls /master/state until cond holds, failing the test after a
// generous deadline (60 s; functional, not a timing assertion).
func (c *Cluster) WaitFor(what string, cond func(*State) bool) *State {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last *State
	for time.Now().Before(deadline) {
		s, err := c.State()
		if err == nil {
			last = s
			if cond(s) {
				return s
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := json.Marshal(last)
	c.t.Fatalf("timed out waiting for %s; last state: %s", what, b)
	return nil
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
