package scheduler

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
)

// Call sends one call on the current subscription: to the master the stream
// is open on, with its Mesos-Stream-Id, and with FrameworkID filled in. It
// returns ErrNotSubscribed without a subscription and an *APIError for a
// non-2xx answer; a 403 (or a 307: the master lost leadership) also ends the
// stream so that the driver re-subscribes.
func (d *Driver) Call(ctx context.Context, call *scheduler.Call) error {
	d.mu.Lock()
	ep, streamID, fid := d.endpoint, d.streamID, d.info.ID
	d.mu.Unlock()
	kind := call.Type.String()
	if streamID == "" || fid == nil {
		return fmt.Errorf("scheduler %s call: %w", kind, ErrNotSubscribed)
	}
	if call.FrameworkID == nil {
		call.FrameworkID = fid
	}
	body, err := d.codec.Marshal(call)
	if err != nil {
		return fmt.Errorf("encode scheduler %s call: %w", kind, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.cfg.CallTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("scheduler %s call to %s: %w", kind, ep.Host, err)
	}
	req.Header.Set("Content-Type", d.codec.MediaType)
	req.Header.Set("Accept", d.codec.MediaType)
	req.Header.Set("Mesos-Stream-Id", streamID)
	req.Header.Set("User-Agent", "agora-scheduler/"+api.Version)
	d.authorize(req)
	resp, err := d.calls.Do(req)
	if err != nil {
		return fmt.Errorf("scheduler %s call to %s: %w", kind, ep.Host, err)
	}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAccepted {
		drain(resp)
		return nil
	}
	e := apiError(resp, kind, ep.Host)
	if (e.Code == http.StatusForbidden || e.Code == http.StatusTemporaryRedirect) && !d.tornDown.Load() {
		d.endStream(streamID, errLostSubscription)
	}
	return e
}

// endStream ends the stream streamID (if it is still the current one).
func (d *Driver) endStream(streamID string, why error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.streamID == streamID && d.cancel != nil {
		if why == errTornDown {
			d.log.Info("framework torn down")
		} else {
			d.log.Warn("ending subscription", "reason", why)
		}
		d.cancel(why)
	}
}

// Accept accepts offers (all from one agent) with operations, applying
// filters to the unused remainder (nil: the master's default of 5s).
func (d *Driver) Accept(ctx context.Context, offerIDs []mesos.OfferID, ops []mesos.Offer_Operation, filters *mesos.Filters) error {
	return d.Call(ctx, &scheduler.Call{
		Type:   scheduler.Call_ACCEPT,
		Accept: &scheduler.Call_Accept{OfferIDs: offerIDs, Operations: ops, Filters: filters},
	})
}

// Launch accepts offers to launch tasks on them with the command executor
// or the executors the TaskInfos name.
func (d *Driver) Launch(ctx context.Context, offerIDs []mesos.OfferID, tasks []mesos.TaskInfo, filters *mesos.Filters) error {
	return d.Accept(ctx, offerIDs, []mesos.Offer_Operation{LaunchOp(tasks...)}, filters)
}

// LaunchOp is a LAUNCH operation for ACCEPT.
func LaunchOp(tasks ...mesos.TaskInfo) mesos.Offer_Operation {
	return mesos.Offer_Operation{
		Type:   mesos.Offer_Operation_LAUNCH,
		Launch: &mesos.Offer_Operation_Launch{TaskInfos: tasks},
	}
}

// LaunchGroupOp is a LAUNCH_GROUP operation: the tasks start together on
// executor (normally of type DEFAULT).
func LaunchGroupOp(executor mesos.ExecutorInfo, tasks ...mesos.TaskInfo) mesos.Offer_Operation {
	return mesos.Offer_Operation{
		Type: mesos.Offer_Operation_LAUNCH_GROUP,
		LaunchGroup: &mesos.Offer_Operation_LaunchGroup{
			Executor:  executor,
			TaskGroup: mesos.TaskGroupInfo{Tasks: tasks},
		},
	}
}

// RefuseFor is a Filters that keeps declined (or unused) resources away
// from the framework for d.
func RefuseFor(d time.Duration) *mesos.Filters {
	s := d.Seconds()
	return &mesos.Filters{RefuseSeconds: &s}
}

// Decline declines offers; their resources are not offered to this
// framework again for refuse (0 means the master's default of 5s).
func (d *Driver) Decline(ctx context.Context, offerIDs []mesos.OfferID, refuse time.Duration) error {
	var f *mesos.Filters
	if refuse > 0 {
		f = RefuseFor(refuse)
	}
	return d.Call(ctx, &scheduler.Call{
		Type:    scheduler.Call_DECLINE,
		Decline: &scheduler.Call_Decline{OfferIDs: offerIDs, Filters: f},
	})
}

// Revive clears the framework's filters and un-suppresses offers for
// roles (all of its roles when none are given).
func (d *Driver) Revive(ctx context.Context, roles ...string) error {
	err := d.Call(ctx, &scheduler.Call{Type: scheduler.Call_REVIVE, Revive: &scheduler.Call_Revive{Roles: roles}})
	if err == nil {
		d.mu.Lock()
		d.suppressed = unsuppress(d.suppressed, roles)
		d.mu.Unlock()
	}
	return err
}

// Suppress stops offers for roles (all of the framework's roles when none
// are given). The driver re-subscribes with these roles suppressed.
func (d *Driver) Suppress(ctx context.Context, roles ...string) error {
	err := d.Call(ctx, &scheduler.Call{Type: scheduler.Call_SUPPRESS, Suppress: &scheduler.Call_Suppress{Roles: roles}})
	if err == nil {
		d.mu.Lock()
		d.suppressed = suppress(d.suppressed, roles, frameworkRoles(d.info))
		d.mu.Unlock()
	}
	return err
}

// Kill kills a task; agentID may be empty when it is not known.
func (d *Driver) Kill(ctx context.Context, taskID, agentID string) error {
	k := &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: taskID}}
	if agentID != "" {
		k.AgentID = &mesos.AgentID{Value: agentID}
	}
	return d.Call(ctx, &scheduler.Call{Type: scheduler.Call_KILL, Kill: k})
}

// Shutdown shuts down a custom executor on an agent.
func (d *Driver) Shutdown(ctx context.Context, executorID, agentID string) error {
	return d.Call(ctx, &scheduler.Call{
		Type: scheduler.Call_SHUTDOWN,
		Shutdown: &scheduler.Call_Shutdown{
			ExecutorID: mesos.ExecutorID{Value: executorID},
			AgentID:    mesos.AgentID{Value: agentID},
		},
	})
}

// Acknowledge acknowledges a status update. Updates without a uuid need no
// acknowledgement and are skipped.
func (d *Driver) Acknowledge(ctx context.Context, status mesos.TaskStatus) error {
	if len(status.UUID) == 0 {
		return nil
	}
	if status.AgentID == nil {
		return fmt.Errorf("acknowledge update of task %q: it carries no agent_id", status.TaskID.Value)
	}
	return d.Call(ctx, &scheduler.Call{
		Type: scheduler.Call_ACKNOWLEDGE,
		Acknowledge: &scheduler.Call_Acknowledge{
			AgentID: *status.AgentID,
			TaskID:  status.TaskID,
			UUID:    status.UUID,
		},
	})
}

// ReconcileTask names a task to reconcile; agentID may be empty.
func ReconcileTask(taskID, agentID string) scheduler.Call_Reconcile_Task {
	t := scheduler.Call_Reconcile_Task{TaskID: mesos.TaskID{Value: taskID}}
	if agentID != "" {
		t.AgentID = &mesos.AgentID{Value: agentID}
	}
	return t
}

// Reconcile asks the master for the latest state of tasks (explicit
// reconciliation) or, with no tasks, of every task it knows for the
// framework (implicit). Answers arrive as updates with
// REASON_RECONCILIATION and no uuid.
func (d *Driver) Reconcile(ctx context.Context, tasks []scheduler.Call_Reconcile_Task) error {
	return d.Call(ctx, &scheduler.Call{
		Type:      scheduler.Call_RECONCILE,
		Reconcile: &scheduler.Call_Reconcile{Tasks: tasks},
	})
}

// Message sends opaque data to an executor (best effort).
func (d *Driver) Message(ctx context.Context, agentID, executorID string, data []byte) error {
	return d.Call(ctx, &scheduler.Call{
		Type: scheduler.Call_MESSAGE,
		Message: &scheduler.Call_Message{
			AgentID:    mesos.AgentID{Value: agentID},
			ExecutorID: mesos.ExecutorID{Value: executorID},
			Data:       data,
		},
	})
}

// Teardown removes the framework: the master kills all its tasks and
// executors. Run then returns nil.
func (d *Driver) Teardown(ctx context.Context) error {
	d.mu.Lock()
	streamID := d.streamID
	d.mu.Unlock()
	// Mark first: the master may close the stream before it answers.
	was := d.tornDown.Swap(true)
	if err := d.Call(ctx, &scheduler.Call{Type: scheduler.Call_TEARDOWN}); err != nil {
		d.tornDown.Store(was)
		return err
	}
	d.endStream(streamID, errTornDown)
	return nil
}

// frameworkRoles are the roles a FrameworkInfo subscribes to.
func frameworkRoles(info mesos.FrameworkInfo) []string {
	for _, c := range info.Capabilities {
		if c.Type == mesos.FrameworkInfo_Capability_MULTI_ROLE {
			return info.Roles
		}
	}
	if info.Role != nil {
		return []string{*info.Role}
	}
	return []string{"*"}
}

// suppress adds roles (all when empty) to the suppressed set.
func suppress(set, roles, all []string) []string {
	if len(roles) == 0 {
		roles = all
	}
	for _, r := range roles {
		if !slices.Contains(set, r) {
			set = append(set, r)
		}
	}
	return set
}

// unsuppress removes roles (all when empty) from the suppressed set.
func unsuppress(set, roles []string) []string {
	if len(roles) == 0 {
		return nil
	}
	return slices.DeleteFunc(set, func(r string) bool { return slices.Contains(roles, r) })
}
