package framework

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"
)

// Destroying a ring is the one way its data goes: the nodes are killed,
// each node's placement is retired once its task has ended, and the
// retired placements' volumes are destroyed and reservations unreserved
// as their agents offer them (releaseLocked). Once nothing is left but
// placements on agents that are away from the master (which cannot be
// released until they come back), the framework tears itself down and
// its state file goes.

// ErrDestroying refuses changes to a ring that is being destroyed.
var ErrDestroying = errors.New("the ring is being destroyed")

// Destroy starts destroying the ring; Run returns once it is done. It is
// saved, so a restarted scheduler goes on with it. Calling it again does
// nothing.
func (f *Framework) Destroy(ctx context.Context) {
	f.mu.Lock()
	if f.destroying {
		f.mu.Unlock()
		return
	}
	f.destroying = true
	f.rolling = nil
	f.saveLocked()
	f.mu.Unlock()
	f.log.Warn("destroying the ring: killing the nodes, then destroying their volumes and unreserving their resources", "cluster", f.spec.Name)
	f.stepDestroy(ctx)
}

// stepDestroy kills the nodes still running, retires the placements of
// those that are not, and ends the destruction once nothing it can release
// is left. It is called after each probe while destroying.
func (f *Framework) stepDestroy(ctx context.Context) {
	type kill struct{ node, task, agent string }
	f.mu.Lock()
	if !f.destroying || f.destroyedAt() {
		f.mu.Unlock()
		return
	}
	f.retireStoppedLocked()
	var kills []kill
	for _, n := range f.nodes {
		if n.AgentID != "" && n.TaskID != "" {
			kills = append(kills, kill{n.Name, n.TaskID, n.AgentID})
		}
	}
	retired := len(f.retired)
	d := f.driver
	f.mu.Unlock()
	if len(kills) > 0 {
		for _, k := range kills {
			if d == nil {
				break
			}
			if err := d.Kill(ctx, k.task, k.agent); err != nil {
				f.log.Debug("destroy: kill", "node", k.node, "err", err)
			}
		}
		return
	}
	if retired > 0 {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		active, err := f.activeAgents(actx)
		cancel()
		if err != nil {
			f.log.Debug("destroy: cannot ask the master about the agents", "err", err)
			return
		}
		f.mu.Lock()
		var waiting, away []string
		for _, rt := range f.retired {
			if active[rt.AgentID] {
				waiting = append(waiting, rt.Node+"@"+rt.Host)
			} else {
				away = append(away, rt.Node+"@"+rt.Host)
			}
		}
		f.mu.Unlock()
		if len(waiting) > 0 {
			// Offers were declined while the tasks ended.
			if d != nil {
				if err := d.Revive(ctx); err != nil {
					f.log.Debug("revive", "err", err)
				}
			}
			return
		}
		f.log.Warn("destroy: reservations and volumes left on agents away from the master; release them with the operator API if they come back",
			"placements", away)
	}
	f.mu.Lock()
	f.destroyedOnce()
	f.mu.Unlock()
}

// retireStoppedLocked retires the placement of every node whose task is
// not running: its reservation and volume are released from the next
// offer of its agent.
func (f *Framework) retireStoppedLocked() {
	changed := false
	for _, n := range f.nodes {
		if n.AgentID == "" || runningLocked(n) {
			continue
		}
		f.retired = append(f.retired, Retired{Node: n.Name, AgentID: n.AgentID, Host: n.Host, VolumeID: n.VolumeID, HostID: n.HostID, Since: time.Now()})
		f.log.Info("destroy: node stopped; its reservation and volume are released from its agent's next offer", "node", n.Name, "agent", n.AgentID, "volume", n.VolumeID)
		*n = Node{Name: n.Name, Index: n.Index, Seed: n.Seed, Launches: n.Launches}
		changed = true
	}
	if changed {
		f.saveLocked()
	}
}

// destroyedAt says whether the destruction has ended. Call with f.mu held.
func (f *Framework) destroyedAt() bool {
	select {
	case <-f.destroyed:
		return true
	default:
		return false
	}
}

// destroyedOnce ends the destruction: Run tears the framework down. Call
// with f.mu held.
func (f *Framework) destroyedOnce() {
	if f.destroyedAt() {
		return
	}
	f.log.Warn("ring destroyed", "cluster", f.spec.Name)
	close(f.destroyed)
}

// Destroyed is closed once a destruction has ended.
func (f *Framework) Destroyed() <-chan struct{} { return f.destroyed }

// forgetState removes the state file of a destroyed ring, so that the
// next scheduler with this state directory starts a new one.
func (f *Framework) forgetState() {
	if f.store == nil {
		return
	}
	if err := os.Remove(filepath.Join(f.store.dir, StateFile)); err != nil && !os.IsNotExist(err) {
		f.log.Warn("remove the destroyed ring's state", "err", err)
	}
}
