package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/zk"
)

// callTimeout bounds one agent→master call (not the registration stream).
const callTimeout = 15 * time.Second

// refusedError is the master's 409 Conflict to a (re-)registration.
type refusedError struct{ reason string }

func (e *refusedError) Error() string { return "master refused the registration: " + e.reason }

// forbiddenError is the master's 403 Forbidden to a (re-)registration:
// the agent is not allowed in as it is (--acls, or its ID belongs to
// another principal). It keeps its ID and retries with backoff, since
// only the operator can change the answer.
type forbiddenError struct{ reason string }

func (e *forbiddenError) Error() string { return "master forbids the registration: " + e.reason }

// unavailableError is the master's 503 Service Unavailable to a
// (re-)registration: it cannot decide now (its lookup of the agent's
// hostname failed, it is not ready). The agent keeps its ID and retries,
// no sooner than retryAfter (its Retry-After, 0 without one).
type unavailableError struct {
	reason     string
	retryAfter time.Duration
}

func (e *unavailableError) Error() string {
	return "master cannot take the registration now (503 Service Unavailable): " + e.reason
}

// registrationLoop keeps the agent registered until ctx ends.
func (a *Agent) registrationLoop(ctx context.Context) {
	backoff := a.cfg.RegistrationBackoff
	forbidden := ""   // the master's last 403, logged once until it changes
	unavailable := "" // and its last 503
	for ctx.Err() == nil {
		registered, err := a.session(ctx)
		if ctx.Err() != nil {
			return
		}
		var refused *refusedError
		if errors.As(err, &refused) && a.ID() != "" {
			a.log.Warn("master refused the agent ID", "agent_id", a.ID(), "reason", refused.reason)
			a.resetIdentity(ctx)
			backoff = a.cfg.RegistrationBackoff
			forbidden, unavailable = "", ""
			continue
		}
		if registered {
			backoff = a.cfg.RegistrationBackoff
		}
		// Jitter keeps a rack of agents from re-registering in lock step.
		delay := backoff/2 + rand.N(backoff/2+1)
		var fe *forbiddenError
		var ue *unavailableError
		if errors.As(err, &ue) {
			// The master's Retry-After is the least delay, within the
			// agent's own ceiling.
			delay = max(delay, min(ue.retryAfter, a.cfg.RegistrationBackoffMax))
		}
		switch {
		case errors.As(err, &fe) && fe.reason == forbidden:
			a.log.Debug("master still forbids the registration; registering again", "in", delay.Round(time.Millisecond))
		case errors.As(err, &fe):
			forbidden, unavailable = fe.reason, ""
			a.log.Error("master forbids the registration (403); the agent keeps its ID and retries with backoff until the operator lets it in (logged again only if the answer changes)",
				"master", a.masterName(), "agent_id", a.ID(), "reason", fe.reason)
		case ue != nil && ue.reason == unavailable:
			a.log.Debug("master still cannot take the registration (503); registering again", "in", delay.Round(time.Millisecond))
		case ue != nil:
			forbidden, unavailable = "", ue.reason
			a.log.Warn("master cannot take the registration now (503 Service Unavailable); the agent keeps its ID and retries (logged again only if the answer changes)",
				"master", a.masterName(), "agent_id", a.ID(), "in", delay.Round(time.Millisecond), "reason", ue.reason)
		default:
			forbidden, unavailable = "", ""
			a.log.Warn("disconnected from master; registering again", "master", a.masterName(), "in", delay.Round(time.Millisecond), "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		backoff = min(2*backoff, a.cfg.RegistrationBackoffMax)
	}
}

// retryAfter reads a Retry-After header, in seconds or an HTTP date
// (relative to now); 0 when absent, unreadable or past.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

// session registers once and handles the master's event stream until it
// breaks, PINGs stop, or ctx ends. It reports whether REGISTERED arrived.
func (a *Agent) session(ctx context.Context) (registered bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if a.zk != nil {
		leader, err := a.awaitLeader(ctx)
		if err != nil {
			return false, err
		}
		go a.followLeader(ctx, leader, cancel)
	}
	call := &api.AgentCall{Type: api.AgentRegister, AgentID: a.ID(), Register: a.registration()}
	resp, err := a.post(ctx, call, true)
	if err != nil {
		return false, fmt.Errorf("register with %s: %w", a.masterName(), err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusConflict:
		return false, &refusedError{reason: readReason(resp.Body)}
	case http.StatusForbidden:
		return false, &forbiddenError{reason: readReason(resp.Body)}
	case http.StatusServiceUnavailable:
		return false, &unavailableError{reason: readReason(resp.Body), retryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	default:
		return false, fmt.Errorf("register with %s: %s: %s", a.masterName(), resp.Status, readReason(resp.Body))
	}

	codec := api.JSON
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == api.MediaProtobuf {
		codec = api.Protobuf
	}
	events := api.NewRecordReader(resp.Body)
	next := func() (*api.AgentEvent, error) { return readEvent(events, codec) }
	ev, err := next()
	if err != nil {
		return false, fmt.Errorf("registration stream: %w", err)
	}
	if ev.Type != api.AgentRegistered || ev.Registered == nil {
		return false, fmt.Errorf("registration stream: first event is %s, want REGISTERED", ev.Type)
	}
	pingTimeout, err := a.onRegistered(ev.Registered)
	if err != nil {
		return false, err
	}
	defer a.onDisconnected()

	// The watchdog ends the session when no PING comes in time.
	var timedOut atomic.Bool
	watchdog := time.AfterFunc(pingTimeout, func() { timedOut.Store(true); cancel() })
	defer watchdog.Stop()

	var calls sync.WaitGroup // PONGs and framework shutdowns in flight
	defer calls.Wait()
	for {
		ev, err := next()
		if err != nil {
			if timedOut.Load() {
				return true, fmt.Errorf("no PING from the master for %s", pingTimeout)
			}
			return true, fmt.Errorf("registration stream: %w", err)
		}
		switch ev.Type {
		case api.AgentPing:
			watchdog.Reset(pingTimeout)
			var seq uint64
			if ev.Ping != nil {
				seq = ev.Ping.Seq
			}
			calls.Add(1)
			go func() {
				defer calls.Done()
				if err := a.call(ctx, &api.AgentCall{Type: api.AgentPong, AgentID: a.ID(), Pong: &api.Pong{Seq: seq}}); err != nil && ctx.Err() == nil {
					a.log.Warn("PONG not delivered", "seq", seq, "err", err)
				}
			}()
		case api.AgentRunTask:
			a.runTask(ev.RunTask)
		case api.AgentKillTask:
			a.killTask(ev.KillTask)
		case api.AgentAcknowledge:
			a.acknowledge(ev.Acknowledge)
		case api.AgentShutdownFramework:
			if ev.ShutdownFramework != nil {
				fw := ev.ShutdownFramework.FrameworkID
				a.log.Info("shutting framework down", "framework_id", fw)
				calls.Add(1)
				go func() { defer calls.Done(); a.shutdownFramework(a.runnerCtx, fw) }()
			}
		case api.AgentShutdownExecutor:
			if se := ev.ShutdownExecutor; se != nil {
				a.shutdownExecutor(se.FrameworkID, se.ExecutorID) // executor.go
			}
		case api.AgentReconcileTasks:
			a.reconcile(ev.ReconcileTasks)
		case api.AgentFrameworkMessage:
			a.frameworkMessage(ev.FrameworkMessage) // executor.go
		case api.AgentRegistered:
			a.log.Warn("ignoring a second REGISTERED on the stream")
		default:
			a.log.Warn("ignoring unknown event from master", "type", ev.Type)
		}
	}
}

func readEvent(r *api.RecordReader, codec api.Codec) (*api.AgentEvent, error) {
	b, err := r.ReadRecord()
	if err != nil {
		return nil, err
	}
	ev, err := api.DecodeAgentEvent(codec, b)
	if err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	return ev, nil
}

func readReason(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	if s := strings.TrimSpace(string(b)); s != "" {
		return s
	}
	return "(no reason given)"
}

// registration is the REGISTER payload: who the agent is and what it runs.
func (a *Agent) registration() *api.RegisterAgent {
	a.mu.Lock()
	id := a.agentID
	keys := make([]taskKey, 0, len(a.tasks))
	for k := range a.tasks {
		keys = append(keys, k)
	}
	a.mu.Unlock()
	sortKeys(keys)
	info := &mesos.AgentInfo{
		Hostname:   a.cfg.Hostname,
		Port:       &a.port,
		Resources:  a.resources.Clone(),
		Attributes: append([]mesos.Attribute(nil), a.attributes...),
	}
	if id != "" {
		info.ID = &mesos.AgentID{Value: id}
	}
	reg := &api.RegisterAgent{Info: info, Version: api.Version, Warnings: a.warnings, Executors: a.executorInfos()}
	seen := map[string]bool{}
	for _, k := range keys {
		mt, fw, ok := a.taskForMaster(k)
		if !ok {
			continue
		}
		reg.Tasks = append(reg.Tasks, mt)
		if !seen[k.framework] {
			seen[k.framework] = true
			reg.Frameworks = append(reg.Frameworks, fw)
		}
	}
	return reg
}

func sortKeys(keys []taskKey) {
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].framework != keys[j].framework {
			return keys[i].framework < keys[j].framework
		}
		return keys[i].task < keys[j].task
	})
}

// taskForMaster renders a task as the mesos.Task the master tracks.
func (a *Agent) taskForMaster(k taskKey) (*mesos.Task, *mesos.FrameworkInfo, bool) {
	head, held := a.updates.head(k)
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.tasks[k]
	if t == nil {
		return nil, nil, false
	}
	mt, fw := a.taskForMasterLocked(t, updateHead{head, held})
	return mt, fw, true
}

// updateHead is a task's oldest unacknowledged update (nil: none) and how
// many of its newest updates are held in memory, not yet checkpointed
// (statusupdates.go).
type updateHead struct {
	status *mesos.TaskStatus
	held   int
}

// updateHeads is the head of every task's update stream, for renderings
// of many tasks. The update manager's lock is not taken under a.mu, so
// the heads are read first; a task that comes meanwhile has none.
func (a *Agent) updateHeads() map[taskKey]updateHead {
	a.mu.Lock()
	keys := make([]taskKey, 0, len(a.tasks))
	for k := range a.tasks {
		keys = append(keys, k)
	}
	a.mu.Unlock()
	heads := make(map[taskKey]updateHead, len(keys))
	for _, k := range keys {
		if h, held := a.updates.head(k); h != nil || held > 0 {
			heads[k] = updateHead{h, held}
		}
	}
	return heads
}

// taskForMasterLocked renders t with the head of its update stream; a.mu
// is held. The master hears only of what is checkpointed: updates still
// held in memory are left out. The result shares only what never changes
// after the task is created (its TaskInfo's parts).
func (a *Agent) taskForMasterLocked(t *task, uh updateHead) (*mesos.Task, *mesos.FrameworkInfo) {
	k, head := t.key, uh.status
	state, statuses := t.state, t.statuses[:max(len(t.statuses)-uh.held, 0)]
	if uh.held > 0 {
		state = mesos.TASK_STAGING
		if n := len(statuses); n > 0 {
			state = statuses[n-1].GetState()
		}
	}
	mt := &mesos.Task{
		Name:        t.info.Name,
		TaskID:      t.info.TaskID,
		FrameworkID: mesos.FrameworkID{Value: k.framework},
		AgentID:     mesos.AgentID{Value: a.agentID},
		State:       &state,
		Resources:   t.info.Resources,
		Statuses:    append([]mesos.TaskStatus(nil), statuses...),
		Labels:      t.info.Labels,
		Discovery:   t.info.Discovery,
		Container:   t.info.Container,
		HealthCheck: t.info.HealthCheck,
		KillPolicy:  t.info.KillPolicy,
	}
	if t.exec != nil {
		mt.ExecutorID = &mesos.ExecutorID{Value: t.exec.key.executor}
	}
	if u := t.info.Command.GetUser(); u != "" {
		mt.User = &u
	} else if t.framework.User != "" {
		u := t.framework.User
		mt.User = &u
	}
	if head != nil {
		hs := head.GetState()
		mt.StatusUpdateState = &hs
		mt.StatusUpdateUUID = head.UUID
	}
	fw := t.framework
	return mt, &fw
}

// onRegistered records a (re-)registration and returns the ping timeout.
func (a *Agent) onRegistered(r *api.AgentRegisteredInfo) (time.Duration, error) {
	if err := validID("agent ID", r.AgentID); err != nil {
		return 0, fmt.Errorf("REGISTERED: %w", err)
	}
	a.mu.Lock()
	old := a.agentID
	a.mu.Unlock()
	switch {
	case old == "":
		if err := a.writeAgentID(r.AgentID); err != nil {
			return 0, err
		}
	case old != r.AgentID:
		return 0, &refusedError{reason: fmt.Sprintf("master registered agent %s as %s", old, r.AgentID)}
	}
	a.mu.Lock()
	a.agentID = r.AgentID
	a.registered = true
	a.counters["slave/registrations"]++
	a.mu.Unlock()
	timeout := a.cfg.PingTimeout
	if r.PingIntervalNanos > 0 && r.MaxPingTimeouts > 0 {
		timeout = time.Duration(r.PingIntervalNanos) * time.Duration(r.MaxPingTimeouts)
	}
	a.updates.setOnline(true)
	verb := "registered"
	if old != "" {
		verb = "re-registered"
	}
	a.log.Info("agent "+verb+" with master", "agent_id", r.AgentID, "master", a.masterName(), "master_id", r.MasterID, "ping_timeout", timeout)
	return timeout, nil
}

func (a *Agent) onDisconnected() {
	a.updates.setOnline(false)
	a.mu.Lock()
	a.registered = false
	a.mu.Unlock()
}

// acknowledge handles ACKNOWLEDGE: the head update of the task is done; a
// task whose terminal update is acknowledged is forgotten.
func (a *Agent) acknowledge(ack *api.Acknowledge) {
	if ack == nil {
		return
	}
	key := taskKey{ack.FrameworkID, ack.TaskID}
	matched, finished, err := a.updates.ack(key, ack.UUID)
	if err != nil {
		// Nothing changed: the update is sent again and acknowledged again.
		a.log.Error("acknowledgement not checkpointed; the update stays pending", "task_id", ack.TaskID, "err", err)
		return
	}
	if !matched {
		a.log.Info("ignoring acknowledgement of an update that is not pending (a duplicate?)", "framework_id", ack.FrameworkID, "task_id", ack.TaskID)
		return
	}
	if finished {
		a.mu.Lock()
		t := a.tasks[key]
		a.mu.Unlock()
		if t != nil {
			a.forget(t)
		}
	}
}

// reconcile handles RECONCILE_TASKS: for each task (all of the framework's
// when none are named) the agent resends its unacknowledged head update at
// once, or, when everything was acknowledged, the latest status again.
// Tasks the agent does not know are left to the master.
func (a *Agent) reconcile(rt *api.ReconcileTasks) {
	if rt == nil {
		return
	}
	a.mu.Lock()
	var keys []taskKey
	if len(rt.TaskIDs) == 0 {
		for k := range a.tasks {
			if k.framework == rt.FrameworkID {
				keys = append(keys, k)
			}
		}
	} else {
		for _, id := range rt.TaskIDs {
			if k := (taskKey{rt.FrameworkID, id}); a.tasks[k] != nil {
				keys = append(keys, k)
			}
		}
	}
	a.mu.Unlock()
	for _, k := range keys {
		if a.updates.resendNow(k) {
			continue
		}
		a.mu.Lock()
		t := a.tasks[k]
		var last *mesos.TaskStatus
		if t != nil && len(t.statuses) > 0 {
			s := t.statuses[len(t.statuses)-1]
			last = &s
		}
		a.mu.Unlock()
		if last == nil {
			continue
		}
		go func() {
			ctx, cancel := context.WithTimeout(a.runnerCtx, callTimeout)
			defer cancel()
			if err := a.sendUpdates(ctx, []*api.StatusUpdate{{FrameworkID: k.framework, Status: last, LatestState: last.State}}); err != nil {
				a.log.Warn("reconciliation update not delivered", "task_id", k.task, "err", err)
			}
		}()
	}
}

// post POSTs one agent→master message in protobuf (in JSON if protobuf
// cannot carry it, or if the master answered protobuf with 415: a master
// from before protobuf). A stream asks for protobuf events.
func (a *Agent) post(ctx context.Context, c *api.AgentCall, stream bool) (*http.Response, error) {
	codec := api.Protobuf
	if a.jsonOnly.Load() {
		codec = api.JSON
	}
	for {
		body, used, err := api.EncodeAgentCall(codec, c)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", c.Type, err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint(), bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", used.MediaType)
		if stream {
			req.Header.Set("Accept", codec.MediaType)
		}
		resp, err := a.client.Do(req)
		if err != nil || resp.StatusCode != http.StatusUnsupportedMediaType || used != api.Protobuf {
			return resp, err
		}
		resp.Body.Close()
		a.log.Warn("the master does not take protobuf agent calls; sending JSON", "master", a.masterName())
		a.jsonOnly.Store(true)
		codec = api.JSON
	}
}

// call POSTs one agent→master message and expects 202 Accepted.
func (a *Agent) call(ctx context.Context, c *api.AgentCall) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := a.post(ctx, c, false)
	if err != nil {
		return fmt.Errorf("%s to %s: %w", c.Type, a.masterName(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s to %s: %s: %s", c.Type, a.masterName(), resp.Status, readReason(resp.Body))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return nil
}

// endpoint is the URL of the master's agent API: the configured master's,
// or with a zk:// master the leader's it registered with last.
func (a *Agent) endpoint() string {
	if a.zk == nil {
		return a.masterURL
	}
	if u := a.leaderURL.Load(); u != nil {
		return *u
	}
	return "http://no-leading-master.invalid" + api.AgentPath
}

// awaitLeader waits for ZooKeeper to name a leading master and makes it
// the one the agent talks to.
func (a *Agent) awaitLeader(ctx context.Context) (string, error) {
	for {
		changed := a.zk.Changed()
		if l, ok := a.zk.Leader(); ok {
			addr, err := l.Address()
			if err != nil {
				return "", err
			}
			u := masterScheme(a.cfg) + "://" + addr + api.AgentPath
			a.leaderURL.Store(&u)
			return addr, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-changed:
		}
	}
}

// followLeader ends the session (cancel) as soon as ZooKeeper names a
// leader other than addr, so the agent re-registers with it rather than
// waiting for pings to stop.
func (a *Agent) followLeader(ctx context.Context, addr string, cancel context.CancelFunc) {
	for {
		changed := a.zk.Changed()
		if l, ok := a.zk.Leader(); ok {
			if now, err := l.Address(); err == nil && now != addr {
				a.log.Info("ZooKeeper names a new leading master", "from", addr, "to", now)
				cancel()
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// masterName is the master as the agent names it in logs, errors and
// /state: the configured address, or the zk:// URL without its password.
func (a *Agent) masterName() string {
	if a.zk != nil {
		u, _ := zk.ParseURL(a.cfg.MasterAddr) // checked by New
		return u.String()
	}
	return a.cfg.MasterAddr
}

// masterHost is host:port of the master the agent talks to: the
// configured one, or with a zk:// master the leader it registered with
// last ("" before that).
func (a *Agent) masterHost() string {
	if a.zk == nil {
		return trimScheme(a.cfg.MasterAddr)
	}
	if u := a.leaderURL.Load(); u != nil {
		return strings.TrimSuffix(trimScheme(*u), api.AgentPath)
	}
	return ""
}
