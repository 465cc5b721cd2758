package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/agora-cluster/agora/cluster/httplimit"
	"github.com/agora-cluster/agora/frameworks/servicepage"
)

// Resolver follows the master and answers DNS and HTTP queries from the
// records it last built.
type Resolver struct {
	cfg      Config
	log      *slog.Logger
	version  string
	wrapHTTP func(http.Handler) http.Handler

	mu      sync.Mutex // guards view and seq
	view    *view
	seq     uint64 // bumped by every change from the event stream
	masters []endpoint

	recs    atomic.Pointer[records] // nil until the first load
	rebuild chan struct{}           // a change waits to be built (cap 1)
	self    net.IP
	// changes is bumped whenever the records change: the page follows it.
	changes *servicepage.Changes

	// Counters for /metrics-style introspection and tests: builds are
	// whole rebuilds of the records, updates the events applied to them
	// in place.
	events, resyncs, subscriptions, builds, updates atomic.Uint64
}

// Options are what New needs besides the config.
type Options struct {
	Logger  *slog.Logger
	Version string // reported by /v1/version
	// WrapHTTP, if set, wraps the HTTP API's handler (authentication).
	WrapHTTP func(http.Handler) http.Handler
}

// New checks cfg and makes a resolver; Run starts it.
func New(cfg Config, opts Options) (*Resolver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Resolver{cfg: cfg, log: opts.Logger, version: opts.Version, wrapHTTP: opts.WrapHTTP, view: newView(), rebuild: make(chan struct{}, 1),
		changes: servicepage.NewChanges()}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.version == "" {
		r.version = "dev"
	}
	for _, m := range cfg.Masters {
		host, port, _ := net.SplitHostPort(m)
		p, _ := strconv.Atoi(port)
		if ip := hostIP(host); ip != nil {
			r.masters = append(r.masters, endpoint{host: host, ip: ip, port: p})
		}
	}
	r.self = net.ParseIP(cfg.Listener)
	if r.self == nil || r.self.IsUnspecified() {
		r.self = localIP()
	}
	return r, nil
}

// Config is the effective configuration.
func (r *Resolver) Config() Config { return r.cfg }

// localIP is this machine's first non-loopback IPv4 address, else 127.0.0.1.
func localIP() net.IP {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.To4()
		}
	}
	return net.IPv4(127, 0, 0, 1).To4()
}

// Loaded says whether records have been built at least once.
func (r *Resolver) Loaded() bool { return r.recs.Load() != nil }

// Listeners are the sockets Run serves on; a nil one is not served.
type Listeners struct {
	UDP  net.PacketConn
	TCP  net.Listener
	HTTP net.Listener
}

// Listen opens the sockets the config asks for (dnson, httpon).
func (r *Resolver) Listen() (Listeners, error) {
	var ls Listeners
	if r.cfg.DNSOn {
		// With port 0 the system picks the UDP port, and TCP may find
		// it taken: pick again a few times.
		tries := 1
		if r.cfg.Port == 0 {
			tries = 20
		}
		var err error
		for i := 0; i < tries; i++ {
			if ls.UDP, ls.TCP, err = r.listenDNS(); err == nil {
				break
			}
		}
		if err != nil {
			return ls, err
		}
	}
	if r.cfg.HTTPOn {
		addr := net.JoinHostPort(r.cfg.Listener, strconv.Itoa(r.cfg.HTTPPort))
		hl, err := net.Listen("tcp", addr)
		if err != nil {
			ls.Close()
			return Listeners{}, fmt.Errorf("dns: HTTP %s: %w", addr, err)
		}
		ls.HTTP = hl
	}
	return ls, nil
}

// listenDNS opens UDP and TCP on the same port.
func (r *Resolver) listenDNS() (net.PacketConn, net.Listener, error) {
	addr := net.JoinHostPort(r.cfg.Listener, strconv.Itoa(r.cfg.Port))
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dns: UDP %s: %w", addr, err)
	}
	taddr := net.JoinHostPort(r.cfg.Listener, strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port))
	tl, err := net.Listen("tcp", taddr)
	if err != nil {
		pc.Close()
		return nil, nil, fmt.Errorf("dns: TCP %s: %w", taddr, err)
	}
	return pc, tl, nil
}

// Close closes the listeners that are open.
func (ls Listeners) Close() {
	for _, c := range []interface{ Close() error }{ls.UDP, ls.TCP, ls.HTTP} {
		if c != nil {
			c.Close()
		}
	}
}

// Run follows the master and serves on ls until ctx ends.
func (r *Resolver) Run(ctx context.Context, ls Listeners) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var servers []func()
	errc := make(chan error, 3)
	if ls.UDP != nil {
		s := &dns.Server{PacketConn: ls.UDP, Net: "udp", Handler: r}
		// Closing the socket too ends a server that had not started yet
		// (Shutdown alone refuses it).
		servers = append(servers, func() { s.Shutdown(); ls.UDP.Close() })
		wg.Add(1)
		go func() { defer wg.Done(); errc <- s.ActivateAndServe() }()
	}
	if ls.TCP != nil {
		s := &dns.Server{Listener: ls.TCP, Net: "tcp", Handler: r, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
		servers = append(servers, func() { s.Shutdown(); ls.TCP.Close() })
		wg.Add(1)
		go func() { defer wg.Done(); errc <- s.ActivateAndServe() }()
	}
	if ls.HTTP != nil {
		h := r.HTTPHandler()
		if r.wrapHTTP != nil {
			h = r.wrapHTTP(h)
		}
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, func() { hs.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := httplimit.Serve(hs, ls.HTTP, httplimit.Config{Name: "dns"}); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	wg.Add(2)
	go func() { defer wg.Done(); r.builder(ctx) }()
	go func() { defer wg.Done(); r.follow(ctx) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		if err != nil {
			err = fmt.Errorf("dns: serving stopped: %w", err)
		}
	}
	cancel()
	for _, stop := range servers {
		stop()
	}
	wg.Wait()
	return err
}

// changed asks the builder for a whole rebuild of the records.
func (r *Resolver) changed() {
	select {
	case r.rebuild <- struct{}{}:
	default:
	}
}

// update brings the records up to date with a change of the view: in
// place for what the change touched, or by a whole rebuild when it says
// so or nothing was built yet. Call with r.mu held.
func (r *Resolver) update(ch change) {
	if ch.empty() {
		return
	}
	recs := r.recs.Load()
	if ch.full || recs == nil {
		r.changed()
		return
	}
	recs.apply(&r.cfg, r.view, ch, r.masters, r.self)
	r.updates.Add(1)
	r.changes.Bump()
}

// builder rebuilds the records whole when asked, at most one build at a
// time: requests that arrive during a build are folded into the next one.
// The new records are swapped in before the view is unlocked, so that no
// event applied in place in between is lost.
func (r *Resolver) builder(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.rebuild:
		}
		r.mu.Lock()
		r.recs.Store(build(&r.cfg, r.view, r.masters, r.self))
		r.builds.Add(1)
		r.mu.Unlock()
		r.changes.Bump()
	}
}

// Stats are counters for tests and benchmarks.
type Stats struct {
	Events, Resyncs, Subscriptions uint64
	// Builds counts whole rebuilds of the records; Updates the changes
	// applied to them in place.
	Builds, Updates uint64
	Tasks           int
}

// Stats returns the resolver's counters.
func (r *Resolver) Stats() Stats {
	s := Stats{Events: r.events.Load(), Resyncs: r.resyncs.Load(), Subscriptions: r.subscriptions.Load(),
		Builds: r.builds.Load(), Updates: r.updates.Load()}
	if recs := r.recs.Load(); recs != nil {
		recs.mu.RLock()
		s.Tasks = len(recs.tasks)
		recs.mu.RUnlock()
	}
	return s
}
