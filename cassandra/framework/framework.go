// Package framework runs a Cassandra cluster on agora through the
// scheduler SDK, as cassandra-mesos and the DC/OS Cassandra service did:
// for each node of the spec it dynamically reserves the node's cpus,
// memory, ports and disk for the framework's role, creates a persistent
// volume on the disk, and launches the node there with a generated
// cassandra.yaml. Seeds start first; each further node only once every
// node before it has joined the ring. A node whose process ends is
// launched again on its own reservation and volume, with its data. The
// framework's state (which node owns which agent, reservation, volume and
// host ID) is kept in its state directory, so a restarted scheduler adopts
// what exists instead of reserving again.
package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	schedpb "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cassandra/plan"
	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/frameworks/binstage"
	"github.com/agora-cluster/agora/frameworks/scheduler"
	"github.com/agora-cluster/agora/frameworks/servicepage"
	"github.com/agora-cluster/agora/frameworks/state"
)

const (
	// refuseIdle keeps offers away while no node needs one; a node that
	// ends revives them.
	refuseIdle = time.Minute
	// refuseBusy is for offers declined while a node waits for its turn
	// or its resources.
	refuseBusy = 2 * time.Second
	// relaunchMin and relaunchMax space the launches of a node that
	// keeps dying.
	relaunchMin = 2 * time.Second
	relaunchMax = time.Minute
)

// Labels on each reservation: which cluster and node it belongs to.
const (
	LabelCluster = "agora_cassandra_cluster"
	LabelNode    = "agora_cassandra_node"
)

// Config configures a Framework.
type Config struct {
	// Masters are the masters to subscribe with (host:port or zk://).
	Masters []string
	// Spec is the cluster (plan.Parse).
	Spec plan.Spec
	// Home is the Cassandra home installed on every agent (`agora dist
	// install cassandra`).
	Home string
	// StateDir keeps the framework ID and the nodes' placement; "" keeps
	// nothing, and the framework is torn down when Run ends.
	StateDir string
	// Teardown tears the framework down when Run ends even with a
	// StateDir (the nodes are killed; reservations and volumes stay).
	Teardown bool
	// Probe is how often each running node is asked over CQL about itself
	// (5 s).
	Probe time.Duration
	// FailoverTimeout is how long the master keeps the nodes running
	// while no scheduler is connected (a week).
	FailoverTimeout time.Duration
	// Logger receives the framework's logs; nil discards them.
	Logger *slog.Logger
	// Env are variables passed to the nodes (JAVA_HOME); nil means this
	// process's.
	Env map[string]string
	// User runs the nodes (default: this process's user).
	User string
	// Agora is the agora binary, at this path on every agent, that runs
	// each node's health check (`agora cassandra probe`, as the spec's
	// health_check says); "" gives the nodes' tasks no health check (the
	// framework's own probes still run). One below /tmp is copied into
	// StateDir. Where it is missing the check passes, saying so.
	Agora string
	// WebUIURL is the framework's webui_url, where its REST API serves the
	// ring's page (/ui/; / leads there): the master's framework page links
	// it. "" sets none.
	WebUIURL string
	// Secret, if set, is presented with the spec's principal (HTTP
	// Basic) on every call to the master and when reading its state, for
	// a master that authenticates frameworks and its read-only endpoints.
	Secret string
}

// Node is one Cassandra node of the cluster as the framework keeps it.
type Node struct {
	Name  string `json:"name"` // node-0, node-1, ...
	Index int    `json:"index"`
	Seed  bool   `json:"seed"`
	// AgentID and Host are where its reservation and volume are; "" until
	// it is placed.
	AgentID string `json:"agent_id,omitempty"`
	Host    string `json:"host,omitempty"`
	DC      string `json:"dc,omitempty"`
	Rack    string `json:"rack,omitempty"`
	// The node's ports, reserved with it.
	StoragePort uint64 `json:"storage_port,omitempty"`
	NativePort  uint64 `json:"native_port,omitempty"`
	JMXPort     uint64 `json:"jmx_port,omitempty"`
	// VolumeID is the persistent volume's ID.
	VolumeID string `json:"volume_id,omitempty"`
	// Reserved is true once its reservation is known to exist (seen in
	// an offer, or used by a running task).
	Reserved bool `json:"reserved"`
	// TaskID and State are its current (or last) task's.
	TaskID string `json:"task_id,omitempty"`
	State  string `json:"state,omitempty"`
	// Launches counts its tasks.
	Launches int `json:"launches"`
	// HostID is the node's host ID, from system.local once it joined.
	HostID string `json:"host_id,omitempty"`
	// Joined: the node has joined the ring (once); Up: its last probe
	// answered.
	Joined bool `json:"joined"`
	Up     bool `json:"up"`
	// Healthy is its task's last health check result, as the agent
	// reported it (absent until the first).
	Healthy *bool `json:"healthy,omitempty"`
	// ReplaceAddress is the storage address (host:port) of the node this
	// one replaces, passed as replace_address_first_boot until it has
	// joined; Replacements counts its replacements.
	ReplaceAddress string `json:"replace_address,omitempty"`
	Replacements   int    `json:"replacements,omitempty"`
	// Added: the node was added to scale the ring out (AddNodes), so it
	// joins a ring that may have data (joinRingDelay).
	Added bool `json:"added,omitempty"`
	// RepairPending: the node has joined in a replaced node's place and
	// its ranges are still to be repaired (it streamed each from one
	// replica); it counts as replaced once that repair is done.
	RepairPending bool `json:"repair_pending,omitempty"`
}

// NativeAddr is where clients reach the node (host:native_port).
func (n Node) NativeAddr() string { return n.Host + ":" + strconv.FormatUint(n.NativePort, 10) }

// Framework keeps a Cassandra cluster running on agora. Create it with
// New and run it with Run.
type Framework struct {
	cfg    Config
	spec   plan.Spec
	log    *slog.Logger
	driver *scheduler.Driver
	store  *store
	// changes is the page's change feed: saveLocked, through which every
	// change of the state goes, bumps it.
	changes *servicepage.Changes

	mu          sync.Mutex
	nodes       []*Node
	frameworkID string
	incarnation string
	stopping    bool
	// destroying: Destroy was called; the nodes are killed and their
	// reservations and volumes released.
	destroying bool
	destroyed  chan struct{}        // closed once the destruction has ended
	notUntil   map[string]time.Time // node → no relaunch before
	losses     map[string]int
	// restarting are nodes killed on purpose (a rolling restart): they
	// are launched again at once.
	restarting map[string]bool
	rolling    *Rolling
	// overrides are cassandra.yaml keys changed through the API, saved
	// with the nodes and applied over the spec's.
	overrides map[string]json.RawMessage
	// retired are placements the nodes left (a replaced node's), whose
	// reservations and volumes are released when their agent offers them.
	retired []Retired
	// goneSince is when a node that is not running was first seen with
	// its agent away from the master.
	goneSince map[string]time.Time
	// job is the last repair or cleanup; jobTasks counts their tasks.
	job      *Job
	jobTasks int
	// jobRetryAt: no repair of the framework's own starts before (a job
	// failed); repairedAt: the last full repair of the ring, from which
	// the spec's repair_interval counts.
	jobRetryAt time.Time
	repairedAt time.Time
}

// New checks cfg and prepares the framework, reading its state if kept.
func New(cfg Config) (*Framework, error) {
	if len(cfg.Masters) == 0 {
		return nil, errors.New("cassandra framework: no master address")
	}
	if cfg.Home == "" {
		return nil, errors.New("cassandra framework: no Cassandra home on the agents (--cassandra_home)")
	}
	spec := cfg.Spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if cfg.Probe <= 0 {
		cfg.Probe = 5 * time.Second
	}
	if cfg.FailoverTimeout <= 0 {
		cfg.FailoverTimeout = 7 * 24 * time.Hour
	}
	if cfg.Env == nil {
		cfg.Env = passedEnv()
	}
	if cfg.Agora != "" && cfg.StateDir != "" && binstage.UnderTmp(cfg.Agora) && !binstage.UnderTmp(cfg.StateDir) {
		var err error
		if cfg.Agora, err = binstage.Copy(cfg.Agora, cfg.StateDir); err != nil {
			return nil, fmt.Errorf("cassandra framework: the agora binary for the health checks: %w", err)
		}
	}
	f := &Framework{cfg: cfg, spec: spec, changes: servicepage.NewChanges(), log: cfg.Logger, notUntil: map[string]time.Time{}, losses: map[string]int{}, restarting: map[string]bool{},
		goneSince: map[string]time.Time{}, destroyed: make(chan struct{}), incarnation: strconv.FormatInt(time.Now().UnixNano()/1e6, 36)}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Agora != "" && binstage.UnderTmp(cfg.Agora) {
		f.log.Warn("the agora binary for the nodes' health checks is below /tmp, and so is the state directory (or there is none): "+
			"agents that give each task a /tmp of its own will not find it, and the nodes' health will not be checked; install agora elsewhere",
			"agora", cfg.Agora, "state_dir", cfg.StateDir)
	}
	if cfg.StateDir != "" {
		st, s, err := openStore(cfg.StateDir)
		if err != nil {
			return nil, fmt.Errorf("cassandra framework: %w", err)
		}
		if s.Cluster != "" && s.Cluster != spec.Name {
			return nil, fmt.Errorf("cassandra framework: the state directory %s holds cluster %q, not %q", cfg.StateDir, s.Cluster, spec.Name)
		}
		f.store, f.frameworkID, f.retired, f.destroying = st, s.FrameworkID, s.Retired, s.Destroying
		// A job or rolling restart under way goes on (the job's task is
		// reconciled), and a node's agent keeps the time it has been away.
		f.job, f.repairedAt, f.rolling = s.Job, s.RepairedAt, s.Rolling
		for name, since := range s.GoneSince {
			f.goneSince[name] = since
		}
		if len(s.YAML) > 0 {
			next := f.spec
			next.YAML = maps.Clone(s.YAML)
			if err := next.Validate(); err != nil {
				return nil, fmt.Errorf("cassandra framework: the cassandra.yaml keys saved in %s: %w", cfg.StateDir, err)
			}
			f.spec, f.overrides = next, next.YAML
		}
		for i := range s.Nodes {
			n := s.Nodes[i]
			if n.TaskID != "" && !isTerminal(n.State) {
				// Unknown until the master answers the reconciliation.
				n.State = mesos.TASK_UNKNOWN.String()
			}
			n.Up = false
			// Nodes past the spec's count were added (AddNodes) by a
			// framework that did not mark them yet.
			n.Added = n.Added || n.Index >= spec.Nodes
			f.nodes = append(f.nodes, &n)
		}
	}
	if r := f.rolling; r != nil && !r.Done() && r.Current != "" {
		if n := f.node(r.Current); n == nil || n.TaskID == r.Killed {
			// Whether its kill was sent is not known: it restarts again
			// (still one node at a time).
			r.Pending = append([]string{r.Current}, r.Pending...)
			r.Current, r.Killed = "", ""
		}
	}
	// A spec that asks for more nodes than the saved state holds scales
	// the ring out, as AddNodes does: the new nodes join a ring with data.
	ringExists := len(f.nodes) > 0
	for i := len(f.nodes); i < spec.Nodes; i++ {
		f.nodes = append(f.nodes, &Node{Name: "node-" + strconv.Itoa(i), Index: i, Seed: i < spec.Seeds, Added: ringExists})
	}
	// Nodes added since the spec was written (AddNodes) stay.
	f.spec.Nodes = len(f.nodes)
	return f, nil
}

// MaxNodes bounds a ring's size.
const MaxNodes = 1000

// AddNodes scales the ring out by n nodes (not seeds): each is placed, as
// the first ones were, once every node before it has joined. The new
// count is saved with the nodes.
func (f *Framework) AddNodes(ctx context.Context, n int) error {
	f.mu.Lock()
	if f.destroying {
		f.mu.Unlock()
		return ErrDestroying
	}
	if n < 1 || len(f.nodes)+n > MaxNodes {
		f.mu.Unlock()
		return fmt.Errorf("add %d nodes to %d: give 1 to %d more", n, len(f.nodes), MaxNodes-len(f.nodes))
	}
	for range n {
		i := len(f.nodes)
		f.nodes = append(f.nodes, &Node{Name: "node-" + strconv.Itoa(i), Index: i, Added: true})
	}
	f.spec.Nodes = len(f.nodes)
	f.saveLocked()
	d, total := f.driver, len(f.nodes)
	f.mu.Unlock()
	f.log.Info("scaling out", "added", n, "nodes", total)
	if d != nil {
		if err := d.Revive(ctx); err != nil {
			f.log.Debug("revive", "err", err)
		}
	}
	return nil
}

// Nodes is a copy of the nodes, in order.
func (f *Framework) Nodes() []Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Node, len(f.nodes))
	for i, n := range f.nodes {
		out[i] = *n
	}
	return out
}

// Spec is the cluster's spec (Nodes counts the nodes added since).
func (f *Framework) Spec() plan.Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.spec
}

// FrameworkID is the framework's ID once subscribed.
func (f *Framework) FrameworkID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frameworkID
}

// placedLocked says whether any node has an agent. Call with f.mu held.
func (f *Framework) placedLocked() bool {
	return slices.ContainsFunc(f.nodes, func(n *Node) bool { return n.AgentID != "" })
}

// CheckFit asks the master for its agents and refuses a spec whose nodes
// they cannot hold, before anything is reserved; while the cluster has no
// agent yet it asks again until ctx ends. A cluster already placed is not
// checked again: its nodes hold their agents' resources.
func (f *Framework) CheckFit(ctx context.Context) error {
	f.mu.Lock()
	placed := f.placedLocked()
	f.mu.Unlock()
	if placed {
		return nil
	}
	for {
		agents, err := f.checkFitOnce(ctx)
		// A cluster that is starting has no agents yet: wait for one
		// (as long as ctx allows) rather than refuse the spec.
		if agents > 0 || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

// checkFitOnce is one look at the agents: how many, and the verdict.
func (f *Framework) checkFitOnce(ctx context.Context) (int, error) {
	var last error
	for _, m := range f.cfg.Masters {
		st, err := f.stateClient().Master(ctx, m)
		if err != nil {
			last = err
			continue
		}
		var agents []plan.Agent
		for _, a := range st.Slaves {
			agents = append(agents, plan.Agent{ID: a.ID, Host: a.Hostname, CPUs: a.Resources.CPUs, Mem: a.Resources.Mem, Disk: a.Resources.Disk})
		}
		for _, fw := range st.Frameworks {
			if fw.Name == frameworkName(f.spec) && fw.Active && fw.ID != f.frameworkID {
				return len(agents), fmt.Errorf("cassandra spec: a cluster named %q is already running (framework %s)", f.spec.Name, fw.ID)
			}
		}
		return len(agents), f.Spec().Fit(agents)
	}
	return 0, fmt.Errorf("cassandra framework: ask the master for its agents: %w", last)
}

func frameworkName(s plan.Spec) string { return "cassandra-" + s.Name }

// stateClient reads the master's state, with the framework's credential
// if it has a secret.
func (f *Framework) stateClient() state.Client {
	if f.cfg.Secret == "" {
		return state.Client{}
	}
	return state.Client{HTTP: &http.Client{Timeout: 10 * time.Second,
		Transport: &auth.Transport{Credential: auth.Credential{Principal: f.principal(), Secret: f.cfg.Secret}}}}
}

// Run checks the spec against the cluster's agents, subscribes and keeps
// the nodes running until ctx ends. With a state directory the nodes stay
// for the next scheduler; without one the framework is torn down (the
// master kills the nodes; the reservations and volumes stay). It returns an
// error if the spec does not fit or the master refuses the framework.
func (f *Framework) Run(ctx context.Context) error {
	f.mu.Lock()
	destroying := f.destroying
	f.mu.Unlock()
	if !destroying {
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		err := f.CheckFit(cctx)
		ccancel()
		if err != nil {
			return err
		}
	}
	checkpoint := true
	role := f.spec.Role
	principal := f.principal()
	failover := f.cfg.FailoverTimeout.Seconds()
	user := f.cfg.User
	if user == "" {
		user = currentUser()
	}
	info := mesos.FrameworkInfo{Name: frameworkName(f.spec), User: user, Checkpoint: &checkpoint, Role: &role,
		Principal: &principal, FailoverTimeout: &failover}
	if f.cfg.WebUIURL != "" {
		info.WebUiURL = &f.cfg.WebUIURL
	}
	f.mu.Lock()
	if f.frameworkID != "" {
		info.ID = &mesos.FrameworkID{Value: f.frameworkID}
	}
	f.mu.Unlock()
	var credPrincipal string // HTTP Basic only with a secret
	if f.cfg.Secret != "" {
		credPrincipal = principal
	}
	d, err := scheduler.New(scheduler.Config{Masters: f.cfg.Masters, Framework: info, Principal: credPrincipal, Secret: f.cfg.Secret,
		Logger: f.log.With("component", "scheduler-driver")}, scheduler.Simple(f.log, f.subscribed, f.offers, f.update))
	if err != nil {
		return fmt.Errorf("cassandra framework: %w", err)
	}
	f.mu.Lock() // the API reads it (masterURL)
	f.driver = d
	f.mu.Unlock()
	f.log.Info("cassandra framework starting", "cluster", f.spec.Name, "nodes", f.spec.Nodes, "home", f.cfg.Home)
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); f.watch(runCtx) }()
	defer func() { cancel(); <-watchDone }()
	destroyed := false
	select {
	case err := <-done:
		return fmt.Errorf("cassandra framework: %w", err)
	case <-ctx.Done():
	case <-f.destroyed:
		destroyed = true
	}
	f.mu.Lock()
	f.stopping = true
	f.mu.Unlock()
	if destroyed {
		f.forgetState()
	} else if f.store != nil && !f.cfg.Teardown {
		cancel()
		<-done
		return nil
	}
	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer tcancel()
	if err := d.Teardown(tctx); err != nil {
		f.log.Warn("tear down", "err", err)
	}
	cancel()
	<-done
	return nil
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

// subscribed records the framework ID and reconciles the nodes' tasks:
// those still running are adopted, the others relaunched on their
// reservations.
func (f *Framework) subscribed(ctx context.Context, id string) {
	f.mu.Lock()
	f.frameworkID = id
	var tasks []schedpb.Call_Reconcile_Task
	for _, n := range f.nodes {
		if n.TaskID != "" {
			tasks = append(tasks, scheduler.ReconcileTask(n.TaskID, n.AgentID))
		}
	}
	if j := f.job; j != nil && !j.Ended() && j.TaskID != "" {
		agent := ""
		if n := f.node(j.Current); n != nil {
			agent = n.AgentID
		}
		tasks = append(tasks, scheduler.ReconcileTask(j.TaskID, agent))
	}
	f.saveLocked()
	f.mu.Unlock()
	f.log.Info("subscribed", "framework_id", id, "tasks", len(tasks))
	// Ask about every task, known or not: tasks of an earlier life this
	// state does not name are killed (see update).
	if err := f.driver.Reconcile(ctx, nil); err != nil {
		f.log.Warn("reconcile", "err", err)
	}
	if len(tasks) > 0 {
		if err := f.driver.Reconcile(ctx, tasks); err != nil {
			f.log.Warn("reconcile", "err", err)
		}
	}
	if err := f.driver.Revive(ctx); err != nil {
		f.log.Debug("revive", "err", err)
	}
}

// update follows the nodes' tasks. A node's task that ends is launched
// again on the node's reservation and volume, after a backoff that grows
// while it keeps ending.
func (f *Framework) update(ctx context.Context, st mesos.TaskStatus) {
	id := st.TaskID.Value
	state := st.GetState()
	f.mu.Lock()
	if f.jobUpdateLocked(st) {
		more := scheduler.IsTerminal(state) && !f.job.Ended()
		f.mu.Unlock()
		if more {
			f.revive() // the next node's agent's offers were declined
		}
		return
	}
	var n *Node
	for _, x := range f.nodes {
		if x.TaskID == id {
			n = x
		}
	}
	if n == nil {
		f.mu.Unlock()
		if !scheduler.IsTerminal(state) && state != mesos.TASK_UNKNOWN {
			f.log.Info("killing a task it does not know", "task", id)
			_ = f.driver.Kill(ctx, id, st.GetAgentID().GetValue())
		}
		return
	}
	n.State = state.String()
	if state == mesos.TASK_RUNNING {
		n.Reserved = true
	}
	if st.Healthy != nil {
		healthy := *st.Healthy
		n.Healthy = &healthy
	}
	if !scheduler.IsTerminal(state) {
		f.saveLocked()
		f.mu.Unlock()
		return
	}
	n.Up = false
	restarting := f.restarting[n.Name]
	delete(f.restarting, n.Name)
	if !restarting {
		f.losses[n.Name]++
		f.notUntil[n.Name] = time.Now().Add(min(relaunchMin<<min(f.losses[n.Name]-1, 16), relaunchMax))
	}
	f.saveLocked()
	stopping, destroying := f.stopping, f.destroying
	if destroying && !stopping {
		f.retireStoppedLocked()
	}
	f.mu.Unlock()
	if stopping {
		return
	}
	if destroying {
		// Its agent's next offer releases its reservation and volume.
		if err := f.driver.Revive(ctx); err != nil {
			f.log.Debug("revive", "err", err)
		}
		return
	}
	if restarting {
		f.log.Info("node stopped for its restart; launching it again on its volume", "node", n.Name, "task", id)
	} else {
		what := "node's task ended; launching it again on its volume"
		if st.Healthy != nil && !*st.Healthy {
			what = "node's task was killed for failing its health check; launching it again on its volume"
		}
		f.log.Warn(what, "node", n.Name, "task", id, "state", state.String(),
			"reason", st.GetReason().String(), "message", st.GetMessage())
	}
	if err := f.driver.Revive(ctx); err != nil {
		f.log.Debug("revive", "err", err)
	}
}

// revive asks the master for offers again, declined ones included.
func (f *Framework) revive() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.driver.Revive(ctx); err != nil {
		f.log.Debug("revive", "err", err)
	}
}

func isTerminal(state string) bool {
	v, ok := mesos.TaskState_value[state]
	return ok && scheduler.IsTerminal(mesos.TaskState(v))
}
