package distribution

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	schedpb "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/frameworks/scheduler"
	"github.com/agora-cluster/agora/hadoop/conf"
)

// The JobTracker's own keys (mesos/hadoop runs the JobTracker outside
// Mesos, so these are agora's).
const (
	KeyJobTrackerCPUs = "agora.hadoop.jobtracker.cpus"
	KeyJobTrackerMem  = "agora.hadoop.jobtracker.mem"
	// KeyJobTrackerHTTPAddress is Hadoop's key for the JobTracker's web UI.
	KeyJobTrackerHTTPAddress = "mapred.job.tracker.http.address"
	KeySystemDir             = "mapred.system.dir"
	KeyStagingRootDir        = "mapreduce.jobtracker.staging.root.dir"
)

// JobTrackerCommand starts the JobTracker from the Hadoop directory.
const JobTrackerCommand = "./bin/hadoop jobtracker"

// DefaultSharedDir holds the JobTracker's system and staging directories
// when the properties leave them to Hadoop (under /tmp, which isolated
// containers do not share): clients write job files there and TaskTrackers
// read them, so with the local file system it must be one all of them see.
const DefaultSharedDir = "/var/tmp/hadoop-mapred"

// JobTrackerSettings say how to launch a JobTracker.
type JobTrackerSettings struct {
	// URI or Home holds the distribution, as for the trackers.
	URI, Home string
	// JVMOpts precede the heap settings in HADOOP_OPTS.
	JVMOpts string
	// CPUs and Mem are the task's resources.
	CPUs, Mem float64
	Role      string
	// Props go to its mapred-site.xml, with the addresses from the offer.
	Props map[string]string
	// Env is passed on (JAVA_HOME, JAVA_LIBRARY_PATH).
	Env map[string]string
}

// JobTrackerSettingsFrom reads and checks the properties: the
// distribution (mapred.mesos.executor.uri or .directory), JVM options, and
// agora.hadoop.jobtracker.{cpus,mem} (default 1 and 1024). Every property
// also goes to the JobTracker's mapred-site.xml; the system and staging
// directories default to DefaultSharedDir.
func JobTrackerSettingsFrom(props map[string]string) (JobTrackerSettings, error) {
	probe := map[string]string{KeyJobTracker: "probe:1"}
	for k, v := range props {
		probe[k] = v
	}
	probe[KeyJobTracker] = "probe:1"
	ts, err := SettingsFrom(probe)
	if err != nil {
		return JobTrackerSettings{}, err
	}
	c := conf.New()
	for k, v := range props {
		c.Set(k, v)
	}
	s := JobTrackerSettings{URI: ts.URI, Home: ts.Home, JVMOpts: ts.JVMOpts, Role: ts.Role, Props: map[string]string{}}
	if s.CPUs, err = c.Float(KeyJobTrackerCPUs, 1); err == nil && s.CPUs <= 0 {
		err = fmt.Errorf("property %s=%g: must be above 0", KeyJobTrackerCPUs, s.CPUs)
	}
	if err != nil {
		return JobTrackerSettings{}, err
	}
	if s.Mem, err = c.Float(KeyJobTrackerMem, 1024); err == nil && s.Mem < 64 {
		err = fmt.Errorf("property %s=%g: a JobTracker needs at least 64 MB", KeyJobTrackerMem, s.Mem)
	}
	if err != nil {
		return JobTrackerSettings{}, err
	}
	for k, v := range props {
		s.Props[k] = v
	}
	delete(s.Props, KeyJobTracker)
	if _, ok := s.Props[KeySystemDir]; !ok {
		s.Props[KeySystemDir] = DefaultSharedDir + "/system"
	}
	if _, ok := s.Props[KeyStagingRootDir]; !ok {
		s.Props[KeyStagingRootDir] = DefaultSharedDir + "/staging"
	}
	if _, ok := s.Props["hadoop.tmp.dir"]; !ok {
		s.Props["hadoop.tmp.dir"] = SandboxPlaceholder + "/tmp"
	}
	return s, nil
}

// taskInfo is the JobTracker's task on offer o's agent, listening on the
// two ports (RPC, HTTP) of the offer's host.
func (s JobTrackerSettings) taskInfo(id string, o *mesos.Offer, rpc, http uint64, res []mesos.Resource) mesos.TaskInfo {
	props := map[string]string{}
	for k, v := range s.Props {
		props[k] = v
	}
	props[KeyJobTracker] = net.JoinHostPort(o.Hostname, strconv.FormatUint(rpc, 10))
	props[KeyJobTrackerHTTPAddress] = net.JoinHostPort(o.Hostname, strconv.FormatUint(http, 10))
	env := map[string]string{
		"HADOOP_OPTS": HadoopOpts(s.JVMOpts, s.Mem),
		SiteEnv:       string(SiteXML(props)),
	}
	for _, k := range passEnv {
		if v := s.Env[k]; v != "" {
			env[k] = v
		}
	}
	script := Settings{URI: s.URI, Home: s.Home, Command: JobTrackerCommand}.Script()
	shell := true
	ci := mesos.CommandInfo{Shell: &shell, Value: &script, Environment: &mesos.Environment{}}
	if s.URI != "" {
		extract := true
		ci.URIs = []mesos.CommandInfo_URI{{Value: s.URI, Extract: &extract}}
	}
	for _, k := range sortedKeys(env) {
		v := env[k]
		ci.Environment.Variables = append(ci.Environment.Variables, mesos.Environment_Variable{Name: k, Value: &v})
	}
	return mesos.TaskInfo{
		Name: "Hadoop JobTracker", TaskID: mesos.TaskID{Value: id}, AgentID: o.AgentID,
		Resources: res, Command: &ci,
	}
}

// JobTrackerConfig configures a JobTrackerFramework.
type JobTrackerConfig struct {
	Masters  []string
	Settings JobTrackerSettings
	// Name is the framework's name ("Hadoop JobTracker" by default).
	Name   string
	User   string
	Logger *slog.Logger
}

// JobTrackerFramework keeps one JobTracker of a Hadoop distribution
// running on the cluster, on ports taken from its offer, and relaunches it
// (on the next offer, with new addresses) when it ends.
type JobTrackerFramework struct {
	cfg    JobTrackerConfig
	log    *slog.Logger
	rng    *rand.Rand
	driver *scheduler.Driver

	mu       sync.Mutex
	next     int
	current  *JobTracker
	running  chan struct{} // closed when the current JobTracker runs
	stopping bool
}

// JobTracker is the launched JobTracker.
type JobTracker struct {
	TaskID  string `json:"task_id"`
	AgentID string `json:"agent_id"`
	// Address is mapred.job.tracker (host:port); HTTP its web UI.
	Address string `json:"address"`
	HTTP    string `json:"http"`
	State   string `json:"state"`
}

// NewJobTracker checks cfg and prepares the framework.
func NewJobTracker(cfg JobTrackerConfig) (*JobTrackerFramework, error) {
	if len(cfg.Masters) == 0 {
		return nil, errors.New("hadoop jobtracker: no master address")
	}
	s := &cfg.Settings
	if (s.URI == "") == (s.Home == "") || s.Props == nil || s.CPUs <= 0 || s.Mem <= 0 {
		return nil, errors.New("hadoop jobtracker: settings are incomplete; make them with JobTrackerSettingsFrom")
	}
	if s.Env == nil {
		s.Env = passedEnv()
	}
	if cfg.Name == "" {
		cfg.Name = "Hadoop JobTracker"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &JobTrackerFramework{cfg: cfg, log: log, running: make(chan struct{}),
		rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x6a74))}, nil
}

// Current is the JobTracker launched last and not yet ended, if any.
func (f *JobTrackerFramework) Current() (JobTracker, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.current == nil {
		return JobTracker{}, false
	}
	return *f.current, true
}

// Running is closed once the current JobTracker's task runs; a
// relaunched JobTracker gets a new channel (take it again after Current
// changes).
func (f *JobTrackerFramework) Running() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

// Run subscribes and keeps a JobTracker running until ctx ends; then it
// tears the framework down (which stops the JobTracker) and returns nil.
func (f *JobTrackerFramework) Run(ctx context.Context) error {
	role := f.cfg.Settings.Role
	if role == "" {
		role = "*"
	}
	info := mesos.FrameworkInfo{Name: f.cfg.Name, User: f.cfg.User, Role: &role}
	d, err := scheduler.New(scheduler.Config{Masters: f.cfg.Masters, Framework: info,
		Logger: f.log.With("component", "scheduler-driver")}, jtHandler{f})
	if err != nil {
		return fmt.Errorf("hadoop jobtracker: %w", err)
	}
	f.driver = d
	return runDriver(ctx, d, f.log, "hadoop jobtracker", func() {
		f.mu.Lock()
		f.stopping = true
		f.mu.Unlock()
	})
}

type jtHandler struct{ f *JobTrackerFramework }

var _ scheduler.Handler = jtHandler{}

func (h jtHandler) Subscribed(ctx context.Context, s *schedpb.Event_Subscribed) {
	h.f.log.Info("subscribed", "framework_id", s.FrameworkID.Value)
}
func (h jtHandler) Offers(ctx context.Context, os []mesos.Offer)    { h.f.offers(ctx, os) }
func (h jtHandler) Rescind(context.Context, mesos.OfferID)          {}
func (h jtHandler) Update(ctx context.Context, st mesos.TaskStatus) { h.f.update(ctx, st) }
func (h jtHandler) Message(context.Context, *schedpb.Event_Message) {}
func (h jtHandler) Failure(context.Context, *schedpb.Event_Failure) {}
func (h jtHandler) Error(_ context.Context, msg string) {
	h.f.log.Error("the master removed the framework", "message", msg)
}
func (h jtHandler) Heartbeat(context.Context)           {}
func (h jtHandler) Disconnected(context.Context, error) {}

// offers launches the JobTracker on the first offer that holds it while
// none runs, and declines the rest.
func (f *JobTrackerFramework) offers(ctx context.Context, offs []mesos.Offer) {
	var decline []mesos.OfferID
	for i := range offs {
		o := &offs[i]
		f.mu.Lock()
		busy := f.current != nil || f.stopping
		f.mu.Unlock()
		if busy || !f.launch(ctx, o) {
			decline = append(decline, o.ID)
		}
	}
	if len(decline) > 0 {
		if err := f.driver.Decline(ctx, decline, refuseBusy); err != nil {
			f.log.Debug("decline offers", "err", err)
		}
	}
}

func (f *JobTrackerFramework) launch(ctx context.Context, o *mesos.Offer) bool {
	s := f.cfg.Settings
	ports, portRes, ok := pickPorts(o, 2, f.rng)
	if !ok {
		f.log.Info("declining offer", "agent", o.AgentID.Value, "reason", "fewer than 2 ports (a JobTracker needs an RPC and an HTTP port)")
		return false
	}
	need := offers.Need{CPUs: s.CPUs, Mem: s.Mem}
	pool := offers.NewPool(o)
	res, ok := pool.Take(need)
	if !ok {
		f.log.Info("declining offer", "agent", o.AgentID.Value, "reason", "too small for the JobTracker: "+pool.Shortfall(need))
		return false
	}
	f.mu.Lock()
	f.next++
	id := fmt.Sprintf("Job_Tracker_%d", f.next)
	task := s.taskInfo(id, o, ports[0], ports[1], append(res, portRes...))
	jt := &JobTracker{TaskID: id, AgentID: o.AgentID.Value, State: mesos.TASK_STAGING.String(),
		Address: net.JoinHostPort(o.Hostname, strconv.FormatUint(ports[0], 10)),
		HTTP:    net.JoinHostPort(o.Hostname, strconv.FormatUint(ports[1], 10))}
	f.current = jt
	f.mu.Unlock()
	f.log.Info("launching the JobTracker", "task", id, "agent", o.AgentID.Value, "address", jt.Address, "http", jt.HTTP)
	if err := f.driver.Launch(ctx, []mesos.OfferID{o.ID}, []mesos.TaskInfo{task}, scheduler.RefuseFor(refuseShort)); err != nil {
		f.log.Warn("launch the JobTracker", "err", err)
		f.mu.Lock()
		f.current = nil
		f.mu.Unlock()
		return false
	}
	return true
}

// update follows the JobTracker's task; one that ends is relaunched on a
// later offer.
func (f *JobTrackerFramework) update(ctx context.Context, st mesos.TaskStatus) {
	f.mu.Lock()
	jt := f.current
	if jt == nil || jt.TaskID != st.TaskID.Value {
		f.mu.Unlock()
		return
	}
	state := st.GetState()
	jt.State = state.String()
	if state == mesos.TASK_RUNNING {
		select {
		case <-f.running:
		default:
			close(f.running)
		}
	}
	if !scheduler.IsTerminal(state) {
		f.mu.Unlock()
		return
	}
	f.current = nil
	f.running = make(chan struct{})
	stopping := f.stopping
	f.mu.Unlock()
	if stopping {
		return
	}
	f.log.Warn("the JobTracker ended; launching another", "task", jt.TaskID, "state", jt.State,
		"reason", st.GetReason().String(), "message", st.GetMessage())
	if err := f.driver.Revive(ctx); err != nil {
		f.log.Debug("revive offers", "err", err)
	}
}
