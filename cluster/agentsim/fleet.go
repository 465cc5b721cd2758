// Package agentsim runs many simulated agents in one process, for
// benchmarks of the master at scale (thousands to tens of thousands of
// agents on one machine). A simulated agent speaks the real master↔agent
// protocol (cluster/api/agentwire.go) over HTTP: it registers and keeps
// the REGISTERED stream open, answers PINGs, follows the leading master
// through ZooKeeper and re-registers with its ID and its tasks after a
// change of leader, and delivers status updates reliably (the head of
// each task's queue is resent until the master relays its ACKNOWLEDGE).
// It runs no processes: a task is a timer. RUN_TASK makes it STARTING
// and RUNNING at once, and FINISHED after the duration in its
// DurationLabel label (or Config.TaskDuration; zero runs it until it is
// killed).
//
// Each agent costs one goroutine (reading its stream) and one HTTP
// connection (over HTTP/2: a share of one); calls (PONG, STATUS_UPDATE)
// are short-lived goroutines on the same client.
package agentsim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/zk"
)

// DurationLabel is the task label that says how long a simulated task
// runs before it is FINISHED (a Go duration, e.g. "30s").
const DurationLabel = "agentsim.duration"

// Config shapes a fleet of simulated agents.
type Config struct {
	// Master is host:port of one master, or a zk:// URL: the agents then
	// register with the leader ZooKeeper names and follow its changes.
	Master string
	// Agents is how many agents to run.
	Agents int
	// Resources of each agent, in Mesos syntax (default
	// "cpus:20;mem:10240", the agents of Mesos's failover benchmark).
	Resources string
	// Hostname prefix; agent i is "<prefix>-<i>" (default "sim").
	Hostname string
	// TaskDuration is how long a task without a DurationLabel runs; zero
	// runs it until it is killed.
	TaskDuration time.Duration
	// Backoff is the first delay before registering again after a failed
	// attempt (jittered, doubling up to BackoffMax, and back to Backoff
	// for a new leader); defaults 250 ms and 2 s.
	Backoff, BackoffMax time.Duration
	// RegistrationBackoffFactor spreads the fleet's registrations with a
	// new leader (Mesos's agent flag --registration_backoff_factor): an
	// agent waits a random time in [0, factor] before its first attempt,
	// instead of every agent connecting the moment ZooKeeper names the
	// leader. A burst of thousands of connections overflows the master's
	// listen queue, and the kernel drops the excess, each costing its
	// agent a SYN retransmission (a second, then three). Zero: no wait.
	RegistrationBackoffFactor time.Duration
	// UpdateRetry is the first delay before a status update that was not
	// acknowledged is sent again (doubling up to 10 minutes, as in
	// Mesos); default 10 s.
	UpdateRetry time.Duration
	// SourceAddrs are local addresses to spread the agents' connections
	// over, so that more agents than the ephemeral port range holds can
	// reach one master. Default: with a loopback master, 127.0.0.2 to
	// 127.0.0.17; otherwise none (the kernel picks).
	SourceAddrs []string
	// HTTP2 multiplexes the agents' streams and calls over cleartext
	// HTTP/2 connections to the master (up to its streams-per-connection
	// bound each) instead of one HTTP/1.1 connection per agent, as real
	// agents hold. The master's work per agent is the same; what changes
	// is the file descriptors and socket buffers on both sides, so runs
	// with more agents than the open-file limit allows need it.
	HTTP2 bool
	// Codec is what the agents speak to the master, calls and event
	// streams: api.Protobuf (the default, as real agents) or api.JSON.
	Codec api.Codec
	// TLS, when set, makes the agents speak HTTPS to the master (HTTP/2
	// negotiated by ALPN with HTTP2) and verify it with this config.
	TLS *tls.Config
	// Principal and Secret, when Principal is set, go with every call as
	// HTTP Basic credentials (a master with --authenticate_agents).
	Principal, Secret string
	Logger            *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Resources == "" {
		c.Resources = "cpus:20;mem:10240"
	}
	if c.Hostname == "" {
		c.Hostname = "sim"
	}
	if c.Backoff <= 0 {
		c.Backoff = 250 * time.Millisecond
	}
	if c.BackoffMax < c.Backoff {
		c.BackoffMax = max(2*time.Second, c.Backoff)
	}
	if c.UpdateRetry <= 0 {
		c.UpdateRetry = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Codec.MediaType == "" {
		c.Codec = api.Protobuf
	}
	return c
}

// leaderEpoch is the master the agents talk to now; ctx ends when
// another one takes its place.
type leaderEpoch struct {
	addr   string // host:port, "" while no master leads
	ctx    context.Context
	cancel context.CancelFunc
	began  time.Time

	mu                         sync.Mutex
	sent, answered, registered []time.Duration // since began, one per attempt
	failures                   map[string]int  // why attempts on this master got no answer
}

// noteFailure counts an attempt on this epoch's master that got no
// answer, by the kind of error (Timeline.Failures).
func (ep *leaderEpoch) noteFailure(err error) {
	kind := "other"
	var op *net.OpError
	switch {
	case ep.ctx.Err() != nil:
		kind = "canceled: another master named meanwhile"
	case errors.Is(err, context.DeadlineExceeded):
		kind = "timed out"
	case errors.As(err, &op):
		kind = op.Op + ": " + op.Err.Error()
	default:
		kind = err.Error()
		if i := strings.LastIndex(kind, ": "); i >= 0 {
			kind = kind[i+2:] // the cause, without the URL
		}
	}
	ep.mu.Lock()
	if ep.failures == nil {
		ep.failures = map[string]int{}
	}
	ep.failures[kind]++
	ep.mu.Unlock()
}

// note records that one agent reached a step of registering with this
// epoch's master, for EpochTimeline.
func (ep *leaderEpoch) note(step *[]time.Duration) {
	d := time.Since(ep.began)
	ep.mu.Lock()
	*step = append(*step, d)
	ep.mu.Unlock()
}

// Timeline is how long after the fleet learned of its current master its
// agents reached each step of registering with it: quantiles over the
// agents' attempts, in seconds.
type Timeline struct {
	// Began is when the fleet learned of the master (ZooKeeper named it).
	Began      time.Time `json:"-"`
	Sent       Quantiles `json:"sent"`       // REGISTER handed to the HTTP client
	Answered   Quantiles `json:"answered"`   // its response headers arrived
	Registered Quantiles `json:"registered"` // REGISTERED read from the stream
	// Failures counts the attempts on this master that got no answer, by
	// the kind of error.
	Failures map[string]int `json:"failures,omitempty"`
}

// Quantiles of a set of durations, in seconds.
type Quantiles struct {
	N   int     `json:"n"`
	P10 float64 `json:"p10"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	Max float64 `json:"max"`
}

func quantiles(ds []time.Duration) Quantiles {
	if len(ds) == 0 {
		return Quantiles{}
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	at := func(q float64) float64 {
		return math.Round(ds[int(q*float64(len(ds)-1))].Seconds()*1000) / 1000
	}
	return Quantiles{N: len(ds), P10: at(0.1), P50: at(0.5), P90: at(0.9), Max: at(1)}
}

// Timeline is the registration timeline of the current master's epoch.
func (f *Fleet) Timeline() Timeline {
	ep := f.epoch.Load()
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return Timeline{Began: ep.began, Sent: quantiles(ep.sent), Answered: quantiles(ep.answered), Registered: quantiles(ep.registered),
		Failures: maps.Clone(ep.failures)}
}

// Fleet is a running set of simulated agents.
type Fleet struct {
	cfg       Config
	log       *slog.Logger
	resources []mesos.Resource
	clients   []*http.Client // the agents' clients; agent i uses clients[i%len]
	group     *zk.Group      // with a zk:// master
	epoch     atomic.Pointer[leaderEpoch]
	epochWake chan struct{} // closed and replaced at each new epoch
	epochMu   sync.Mutex
	agents    []*agent
	wg        sync.WaitGroup

	frameworks sync.Map // framework ID → *mesos.FrameworkInfo, shared by the agents

	mu           sync.Mutex
	byMaster     map[string]int // master ID → agents registered with it now
	registered   int
	stats        Stats
	firstErr     error
	lastErrCount int
}

// Stats are the fleet's counters since it started.
type Stats struct {
	Registrations   int64 `json:"registrations"`   // REGISTERED, first time
	Reregistrations int64 `json:"reregistrations"` // REGISTERED again, with the agent's ID
	Refusals        int64 `json:"refusals"`        // 409s: the agent registered afresh
	FailedAttempts  int64 `json:"failed_attempts"` // attempts that did not get REGISTERED
	// Of which: no answer (connection refused or broken: the master is
	// down), and 503/307 (it does not act as the leader).
	FailedUnreachable int64 `json:"failed_unreachable"`
	FailedNotLeading  int64 `json:"failed_not_leading"`
	TasksLaunched     int64 `json:"tasks_launched"`   // RUN_TASKs
	TasksFinished     int64 `json:"tasks_finished"`   // tasks that ran their duration
	TasksKilled       int64 `json:"tasks_killed"`     // KILL_TASK or framework shutdown
	UpdateCalls       int64 `json:"update_calls"`     // STATUS_UPDATE calls made
	UpdateFailures    int64 `json:"update_failures"`  // of which failed (retried)
	Acknowledgments   int64 `json:"acknowledgements"` // ACKNOWLEDGEs that matched
}

// Sub is s minus an earlier reading of the same counters: what happened
// between the two.
func (s Stats) Sub(before Stats) Stats {
	return Stats{
		Registrations: s.Registrations - before.Registrations, Reregistrations: s.Reregistrations - before.Reregistrations,
		Refusals: s.Refusals - before.Refusals, FailedAttempts: s.FailedAttempts - before.FailedAttempts,
		FailedUnreachable: s.FailedUnreachable - before.FailedUnreachable, FailedNotLeading: s.FailedNotLeading - before.FailedNotLeading,
		TasksLaunched: s.TasksLaunched - before.TasksLaunched, TasksFinished: s.TasksFinished - before.TasksFinished,
		TasksKilled: s.TasksKilled - before.TasksKilled, UpdateCalls: s.UpdateCalls - before.UpdateCalls,
		UpdateFailures: s.UpdateFailures - before.UpdateFailures, Acknowledgments: s.Acknowledgments - before.Acknowledgments,
	}
}

// Start runs cfg.Agents agents until ctx ends; Wait waits for them.
func Start(ctx context.Context, cfg Config) (*Fleet, error) {
	cfg = cfg.withDefaults()
	if cfg.Agents <= 0 {
		return nil, fmt.Errorf("agentsim: %d agents: give at least one", cfg.Agents)
	}
	if cfg.Codec != api.JSON && cfg.Codec != api.Protobuf {
		return nil, fmt.Errorf("agentsim: codec %q: want %s or %s", cfg.Codec.MediaType, api.MediaProtobuf, api.MediaJSON)
	}
	if cfg.RegistrationBackoffFactor < 0 {
		return nil, fmt.Errorf("agentsim: registration backoff factor %s: want zero or more", cfg.RegistrationBackoffFactor)
	}
	rs, err := api.ParseResources(cfg.Resources)
	if err != nil {
		return nil, fmt.Errorf("agentsim: resources %q: %w", cfg.Resources, err)
	}
	f := &Fleet{cfg: cfg, log: cfg.Logger, resources: rs, byMaster: map[string]int{}, epochWake: make(chan struct{})}
	host := cfg.Master
	if zk.IsURL(cfg.Master) {
		u, err := zk.ParseURL(cfg.Master)
		if err != nil {
			return nil, fmt.Errorf("agentsim: %w", err)
		}
		f.group = zk.NewGroup(u, zk.Options{Log: cfg.Logger})
		host = u.Servers[0]
	} else {
		if _, _, err := net.SplitHostPort(cfg.Master); err != nil {
			return nil, fmt.Errorf("agentsim: master %q: want host:port or a zk:// URL: %w", cfg.Master, err)
		}
	}
	if cfg.SourceAddrs == nil && isLoopback(host) {
		for i := 2; i < 18; i++ {
			f.cfg.SourceAddrs = append(f.cfg.SourceAddrs, fmt.Sprintf("127.0.0.%d", i))
		}
	}
	f.clients = f.newClients()
	f.agents = make([]*agent, cfg.Agents)
	for i := range f.agents {
		f.agents[i] = &agent{fleet: f, client: f.clients[i%len(f.clients)], hostname: fmt.Sprintf("%s-%05d", cfg.Hostname, i), tasks: map[taskKey]*task{}}
	}
	if f.group == nil {
		f.setEpoch(ctx, cfg.Master)
	} else {
		f.setEpoch(ctx, "")
		f.wg.Add(2)
		go func() { defer f.wg.Done(); f.group.Run(ctx) }()
		go func() { defer f.wg.Done(); f.followLeader(ctx) }()
	}
	for _, a := range f.agents {
		f.wg.Add(1)
		go func() { defer f.wg.Done(); a.run(ctx) }()
	}
	return f, nil
}

// isLoopback reports whether host (host or host:port) is a loopback IP
// or localhost.
func isLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback() && ip.To4() != nil
}

// agentsPerConn is how many agents share one HTTP/2 connection: their
// event streams stay open, so with a PONG and a STATUS_UPDATE call each
// beside them they stay under the master's streams per connection
// (master.MaxStreamsPerConn, 1,000).
const agentsPerConn = 250

// newClients are the agents' HTTP clients: they never follow redirects
// (a master that does not lead is not registered with), and they spread
// new connections over the source addresses. Over HTTP/1.1 the fleet
// shares one client, and each agent's stream holds a connection of its
// own. Over HTTP/2 every agentsPerConn agents share a client of one
// connection, on which a call beyond the master's stream limit waits for
// a stream rather than dialing: a single pool for the whole fleet, with a
// bound on its connections, turns a change of leader into a scramble in
// which thousands of registrations are refused by full connections,
// dropped from the pool and dialed again.
func (f *Fleet) newClients() []*http.Client {
	var next atomic.Uint64
	srcs := f.cfg.SourceAddrs
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		if len(srcs) > 0 && isLoopback(addr) {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(srcs[next.Add(1)%uint64(len(srcs))])}
		}
		return d.DialContext(ctx, network, addr)
	}
	n := 1
	if f.cfg.HTTP2 {
		n = (f.cfg.Agents + agentsPerConn - 1) / agentsPerConn
	}
	clients := make([]*http.Client, n)
	for i := range clients {
		tr := &http.Transport{
			DialContext:         dial,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
			// Small buffers: most of the fleet's memory is its connections.
			ReadBufferSize:  4096,
			WriteBufferSize: 4096,
		}
		if f.cfg.TLS != nil {
			tr.TLSClientConfig = f.cfg.TLS.Clone()
		}
		if f.cfg.HTTP2 {
			tr.Protocols = new(http.Protocols)
			if f.cfg.TLS != nil {
				tr.Protocols.SetHTTP2(true)
			} else {
				tr.Protocols.SetUnencryptedHTTP2(true)
			}
			tr.MaxConnsPerHost = 1
			tr.HTTP2 = &http.HTTP2Config{StrictMaxConcurrentRequests: true}
		}
		var rt http.RoundTripper = tr
		if f.cfg.Principal != "" {
			rt = basicAuth{tr, f.cfg.Principal, f.cfg.Secret}
		}
		clients[i] = &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return clients
}

// basicAuth sends every request with HTTP Basic credentials.
type basicAuth struct {
	next              http.RoundTripper
	principal, secret string
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.principal, b.secret)
	return b.next.RoundTrip(r)
}

// scheme is how the agents reach the master: "https" with Config.TLS.
func (f *Fleet) scheme() string {
	if f.cfg.TLS != nil {
		return "https"
	}
	return "http"
}

// setEpoch makes addr the master the agents talk to, ending the previous
// epoch so that agents on the old master (or waiting for one) move at once.
func (f *Fleet) setEpoch(parent context.Context, addr string) {
	f.epochMu.Lock()
	defer f.epochMu.Unlock()
	if old := f.epoch.Load(); old != nil && old.addr == addr {
		return
	}
	ctx, cancel := context.WithCancel(parent)
	if prev := f.epoch.Swap(&leaderEpoch{addr: addr, ctx: ctx, cancel: cancel, began: time.Now()}); prev != nil {
		prev.cancel()
	}
	close(f.epochWake)
	f.epochWake = make(chan struct{})
	if addr != "" {
		f.log.Info("agentsim: agents follow master", "master", addr)
	}
}

// current is the epoch now and a channel closed when it changes.
func (f *Fleet) current() (*leaderEpoch, <-chan struct{}) {
	f.epochMu.Lock()
	defer f.epochMu.Unlock()
	return f.epoch.Load(), f.epochWake
}

// followLeader moves the fleet to each leader ZooKeeper names. While
// none is named the agents stay with the last one (its pings stop or its
// stream breaks), as the real agent does.
func (f *Fleet) followLeader(ctx context.Context) {
	for {
		changed := f.group.Changed()
		if l, ok := f.group.Leader(); ok {
			if addr, err := l.Address(); err == nil {
				f.setEpoch(ctx, addr)
			} else {
				f.log.Warn("agentsim: leader's address", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			f.epoch.Load().cancel()
			return
		case <-changed:
		}
	}
}

// Wait waits for every agent to stop (after ctx given to Start ends).
func (f *Fleet) Wait() {
	f.wg.Wait()
	for _, c := range f.clients {
		c.CloseIdleConnections()
	}
}

// Agents is how many agents the fleet runs.
func (f *Fleet) Agents() int { return len(f.agents) }

// Registered is how many agents are registered now (with any master).
func (f *Fleet) Registered() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.registered
}

// RegisteredWith is how many agents are registered now with the master
// whose ID is masterID.
func (f *Fleet) RegisteredWith(masterID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byMaster[masterID]
}

// IDs returns every agent's ID ("" for one never registered).
func (f *Fleet) IDs() []string {
	out := make([]string, len(f.agents))
	for i, a := range f.agents {
		a.mu.Lock()
		out[i] = a.id
		a.mu.Unlock()
	}
	return out
}

// Tasks is how many tasks the agents run now (not yet terminal).
func (f *Fleet) Tasks() int {
	n := 0
	for _, a := range f.agents {
		a.mu.Lock()
		for _, t := range a.tasks {
			if !terminal(t.state) {
				n++
			}
		}
		a.mu.Unlock()
	}
	return n
}

// Stats returns the fleet's counters.
func (f *Fleet) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// Err is the first error an agent met that was not a plain connection
// failure (a protocol problem worth reporting), or nil.
func (f *Fleet) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.firstErr
}

func (f *Fleet) count(fn func(s *Stats)) {
	f.mu.Lock()
	fn(&f.stats)
	f.mu.Unlock()
}

func (f *Fleet) noteRegistered(masterID string, delta int) {
	f.mu.Lock()
	f.byMaster[masterID] += delta
	f.registered += delta
	if f.byMaster[masterID] == 0 {
		delete(f.byMaster, masterID)
	}
	f.mu.Unlock()
}

// noteError keeps the first protocol error and logs a sample of them.
func (f *Fleet) noteError(err error) {
	var pe *protocolError
	if !errors.As(err, &pe) {
		return
	}
	f.mu.Lock()
	if f.firstErr == nil {
		f.firstErr = err
	}
	f.lastErrCount++
	n := f.lastErrCount
	f.mu.Unlock()
	if n <= 10 {
		f.log.Warn("agentsim: protocol error", "err", err)
	}
}

// protocolError is a master answer the agent did not expect.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return e.msg }

// framework interns a FrameworkInfo, so that thousands of agents running
// its tasks share one copy.
func (f *Fleet) framework(fi *mesos.FrameworkInfo) *mesos.FrameworkInfo {
	if fi == nil || fi.ID == nil {
		return nil
	}
	v, _ := f.frameworks.LoadOrStore(fi.ID.Value, fi)
	return v.(*mesos.FrameworkInfo)
}
