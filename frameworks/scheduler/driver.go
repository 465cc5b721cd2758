package scheduler

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os/user"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/cluster/zk"
)

// Config configures a Driver. Only Masters and Framework.Name are required.
type Config struct {
	// Masters are the masters to subscribe with, tried in turn:
	// "host:port", "http://host:port" or the full scheduler API URL.
	// A master that is not the leader redirects to the one that is.
	// Or a single zk://host1:2181,host2:2181/path URL: the driver then
	// follows the leader elected in ZooKeeper, and moves to a new leader
	// as soon as ZooKeeper names one.
	Masters []string
	// Framework is the FrameworkInfo to subscribe with. Framework.ID, when
	// set, re-subscribes an existing framework (failover). User defaults to
	// the current OS user.
	Framework mesos.FrameworkInfo
	// SuppressedRoles start out suppressed (Subscribe.suppressed_roles).
	SuppressedRoles []string
	// Codec is the wire encoding; the zero value means protobuf.
	Codec api.Codec
	// Logger receives the driver's diagnostics; nil discards them.
	Logger *slog.Logger
	// HTTPClient sends calls (and, with its Transport, the subscription).
	// Nil means a client tuned for many small calls to one master.
	HTTPClient *http.Client
	// TLS, if set, is how masters given as "host:port" (and the leaders a
	// zk:// URL elects, whose MasterInfo carries no scheme) are called:
	// over HTTPS, their certificates verified with TLS.RootCAs (the
	// system's roots when nil). It configures the default client; with
	// HTTPClient, that client's Transport must trust the masters itself.
	TLS *tls.Config
	// ManualAcks turns off automatic acknowledgement of status updates;
	// the framework must then call Acknowledge for every update with a uuid.
	ManualAcks bool
	// Backoff spaces re-subscription attempts; zero means DefaultBackoff.
	Backoff Backoff
	// MissedHeartbeats is how many heartbeat intervals may pass without any
	// event before the stream is dropped and re-subscribed; 0 means 5.
	MissedHeartbeats int
	// ConnectTimeout bounds connecting, the response headers and the first
	// event of a subscription; 0 means 15s.
	ConnectTimeout time.Duration
	// CallTimeout bounds each call that has no earlier deadline; 0 means 20s.
	CallTimeout time.Duration
	// MaxConnectFailures makes Run give up with a *ConnectError after this
	// many consecutive failed subscription attempts; 0 retries forever.
	MaxConnectFailures int
	// Principal and Secret, if set, are sent with every call (HTTP Basic),
	// for a master running with --authenticate_frameworks; Principal is
	// also FrameworkInfo.principal unless Framework sets one.
	Principal, Secret string
}

// Driver is a framework's connection to the master: the subscription, its
// event stream and the calls made on it. Create it with New, start it with
// Run; its call methods are safe for concurrent use.
type Driver struct {
	cfg     Config
	h       Handler
	log     *slog.Logger
	codec   api.Codec
	masters []*url.URL
	zk      *zk.Group // the masters' election group with a zk:// master
	zkName  string    // its URL without the password, for messages
	calls   *http.Client
	stream  *http.Client

	mu         sync.Mutex
	info       mesos.FrameworkInfo
	suppressed []string
	endpoint   *url.URL // the master the current stream is open on
	streamID   string
	subscribed bool
	master     *mesos.MasterInfo
	cancel     context.CancelCauseFunc // ends the current stream

	running  atomic.Bool
	tornDown atomic.Bool
	acks     sync.WaitGroup
	ackSlots chan struct{}
}

// maxInFlightAcks bounds the acknowledgements sent concurrently.
const maxInFlightAcks = 64

// maxRedirects bounds the 307 hops of one subscription attempt.
const maxRedirects = 5

var (
	errLostSubscription = errors.New("scheduler: master no longer knows the subscription")
	errTornDown         = errors.New("scheduler: framework torn down")
	errConnectTimeout   = errors.New("scheduler: master did not answer SUBSCRIBE in time")
)

// New checks cfg and returns a Driver that will deliver events to h.
func New(cfg Config, h Handler) (*Driver, error) {
	if h == nil {
		return nil, errors.New("scheduler: nil Handler")
	}
	if len(cfg.Masters) == 0 {
		return nil, errors.New("scheduler: no master address given")
	}
	if cfg.Framework.Name == "" {
		return nil, errors.New("scheduler: FrameworkInfo.name is required")
	}
	d := &Driver{cfg: cfg, h: h, log: cfg.Logger, codec: cfg.Codec, ackSlots: make(chan struct{}, maxInFlightAcks)}
	if zk.IsURL(cfg.Masters[0]) {
		if len(cfg.Masters) > 1 {
			return nil, fmt.Errorf("scheduler: a zk:// master must be the only one given, not one of %d", len(cfg.Masters))
		}
		u, err := zk.ParseURL(cfg.Masters[0])
		if err != nil {
			return nil, fmt.Errorf("scheduler: %w", err)
		}
		d.zk = zk.NewGroup(u, zk.Options{Log: cfg.Logger})
		d.zkName = u.String() // without the password
	}
	for _, m := range cfg.Masters {
		if d.zk != nil {
			break
		}
		u, err := d.endpointOf(m)
		if err != nil {
			return nil, fmt.Errorf("scheduler: %w", err)
		}
		d.masters = append(d.masters, u)
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.codec.MediaType == "" {
		d.codec = api.Protobuf
	}
	if d.cfg.MissedHeartbeats <= 0 {
		d.cfg.MissedHeartbeats = 5
	}
	if d.cfg.ConnectTimeout <= 0 {
		d.cfg.ConnectTimeout = 15 * time.Second
	}
	if d.cfg.CallTimeout <= 0 {
		d.cfg.CallTimeout = 20 * time.Second
	}
	d.info = cfg.Framework
	if d.info.User == "" {
		d.info.User = currentUser()
	}
	if d.info.Principal == nil && cfg.Principal != "" {
		d.info.Principal = &cfg.Principal
	}
	d.suppressed = slices.Clone(cfg.SuppressedRoles)
	d.calls, d.stream = httpClients(cfg.HTTPClient, cfg.TLS)
	return d, nil
}

// endpointOf is Endpoint(master), over HTTPS when Config.TLS is set and
// master names no scheme of its own.
func (d *Driver) endpointOf(master string) (*url.URL, error) {
	u, err := Endpoint(master)
	if err == nil && d.cfg.TLS != nil && !strings.Contains(master, "://") {
		u.Scheme = "https"
	}
	return u, err
}

// authorize adds the configured credentials to a request to the master.
func (d *Driver) authorize(req *http.Request) {
	if d.cfg.Principal != "" {
		req.SetBasicAuth(d.cfg.Principal, d.cfg.Secret)
	}
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "root"
}

// httpClients derives the call client and the stream client. Neither
// follows redirects: a 307 is the driver's to handle. The stream client has
// no overall timeout and never reuses its connection.
func httpClients(base *http.Client, tlsConfig *tls.Config) (calls, stream *http.Client) {
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if base == nil {
		if tlsConfig == nil {
			// A process that trusts a CA process-wide (tlsconf.TrustProcessWide)
			// trusts it here too.
			tlsConfig = tlsconf.ProcessClient()
		}
		dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		t := &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         dialer.DialContext,
			MaxIdleConns:        maxInFlightAcks * 2,
			MaxIdleConnsPerHost: maxInFlightAcks * 2,
			IdleConnTimeout:     90 * time.Second,
			TLSClientConfig:     http1Only(tlsConfig),
		}
		base = &http.Client{Transport: t}
	}
	c := *base
	c.CheckRedirect = noRedirect
	s := c
	s.Timeout = 0
	t, ok := c.Transport.(*http.Transport)
	if c.Transport == nil {
		t, ok = http.DefaultTransport.(*http.Transport)
	}
	if ok {
		st := t.Clone()
		st.DisableKeepAlives = true
		st.DisableCompression = true
		s.Transport = st
	}
	return &c, &s
}

// http1Only is a copy of cfg that offers HTTP/1.1 alone by ALPN: the
// driver's transports speak HTTP/1.1 (one connection per stream, as
// Mesos's schedulers do), and a config shared with an HTTP/2 transport
// may carry "h2", which the master would then answer in.
func http1Only(cfg *tls.Config) *tls.Config {
	if cfg == nil {
		return nil
	}
	cfg = cfg.Clone()
	cfg.NextProtos = nil
	return cfg
}

// FrameworkID is the ID the master assigned (or that Config gave), or "".
func (d *Driver) FrameworkID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.info.GetID().GetValue()
}

// Subscribed reports whether an event stream is currently subscribed.
func (d *Driver) Subscribed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.subscribed
}

// Master describes the master of the current subscription, if the master
// sent its MasterInfo; nil otherwise.
func (d *Driver) Master() *mesos.MasterInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.master
}

// Run subscribes and handles events until ctx ends (it returns ctx's
// error), the framework is torn down (nil), the master sends ERROR
// (*MasterError), SUBSCRIBE is refused for good (*APIError), or
// MaxConnectFailures attempts in a row fail (*ConnectError). A lost stream
// is re-subscribed with the framework's ID after a backoff.
func (d *Driver) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("scheduler: Run called twice")
	}
	defer d.acks.Wait()
	if d.zk != nil {
		zctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); d.zk.Run(zctx) }()
		defer func() { stop(); <-done }()
	}
	failures, attempt, master := 0, 0, 0
	for {
		// A change of ZooKeeper's leader ends the backoff below: the new
		// leader is tried at once, not a backoff later.
		var changed <-chan struct{}
		if d.zk != nil {
			changed = d.zk.Changed()
		}
		subscribed, err := d.session(ctx, master)
		switch {
		case d.tornDown.Load():
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		var f fatal
		if errors.As(err, &f) {
			d.log.Error("subscription refused for good", "err", f.err)
			return f.err
		}
		if subscribed {
			failures, attempt = 0, 0
		} else {
			failures++
			if d.cfg.MaxConnectFailures > 0 && failures >= d.cfg.MaxConnectFailures {
				return &ConnectError{Masters: d.masterNames(), Attempts: failures, Err: err}
			}
			master = (master + 1) % max(len(d.masters), 1)
		}
		wait := d.cfg.Backoff.Delay(attempt, rand.Float64())
		attempt++
		d.log.Warn("re-subscribing", "err", err, "in", wait.Round(time.Millisecond), "master", d.masterName(master))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		case <-changed:
		}
	}
}

// masterNames are the masters as messages name them.
func (d *Driver) masterNames() []string {
	if d.zk != nil {
		return []string{d.zkName}
	}
	return d.cfg.Masters
}

// masterName names master number m for diagnostics.
func (d *Driver) masterName(m int) string {
	if d.zk != nil {
		return d.zkName
	}
	return d.masters[m].Host
}

// errLeaderChanged ends a subscription whose master ZooKeeper no longer
// names as the leader.
var errLeaderChanged = errors.New("scheduler: ZooKeeper names a new leading master")

// endpointFor is where to subscribe: master number m, or with a zk://
// master the leader ZooKeeper names, waited for until ctx ends.
func (d *Driver) endpointFor(ctx context.Context, m int) (*url.URL, error) {
	if d.zk == nil {
		return d.masters[m], nil
	}
	for {
		changed := d.zk.Changed()
		if l, ok := d.zk.Leader(); ok {
			addr, err := l.Address()
			if err != nil {
				return nil, err
			}
			return d.endpointOf(addr)
		}
		select {
		case <-ctx.Done():
			why := "no leading master in ZooKeeper"
			if err := d.zk.Err(); err != nil {
				why += " (" + err.Error() + ")"
			}
			return nil, fmt.Errorf("%s: %s", d.zkName, why)
		case <-changed:
		}
	}
}

// followLeader ends the subscription on ep (through cancel) when
// ZooKeeper names another leader, until done is closed.
func (d *Driver) followLeader(ep *url.URL, cancel context.CancelCauseFunc, done <-chan struct{}) {
	if d.zk == nil {
		return
	}
	for {
		changed := d.zk.Changed()
		if l, ok := d.zk.Leader(); ok {
			if addr, err := l.Address(); err == nil && addr != ep.Host {
				d.log.Info("ZooKeeper names a new leading master", "from", ep.Host, "to", addr)
				cancel(errLeaderChanged)
				return
			}
		}
		select {
		case <-done:
			return
		case <-changed:
		}
	}
}
