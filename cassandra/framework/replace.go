package framework

import (
	"context"
	"fmt"
	"strconv"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// A node whose agent is gone cannot come back on its volume. Once its
// agent has been away from the master (not an active agent) for the
// spec's replace_timeout while the node is not running, the node is
// replaced: its placement is retired, and the node is placed again on
// another agent (a new reservation and volume) with
// -Dcassandra.replace_address_first_boot naming the old node's storage
// address, so that it takes over the old node's tokens and streams their
// data from the other replicas. The old placement's reservation and
// volume are released (DESTROY, UNRESERVE) if its agent comes back.

// Retired is a placement a node left: its agent, and the volume and
// reservations (labelled with the node's name) still to be released there.
type Retired struct {
	Node     string    `json:"node"`
	AgentID  string    `json:"agent_id"`
	Host     string    `json:"host"`
	VolumeID string    `json:"volume_id,omitempty"`
	HostID   string    `json:"host_id,omitempty"`
	Since    time.Time `json:"since"`
}

// runningLocked says whether n's task is running or on its way, as far as
// the framework knows.
func runningLocked(n *Node) bool {
	return n.TaskID != "" && !isTerminal(n.State) && n.State != mesos.TASK_UNKNOWN.String() && n.State != mesos.TASK_UNREACHABLE.String()
}

// activeAgents asks the master which agents are registered and active.
func (f *Framework) activeAgents(ctx context.Context) (map[string]bool, error) {
	var last error
	for _, m := range f.cfg.Masters {
		st, err := f.stateClient().Master(ctx, m)
		if err != nil {
			last = err
			continue
		}
		out := map[string]bool{}
		for _, a := range st.Slaves {
			if a.Active {
				out[a.ID] = true
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("ask the master for its agents: %w", last)
}

// checkGone replaces the nodes that are not running and whose agents have
// been away longer than replace_timeout. It asks the master only while
// some placed node is not running.
func (f *Framework) checkGone(ctx context.Context) {
	f.mu.Lock()
	down := false
	for _, n := range f.nodes {
		down = down || (n.AgentID != "" && !runningLocked(n))
	}
	if !down && len(f.goneSince) > 0 {
		clear(f.goneSince)
		f.saveLocked()
	}
	f.mu.Unlock()
	if !down {
		return
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	active, err := f.activeAgents(actx)
	cancel()
	if err != nil {
		f.log.Debug("cannot tell whether the agents of the nodes that are down are away", "err", err)
		return
	}
	now := time.Now()
	timeout := time.Duration(f.Spec().ReplaceTimeout)
	replaced, changed := false, false
	f.mu.Lock()
	for _, n := range f.nodes {
		if n.AgentID == "" || runningLocked(n) || active[n.AgentID] {
			if _, ok := f.goneSince[n.Name]; ok {
				delete(f.goneSince, n.Name)
				changed = true
			}
			continue
		}
		since, seen := f.goneSince[n.Name]
		if !seen {
			f.goneSince[n.Name] = now
			changed = true
			f.log.Warn("node is down and its agent is away from the master; it is replaced if the agent stays away",
				"node", n.Name, "agent", n.AgentID, "host", n.Host, "replace_timeout", timeout)
			continue
		}
		if now.Sub(since) >= timeout && !f.stopping && !f.destroying {
			f.replaceLocked(n, now.Sub(since))
			replaced = true
		}
	}
	if replaced || changed {
		f.saveLocked()
	}
	f.mu.Unlock()
	if replaced && f.driver != nil {
		// Offers of the other agents were declined while nothing wanted
		// them.
		if err := f.driver.Revive(ctx); err != nil {
			f.log.Debug("revive", "err", err)
		}
	}
}

// replaceLocked retires n's placement and makes n a node to place again,
// replacing the old one. A node that never joined the ring has nothing
// to hand over and starts afresh (unless it was itself replacing one).
func (f *Framework) replaceLocked(n *Node, away time.Duration) {
	old := n.Host + ":" + strconv.FormatUint(n.StoragePort, 10)
	replace := n.ReplaceAddress
	if n.Joined {
		replace = old
	}
	f.retired = append(f.retired, Retired{Node: n.Name, AgentID: n.AgentID, Host: n.Host, VolumeID: n.VolumeID, HostID: n.HostID, Since: time.Now()})
	f.log.Warn("replacing node: its agent has been away longer than replace_timeout; placing it on another agent",
		"node", n.Name, "seed", n.Seed, "agent", n.AgentID, "address", old, "host_id", n.HostID, "away", away.Round(time.Second),
		"replace_address_first_boot", replace)
	*n = Node{Name: n.Name, Index: n.Index, Seed: n.Seed, Launches: n.Launches, ReplaceAddress: replace, Replacements: n.Replacements + 1, Added: n.Added}
	delete(f.goneSince, n.Name)
	delete(f.notUntil, n.Name)
	delete(f.losses, n.Name)
	delete(f.restarting, n.Name)
}

// releaseLocked are the operations that release, on o's agent, the
// reservations and volumes of the placements retired there: DESTROY the
// volumes, then UNRESERVE everything. Nil if o holds none.
func (f *Framework) releaseLocked(o *mesos.Offer) []mesos.Offer_Operation {
	var res []mesos.Resource
	for _, rt := range f.retired {
		if rt.AgentID != o.AgentID.Value {
			continue
		}
		if n := f.node(rt.Node); n != nil && n.AgentID == rt.AgentID {
			continue // the node is placed there again: the resources are its
		}
		for _, r := range o.Resources {
			if f.labelledFor(&r, rt.Node) {
				res = append(res, r)
			}
		}
	}
	if len(res) == 0 {
		return nil
	}
	f.log.Info("releasing retired reservations and volumes", "agent", o.AgentID.Value, "host", o.Hostname, "resources", len(res))
	return releaseOps(res)
}

// released forgets the retired placements on agentID whose reservations
// ops unreserved (the ACCEPT was taken).
func (f *Framework) released(agentID string, ops []mesos.Offer_Operation) {
	names := map[string]bool{}
	for _, op := range ops {
		for _, r := range op.GetUnreserve().GetResources() {
			names[f.nodeLabel(&r)] = true
		}
	}
	if len(names) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	kept := f.retired[:0]
	for _, rt := range f.retired {
		if rt.AgentID == agentID && names[rt.Node] {
			f.log.Info("released a retired placement", "node", rt.Node, "agent", rt.AgentID, "host", rt.Host, "volume", rt.VolumeID)
			continue
		}
		kept = append(kept, rt)
	}
	f.retired = kept
	f.saveLocked()
}

// releaseOps destroys the volumes among res and unreserves all of res.
func releaseOps(res []mesos.Resource) []mesos.Offer_Operation {
	var volumes, unreserve []mesos.Resource
	for _, r := range res {
		if r.GetDisk().GetPersistence() != nil {
			volumes = append(volumes, r)
			r.Disk = nil
		}
		unreserve = append(unreserve, r)
	}
	var ops []mesos.Offer_Operation
	if len(volumes) > 0 {
		ops = append(ops, mesos.Offer_Operation{Type: mesos.Offer_Operation_DESTROY, Destroy: &mesos.Offer_Operation_Destroy{Volumes: volumes}})
	}
	return append(ops, mesos.Offer_Operation{Type: mesos.Offer_Operation_UNRESERVE, Unreserve: &mesos.Offer_Operation_Unreserve{Resources: unreserve}})
}

// labelledFor says whether r is reserved for the node named name of this
// cluster.
func (f *Framework) labelledFor(r *mesos.Resource, name string) bool {
	return r.GetRole() == f.spec.Role && r.Reservation != nil && f.clusterLabel(r) == f.spec.Name && f.nodeLabel(r) == name
}

func (f *Framework) clusterLabel(r *mesos.Resource) string { return label(r, LabelCluster) }
func (f *Framework) nodeLabel(r *mesos.Resource) string    { return label(r, LabelNode) }

func label(r *mesos.Resource, key string) string {
	for _, l := range r.GetReservation().GetLabels().GetLabels() {
		if l.Key == key {
			return l.GetValue()
		}
	}
	return ""
}
