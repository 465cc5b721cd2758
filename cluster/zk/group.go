package zk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
)

// Label is the prefix of the election znodes that hold MasterInfo as
// JSON (Mesos's MASTER_INFO_JSON_LABEL).
const Label = "json.info"

// DefaultSessionTimeout is Mesos's --zk_session_timeout default.
const DefaultSessionTimeout = 10 * time.Second

// Options tune a Group.
type Options struct {
	// SessionTimeout is the ZooKeeper session timeout asked for (10 s
	// when zero). The server must grant it: ZooKeeper clamps it to
	// [2, 20] ticks, so keep it inside the ensemble's bounds — the
	// leadership lease below is derived from it.
	SessionTimeout time.Duration
	Log            *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Member is one znode of the election group.
type Member struct {
	Name string // json.info_0000000017
	Seq  int64
	Data []byte // MasterInfo JSON
}

// Group follows the election group under a URL's path: who leads, and —
// when it contends — whether this process does.
//
// Leadership is held as a lease: Leading is true only while this
// process's znode is the oldest of the group AND a round trip to
// ZooKeeper in the current session began less than half a session
// timeout ago. ZooKeeper expires a session no sooner than a session
// timeout after it last heard from the client, and only then can another
// member lead; so a leader that was paused (SIGSTOP, a long GC, a cut
// link) stops acting by itself as soon as it runs again, before it can
// learn from ZooKeeper that it lost — it is fenced without being told.
// Writes that must be fenced exactly (the registry) also check the
// znode in the same ZooKeeper transaction (see Fence).
type Group struct {
	url  URL
	opts Options
	data []byte // non-nil: contend with this MasterInfo

	mu        sync.Mutex
	conn      *zk.Conn
	session   int64     // the session the state below belongs to
	node      string    // our znode's name in that session, "" when none
	leader    *Member   // the current leader, nil while there is none
	members   int       // how many members the group had at the last read
	elected   bool      // node is the oldest member
	lastOK    time.Time // when the newest successful round trip began
	changed   chan struct{}
	err       error // the last error, for status pages
	wake      chan struct{}
	connected bool
	granted   atomic.Int64 // the session timeout the server granted, in ms (0: not known yet)
}

// NewGroup follows the group at u. Call Contend before Run to stand for
// election too.
func NewGroup(u URL, opts Options) *Group {
	return &Group{url: u, opts: opts.withDefaults(), changed: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// Contend makes the group's process a candidate whose znode holds data
// (the MasterInfo JSON). Call it before Run.
func (g *Group) Contend(data []byte) { g.data = append([]byte{}, data...) }

// Leader returns the current leader, if any.
func (g *Group) Leader() (Member, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.leader == nil {
		return Member{}, false
	}
	return *g.leader, true
}

// Members is how many masters stood for election at the last read.
func (g *Group) Members() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.members
}

// Leading reports whether this process leads now (see the lease above).
func (g *Group) Leading() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.leadingLocked()
}

func (g *Group) leadingLocked() bool {
	return g.elected && g.node != "" && !g.lastOK.IsZero() && time.Since(g.lastOK) < g.lease()
}

// lease is how long a round trip keeps leadership valid: half the
// session timeout, the shorter of the one asked for and the one the server
// granted (ZooKeeper clamps it to its own bounds, and the server expires
// the session after the granted one).
func (g *Group) lease() time.Duration {
	t := g.opts.SessionTimeout
	if ms := g.granted.Load(); ms > 0 && time.Duration(ms)*time.Millisecond < t {
		t = time.Duration(ms) * time.Millisecond
	}
	return t / 2
}

// Changed returns a channel closed at the next change of leader or of
// this process's leadership. It never blocks the group.
func (g *Group) Changed() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changed
}

// Err is the last error the group met (nil once it recovers).
func (g *Group) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// Node returns the full path of this process's znode, "" when it has
// none.
func (g *Group) Node() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.node == "" {
		return ""
	}
	return path.Join(g.url.Path, g.node)
}

func (g *Group) notifyLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

func (g *Group) poke() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// Run follows (and contends in) the group until ctx ends. Connection
// problems are retried with backoff, never returned; it returns ctx's
// error. On return the znode is deleted and the session closed, so
// another member takes over at once.
func (g *Group) Run(ctx context.Context) error {
	conn, err := g.connect(ctx)
	if err != nil {
		return err // ctx ended
	}
	g.mu.Lock()
	g.conn = conn
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		node, was := g.node, g.leadingLocked()
		g.node, g.elected, g.leader = "", false, nil
		g.notifyLocked()
		g.mu.Unlock()
		if node != "" {
			_ = conn.Delete(path.Join(g.url.Path, node), -1)
		}
		conn.Close()
		if was {
			g.opts.Log.Info("zk: gave up leadership", "group", g.url.String())
		}
	}()

	go g.renew(ctx, conn)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		watch, err := g.step(conn)
		g.mu.Lock()
		if (err == nil) != (g.err == nil) && err != nil {
			g.opts.Log.Warn("zk: group", "group", g.url.String(), "err", err)
		}
		g.err = err
		g.mu.Unlock()
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			case <-g.wake:
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		select {
		case <-ctx.Done():
		case <-watch:
		case <-g.wake:
		}
	}
	return ctx.Err()
}

// connect makes the group's connection, retrying with backoff until it
// works or ctx ends: a server name that does not resolve yet, or an
// ensemble that is down when credentials are to be sent, is a condition
// to wait out, not a reason to stop following the group.
func (g *Group) connect(ctx context.Context) (*zk.Conn, error) {
	backoff := 100 * time.Millisecond
	for {
		conn, _, err := zk.Connect(g.url.Servers, g.opts.SessionTimeout,
			zk.WithLogger(zkLogger{g.opts.Log, &g.granted}), zk.WithLogInfo(true),
			zk.WithEventCallback(func(ev zk.Event) {
				if ev.Type == zk.EventSession {
					g.mu.Lock()
					g.connected = ev.State == zk.StateHasSession
					g.mu.Unlock()
				}
				g.poke()
			}))
		if err == nil && g.url.User != "" {
			if err = conn.AddAuth("digest", []byte(g.url.User+":"+g.url.Password)); err != nil {
				conn.Close()
				err = fmt.Errorf("authenticate: %w", err)
			}
		}
		if err == nil {
			return conn, nil
		}
		g.mu.Lock()
		g.err = fmt.Errorf("zk %s: %w", g.url, err)
		g.mu.Unlock()
		g.opts.Log.Warn("zk: cannot connect; retrying", "group", g.url.String(), "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// step brings the group's state up to date once: it makes sure this
// process has its znode in the current session (when contending), reads
// the members and the leader, and returns a watch on the members.
func (g *Group) step(conn *zk.Conn) (<-chan zk.Event, error) {
	g.mu.Lock()
	connected := g.connected
	g.mu.Unlock()
	if !connected {
		// Not a loss yet: the session (and the znode) may well survive a
		// reconnection. Leading turns false by itself when the lease
		// runs out, before the session can expire.
		return nil, errors.New("zk: waiting for a session")
	}
	session := conn.SessionID()
	g.mu.Lock()
	if g.session != session {
		// A new session: whatever znode we had died with the old one.
		if g.node != "" {
			g.opts.Log.Warn("zk: session expired; standing again", "group", g.url.String())
		}
		g.session, g.node, g.elected, g.lastOK = session, "", false, time.Time{}
		g.notifyLocked()
	}
	g.mu.Unlock()

	// Sync first, so that what is read — and the lease it renews — comes
	// from the quorum, not from a server cut off from it (see renew).
	began := time.Now()
	if _, err := conn.Sync(g.url.Path); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return nil, fmt.Errorf("zk: sync %s: %w", g.url.Path, err)
	}
	children, _, watch, err := conn.ChildrenW(g.url.Path)
	if errors.Is(err, zk.ErrNoNode) {
		if err := createPath(conn, g.url.Path, g.url.ACL()); err != nil {
			return nil, fmt.Errorf("zk: create %s: %w", g.url.Path, err)
		}
		children, _, watch, err = conn.ChildrenW(g.url.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("zk: list %s: %w", g.url.Path, err)
	}
	members := parseMembers(children)
	if g.data != nil {
		node, err := g.ensureNode(conn, session, members)
		if err != nil {
			return nil, err
		}
		if node.Name != "" && !hasMember(members, node.Name) {
			// Just created: list again so the watch covers it.
			children, _, watch, err = conn.ChildrenW(g.url.Path)
			if err != nil {
				return nil, fmt.Errorf("zk: list %s: %w", g.url.Path, err)
			}
			members = parseMembers(children)
		}
	}
	var leader *Member
	for len(members) > 0 {
		data, _, err := conn.Get(path.Join(g.url.Path, members[0].Name))
		if errors.Is(err, zk.ErrNoNode) { // it left between the list and the read
			members = members[1:]
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("zk: read %s: %w", members[0].Name, err)
		}
		m := members[0]
		m.Data = data
		leader = &m
		break
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	if conn.SessionID() != g.session {
		return nil, errors.New("zk: session changed while reading the group")
	}
	g.lastOK = began
	g.members = len(members)
	before := g.leadingLocked()
	was := g.leader
	g.leader = leader
	g.elected = leader != nil && g.node != "" && leader.Name == g.node
	now := g.leadingLocked()
	if now != before || (was == nil) != (leader == nil) || (was != nil && leader != nil && was.Name != leader.Name) {
		if now && !before {
			g.opts.Log.Info("zk: elected leader", "group", g.url.String(), "node", g.node)
		}
		g.notifyLocked()
	}
	return watch, nil
}

// ensureNode makes sure this process has exactly one znode in the
// current session, adopting one that a create whose answer was lost
// made (ZooKeeper tells whose session owns an ephemeral node).
func (g *Group) ensureNode(conn *zk.Conn, session int64, members []Member) (Member, error) {
	g.mu.Lock()
	node := g.node
	g.mu.Unlock()
	if node != "" {
		return Member{Name: node}, nil
	}
	for _, m := range members {
		_, st, err := conn.Get(path.Join(g.url.Path, m.Name))
		if err == nil && st.EphemeralOwner == session {
			g.mu.Lock()
			g.node = m.Name
			g.mu.Unlock()
			return m, nil
		}
	}
	created, err := conn.Create(path.Join(g.url.Path, Label+"_"), g.data, zk.FlagEphemeral|zk.FlagSequence, g.url.ACL())
	if err != nil {
		return Member{}, fmt.Errorf("zk: join %s: %w", g.url.Path, err)
	}
	name := path.Base(created)
	g.mu.Lock()
	g.node = name
	g.mu.Unlock()
	g.opts.Log.Info("zk: joined the election", "group", g.url.String(), "node", name)
	return Member{Name: name}, nil
}

// renew keeps the lease fresh with a cheap round trip four times per
// lease, and drops leadership the moment the lease runs out.
func (g *Group) renew(ctx context.Context, conn *zk.Conn) {
	every := g.lease() / 4
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.mu.Lock()
		session, node, before := g.session, g.node, g.leadingLocked()
		g.mu.Unlock()
		if node != "" {
			// Through the quorum: a ZooKeeper server cut off from its
			// ensemble's leader keeps answering plain reads from its own
			// copy while the leader expires our session; sync does not
			// complete there.
			began := time.Now()
			p := path.Join(g.url.Path, node)
			_, err := conn.Sync(p)
			ok := false
			if err == nil {
				ok, _, err = conn.Exists(p)
			}
			g.mu.Lock()
			current := g.session == session && g.node == node && conn.SessionID() == session
			if err == nil && ok && current {
				g.lastOK = began
			} else if err == nil && !ok && current {
				// Our znode is gone: the session expired under us.
				g.node, g.elected = "", false
				g.poke()
			}
			g.mu.Unlock()
		}
		g.mu.Lock()
		switch now := g.leadingLocked(); {
		case before && !now:
			g.opts.Log.Warn("zk: leadership lease ran out; no longer acting as leader", "group", g.url.String())
			g.notifyLocked()
		case !before && now:
			// Renewed in the same session: the znode never went, so no
			// other master can have led meanwhile.
			g.opts.Log.Info("zk: leadership lease renewed; acting as leader again", "group", g.url.String())
			g.notifyLocked()
		}
		g.mu.Unlock()
	}
}

// Fence returns the ZooKeeper operation that makes a multi-op
// transaction fail unless this process's znode still exists — put it
// first in every registry write, so a master whose session expired can
// never write, however late it runs.
func (g *Group) Fence() (*zk.CheckVersionRequest, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.leadingLocked() {
		return nil, errors.New("zk: not the leader")
	}
	return &zk.CheckVersionRequest{Path: path.Join(g.url.Path, g.node), Version: -1}, nil
}

// Conn returns the group's ZooKeeper connection (nil before Run).
func (g *Group) Conn() *zk.Conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.conn
}

// parseMembers keeps the children named Label_<seq>, oldest first.
// Other children (Mesos's log_replicas, older formats) are ignored.
func parseMembers(children []string) []Member {
	var out []Member
	for _, c := range children {
		rest, ok := strings.CutPrefix(c, Label+"_")
		if !ok {
			continue
		}
		seq, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || seq < 0 {
			continue
		}
		out = append(out, Member{Name: c, Seq: seq})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

func hasMember(ms []Member, name string) bool {
	for _, m := range ms {
		if m.Name == name {
			return true
		}
	}
	return false
}

// createPath makes p and its parents as persistent znodes with acl.
func createPath(conn *zk.Conn, p string, acl []zk.ACL) error {
	cur := ""
	for _, seg := range strings.Split(strings.Trim(p, "/"), "/") {
		cur += "/" + seg
		_, err := conn.Create(cur, nil, 0, acl)
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return err
		}
	}
	return nil
}

// zkLogger sends the client's lines to the group's log, and learns from
// them the session timeout the server granted (the client does not
// expose it otherwise).
type zkLogger struct {
	log     *slog.Logger
	granted *atomic.Int64
}

func (l zkLogger) Printf(format string, args ...any) {
	if strings.HasPrefix(format, "authenticated: id=%d, timeout=%d") && len(args) == 2 && l.granted != nil {
		switch v := args[1].(type) {
		case int32:
			l.granted.Store(int64(v))
		case int64:
			l.granted.Store(v)
		case int:
			l.granted.Store(int64(v))
		}
	}
	l.log.Debug("zookeeper client: " + fmt.Sprintf(format, args...))
}

// Address is the leader's host:port for HTTP, from its MasterInfo JSON:
// address.ip (or the packed ip) rather than the hostname, which other
// hosts may not resolve, and address.port (or port).
func (m Member) Address() (string, error) {
	var mi struct {
		IP       uint32 `json:"ip"`
		Port     int    `json:"port"`
		Hostname string `json:"hostname"`
		Address  *struct {
			IP       string `json:"ip"`
			Hostname string `json:"hostname"`
			Port     int    `json:"port"`
		} `json:"address"`
	}
	if err := json.Unmarshal(m.Data, &mi); err != nil {
		return "", fmt.Errorf("zk: leader %s holds no MasterInfo JSON: %w", m.Name, err)
	}
	host, port := "", mi.Port
	if a := mi.Address; a != nil {
		host = a.IP
		if host == "" {
			host = a.Hostname
		}
		if a.Port != 0 {
			port = a.Port
		}
	}
	if host == "" && mi.IP != 0 {
		// Network byte order packed into a little-endian uint32.
		host = fmt.Sprintf("%d.%d.%d.%d", mi.IP&0xff, mi.IP>>8&0xff, mi.IP>>16&0xff, mi.IP>>24)
	}
	if host == "" {
		host = mi.Hostname
	}
	if host == "" || port <= 0 || port > 65535 {
		return "", fmt.Errorf("zk: leader %s's MasterInfo names no address (host %q, port %d)", m.Name, host, port)
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// LeaderAddress asks the ensemble once for the leader's HTTP address
// (host:port), waiting up to wait for one to be elected: what a client
// command given --master=zk://... talks to.
func LeaderAddress(ctx context.Context, u URL, wait time.Duration) (string, error) {
	g := NewGroup(u, Options{})
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for {
		changed := g.Changed()
		if l, ok := g.Leader(); ok {
			return l.Address()
		}
		select {
		case <-ctx.Done():
			why := "no master leads"
			if err := g.Err(); err != nil {
				why = err.Error()
			}
			return "", fmt.Errorf("%s: no leading master within %s: %s", u, wait, why)
		case <-changed:
		}
	}
}
