package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	executorpb "github.com/mesos/mesos-go/api/v1/lib/executor"

	"github.com/agora-cluster/agora/cluster/api"
)

// The v1 executor API: POST /api/v1/executor (Mesos's src/slave/http.cpp
// Http::executor). SUBSCRIBE opens a RecordIO event stream; UPDATE,
// MESSAGE and HEARTBEAT are answered 202 Accepted.

// ExecutorAPIPath is where the agent serves the v1 executor API.
const ExecutorAPIPath = "/api/v1/executor"

// maxExecutorCall bounds the body of one executor call.
const maxExecutorCall = 16 << 20

// executorHeartbeat is how often the agent sends HEARTBEAT on an executor's
// stream (Mesos: DEFAULT_EXECUTOR_HEARTBEAT_INTERVAL, 30 minutes).
var executorHeartbeat = 30 * time.Minute

// execConn is one executor subscription stream: events queue here (in the
// order they were sent, under Agent.mu) until the stream's handler writes
// them. The queue is bounded: an executor that falls limit events behind
// (it stopped reading, so its socket buffers are full and the handler's
// write is blocked) is cut off. Its queue is dropped and its stream ends;
// the executor subscribes again, and the agent sends it again what it
// must not miss (unacknowledged launches and kills, SHUTDOWN, and the
// acknowledgements of the updates it resends), as on any re-subscription.
// Framework messages carry no delivery guarantee, as in Mesos.
type execConn struct {
	codec   api.Codec
	limit   int // 0: unbounded
	wake    chan struct{}
	closed  chan struct{}
	cut     chan struct{} // closed when the limit is hit
	once    sync.Once
	cutOnce sync.Once

	mu    sync.Mutex
	queue []*executorpb.Event
	dead  bool // cut: events are dropped
}

func newExecConn(codec api.Codec, limit int) *execConn {
	return &execConn{codec: codec, limit: limit, wake: make(chan struct{}, 1), closed: make(chan struct{}), cut: make(chan struct{})}
}

// send queues ev; it never blocks.
func (c *execConn) send(ev *executorpb.Event) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	if c.limit > 0 && len(c.queue) >= c.limit {
		c.queue, c.dead = nil, true
		c.mu.Unlock()
		c.cutOnce.Do(func() { close(c.cut) })
		return
	}
	c.queue = append(c.queue, ev)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// close ends the stream once the events queued so far are written.
func (c *execConn) close() { c.once.Do(func() { close(c.closed) }) }

func (c *execConn) take() []*executorpb.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queue
	c.queue = nil
	return q
}

// closeFlushTimeout bounds the last write of a stream that is closed (its
// executor terminates, or subscribed again): an executor that does not
// read it does not keep the handler.
const closeFlushTimeout = 10 * time.Second

// httpError is an answer other than success, with Mesos's status code.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) *httpError {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func writeHTTPError(w http.ResponseWriter, err *httpError) {
	if err.code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	http.Error(w, err.msg, err.code)
}

// serveExecutorAPI is POST /api/v1/executor.
func (a *Agent) serveExecutorAPI(w http.ResponseWriter, r *http.Request) {
	if !a.recovered.Load() {
		// Executors retry; the one being recovered re-subscribes once the
		// agent knows it again.
		writeHTTPError(w, &httpError{http.StatusServiceUnavailable, "Agent has not finished recovery"})
		return
	}
	claims, ok := a.authenticateExecutor(w, r) // executor_auth.go
	if !ok {
		return
	}
	call, herr := readExecutorCall(w, r)
	if herr != nil {
		writeHTTPError(w, herr)
		return
	}
	if herr := validateExecutorCall(call); herr != nil {
		writeHTTPError(w, herr)
		return
	}
	if herr := a.authorizeExecutorCall(claims, call); herr != nil {
		writeHTTPError(w, herr)
		return
	}
	if call.Type == executorpb.Call_SUBSCRIBE {
		a.executorSubscribe(w, r, call)
		return
	}
	e, herr := a.lookupExecutor(call)
	if herr != nil {
		writeHTTPError(w, herr)
		return
	}
	a.mu.Lock()
	registering := e.state == execRegistering
	a.mu.Unlock()
	if registering {
		writeHTTPError(w, &httpError{http.StatusForbidden, "Executor is not subscribed"})
		return
	}
	switch call.Type {
	case executorpb.Call_UPDATE:
		if err := a.acceptExecutorUpdate(e, call.Update.Status); err != nil {
			// Not on disk, so not acknowledged: the executor retries.
			writeHTTPError(w, &httpError{http.StatusServiceUnavailable, "the status update was not recorded: " + err.Error()})
			return
		}
	case executorpb.Call_MESSAGE:
		a.forwardExecutorMessage(e, call.Message.Data)
	case executorpb.Call_HEARTBEAT:
	}
	w.WriteHeader(http.StatusAccepted)
}

// readExecutorCall checks the method and media types and decodes the call.
func readExecutorCall(w http.ResponseWriter, r *http.Request) (*executorpb.Call, *httpError) {
	var call executorpb.Call
	if _, herr := api.ReadCall(w, r, &call, maxExecutorCall); herr != nil {
		return nil, &httpError{herr.Code, herr.Message}
	}
	return &call, nil
}

// validateExecutorCall applies Mesos's validation::executor::call::validate.
func validateExecutorCall(c *executorpb.Call) *httpError {
	if c.ExecutorID.Value == "" {
		return badRequest("Expecting 'executor_id' to be present")
	}
	if c.FrameworkID.Value == "" {
		return badRequest("Expecting 'framework_id' to be present")
	}
	switch c.GetType() {
	case executorpb.Call_SUBSCRIBE:
		if c.Subscribe == nil {
			return badRequest("Expecting 'subscribe' to be present")
		}
	case executorpb.Call_UPDATE:
		if c.Update == nil {
			return badRequest("Expecting 'update' to be present")
		}
		if err := validateExecutorStatus(c, &c.Update.Status); err != nil {
			return badRequest("%s", err.Error())
		}
	case executorpb.Call_MESSAGE:
		if c.Message == nil {
			return badRequest("Expecting 'message' to be present")
		}
	case executorpb.Call_HEARTBEAT:
	case executorpb.Call_UNKNOWN:
		return &httpError{http.StatusNotImplemented, "Received 'UNKNOWN' call"}
	default:
		return &httpError{http.StatusNotImplemented, fmt.Sprintf("Call type %v is not implemented", c.GetType())}
	}
	return nil
}

// validateExecutorStatus checks a status an executor sends: the agent's
// checks on UPDATE.
func validateExecutorStatus(c *executorpb.Call, st *mesos.TaskStatus) error {
	switch {
	case st.TaskID.Value == "":
		return errors.New("Expecting 'update.status.task_id' to be present")
	case st.State == nil:
		return errors.New("Expecting 'update.status.state' to be present")
	case len(st.UUID) == 0:
		return errors.New("Expecting 'uuid' to be present in the status update")
	case len(st.UUID) != 16:
		return fmt.Errorf("'uuid' of the status update is not a valid UUID: it has %d bytes, want 16", len(st.UUID))
	case st.ExecutorID != nil && st.ExecutorID.Value != c.ExecutorID.Value:
		return fmt.Errorf("ExecutorID in Call: %s does not match ExecutorID in TaskStatus: %s", c.ExecutorID.Value, st.ExecutorID.Value)
	case st.GetSource() != mesos.SOURCE_EXECUTOR || st.Source == nil:
		return fmt.Errorf("Received Call from executor %s of framework %s with invalid source %s, expecting 'SOURCE_EXECUTOR'",
			c.ExecutorID.Value, c.FrameworkID.Value, st.GetSource())
	case st.GetState() == mesos.TASK_STAGING:
		return fmt.Errorf("Received TASK_STAGING from executor %s of framework %s which is not allowed",
			c.ExecutorID.Value, c.FrameworkID.Value)
	}
	return nil
}

// lookupExecutor finds the custom executor a call comes from.
func (a *Agent) lookupExecutor(c *executorpb.Call) (*executor, *httpError) {
	key := execKey{c.FrameworkID.Value, c.ExecutorID.Value}
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.executors[key]
	if e == nil {
		for k := range a.executors {
			if k.framework == key.framework {
				return nil, badRequest("Executor cannot be found")
			}
		}
		for k := range a.tasks {
			if k.framework == key.framework {
				return nil, badRequest("Executor cannot be found")
			}
		}
		return nil, badRequest("Framework cannot be found")
	}
	if e.kind != customExecutor {
		return nil, badRequest("Executor %s is the agent's built-in default executor, which takes no calls", key.executor)
	}
	return e, nil
}

// executorSubscribe handles SUBSCRIBE: it answers with the event stream
// and keeps it open until the executor goes away or terminates.
func (a *Agent) executorSubscribe(w http.ResponseWriter, r *http.Request, call *executorpb.Call) {
	codec, err := api.ResponseCodec(r.Header.Get("Accept"))
	if err != nil {
		writeHTTPError(w, &httpError{http.StatusNotAcceptable, err.Error()})
		return
	}
	e, herr := a.lookupExecutor(call)
	if herr != nil {
		writeHTTPError(w, herr)
		return
	}
	log := a.log.With("framework_id", e.key.framework, "executor_id", e.key.executor)
	conn := newExecConn(codec, a.cfg.MaxExecutorBacklog)
	unacked := map[string]bool{}
	for _, ti := range call.Subscribe.UnacknowledgedTasks {
		unacked[ti.TaskID.Value] = true
	}

	a.mu.Lock()
	old := e.conn
	// The first subscription of an executor a restarted agent adopted
	// (executor_recover.go) is a reconnection.
	reconnect := e.recovered && e.state == execRegistering
	if e.state >= execTerminating {
		// A terminating executor is told to go away (as Mesos).
		conn.send(&executorpb.Event{Type: executorpb.Event_SHUTDOWN})
		conn.close()
	} else {
		resubscribe := e.state == execRunning
		e.state = execRunning
		e.conn = conn
		conn.send(&executorpb.Event{Type: executorpb.Event_SUBSCRIBED, Subscribed: a.subscribedEvent(e)})
		switch {
		case resubscribe:
			a.redeliver(e, unacked)
		case reconnect:
			// Kills that came while the agent waited for it.
			for id, policy := range e.kills {
				if t := e.tasks[id]; t != nil && !isTerminal(t.state) {
					conn.send(killEvent(id, policy))
				}
			}
		}
		queued := e.queued
		e.queued = nil
		for _, l := range queued {
			a.deliver(e, l)
		}
		if !resubscribe && !reconnect && len(queued) == 0 && len(e.liveTasks()) == 0 {
			// Every task was killed before the executor subscribed: it
			// is shut down (SHUTDOWN, then the grace period).
			e.requestShutdown()
		}
	}
	a.mu.Unlock()
	if old != nil && old != conn {
		old.close()
	}
	log.Info("executor subscribed", "codec", codec.MediaType, "unacknowledged_tasks", len(unacked),
		"unacknowledged_updates", len(call.Subscribe.UnacknowledgedUpdates), "after_agent_restart", reconnect)
	// Updates the executor could not get acknowledged on its last stream
	// are handled as if they were sent now (duplicates are acknowledged
	// and dropped).
	for i := range call.Subscribe.UnacknowledgedUpdates {
		st := call.Subscribe.UnacknowledgedUpdates[i].Status
		if err := validateExecutorStatus(call, &st); err != nil {
			log.Warn("ignoring an invalid unacknowledged update", "task_id", st.TaskID.Value, "err", err)
			continue
		}
		a.acceptExecutorUpdate(e, st)
	}
	if reconnect {
		a.dropUnknownTasks(e, unacked)
		a.updateExecutorLimits(e) // executor.go: as Mesos does on re-subscription
	}

	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", codec.MediaType)
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rw := api.NewRecordWriter(w)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	// A cut ends a write blocked on the executor's full socket, and a
	// close bounds the last one.
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-conn.cut:
			_ = rc.SetWriteDeadline(time.Now())
		case <-conn.closed:
			_ = rc.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
		case <-finished:
		}
	}()
	defer func() {
		select {
		case <-conn.cut:
			a.count("slave/slow_executors_disconnected", 1)
			log.Warn("executor fell too far behind on its event stream; cut off (it subscribes again)",
				"backlog", a.cfg.MaxExecutorBacklog)
		default:
		}
	}()
	heartbeat := time.NewTicker(executorHeartbeat)
	defer heartbeat.Stop()
	write := func(evs []*executorpb.Event) bool {
		for _, ev := range evs {
			b, err := codec.Marshal(ev)
			if err != nil {
				log.Error("encode executor event", "type", ev.GetType().String(), "err", err)
				continue
			}
			if err := rw.WriteRecord(b); err != nil {
				return false
			}
		}
		return true
	}
	defer a.executorDisconnected(e, conn)
	for {
		select {
		case <-conn.wake:
			if !write(conn.take()) {
				return
			}
		case <-heartbeat.C:
			if !write([]*executorpb.Event{{Type: executorpb.Event_HEARTBEAT}}) {
				return
			}
		case <-conn.cut:
			return
		case <-conn.closed:
			write(conn.take())
			return
		case <-r.Context().Done():
			return
		}
	}
}

// subscribedEvent is the SUBSCRIBED payload; a.mu is held.
func (a *Agent) subscribedEvent(e *executor) *executorpb.Event_Subscribed {
	port := a.port
	agent := mesos.AgentInfo{
		Hostname:   a.cfg.Hostname,
		Port:       &port,
		Resources:  a.resources.Clone(),
		Attributes: append([]mesos.Attribute(nil), a.attributes...),
	}
	if a.agentID != "" {
		agent.ID = &mesos.AgentID{Value: a.agentID}
	}
	return &executorpb.Event_Subscribed{
		ExecutorInfo:  e.info,
		FrameworkInfo: e.framework,
		AgentInfo:     agent,
		ContainerID:   &mesos.ContainerID{Value: e.containerID},
	}
}

// redeliver runs on a re-subscription: tasks delivered on the old stream
// that the executor never acknowledged nor reported are sent again, and
// so are kills it may have missed; a.mu is held.
func (a *Agent) redeliver(e *executor, unacked map[string]bool) {
	again := map[*pendingLaunch]bool{}
	var order []*pendingLaunch
	for _, t := range e.liveTasks() {
		l := e.delivered[t.key.task]
		if l == nil || t.state != mesos.TASK_STAGING || unacked[t.key.task] || again[l] {
			continue
		}
		if l.group != nil {
			// A group goes again only if none of its tasks started.
			started := false
			for _, gt := range l.group.Tasks {
				if ot := e.tasks[gt.TaskID.Value]; ot != nil && (ot.state != mesos.TASK_STAGING || unacked[gt.TaskID.Value]) {
					started = true
				}
			}
			if started {
				continue
			}
		}
		again[l] = true
		order = append(order, l)
	}
	for _, l := range order {
		a.deliver(e, *l)
	}
	for id, policy := range e.kills {
		if t := e.tasks[id]; t != nil && !isTerminal(t.state) {
			e.conn.send(killEvent(id, policy))
		}
	}
}

// executorDisconnected notes the end of a subscription stream. The
// executor keeps running; a checkpointing one re-subscribes, and one that
// does not exits (which the agent then observes).
func (a *Agent) executorDisconnected(e *executor, conn *execConn) {
	a.mu.Lock()
	current := e.conn == conn
	if current {
		e.conn = nil
	}
	state := e.state
	a.mu.Unlock()
	if current && state < execTerminated {
		a.log.Info("executor disconnected", "framework_id", e.key.framework, "executor_id", e.key.executor, "state", state.String())
	}
}

// acceptExecutorUpdate takes a status update from an executor: the agent
// fills in what only it knows, queues the update for reliable delivery
// (checkpointing it), and acknowledges it to the executor. An update that
// could not be checkpointed is neither queued nor acknowledged, and the
// error says why.
func (a *Agent) acceptExecutorUpdate(e *executor, status mesos.TaskStatus) error {
	a.mu.Lock()
	t := e.tasks[status.TaskID.Value]
	if t != nil && t.launching {
		t = nil // not sent to the executor yet: it cannot know it
	}
	dup := false
	var pid int
	if e.container != nil {
		pid = e.container.Pid()
	}
	if t != nil {
		for _, s := range t.statuses {
			if bytes.Equal(s.UUID, status.UUID) {
				dup = true
				break
			}
		}
	}
	a.mu.Unlock()
	switch {
	case t == nil:
		a.log.Warn("acknowledging an update for a task this executor does not run", "framework_id", e.key.framework,
			"executor_id", e.key.executor, "task_id", status.TaskID.Value, "state", status.GetState().String())
	case dup:
		a.log.Info("acknowledging a duplicate status update", "task_id", status.TaskID.Value, "state", status.GetState().String())
	default:
		if status.Timestamp == nil {
			ts := float64(time.Now().UnixNano()) / 1e9
			status.Timestamp = &ts
		}
		if status.ExecutorID == nil {
			status.ExecutorID = &mesos.ExecutorID{Value: e.key.executor}
		}
		if status.ContainerStatus == nil {
			cs := &mesos.ContainerStatus{ContainerID: &mesos.ContainerID{Value: e.containerID}}
			if pid > 0 {
				p := uint32(pid)
				cs.ExecutorPID = &p
			}
			status.ContainerStatus = cs
		}
		if _, err := a.recordStatus(t, status, true); err != nil {
			a.log.Error("status update refused: its checkpoint failed", "framework_id", e.key.framework,
				"executor_id", e.key.executor, "task_id", status.TaskID.Value, "state", status.GetState().String(), "err", err)
			return err
		}
	}
	a.mu.Lock()
	if e.conn != nil {
		e.conn.send(&executorpb.Event{Type: executorpb.Event_ACKNOWLEDGED, Acknowledged: &executorpb.Event_Acknowledged{
			TaskID: status.TaskID, UUID: status.UUID}})
	}
	if t != nil && isTerminal(t.state) {
		delete(e.kills, t.key.task)
	}
	a.mu.Unlock()
	return nil
}

// forwardExecutorMessage sends an executor's MESSAGE to its scheduler
// through the master (no delivery guarantee, as in Mesos).
func (a *Agent) forwardExecutorMessage(e *executor, data []byte) {
	msg := &api.ExecutorMessage{FrameworkID: e.key.framework, ExecutorID: e.key.executor, Data: data}
	go func() {
		ctx, cancel := context.WithTimeout(a.runnerCtx, callTimeout)
		defer cancel()
		if err := a.call(ctx, &api.AgentCall{Type: api.AgentExecutorMsg, AgentID: a.ID(), Message: msg}); err != nil {
			a.log.Warn("executor message not delivered", "executor_id", e.key.executor, "err", err)
		}
	}()
}

// dropUnknownTasks runs when an executor reconnects to a restarted agent,
// after its unacknowledged updates: a task the agent still has in
// TASK_STAGING that the executor does not list among its unacknowledged
// tasks never reached it, and is dropped (TASK_LOST for frameworks that
// are not partition-aware, which the master translates), as in Mesos.
func (a *Agent) dropUnknownTasks(e *executor, unacked map[string]bool) {
	a.mu.Lock()
	var unknown []*task
	for _, t := range e.launchedTasks() { // a launching task was never sent
		if t.state == mesos.TASK_STAGING && !unacked[t.key.task] {
			unknown = append(unknown, t)
		}
	}
	a.mu.Unlock()
	for _, t := range unknown {
		a.log.Warn("dropping a task its reconnected executor does not know", "framework_id", t.key.framework,
			"executor_id", e.key.executor, "task_id", t.key.task)
		a.update(t, mesos.TASK_DROPPED, statusOpts{fromAgent: true, reason: mesos.REASON_AGENT_RESTARTED.Enum(),
			message: "Task launched during agent restart"})
	}
}
