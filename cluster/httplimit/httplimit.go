// Package httplimit bounds what clients can hold of an HTTP server: how
// long a connection may take to send its request headers (slowloris), how
// large they may be, how long an idle keep-alive connection stays, and how
// many connections are open at once. Past the connection limit a new
// connection is answered 503 with Retry-After and closed, the refusal is
// counted and logged (once, then at most once a minute), and the server's
// memory stays bounded however many clients try.
//
// Mesos has no such flags; agora's are --http_max_connections,
// --http_read_header_timeout, --http_idle_timeout and
// --http_max_header_bytes, on the master and the agent alike.
//
// Streams (event subscriptions, an agent's registration) are not cut: the
// header timeout ends once the request's headers are read, and a stream
// is never idle in net/http's sense while its handler runs.
package httplimit

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults. ReadHeaderTimeout and IdleTimeout are what the master and the
// agent had before they were flags.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	// DefaultMaxHeaderBytes: Mesos's clients send a few hundred bytes of
	// headers; Go's default is 1 MiB per connection.
	DefaultMaxHeaderBytes = 64 << 10
	// reservedFiles are the file descriptors kept for the process's own
	// files and outgoing connections when the connection limit derives
	// from RLIMIT_NOFILE.
	reservedFiles = 1024
	// minMaxConnections is the least derived limit.
	minMaxConnections = 256
	// refusalsInFlight bounds the refusals being written at once; past it
	// a connection is closed without a 503.
	refusalsInFlight = 64
	// refusalTimeout bounds writing one refusal.
	refusalTimeout = time.Second
)

// Config bounds one server. Zero fields take the process's settings (Set),
// and those the defaults above.
type Config struct {
	// Name identifies the server in logs and Stats ("master", "agent").
	Name string
	// MaxConnections bounds the connections open at once; 0: the
	// process's setting, by default RLIMIT_NOFILE less 1,024 (at least
	// 256), so that a flood is refused with a 503 before accept(2)
	// starts failing for want of file descriptors; negative: no limit.
	// An HTTP/2 connection counts once however many streams it carries
	// (a fleet of 40,000 simulated agents holds ~160).
	MaxConnections    int
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	Logger            *slog.Logger
}

var (
	settingsMu sync.Mutex
	settings   Config
)

// Set makes cfg's non-zero fields the process's settings for every
// server configured after it (the --http_* flags).
func Set(cfg Config) {
	settingsMu.Lock()
	defer settingsMu.Unlock()
	settings = cfg
}

// resolve fills cfg's zero fields from the process's settings and the
// defaults.
func resolve(cfg Config) Config {
	settingsMu.Lock()
	s := settings
	settingsMu.Unlock()
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = s.MaxConnections
	}
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = defaultMaxConnections()
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = s.ReadHeaderTimeout
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = s.IdleTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = s.MaxHeaderBytes
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = s.Logger
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

func defaultMaxConnections() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return 1 << 16
	}
	return max(int(lim.Cur)-reservedFiles, minMaxConnections)
}

// Apply sets srv's header timeout, idle timeout and header size where
// srv leaves them zero, from cfg (the process's settings for cfg's zero
// fields): a server that must keep a value of its own sets it.
func Apply(srv *http.Server, cfg Config) {
	cfg = resolve(cfg)
	if srv.ReadHeaderTimeout == 0 {
		srv.ReadHeaderTimeout = cfg.ReadHeaderTimeout
	}
	if srv.IdleTimeout == 0 {
		srv.IdleTimeout = cfg.IdleTimeout
	}
	if srv.MaxHeaderBytes == 0 {
		srv.MaxHeaderBytes = cfg.MaxHeaderBytes
	}
}

// Serve is srv.Serve(ln) with cfg applied (Apply) and at most
// cfg.MaxConnections connections open at once: Limit(ln, cfg).Serve(srv).
func Serve(srv *http.Server, ln net.Listener, cfg Config) error {
	return Limit(ln, cfg).Serve(srv)
}

// Serve is srv.Serve(l) with l's Config applied (Apply). A connection's
// slot is given back when the server closes or hijacks it (srv.ConnState,
// which Serve chains); the connections themselves are not wrapped, so a
// TLS listener's still reach the server as *tls.Conn.
func (l *Listener) Serve(srv *http.Server) error {
	Apply(srv, l.cfg)
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateClosed || s == http.StateHijacked {
			l.open.Add(-1)
		}
		if prev != nil {
			prev(c, s)
		}
	}
	return srv.Serve(l)
}

// Stats are a limited listener's counters.
type Stats struct {
	Open, Max int
	Refused   uint64
}

var (
	registryMu sync.Mutex
	// registry holds the open listeners by Config.Name; several share a
	// name when a process runs several servers of a kind (agents under
	// `agora dev --agents N`, an agent restarted in a test).
	registry = map[string]map[*Listener]struct{}{}
)

// StatsOf sums the counters of the open listeners made under name in this
// process. A server of which a process may run several reads its own
// listener's (Listener.Stats) instead.
func StatsOf(name string) Stats {
	registryMu.Lock()
	defer registryMu.Unlock()
	var sum Stats
	for l := range registry[name] {
		st := l.Stats()
		sum.Open += st.Open
		sum.Max += st.Max
		sum.Refused += st.Refused
	}
	return sum
}

// Listener is a net.Listener that keeps at most Max connections open; the
// server that serves it gives slots back (Serve).
type Listener struct {
	net.Listener
	cfg      Config
	name     string
	max      int64
	log      *slog.Logger
	open     atomic.Int64
	refused  atomic.Uint64
	inFlight atomic.Int64
	lastLog  atomic.Int64 // unix nanoseconds of the last refusal logged
	closed   atomic.Bool
}

// Limit limits ln to cfg.MaxConnections open connections (see Config) and
// registers it for StatsOf(cfg.Name) until it is closed. Serve it with
// its Serve method.
func Limit(ln net.Listener, cfg Config) *Listener {
	cfg = resolve(cfg)
	l := &Listener{Listener: ln, cfg: cfg, name: cfg.Name, max: int64(cfg.MaxConnections), log: cfg.Logger}
	if cfg.Name != "" {
		registryMu.Lock()
		if registry[cfg.Name] == nil {
			registry[cfg.Name] = map[*Listener]struct{}{}
		}
		registry[cfg.Name][l] = struct{}{}
		registryMu.Unlock()
	}
	return l
}

// Close closes the listener and drops it from StatsOf.
func (l *Listener) Close() error {
	if l.closed.CompareAndSwap(false, true) && l.name != "" {
		registryMu.Lock()
		delete(registry[l.name], l)
		if len(registry[l.name]) == 0 {
			delete(registry, l.name)
		}
		registryMu.Unlock()
	}
	return l.Listener.Close()
}

// Stats returns the listener's counters.
func (l *Listener) Stats() Stats {
	return Stats{Open: int(l.open.Load()), Max: int(l.max), Refused: l.refused.Load()}
}

// Accept returns the next connection within the limit; those past it are
// refused on the way.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max || l.max < 0 {
			return c, nil
		}
		l.open.Add(-1)
		l.refuse(c)
	}
}

// refuse answers c 503 and closes it, without holding up Accept.
func (l *Listener) refuse(c net.Conn) {
	n := l.refused.Add(1)
	if now := time.Now().UnixNano(); n == 1 || now-l.lastLog.Load() > int64(time.Minute) {
		l.lastLog.Store(now)
		l.log.Warn("refusing HTTP connections past the limit (--http_max_connections)",
			"server", l.name, "limit", l.max, "refused", n, "remote", c.RemoteAddr().String())
	}
	if l.inFlight.Add(1) > refusalsInFlight {
		l.inFlight.Add(-1)
		c.Close()
		return
	}
	go func() {
		defer l.inFlight.Add(-1)
		defer c.Close()
		c.SetDeadline(time.Now().Add(refusalTimeout))
		// The request's headers are read first: an HTTP client takes a
		// response that comes before its request for a broken
		// connection, not for an answer.
		buf := make([]byte, 0, 4096)
		for len(buf) < cap(buf) && !bytes.Contains(buf, []byte("\r\n\r\n")) {
			n, err := c.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err != nil {
				return
			}
		}
		if _, err := c.Write(refusal); err != nil {
			return
		}
		// Closing with unread data (a body) resets the connection, and the
		// reset can reach the client before it reads the 503: half-close
		// and drain until the client closes or the deadline passes.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		for {
			if _, err := c.Read(buf[:cap(buf)]); err != nil {
				return
			}
		}
	}()
}

var refusal = func() []byte {
	body := "too many connections: the server is at its limit (--http_max_connections); retry later\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\n" +
		"Retry-After: 1\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()
