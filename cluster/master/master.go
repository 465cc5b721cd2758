// Package master is agora's master: it admits agents, keeps frameworks and
// their tasks, turns allocator decisions into offers, validates launches and
// routes status updates, and serves the Mesos v1 scheduler API and Mesos's
// read-only JSON endpoints.
//
// One goroutine (the loop) owns all mutable state. HTTP handlers and timers
// hand it closures through do/await; streams to frameworks and agents are
// fed through outboxes so the loop never blocks on a slow peer, and
// registry writes through a registrar so it never waits for the disk.
package master

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/allocator"
	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/registry"
)

// Config holds the master's flags (Mesos names in comments).
type Config struct {
	// ID is the master's ID in MasterInfo; a fresh UUID when empty. A
	// master that stands for election publishes its MasterInfo (Info)
	// before it is created, so it picks the ID up front.
	ID string
	// Hostname and Port are advertised in MasterInfo and offers' URLs.
	Hostname string
	IP       string
	Port     int

	AllocationInterval   time.Duration // --allocation_interval (1secs)
	AgentPingTimeout     time.Duration // --agent_ping_timeout (15secs)
	MaxAgentPingTimeouts int           // --max_agent_ping_timeouts (5)
	HeartbeatInterval    time.Duration // scheduler HEARTBEAT events (15secs)
	// MaxSubscriberBacklog is how many events a scheduler or operator
	// subscriber may fall behind before its stream is cut (it subscribes
	// again and reconciles); default DefaultMaxSubscriberBacklog.
	MaxSubscriberBacklog          int
	OfferTimeout                  time.Duration // --offer_timeout (0: offers never time out)
	MaxCompletedFrameworks        int           // --max_completed_frameworks (50)
	MaxCompletedTasksPerFramework int           // --max_completed_tasks_per_framework (1000)
	MinAllocatable                []mesos.Resources
	// Flags is reported verbatim by /master/state and /flags.
	Flags map[string]string

	Registry registry.Registry
	Logger   *slog.Logger
	// HTTP says which other origins' pages may read the master's
	// endpoints and whether /debug/pprof is served (default: neither).
	HTTP api.HTTPOptions
	// ACLs (--acls) and RateLimits (--rate_limits): nil allows and
	// limits nothing (authz.go, ratelimit.go).
	ACLs       *auth.ACLs
	RateLimits *auth.RateLimits
	// AgentTLS, if set, is how the master calls its agents (the relay of
	// their /state and sandbox files, agentproxy.go): over HTTPS,
	// verifying their certificates. AgentTLSDowngrade asks an agent that
	// answers in plain HTTP again in plain HTTP
	// (--ssl_support_downgrade).
	AgentTLS          *tls.Config
	AgentTLSDowngrade bool
	// Now is the clock (tests may replace it); defaults to time.Now.
	Now func() time.Time
	// LookupHost resolves the recorded hostname of an agent that
	// re-registers a record without a principal (authz.go); tests may
	// replace it. Defaults to net.DefaultResolver.LookupHost.
	LookupHost func(ctx context.Context, host string) ([]string, error)
	// AgentReregisterTimeout is how long agents the registry admitted
	// have to re-register after this master starts before they are marked
	// unreachable (--agent_reregister_timeout, 10 minutes).
	AgentReregisterTimeout time.Duration
	// RecoveryGCPercent is the garbage collector's target (GOGC) while
	// agents recovered from the registry re-register, at most a minute
	// (--recovery_gc_percent; recoverygc.go). Zero: 800; negative: the
	// collector is left alone.
	RecoveryGCPercent int
	// AgentRemovalRate bounds how fast they are (--agent_removal_rate_limit;
	// zero: no bound).
	AgentRemovalRate RemovalRate
	// RegistryMaxAgentAge and RegistryMaxAgentCount bound the unreachable
	// and gone agents the registry keeps (--registry_max_agent_age, two
	// weeks; --registry_max_agent_count, 102,400); they are checked every
	// RegistryGCInterval (a minute).
	RegistryMaxAgentAge   time.Duration
	RegistryMaxAgentCount int
	// RegistryMaxFrameworkAge and RegistryMaxFrameworkCount bound the
	// completed (torn-down) frameworks the registry keeps, so that their
	// IDs are refused (--registry_max_framework_age, two weeks;
	// --registry_max_framework_count, 10,240); collected with the agents.
	RegistryMaxFrameworkAge   time.Duration
	RegistryMaxFrameworkCount int
	RegistryGCInterval        time.Duration
	// Leading, when set, fences a master elected through ZooKeeper: while
	// it returns false the master sends no offers (its HTTP API is
	// swapped for the standby one by whoever runs it).
	Leading func() bool
	// MetricsHistoryInterval and MetricsHistoryLength size the ring of
	// metrics samples the web UI's overview draws (/metrics/history;
	// history.go): default one each 10 s, an hour's worth.
	MetricsHistoryInterval time.Duration
	MetricsHistoryLength   int
}

// DefaultMaxSubscriberBacklog bounds the events queued for one subscriber
// that does not read them.
const DefaultMaxSubscriberBacklog = 50000

func (c *Config) defaults() {
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
	}
	if c.IP == "" {
		c.IP = "127.0.0.1"
	}
	if c.Port == 0 {
		c.Port = 5050
	}
	if c.AllocationInterval <= 0 {
		c.AllocationInterval = time.Second
	}
	if c.AgentPingTimeout <= 0 {
		c.AgentPingTimeout = 15 * time.Second
	}
	if c.MaxAgentPingTimeouts <= 0 {
		c.MaxAgentPingTimeouts = 5
	}
	if c.MaxSubscriberBacklog <= 0 {
		c.MaxSubscriberBacklog = DefaultMaxSubscriberBacklog
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 15 * time.Second
	}
	if c.RegistryMaxAgentAge <= 0 {
		c.RegistryMaxAgentAge = 14 * 24 * time.Hour
	}
	if c.RegistryMaxAgentCount <= 0 {
		c.RegistryMaxAgentCount = 100 * 1024
	}
	if c.RegistryMaxFrameworkAge <= 0 {
		c.RegistryMaxFrameworkAge = 14 * 24 * time.Hour
	}
	if c.RegistryMaxFrameworkCount <= 0 {
		c.RegistryMaxFrameworkCount = 10 * 1024
	}
	if c.RegistryGCInterval <= 0 {
		c.RegistryGCInterval = time.Minute
	}
	if c.AgentReregisterTimeout <= 0 {
		c.AgentReregisterTimeout = 10 * time.Minute
	}
	if c.RecoveryGCPercent == 0 {
		c.RecoveryGCPercent = DefaultRecoveryGCPercent
	}
	if c.MaxCompletedFrameworks <= 0 {
		c.MaxCompletedFrameworks = 50
	}
	if c.MaxCompletedTasksPerFramework <= 0 {
		c.MaxCompletedTasksPerFramework = 1000
	}
	if c.Registry == nil {
		c.Registry = registry.NewMemory()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MetricsHistoryInterval <= 0 {
		c.MetricsHistoryInterval = DefaultMetricsHistoryInterval
	}
	if c.MetricsHistoryLength <= 0 {
		c.MetricsHistoryLength = DefaultMetricsHistoryLength
	}
}

// Master is one agora master.
type Master struct {
	cfg   Config
	log   *slog.Logger
	id    string
	info  mesos.MasterInfo
	start time.Time

	ops     chan func()
	stopped chan struct{} // closed when Run returns
	alloc   *allocator.Allocator
	// registrar commits registry changes in batches off the loop;
	// committed brings their outcomes back to it.
	registrar *registry.Registrar
	committed *completions
	// panicked is the value of a panic that stopped the loop.
	panicked atomic.Value
	// refusedAgents holds the agents whose refused registration is
	// logged already (authz.go), so a retrying agent logs once; it is
	// bounded (maxRefusedAgentsLogged), as anyone may send a REGISTER.
	refusedMu     sync.Mutex
	refusedAgents map[string]bool
	// hostLookups shares the lookups of agents' hostnames (authz.go).
	hostLookups *hostLookups

	// State below is owned by the loop goroutine.
	frameworks          map[string]*framework
	completedFrameworks []*framework
	agents              map[string]*agent
	offers              map[string]*offer
	// admitted holds registry records of agents not currently registered
	// (admitted before a master restart, unreachable or gone).
	admitted map[string]registry.AgentRecord
	// frameworkRecords are the registry's framework records, active and
	// completed (framework_registry.go).
	frameworkRecords map[string]registry.FrameworkRecord
	// awaiting are the admitted agents recovered from the registry that
	// have not re-registered yet (reregister.go).
	awaiting map[string]bool
	// recoveryGCRaised is whether this master holds the collector's
	// target raised while they do (recoverygc.go).
	recoveryGCRaised bool
	nextRemoval      time.Time // when the next agent may be marked unreachable (reregister.go)
	lastRegistryGC   time.Time
	nextID           uint64
	pingSeq          uint64
	allocQueued      bool
	// operatorSubs are the operator API's SUBSCRIBE streams.
	operatorSubs map[*operatorSub]bool
	// timers are the latency metrics (metrics.go).
	timers masterTimers
	// policy is the durable sharing policy; maint the maintenance state.
	policy   registry.Policy
	maint    maintenanceState
	counters counters
	history  history // history.go
	// lanes serialise registry changes per agent and for the policy.
	lanes map[string]*lane

	elected atomic.Bool
}

// New creates a master; Run starts it.
func New(cfg Config) (*Master, error) {
	cfg.defaults()
	id := cfg.ID
	if id == "" {
		id = newUUID()
	}
	m := &Master{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "master"),
		id:         id,
		start:      cfg.Now(),
		ops:        make(chan func(), 1024),
		stopped:    make(chan struct{}),
		alloc:      allocator.New(allocator.Config{MinAllocatable: cfg.MinAllocatable}),
		frameworks: map[string]*framework{},
		agents:     map[string]*agent{},
		offers:     map[string]*offer{},
		admitted:   map[string]registry.AgentRecord{},
		committed:  newCompletions(),

		frameworkRecords: map[string]registry.FrameworkRecord{},
		lanes:            map[string]*lane{},

		operatorSubs: map[*operatorSub]bool{},
		hostLookups:  newHostLookups(cfg.LookupHost),
	}
	m.info = masterInfo(cfg, id)
	m.warnACLs() // authz.go
	recs, err := cfg.Registry.Agents()
	if err != nil {
		return nil, fmt.Errorf("master: recover registry: %w", err)
	}
	m.awaiting = map[string]bool{}
	for _, r := range recs {
		m.admitted[r.ID] = r
		if r.State == registry.AgentAdmitted {
			m.awaiting[r.ID] = true
		}
	}
	if len(recs) > 0 {
		m.log.Info("recovered registry", "agents", len(recs))
	}
	if err := m.restorePolicy(); err != nil {
		return nil, fmt.Errorf("master: recover policy from the registry: %w", err)
	}
	frecs, err := cfg.Registry.Frameworks()
	if err != nil {
		return nil, fmt.Errorf("master: recover frameworks from the registry: %w", err)
	}
	m.recoverFrameworks(frecs)
	m.elected.Store(true)
	return m, nil
}

// ID returns the master's ID.
func (m *Master) ID() string { return m.id }

// Run drives the master until ctx is done. It returns an error if a call
// panicked (see step).
func (m *Master) Run(ctx context.Context) error {
	alloc := time.NewTicker(m.cfg.AllocationInterval)
	defer alloc.Stop()
	ping := time.NewTicker(m.cfg.AgentPingTimeout)
	defer ping.Stop()
	heartbeat := time.NewTicker(m.cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	housekeeping := time.NewTicker(time.Second)
	defer housekeeping.Stop()
	m.registrar = registry.NewRegistrar(m.cfg.Registry)
	m.log.Info("master started", "id", m.id, "address", net.JoinHostPort(m.cfg.IP, strconv.Itoa(m.cfg.Port)))
	m.warnClaimedPrincipals() // ratelimit.go
	defer close(m.stopped)
	m.raiseRecoveryGC() // recoverygc.go
	defer m.lowerRecoveryGC("the master stopped")
	// Commits in flight finish before Run returns, so that the caller
	// may close the registry; their outcomes are not applied.
	defer m.registrar.Close()
	for {
		var f func()
		select {
		case <-ctx.Done():
			m.shutdown()
			return nil
		case f = <-m.ops:
		case <-m.committed.notify:
			f = func() {
				for _, c := range m.committed.take() {
					c()
				}
			}
		case <-alloc.C:
			f = m.allocate
		case <-ping.C:
			f = m.pingAgents
		case <-heartbeat.C:
			f = m.heartbeat
		case <-housekeeping.C:
			f = func() { m.expire(); m.sampleHistory() }
		}
		if err := m.step(f); err != nil {
			m.shutdown()
			return err
		}
	}
}

// step runs one piece of the loop's work.
//
// Panic policy. Calls validate before they mutate, and registry changes
// take effect only once durable, so a call refused for a reason leaves
// nothing half-done. A panic is different: it is a bug, and it can strike
// in the middle of a mutation that spans the allocator, the agents, the
// frameworks and their streams, so the state it leaves cannot be trusted —
// and proving every path panic-free between its first and last write is
// not something the code can promise. So a panic is recovered here,
// logged with its stack, counted (master/call_panics), the call that
// caused it is answered 500, and the master stops: Run returns an error,
// and `agora master` exits non-zero for its supervisor to restart it.
// Nothing acknowledged is lost: everything durable is in the registry
// (written before it took effect), agents re-register with their tasks,
// and frameworks re-subscribe and reconcile — Mesos's own answer to a
// master failure.
func (m *Master) step(f func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			m.counters.callPanics++
			m.panicked.Store(fmt.Sprint(p))
			m.log.Error("a call panicked; the master stops so that a restart recovers a consistent state from the registry",
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("master: a call panicked: %v", p)
		}
	}()
	f()
	return nil
}

// do runs f on the loop and waits for it. It fails if ctx ends or the
// master stops first, or with errCallPanicked if f panicked.
func (m *Master) do(ctx context.Context, f func()) error {
	done := make(chan struct{})
	var panicked atomic.Bool
	op := func() {
		defer func() {
			if p := recover(); p != nil {
				panicked.Store(true)
				close(done)
				panic(p) // for step, which stops the master
			}
		}()
		f()
		close(done)
	}
	select {
	case m.ops <- op:
	case <-ctx.Done():
		return ctx.Err()
	case <-m.stopped:
		return errStopped
	}
	select {
	case <-done:
		if panicked.Load() {
			return errCallPanicked
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-m.stopped:
		return errStopped
	}
}

var errCallPanicked = errors.New("master: the call panicked")

// answerLoopFailure answers a call that do or await could not complete:
// 500 if it panicked; nothing if the client left or the master is
// stopping (the connection is closing anyway).
func answerLoopFailure(w http.ResponseWriter, err error) {
	if errors.Is(err, errCallPanicked) {
		writeError(w, errorf(http.StatusInternalServerError, "the master failed while handling this call and is restarting; retry"))
	}
}

var errStopped = errors.New("master: stopped")

// enqueue queues f on the loop from another goroutine, unless the master
// has stopped.
func (m *Master) enqueue(f func()) {
	select {
	case m.ops <- f:
	case <-m.stopped:
	}
}

// async queues f on the loop without waiting.
func (m *Master) async(f func()) {
	go m.enqueue(f)
}

// requestAllocation schedules a prompt allocation run (coalesced), used
// when resources are freed or a framework or agent arrives.
func (m *Master) requestAllocation() {
	if m.allocQueued {
		return
	}
	m.allocQueued = true
	time.AfterFunc(2*time.Millisecond, func() {
		m.enqueue(func() {
			m.allocQueued = false
			m.allocate()
		})
	})
}

func (m *Master) shutdown() {
	for _, f := range m.frameworks {
		if f.conn != nil {
			f.conn.out.close()
		}
	}
	for _, a := range m.agents {
		if a.out != nil {
			a.out.close()
		}
	}
	for sub := range m.operatorSubs {
		sub.out.close()
	}
}

func (m *Master) now() time.Time { return m.cfg.Now() }

// newID makes IDs in Mesos's style: <master id>-<counter>.
func (m *Master) newID(kind string) string {
	m.nextID++
	return fmt.Sprintf("%s-%s%04d", m.id, kind, m.nextID)
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	s := hex.EncodeToString(b[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

func strPtr(s string) *string { return &s }

func uint32Ptr(u uint32) *uint32 { return &u }

func ipToUint32(ip string) uint32 {
	p := net.ParseIP(ip).To4()
	if p == nil {
		return 0
	}
	// Network byte order stored in a little-endian uint32, as Mesos does.
	return uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16 | uint32(p[3])<<24
}

// Info is the MasterInfo a master with cfg and id advertises: what it
// puts in its election znode and answers in SUBSCRIBED and /state.
func Info(cfg Config, id string) mesos.MasterInfo {
	cfg.defaults()
	return masterInfo(cfg, id)
}

func masterInfo(cfg Config, id string) mesos.MasterInfo {
	return mesos.MasterInfo{
		ID:       id,
		IP:       ipToUint32(cfg.IP),
		Port:     uint32Ptr(uint32(cfg.Port)),
		PID:      strPtr(fmt.Sprintf("master@%s:%d", cfg.IP, cfg.Port)),
		Hostname: strPtr(cfg.Hostname),
		Version:  strPtr(api.MesosVersion),
		Address: &mesos.Address{
			Hostname: strPtr(cfg.Hostname),
			IP:       strPtr(cfg.IP),
			Port:     int32(cfg.Port),
		},
	}
}

// NewID is a fresh master ID.
func NewID() string { return newUUID() }
