package framework

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// Repair and cleanup run nodetool against each node in turn, as the DC/OS
// Cassandra service did: a short task on the node's agent (nodetool talks
// to the node's JMX port, which listens on the agent's loopback), on
// unreserved resources beside the node, and the next node's only once the
// previous one has finished. Repair is `repair -pr` (each node repairs
// the ranges it is primary for, so a pass over every node repairs each
// range once); cleanup drops the data of ranges a node no longer owns
// (after a scale-out).

// Job kinds.
const (
	JobRepair  = "repair"
	JobCleanup = "cleanup"
)

// jobNeed is what a nodetool task takes: its JVM has a 128 MB heap.
var jobNeed = offers.Need{CPUs: 0.1, Mem: 256}

// Job is a repair or cleanup of the ring, one node at a time.
type Job struct {
	Kind     string `json:"kind"`
	Keyspace string `json:"keyspace,omitempty"`
	// Pending are the nodes still to do; Current, the one being done
	// (by task TaskID, once launched); Done, those done.
	Pending []string `json:"pending"`
	Current string   `json:"current,omitempty"`
	TaskID  string   `json:"task_id,omitempty"`
	Done    []string `json:"done"`
	// Failed says which node's nodetool failed, and how; the job stops
	// there.
	Failed string `json:"failed,omitempty"`
	// Full repairs every range the node replicates, not only those it is
	// primary for (`repair -full`); Replacement marks the repair the
	// framework runs on a replacement node once it has joined, before it
	// counts as replaced.
	Full        bool `json:"full,omitempty"`
	Replacement bool `json:"replacement,omitempty"`
	// Scheduled marks a repair the spec's repair_interval started.
	Scheduled bool `json:"scheduled,omitempty"`
	// Reruns counts the tasks run again because the master lost them.
	Reruns   int       `json:"reruns,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
}

// Ended says whether the job has finished, done or failed.
func (j Job) Ended() bool { return !j.Finished.IsZero() }

var keyspaceRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,48}$`)

// StartJob starts a repair or cleanup of every placed node, of keyspace
// or of all keyspaces (""). One job runs at a time.
func (f *Framework) StartJob(kind, keyspace string) (Job, error) {
	if kind != JobRepair && kind != JobCleanup {
		return Job{}, fmt.Errorf("job %q: repair or cleanup", kind)
	}
	if keyspace != "" && !keyspaceRE.MatchString(keyspace) {
		return Job{}, fmt.Errorf("keyspace %q: letters, digits and '_' (at most 48)", keyspace)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.destroying {
		return Job{}, ErrDestroying
	}
	if f.job != nil && !f.job.Ended() {
		return Job{}, fmt.Errorf("a %s is under way (node %s, %d to go)", f.job.Kind, f.job.Current, len(f.job.Pending))
	}
	j := &Job{Kind: kind, Keyspace: keyspace}
	for _, n := range f.nodes {
		if n.AgentID != "" {
			j.Pending = append(j.Pending, n.Name)
		}
	}
	if len(j.Pending) == 0 {
		return Job{}, errors.New("no node is placed yet")
	}
	f.startJobLocked(j)
	return f.jobCopyLocked(), nil
}

// startJobLocked makes j the job, saved so that a restarted scheduler
// goes on with it.
func (f *Framework) startJobLocked(j *Job) {
	j.Started, j.Done = time.Now(), []string{}
	f.job = j
	f.saveLocked()
	f.log.Info("starting "+j.Kind, "keyspace", j.Keyspace, "nodes", j.Pending, "full", j.Full, "replacement", j.Replacement, "scheduled", j.Scheduled)
	if f.driver != nil {
		go f.revive()
	}
}

// JobStatus is the last job, if any.
func (f *Framework) JobStatus() (Job, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.job == nil {
		return Job{}, false
	}
	return f.jobCopyLocked(), true
}

func (f *Framework) jobCopyLocked() Job {
	j := *f.job
	j.Pending, j.Done = slices.Clone(j.Pending), slices.Clone(j.Done)
	return j
}

// jobLocked launches the job's task for its current node if o is from
// the node's agent and the node is up; nil otherwise.
func (f *Framework) jobLocked(o *mesos.Offer) []mesos.Offer_Operation {
	j := f.job
	if j == nil || j.Ended() || j.TaskID != "" {
		return nil
	}
	if j.Current == "" {
		if len(j.Pending) == 0 {
			f.finishJobLocked("")
			return nil
		}
		j.Current, j.Pending = j.Pending[0], j.Pending[1:]
	}
	n := f.node(j.Current)
	if n == nil || n.AgentID != o.AgentID.Value || !n.Up {
		return nil
	}
	free := mesos.Offer{ID: o.ID, AgentID: o.AgentID}
	for _, r := range o.Resources {
		if role := r.GetRole(); (role == "" || role == "*") && r.Reservation == nil && len(r.Reservations) == 0 && r.Disk == nil {
			free.Resources = append(free.Resources, r)
		}
	}
	pool := offers.NewPool(&free)
	res, ok := pool.Take(jobNeed)
	if !ok {
		f.log.Debug("no room beside the node for its nodetool task yet", "job", j.Kind, "node", n.Name, "short", pool.Shortfall(jobNeed))
		return nil
	}
	f.jobTasks++
	j.TaskID = fmt.Sprintf("%s.%s.%s.%s.%d", f.spec.Name, n.Name, j.Kind, f.incarnation, f.jobTasks)
	ci := f.nodetoolLocked(n, j)
	f.saveLocked()
	f.log.Info(j.Kind+": running nodetool on the node's agent", "node", n.Name, "task", j.TaskID)
	return []mesos.Offer_Operation{scheduler.LaunchOp(mesos.TaskInfo{
		Name: fmt.Sprintf("%s | %s | %s", f.spec.Name, n.Name, j.Kind), TaskID: mesos.TaskID{Value: j.TaskID}, AgentID: o.AgentID,
		Resources: res, Command: &ci,
	})}
}

// nodetoolArgs are the nodetool arguments of job j.
func nodetoolArgs(j *Job) []string {
	args := []string{j.Kind}
	switch {
	case j.Kind == JobRepair && j.Full:
		args = append(args, "-full")
	case j.Kind == JobRepair:
		args = append(args, "-pr")
	}
	if j.Keyspace != "" {
		args = append(args, j.Keyspace)
	}
	return args
}

// nodetoolLocked is the command of j's task for node n.
func (f *Framework) nodetoolLocked(n *Node, j *Job) mesos.CommandInfo {
	script := "exec " + shellQuote(f.cfg.Home+"/bin/nodetool") + " -h 127.0.0.1 -p " + strconv.FormatUint(n.JMXPort, 10)
	for _, a := range nodetoolArgs(j) {
		script += " " + shellQuote(a)
	}
	shell := true
	ci := mesos.CommandInfo{Shell: &shell, Value: &script, Environment: &mesos.Environment{}}
	for _, k := range passEnv {
		if v, ok := f.cfg.Env[k]; ok && v != "" {
			ci.Environment.Variables = append(ci.Environment.Variables, mesos.Environment_Variable{Name: k, Value: &v})
		}
	}
	return ci
}

// jobUpdateLocked follows the job's task; false if st is not of it.
func (f *Framework) jobUpdateLocked(st mesos.TaskStatus) bool {
	j := f.job
	if j == nil || j.TaskID == "" || st.TaskID.Value != j.TaskID {
		return false
	}
	state := st.GetState()
	if !scheduler.IsTerminal(state) {
		return true
	}
	defer f.saveLocked()
	node := j.Current
	if lostTask(st) && j.Reruns < maxJobReruns {
		// The master does not know the task (launched by an ACCEPT that
		// never arrived, or of an earlier scheduler and forgotten):
		// nodetool repair and cleanup can run again on the node.
		j.Reruns++
		j.TaskID = ""
		f.log.Info(j.Kind+": the node's task is lost; running it again", "node", node, "state", state.String(), "reason", st.GetReason().String())
		return true
	}
	j.Current, j.TaskID = "", ""
	if state != mesos.TASK_FINISHED {
		f.finishJobLocked(fmt.Sprintf("%s: %s %s %s", node, state, st.GetReason(), st.GetMessage()))
		return true
	}
	j.Done = append(j.Done, node)
	f.log.Info(j.Kind+": node done", "node", node, "to_go", len(j.Pending))
	if len(j.Pending) == 0 {
		f.finishJobLocked("")
	}
	return true
}

// maxJobReruns bounds how often a job runs a lost task again.
const maxJobReruns = 3

// lostTask says whether st tells of a task the master lost or does not
// know, rather than one that ran and failed.
func lostTask(st mesos.TaskStatus) bool {
	switch st.GetState() {
	case mesos.TASK_UNKNOWN, mesos.TASK_DROPPED, mesos.TASK_GONE:
		return true
	case mesos.TASK_LOST:
		return st.GetReason() == mesos.REASON_RECONCILIATION
	}
	return false
}

func (f *Framework) finishJobLocked(failed string) {
	j := f.job
	j.Failed, j.Finished = failed, time.Now()
	if failed != "" {
		// The framework's own repairs are tried again after a while.
		f.jobRetryAt = j.Finished.Add(jobRetry)
		f.saveLocked()
		f.log.Warn(j.Kind+" failed; it stops here", "failed", failed, "done", j.Done)
		return
	}
	if j.Replacement {
		for _, name := range j.Done {
			if n := f.node(name); n != nil && n.RepairPending {
				n.RepairPending = false
				f.log.Info("replacement node repaired: the replacement is done", "node", name, "host_id", n.HostID)
			}
		}
	}
	if j.Kind == JobRepair && !j.Replacement && j.Keyspace == "" {
		f.repairedAt = j.Finished
	}
	f.saveLocked()
	f.log.Info(j.Kind+" done", "nodes", j.Done)
}

// jobRetry is how long after a failed job the framework starts its own
// repairs again.
const jobRetry = 30 * time.Second

// stepJobs starts the repairs the framework runs on its own, when no job
// runs: a replacement node's full repair once it has joined (it
// streamed each range from one replica, so a write acknowledged at
// QUORUM may be missing from it until then), and the spec's periodic
// repair (repair_interval) of every node in turn, while every node is up.
func (f *Framework) stepJobs(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.destroying || f.stopping || (f.job != nil && !f.job.Ended()) || now.Before(f.jobRetryAt) {
		return
	}
	for _, n := range f.nodes {
		if n.RepairPending && n.Up {
			f.startJobLocked(&Job{Kind: JobRepair, Full: true, Replacement: true, Pending: []string{n.Name}})
			return
		}
	}
	every := time.Duration(f.spec.RepairInterval)
	if every <= 0 {
		return
	}
	if f.repairedAt.IsZero() {
		// The first scheduled repair comes one interval after the
		// schedule was first seen, not at once on a new ring.
		f.repairedAt = now
		f.saveLocked()
		return
	}
	if now.Sub(f.repairedAt) < every {
		return
	}
	j := &Job{Kind: JobRepair, Scheduled: true}
	for _, n := range f.nodes {
		if !n.Up || n.RepairPending {
			return // a repair with a node down fails; wait for the ring
		}
		j.Pending = append(j.Pending, n.Name)
	}
	if len(j.Pending) > 0 {
		f.startJobLocked(j)
	}
}
