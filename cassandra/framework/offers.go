package framework

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	schedpb "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cassandra/plan"
	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// VolumePath is where a node's persistent volume appears in its sandbox.
const VolumePath = "volume"

// offers launches, on each offer, the node that owns the offer's agent
// and is not running (on its reservation), or places the next node (a new
// reservation and volume) when its turn has come; it declines the rest.
func (f *Framework) offers(ctx context.Context, offs []mesos.Offer) {
	now := time.Now()
	declines := map[time.Duration][]mesos.OfferID{}
	for i := range offs {
		o := &offs[i]
		ops, refuse := f.useOffer(now, o)
		if len(ops) == 0 {
			declines[refuse] = append(declines[refuse], o.ID)
			continue
		}
		if err := f.driver.Accept(ctx, []mesos.OfferID{o.ID}, ops, scheduler.RefuseFor(refuseBusy)); err != nil {
			f.log.Warn("accept", "agent", o.AgentID.Value, "err", err)
			f.launchFailed(ctx, ops)
			continue
		}
		f.released(o.AgentID.Value, ops)
	}
	for refuse, ids := range declines {
		if err := f.driver.Decline(ctx, ids, refuse); err != nil {
			f.log.Debug("decline offers", "err", err)
		}
	}
}

// useOffer picks what to do with o: the operations to accept it with, or
// for how long to decline it.
func (f *Framework) useOffer(now time.Time, o *mesos.Offer) ([]mesos.Offer_Operation, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopping {
		return nil, refuseIdle
	}
	if ops := f.releaseLocked(o); ops != nil {
		return ops, 0
	}
	if f.destroying {
		return nil, refuseBusy
	}
	if ops := f.jobLocked(o); ops != nil {
		return ops, 0
	}
	// A job waits for the offers of its nodes' agents.
	wanted := f.job != nil && !f.job.Ended()
	onAgent := 0
	for _, n := range f.nodes {
		if n.AgentID != o.AgentID.Value {
			continue
		}
		onAgent++
		if n.TaskID != "" && !isTerminal(n.State) && n.State != mesos.TASK_UNKNOWN.String() {
			continue // running, or on its way
		}
		if n.State == mesos.TASK_UNKNOWN.String() {
			wanted = true // the reconciliation will say
			continue
		}
		wanted = true
		if now.Before(f.notUntil[n.Name]) {
			continue
		}
		if ops := f.relaunchLocked(n, o); ops != nil {
			return ops, 0
		}
	}
	next := f.nextLocked()
	if next == nil {
		if wanted {
			return nil, refuseBusy
		}
		return nil, refuseIdle
	}
	if onAgent >= f.spec.NodesPerAgent || !f.turnLocked(next) {
		return nil, refuseBusy
	}
	ops, why := f.placeLocked(next, o)
	if ops == nil {
		f.log.Info("declining offer", "agent", o.AgentID.Value, "host", o.Hostname, "node", next.Name, "reason", why)
		return nil, refuseBusy
	}
	return ops, 0
}

// nextLocked is the first node without an agent, or nil.
func (f *Framework) nextLocked() *Node {
	for _, n := range f.nodes {
		if n.AgentID == "" {
			return n
		}
	}
	return nil
}

// turnLocked says whether n may be placed: seeds first, and every node
// placed before it has joined the ring and is up.
func (f *Framework) turnLocked(n *Node) bool {
	for _, m := range f.nodes {
		if m.Index < n.Index && (!m.Joined || !m.Up) {
			return false
		}
	}
	return true
}

// reservation is the reservation of node n, as its resources carry it.
func (f *Framework) reservation() *mesos.Resource_ReservationInfo {
	p := f.principal()
	return &mesos.Resource_ReservationInfo{Principal: &p}
}

func (f *Framework) principal() string {
	if f.spec.Principal != "" {
		return f.spec.Principal
	}
	return frameworkName(f.spec)
}

func (f *Framework) labels(n *Node) *mesos.Labels {
	cl, nl := f.spec.Name, n.Name
	return &mesos.Labels{Labels: []mesos.Label{{Key: LabelCluster, Value: &cl}, {Key: LabelNode, Value: &nl}}}
}

// ownedBy says whether r is reserved for node n of this cluster.
func (f *Framework) ownedBy(r *mesos.Resource, n *Node) bool { return f.labelledFor(r, n.Name) }

// placeLocked reserves n's resources on o's agent from its unreserved
// resources, creates its volume and launches it: one ACCEPT, so that the
// reservation and the volume exist only with the node on them. The node's
// placement is saved before the ACCEPT is sent: a scheduler that restarts
// finds the node's agent and adopts the reservation it finds there.
func (f *Framework) placeLocked(n *Node, o *mesos.Offer) ([]mesos.Offer_Operation, string) {
	free := mesos.Offer{ID: o.ID, AgentID: o.AgentID}
	for _, r := range o.Resources {
		if role := r.GetRole(); (role == "" || role == "*") && r.Reservation == nil && len(r.Reservations) == 0 && r.Disk == nil {
			free.Resources = append(free.Resources, r)
		}
	}
	need := offers.Need{CPUs: f.spec.CPUs, Mem: f.spec.Mem, Disk: f.spec.Disk, Ports: plan.Ports}
	var storage []mesos.Resource
	if port := replacedPort(n.ReplaceAddress); port != 0 {
		// Cassandra 5.0 reads the address a replacement announces in
		// gossip without its port and completes it with its own storage
		// port: a replacement on another port fails at once ("already
		// replacing ... but is trying to replace"). So it takes the
		// replaced node's storage port.
		rest, p, ok := takePort(free.Resources, port)
		if !ok {
			return nil, fmt.Sprintf("the replaced node's storage port %d is not free here (a replacement listens on the port of the node it replaces)", port)
		}
		free.Resources, storage = rest, []mesos.Resource{p}
		need.Ports--
	}
	pool := offers.NewPool(&free)
	taken, ok := pool.Take(need)
	if !ok {
		return nil, "unreserved resources: " + pool.Shortfall(need)
	}
	taken = append(storage, taken...) // the storage port first
	var reserved []mesos.Resource
	role := f.spec.Role
	for _, r := range taken {
		r.Role = &role
		r.Reservation = f.reservation()
		r.Reservation.Labels = f.labels(n)
		r.AllocationInfo = nil
		reserved = append(reserved, r)
	}
	n.AgentID, n.Host = o.AgentID.Value, o.Hostname
	n.DC, n.Rack = attribute(o, "dc"), attribute(o, "rack")
	n.VolumeID = fmt.Sprintf("%s-%s-%s", f.spec.Name, n.Name, f.incarnation)
	if n.Replacements > 0 {
		// Not the volume of the node it replaces.
		n.VolumeID += fmt.Sprintf("-r%d", n.Replacements)
	}
	ports := portsOf(reserved)
	n.StoragePort, n.NativePort, n.JMXPort = ports[0], ports[1], ports[2]
	var volume mesos.Resource
	var taskRes []mesos.Resource
	for _, r := range reserved {
		if r.Name == "disk" {
			volume = f.volume(r, n)
			taskRes = append(taskRes, volume)
			continue
		}
		taskRes = append(taskRes, r)
	}
	task := f.taskLocked(n, o, taskRes)
	f.log.Info("placing node: reserve, create its volume, launch", "node", n.Name, "seed", n.Seed, "agent", n.AgentID, "host", n.Host,
		"storage_port", n.StoragePort, "native_port", n.NativePort, "jmx_port", n.JMXPort, "volume", n.VolumeID)
	f.saveLocked()
	return []mesos.Offer_Operation{
		{Type: mesos.Offer_Operation_RESERVE, Reserve: &mesos.Offer_Operation_Reserve{Resources: reserved}},
		{Type: mesos.Offer_Operation_CREATE, Create: &mesos.Offer_Operation_Create{Volumes: []mesos.Resource{volume}}},
		scheduler.LaunchOp(task),
	}, ""
}

// volume is the persistent volume of n on its reserved disk r.
func (f *Framework) volume(r mesos.Resource, n *Node) mesos.Resource {
	p := f.principal()
	r.Disk = &mesos.Resource_DiskInfo{
		Persistence: &mesos.Resource_DiskInfo_Persistence{ID: n.VolumeID, Principal: &p},
		Volume:      &mesos.Volume{ContainerPath: VolumePath, Mode: mesos.RW.Enum()},
	}
	return r
}

// relaunchLocked launches n again on its reservation and volume if o
// holds them; a node whose reservation was never made (the ACCEPT was
// lost) is placed again on the same agent.
func (f *Framework) relaunchLocked(n *Node, o *mesos.Offer) []mesos.Offer_Operation {
	var res []mesos.Resource
	var disk *mesos.Resource
	var have = map[string]bool{}
	for i := range o.Resources {
		r := o.Resources[i]
		if !f.ownedBy(&r, n) {
			continue
		}
		have[r.Name] = true
		if r.Name == "disk" {
			if p := r.GetDisk().GetPersistence(); p == nil || p.ID == n.VolumeID {
				disk = &r
			}
			continue
		}
		res = append(res, r)
	}
	if len(have) == 0 {
		if n.Reserved {
			return nil // in use still, or in another offer
		}
		ops, why := f.placeLocked(n, o)
		if ops == nil {
			f.log.Info("node's reservation is not there; cannot reserve again yet", "node", n.Name, "reason", why)
		}
		return ops
	}
	if !have["cpus"] || !have["mem"] || !have["ports"] || disk == nil {
		return nil
	}
	n.Reserved = true
	var ops []mesos.Offer_Operation
	if disk.GetDisk().GetPersistence() == nil {
		// Reserved, but the volume was not created.
		v := f.volume(*disk, n)
		disk = &v
		ops = append(ops, mesos.Offer_Operation{Type: mesos.Offer_Operation_CREATE, Create: &mesos.Offer_Operation_Create{Volumes: []mesos.Resource{v}}})
	}
	res = append(res, *disk)
	task := f.taskLocked(n, o, res)
	f.log.Info("launching node on its reservation and volume", "node", n.Name, "agent", n.AgentID, "task", n.TaskID, "launch", n.Launches)
	f.saveLocked()
	return append(ops, scheduler.LaunchOp(task))
}

// taskLocked makes n's next task on o with resources res.
func (f *Framework) taskLocked(n *Node, o *mesos.Offer, res []mesos.Resource) mesos.TaskInfo {
	n.Launches++
	n.TaskID = fmt.Sprintf("%s.%s.%s.%d", f.spec.Name, n.Name, f.incarnation, n.Launches)
	n.State = mesos.TASK_STAGING.String()
	n.Up = false
	n.Healthy = nil
	ci := f.commandLocked(n)
	return mesos.TaskInfo{
		Name:   fmt.Sprintf("%s | %s | %s", f.spec.Name, n.Name, n.Host),
		TaskID: mesos.TaskID{Value: n.TaskID}, AgentID: o.AgentID,
		Resources: res, Command: &ci, HealthCheck: f.healthCheckLocked(n),
	}
}

// launchFailed handles an ACCEPT call that failed: the master may have
// taken it all the same (the call can fail after it arrived), so the
// node keeps its placement and its task's state becomes unknown until a
// reconciliation says. Were the placement forgotten instead, a task the
// master did launch would hold a reservation the next placement would
// duplicate.
func (f *Framework) launchFailed(ctx context.Context, ops []mesos.Offer_Operation) {
	var tasks []schedpb.Call_Reconcile_Task
	f.mu.Lock()
	for _, op := range ops {
		if op.Launch == nil {
			continue
		}
		for _, t := range op.Launch.TaskInfos {
			for _, n := range f.nodes {
				if n.TaskID == t.TaskID.Value {
					n.State = mesos.TASK_UNKNOWN.String()
					tasks = append(tasks, scheduler.ReconcileTask(n.TaskID, n.AgentID))
				}
			}
		}
	}
	f.saveLocked()
	f.mu.Unlock()
	if err := f.driver.Reconcile(ctx, tasks); err != nil {
		f.log.Debug("reconcile (the next subscription reconciles again)", "err", err)
	}
}

// portsOf lists the ports of the ports resources in rs, in order.
func portsOf(rs []mesos.Resource) []uint64 {
	var out []uint64
	for _, r := range rs {
		if r.Name != "ports" {
			continue
		}
		for _, rg := range r.GetRanges().GetRange() {
			for p := rg.Begin; p <= rg.End; p++ {
				out = append(out, p)
			}
		}
	}
	return out
}

// attribute is the text value of o's attribute name, or "".
func attribute(o *mesos.Offer, name string) string {
	for _, a := range o.Attributes {
		if a.Name == name && a.Text != nil {
			return a.Text.Value
		}
	}
	return ""
}

// replacedPort is the storage port of a replaced node's address
// (host:port), or 0.
func replacedPort(addr string) uint64 {
	if addr == "" {
		return 0
	}
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return 0
	}
	return port
}

// takePort takes port out of the ports resources of rs: it returns rs
// without it (copied; rs is unchanged) and a ports resource of port alone.
func takePort(rs []mesos.Resource, port uint64) ([]mesos.Resource, mesos.Resource, bool) {
	for i, r := range rs {
		if r.Name != "ports" {
			continue
		}
		ranges := r.GetRanges().GetRange()
		for j, rg := range ranges {
			if port < rg.Begin || port > rg.End {
				continue
			}
			var left []mesos.Value_Range
			left = append(left, ranges[:j]...)
			if rg.Begin < port {
				left = append(left, mesos.Value_Range{Begin: rg.Begin, End: port - 1})
			}
			if port < rg.End {
				left = append(left, mesos.Value_Range{Begin: port + 1, End: rg.End})
			}
			left = append(left, ranges[j+1:]...)
			one := r
			one.Ranges = &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: port, End: port}}}
			out := slices.Clone(rs)
			if len(left) == 0 {
				out = slices.Delete(out, i, i+1)
			} else {
				out[i].Ranges = &mesos.Value_Ranges{Range: left}
			}
			return out, one, true
		}
	}
	return rs, mesos.Resource{}, false
}
