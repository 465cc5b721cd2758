package framework

import (
	"context"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cassandra/cql"
)

// watch asks every running node about itself over CQL (system.local)
// every Probe: a node that answers having joined is Up, and its host ID is
// recorded; the next node's turn comes once all before it are Up.
func (f *Framework) watch(ctx context.Context) {
	t := time.NewTicker(f.cfg.Probe)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.probeAll(ctx)
		f.checkGone(ctx)
		f.stepRolling(ctx)
		f.stepJobs(time.Now())
		f.stepDestroy(ctx)
	}
}

func (f *Framework) probeAll(ctx context.Context) {
	type target struct{ name, task, addr string }
	f.mu.Lock()
	var ts []target
	for _, n := range f.nodes {
		if n.State == mesos.TASK_RUNNING.String() && n.Host != "" {
			ts = append(ts, target{n.Name, n.TaskID, n.NativeAddr()})
		}
	}
	f.mu.Unlock()
	joined := false
	for _, t := range ts {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		l, err := cql.QueryLocal(pctx, t.addr, 5*time.Second)
		cancel()
		f.mu.Lock()
		for _, n := range f.nodes {
			if n.Name != t.name || n.TaskID != t.task {
				continue
			}
			up := err == nil && l.Joined()
			if up && !n.Up {
				f.log.Info("node is up and in the ring", "node", n.Name, "host_id", l.HostID, "peers", l.Peers)
				joined = true
				f.losses[n.Name] = 0
			}
			if n.Up != up {
				f.changes.Bump()
			}
			n.Up = up
			if up && n.ReplaceAddress != "" {
				f.log.Info("replacement node has joined the ring in the old node's place; repairing its ranges", "node", n.Name, "replaced", n.ReplaceAddress, "host_id", l.HostID)
				n.ReplaceAddress, n.RepairPending = "", true
				f.saveLocked()
			}
			if up && (!n.Joined || n.HostID != l.HostID) {
				n.Joined, n.HostID = true, l.HostID
				f.saveLocked()
			}
		}
		f.mu.Unlock()
	}
	if joined && f.driver != nil {
		// The next node's turn may have come: offers were declined
		// while it waited.
		if err := f.driver.Revive(ctx); err != nil {
			f.log.Debug("revive", "err", err)
		}
	}
}
