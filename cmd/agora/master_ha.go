package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"sync/atomic"
	"time"

	gozk "github.com/go-zookeeper/zk"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/registry"
	"github.com/agora-cluster/agora/cluster/zk"
)

// haMaster is a master that stands for election in ZooKeeper (--zk). It
// serves the standby API (redirects to the leader) until elected; then it
// recovers the registry from ZooKeeper into a fresh master and serves
// that. The moment its leadership lease runs out it swaps the standby API
// back in, stops the master (which sends no offer once fenced, and whose
// registry writes ZooKeeper refuses) and stands again.
type haMaster struct {
	url     zk.URL
	quorum  int
	cfg     master.Config
	ui      http.Handler
	log     *slog.Logger
	group   *zk.Group
	cache   *registry.ZKCache // the registry's copy, kept while standing by
	info    mesos.MasterInfo
	current atomic.Pointer[http.Handler]
	// recovering, while set, is closed when this elected master has
	// recovered the registry (or failed to): calls that arrive meanwhile
	// wait for it (see ServeHTTP).
	recovering atomic.Pointer[chan struct{}]
	held       atomic.Int64 // calls waiting on recovering now
	// terms counts the times this process was elected (for tests and logs).
	terms atomic.Int64
}

func newHAMaster(u zk.URL, quorum int, sessionTimeout time.Duration, cfg master.Config, ui http.Handler, log *slog.Logger) (*haMaster, error) {
	if quorum < 1 {
		return nil, fmt.Errorf("--quorum must be at least 1, not %d", quorum)
	}
	cfg.ID = master.NewID()
	h := &haMaster{url: u, quorum: quorum, cfg: cfg, ui: ui, log: log}
	h.info = master.Info(cfg, cfg.ID)
	data, err := api.JSON.Marshal(&h.info)
	if err != nil {
		return nil, err
	}
	h.group = zk.NewGroup(u, zk.Options{SessionTimeout: sessionTimeout, Log: log})
	h.group.Contend(data)
	h.cache = registry.NewZKCache(h.group.Conn, u.Path+"/registry", log)
	standby := master.StandbyHandler(h.info, cfg.Flags, h.leader, cfg.HTTP)
	h.current.Store(&standby)
	return h, nil
}

// leader is who leads, as the standby API reports it: nobody while the
// leader is this master — elected but not acting (too few masters for
// --quorum, the registry not yet recovered, its lease run out), or an
// earlier run of it at the same address whose znode has not expired yet
// — so clients are told to retry rather than sent in a circle.
func (h *haMaster) leader() (string, *mesos.MasterInfo, bool) {
	l, ok := h.group.Leader()
	if !ok || l.Name == path.Base(h.group.Node()) {
		return "", nil, false
	}
	addr, err := l.Address()
	if err != nil || addr == h.addr() {
		return "", nil, false
	}
	var info mesos.MasterInfo
	if err := api.JSON.Unmarshal(l.Data, &info); err != nil || info.GetID() == h.info.GetID() {
		return "", nil, false
	}
	return addr, &info, true
}

// addr is this master's advertised HTTP address, as Member.Address reads
// it from a znode.
func (h *haMaster) addr() string {
	data, _ := api.JSON.Marshal(&h.info)
	a, _ := zk.Member{Data: data}.Address()
	return a
}

// holdWhileRecovering bounds how long a call waits for this master to
// finish recovering the registry after its election.
const holdWhileRecovering = 10 * time.Second

// ServeHTTP serves r with the handler of the moment. A call that arrives
// while this master, just elected, recovers the registry waits until it
// acts (at most holdWhileRecovering) instead of being told to retry:
// every agent and framework comes to it at once when ZooKeeper names it,
// and with a 503 each would back off and come back up to its backoff
// limit after the master is ready.
func (h *haMaster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if ch := h.recovering.Load(); ch != nil {
		h.held.Add(1)
		t := time.NewTimer(holdWhileRecovering)
		select {
		case <-*ch:
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
		h.held.Add(-1)
	}
	(*h.current.Load()).ServeHTTP(w, r)
}

// serve runs the election and the HTTP server on ln until ctx ends.
func (h *haMaster) serve(ctx context.Context, ln net.Listener) error {
	gctx, stopGroup := context.WithCancel(context.Background())
	groupDone := make(chan struct{})
	go func() { defer close(groupDone); h.group.Run(gctx) }()
	srv := master.NewServer(h)
	srv.Protocols.SetHTTP2(true) // over TLS (ALPN h2) when listen wrapped ln in it
	serveErr := make(chan error, 1)
	go func() { serveErr <- master.Serve(srv, ln) }()
	h.log.Info("standing for election", "zk", h.url.String(), "quorum", h.quorum, "id", h.info.GetID())

	err := h.alternate(ctx, serveErr)

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	// Leaving deletes our znode, so another master takes over at once.
	stopGroup()
	select {
	case <-groupDone:
	case <-time.After(30 * time.Second):
	}
	return err
}

// alternate alternates standby and leadership until ctx ends or the server
// fails.
func (h *haMaster) alternate(ctx context.Context, serveErr <-chan error) error {
	standby := h.current.Load()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	warned, failures := false, 0
	for {
		// Standby: keep a copy of the registry current, and wait to be
		// elected with a quorum of masters standing.
		stopCache := h.followRegistry(ctx)
		for !(h.group.Leading() && h.group.Members() >= h.quorum) {
			if h.group.Leading() && !warned {
				h.log.Warn("elected, but fewer masters than --quorum stand for election: not acting until they do",
					"masters", h.group.Members(), "quorum", h.quorum)
				warned = true
			}
			select {
			case <-ctx.Done():
				stopCache()
				return nil
			case err := <-serveErr:
				stopCache()
				return err
			case <-h.group.Changed():
			case <-tick.C:
			}
		}
		warned = false
		term := h.group.Node()
		ready := make(chan struct{})
		h.recovering.Store(&ready)
		h.log.Info("elected; recovering the registry", "id", h.info.GetID())
		began := time.Now()
		m, err := h.recover(term)
		stopCache()
		if err != nil {
			h.recovering.Store(nil)
			close(ready)
			failures++
			if failures >= maxRecoveryFailures {
				// Holding the oldest znode without acting would keep every
				// other master from leading: give the election up.
				return fmt.Errorf("elected %d times in a row but could not recover the registry: %w", failures, err)
			}
			h.log.Error("elected, but the registry could not be recovered; trying again", "err", err, "attempt", failures)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		failures = 0
		h.terms.Add(1)
		mctx, stopMaster := context.WithCancel(context.Background())
		runDone := make(chan error, 1)
		go func() { runDone <- m.Run(mctx) }()
		leading := m.Handler(h.ui)
		fenced := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !h.group.Leading() {
				(*standby).ServeHTTP(w, r)
				return
			}
			leading.ServeHTTP(w, r)
		})
		var fh http.Handler = fenced
		h.current.Store(&fh)
		h.recovering.Store(nil)
		close(ready)
		h.log.Info("elected leading master", "id", h.info.GetID(), "term", h.terms.Load(), "recovery", time.Since(began))

		// Leading, as long as this term's znode lives: a lease that runs
		// out (ZooKeeper unreachable for a moment) only fences the master
		// — no offers, the standby API — until it is renewed in the same
		// session; a new znode (the session expired: another master may
		// have led since) ends the term, and so do the server failing and
		// ctx ending.
		var stop error
		stopped := false
		for h.group.Node() == term && !stopped {
			select {
			case <-ctx.Done():
				stopped = true
			case stop = <-serveErr:
				stopped = true
			case err := <-runDone:
				// The panic policy (cluster/master, step): the process
				// exits, and its supervisor restarts it from the registry.
				stop = fmt.Errorf("the master's loop ended while leading: %w", err)
				stopped = true
			case <-h.group.Changed():
			case <-tick.C:
			}
		}
		h.current.Store(standby)
		stopMaster()
		select {
		case <-runDone:
		case <-time.After(30 * time.Second):
			h.log.Error("the master's loop did not stop within 30 s")
		}
		if ctx.Err() != nil {
			return nil
		}
		if stop != nil {
			return stop
		}
		h.log.Warn("no longer the leading master (its ZooKeeper session ended); standing for election again", "id", h.info.GetID())
	}
}

// followRegistry keeps h.cache current in the background until the
// function it returns is called (which waits for it to stop).
func (h *haMaster) followRegistry(ctx context.Context) (stop func()) {
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); h.cache.Run(cctx) }()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			h.log.Error("the registry's copy did not stop within 30 s")
		}
	}
}

// maxRecoveryFailures is how many elections in a row may fail to recover
// the registry before the master gives the election up and exits.
const maxRecoveryFailures = 3

// recover makes a master for the term of znode term from the registry in
// ZooKeeper. Its registry writes are fenced on that znode: a master of an
// earlier term still stopping can never write under a later one.
func (h *haMaster) recover(term string) (*master.Master, error) {
	conn := h.group.Conn()
	if conn == nil {
		return nil, errors.New("no ZooKeeper connection")
	}
	fence := func() (*gozk.CheckVersionRequest, error) {
		if h.group.Node() != term {
			return nil, errors.New("this master's term has ended")
		}
		return h.group.Fence()
	}
	reg, err := registry.OpenZK(conn, h.url.Path+"/registry", fence, h.url.ACL()...)
	if err != nil {
		return nil, err
	}
	// Read back from the copy kept while standing by, caught up on what
	// changed since; a copy that cannot be trusted is read past.
	reg.UseCache(h.cache)
	cfg := h.cfg
	cfg.Registry = reg
	cfg.Leading = h.group.Leading
	return master.New(cfg)
}
