package framework

import (
	"context"
	"encoding/json"
	"time"

	"github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/plan"
)

// watch asks Nimbus about its supervisors and topologies every
// cfg.Watch until ctx ends, and acts on the answer: wants slots the
// topologies lack, releases idle supervisors, and replaces supervisors
// pointed at a Nimbus that is gone.
func (f *Framework) watch(ctx context.Context) {
	var c *client.Client
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	t := time.NewTicker(f.cfg.Watch)
	defer t.Stop()
	for {
		f.mu.Lock()
		addr := f.nimbusAddr
		f.mu.Unlock()
		if c != nil && c.Addr() != addr {
			c.Close()
			c = nil
		}
		if c == nil && addr != "" {
			c, _ = client.New(addr, client.Options{CallTimeout: 20 * time.Second, ConnectTimeout: 5 * time.Second})
		}
		if c != nil {
			f.look(ctx, c)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// look is one round of watch.
func (f *Framework) look(ctx context.Context, c *client.Client) {
	cl, err := f.cluster(ctx, c)
	if err != nil {
		f.log.Debug("ask nimbus", "nimbus", c.Addr(), "err", err)
		return
	}
	now := time.Now()
	f.mu.Lock()
	seen := c.Addr()
	if f.nimbus != nil {
		seen = f.nimbus.TaskID + "@" + seen
	}
	first := f.nimbusSeen != seen
	f.nimbusSeen, f.nimbusUp = seen, c.Addr()
	if len(f.zk.hosts) == 0 {
		f.mu.Unlock()
		conf, err := c.NimbusConf(ctx)
		var z zooKeeper
		if err == nil {
			z, err = zooKeeperFromConf(conf)
		}
		if err != nil {
			f.log.Warn("cannot learn ZooKeeper from Nimbus; give --storm_zookeeper", "err", err)
			return
		}
		f.mu.Lock()
		f.zk = z
	}
	for h, at := range f.recent {
		if now.Sub(at) > recentFor {
			delete(f.recent, h)
		}
	}
	recent := map[string]bool{}
	for h := range f.recent {
		recent[h] = true
	}
	used := plan.Used(cl)
	var own []plan.Own
	var stale []Task
	for _, s := range f.sups {
		if f.released[s.TaskID] {
			continue
		}
		if s.Nimbus != "" && s.Nimbus != c.Addr() {
			stale = append(stale, s.Task)
			continue
		}
		o := plan.Own{TaskID: s.TaskID, Supervisor: s.Supervisor}
		if o.Runs(used) {
			s.busy = now
		}
		o.Busy = s.busy
		own = append(own, o)
	}
	f.short = plan.Short(cl, own, recent)
	idle := plan.Idle(cl, own, recent, now, f.s.SuicideTimeout)
	kill := map[string]string{}
	for _, id := range idle {
		f.released[id] = true
		kill[id] = f.sups[id].AgentID
	}
	for _, t := range stale {
		f.released[t.TaskID] = true
		kill[t.TaskID] = t.AgentID
	}
	short, onNimbus := f.short, f.cfg.OnNimbus
	f.mu.Unlock()

	if first {
		f.log.Info("nimbus answers", "nimbus", c.Addr(), "supervisors", len(cl.Supervisors), "topologies", len(cl.Topologies))
		if onNimbus != nil && f.cfg.Nimbus == "" {
			onNimbus(c.Addr())
		}
	}
	for id, agentID := range kill {
		f.log.Info("releasing supervisor", "task", id, "idle_for_at_least", f.s.SuicideTimeout)
		if err := f.driver.Kill(ctx, id, agentID); err != nil {
			f.log.Warn("kill supervisor", "task", id, "err", err)
		}
	}
	if short > 0 {
		f.log.Debug("slots wanted", "short", short, "demand", plan.Demand(cl))
	}
	f.adjustOffers(ctx)
}

// cluster is Nimbus's view reduced for the plan: every supervisor, and
// each topology's requested workers (its topology.workers) and the slots
// its executors run in.
func (f *Framework) cluster(ctx context.Context, c *client.Client) (plan.Cluster, error) {
	cs, err := c.ClusterInfo(ctx)
	if err != nil {
		return plan.Cluster{}, err
	}
	var out plan.Cluster
	for _, s := range cs.Supervisors {
		out.Supervisors = append(out.Supervisors, plan.NimbusSupervisor{Host: s.Host, Slots: int(s.NumWorkers)})
	}
	for _, ts := range cs.Topologies {
		if ts.Status == "KILLED" {
			continue
		}
		t := plan.Topology{ID: ts.ID, Name: ts.Name, Workers: int(ts.NumWorkers)}
		if conf, err := c.TopologyConf(ctx, ts.ID); err == nil {
			var tc struct {
				Workers *int `json:"topology.workers"`
			}
			if json.Unmarshal([]byte(conf), &tc) == nil && tc.Workers != nil {
				t.Workers = *tc.Workers
			}
		} else {
			return plan.Cluster{}, err
		}
		info, err := c.TopologyInfo(ctx, ts.ID)
		if err != nil {
			return plan.Cluster{}, err
		}
		for _, e := range info.Executors {
			t.Slots = append(t.Slots, plan.HostPort{Host: e.Host, Port: uint64(e.Port)})
		}
		out.Topologies = append(out.Topologies, t)
	}
	return out, nil
}
