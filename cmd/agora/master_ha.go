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
	info    mesos.MasterInfo
	current atomic.Pointer[http.Handler]
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
	standby := master.StandbyHandler(h.info, cfg.Flags, h.leader, cfg.HTTP)
	h.current.Store(&standby)
	return h, nil
}

// leader is who leads, as the standby API reports it: nobody while this
// master is elected but not acting (too few masters for --quorum, or the
// registry not yet recovered), so clients are told to retry rather than
// sent in a circle.
func (h *haMaster) leader() (string, *mesos.MasterInfo, bool) {
	l, ok := h.group.Leader()
	if !ok || l.Name == path.Base(h.group.Node()) {
		return "", nil, false
	}
	addr, err := l.Address()
	if err != nil {
		return "", nil, false
	}
	var info mesos.MasterInfo
	if err := api.JSON.Unmarshal(l.Data, &info); err != nil {
		return "", nil, false
	}
	return addr, &info, true
}

func (h *haMaster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*h.current.Load()).ServeHTTP(w, r)
}

// serve runs the election and the HTTP server on ln until ctx ends.
func (h *haMaster) serve(ctx context.Context, ln net.Listener) error {
	gctx, stopGroup := context.WithCancel(context.Background())
	groupDone := make(chan struct{})
	go func() { defer close(groupDone); h.group.Run(gctx) }()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: master.ReadHeaderTimeout, ReadTimeout: master.ReadTimeout, IdleTimeout: master.IdleTimeout}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
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
	warned := false
	for {
		// Standby: wait to be elected with a quorum of masters standing.
		for !(h.group.Leading() && h.group.Members() >= h.quorum) {
			if h.group.Leading() && !warned {
				h.log.Warn("elected, but fewer masters than --quorum stand for election: not acting until they do",
					"masters", h.group.Members(), "quorum", h.quorum)
				warned = true
			}
			select {
			case <-ctx.Done():
				return nil
			case err := <-serveErr:
				return err
			case <-h.group.Changed():
			case <-tick.C:
			}
		}
		warned = false
		m, err := h.recover()
		if err != nil {
			h.log.Error("elected, but the registry could not be recovered; standing by", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
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
		h.log.Info("elected leading master", "id", h.info.GetID(), "term", h.terms.Load())

		// Leading: until the lease runs out, the server fails or ctx ends.
		var stop error
		stopped := false
		for h.group.Leading() && !stopped {
			select {
			case <-ctx.Done():
				stopped = true
			case stop = <-serveErr:
				stopped = true
			case err := <-runDone:
				runDone <- err
				h.log.Error("the master's loop ended while leading", "err", err)
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
		h.log.Warn("no longer the leading master; standing for election again", "id", h.info.GetID())
	}
}

// recover makes a master from the registry in ZooKeeper.
func (h *haMaster) recover() (*master.Master, error) {
	conn := h.group.Conn()
	if conn == nil {
		return nil, errors.New("no ZooKeeper connection")
	}
	reg, err := registry.OpenZK(conn, h.url.Path+"/registry", h.group.Fence)
	if err != nil {
		return nil, err
	}
	cfg := h.cfg
	cfg.Registry = reg
	cfg.Leading = h.group.Leading
	return master.New(cfg)
}
