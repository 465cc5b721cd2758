package executor

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/tlsconf"
)

// Driver is an executor's connection to its agent: the subscription, its
// event stream and the calls made on it. Create it with New, start it with
// Run; its call methods are safe for concurrent use.
type Driver struct {
	cfg    Config
	h      Handler
	log    *slog.Logger
	codec  api.Codec
	url    string
	calls  *http.Client
	stream *http.Client

	mu             sync.Mutex
	unackedTasks   map[string]mesos.TaskInfo       // by task ID
	unackedUpdates map[string]executor.Call_Update // by uuid
	updateOrder    []string                        // uuids in the order they were sent
	subscribed     *executor.Event_Subscribed

	running atomic.Bool
}

// APIPath is the agent's executor API endpoint.
const APIPath = "/api/v1/executor"

var (
	errShutdown   = errors.New("executor: the agent sent SHUTDOWN")
	errAgentError = errors.New("executor: the agent sent ERROR")
)

// New checks cfg and returns a Driver that will deliver events to h.
func New(cfg Config, h Handler) (*Driver, error) {
	switch {
	case h == nil:
		return nil, errors.New("executor: nil Handler")
	case cfg.FrameworkID == "" || cfg.ExecutorID == "":
		return nil, errors.New("executor: the framework ID and executor ID are required (MESOS_FRAMEWORK_ID, MESOS_EXECUTOR_ID)")
	case cfg.AgentEndpoint == "":
		return nil, errors.New("executor: the agent's endpoint is required (MESOS_AGENT_ENDPOINT)")
	}
	d := &Driver{
		cfg: cfg, h: h, log: cfg.Logger, codec: cfg.Codec,
		unackedTasks:   map[string]mesos.TaskInfo{},
		unackedUpdates: map[string]executor.Call_Update{},
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.codec.MediaType == "" {
		d.codec = api.Protobuf
	}
	if cfg.TLS != nil && cfg.TLS.InsecureSkipVerify {
		d.log.Warn("the agent's certificate is not verified (LIBPROCESS_SSL_VERIFY_CERT=false): anyone who can answer at the agent's address can act as the agent",
			"agent", cfg.AgentEndpoint)
	}
	endpoint := strings.TrimSuffix(cfg.AgentEndpoint, "/")
	if !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		// MESOS_AGENT_ENDPOINT is ip:port, as in Mesos: the scheme is
		// whether the agent serves TLS (LIBPROCESS_SSL_ENABLED).
		endpoint = tlsconf.Scheme(cfg.TLS) + "://" + endpoint
	}
	d.url = endpoint + APIPath
	d.calls = cfg.HTTPClient
	if d.calls == nil {
		d.calls = &http.Client{Timeout: 10 * time.Second}
		if cfg.TLS != nil {
			d.calls.Transport = &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: cfg.TLS.Clone()}
		}
	}
	// The stream gets a connection of its own (the API wants calls on
	// other connections) and a bound on the wait for its headers.
	d.stream = &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		ResponseHeaderTimeout: 10 * time.Second,
		DisableKeepAlives:     true,
		TLSClientConfig:       cfg.TLS.Clone(),
	}}
	if d.cfg.SubscriptionBackoffMax <= 0 {
		d.cfg.SubscriptionBackoffMax = 2 * time.Second
	}
	if d.cfg.InitialTimeout <= 0 {
		d.cfg.InitialTimeout = 15 * time.Second
	}
	if d.cfg.ShutdownGracePeriod <= 0 {
		d.cfg.ShutdownGracePeriod = 5 * time.Second
	}
	return d, nil
}

// Run subscribes and handles events until the agent sends SHUTDOWN (then
// it returns nil once Handler.Shutdown has returned), ctx ends, or the
// subscription is lost for good: at once when the framework does not
// checkpoint, after RecoveryTimeout of failed attempts when it does. Run
// may be called once.
func (d *Driver) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("executor: Run called twice")
	}
	var (
		attempt       int
		everConnected bool
		since         = time.Now() // start of the current run of failures
	)
	for {
		connected, err := d.session(ctx)
		switch {
		case errors.Is(err, errShutdown):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		if connected {
			everConnected, attempt, since = true, 0, time.Now()
			if !d.cfg.Checkpoint {
				return fmt.Errorf("executor: subscription to the agent lost and the framework does not checkpoint, so the executor exits: %w", err)
			}
		}
		limit := d.cfg.InitialTimeout
		if everConnected {
			limit = d.cfg.RecoveryTimeout
		}
		if time.Since(since) >= limit {
			return fmt.Errorf("executor: no subscription to the agent at %s within %s: %w", d.cfg.AgentEndpoint, limit, err)
		}
		delay := d.backoff(attempt)
		attempt++
		d.log.Warn("subscribing to the agent again", "in", delay, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// setHeaders gives a call its content type and, when the agent gave the
// executor a token, the token (Mesos's executor authentication).
func (d *Driver) setHeaders(req *http.Request) {
	req.Header.Set("Content-Type", d.codec.MediaType)
	req.Header.Set("Accept", d.codec.MediaType)
	if d.cfg.AuthenticationToken != "" {
		req.Header.Set("Authorization", "Bearer "+d.cfg.AuthenticationToken)
	}
}

// backoff is the delay before subscription attempt n (from 0): doubling
// from 250ms up to SubscriptionBackoffMax, with jitter.
func (d *Driver) backoff(n int) time.Duration {
	b := 250 * time.Millisecond
	for i := 0; i < n && b < d.cfg.SubscriptionBackoffMax; i++ {
		b *= 2
	}
	b = min(b, d.cfg.SubscriptionBackoffMax)
	return b/2 + mathrand.N(b/2+1)
}

// session subscribes once and handles the stream until it ends. It reports
// whether SUBSCRIBED arrived.
func (d *Driver) session(ctx context.Context) (connected bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	call := d.call(executor.Call_SUBSCRIBE)
	call.Subscribe = d.unacknowledged()
	included := make(map[string]bool, len(call.Subscribe.UnacknowledgedUpdates))
	for _, u := range call.Subscribe.UnacknowledgedUpdates {
		included[string(u.Status.UUID)] = true
	}
	body, err := d.codec.Marshal(call)
	if err != nil {
		return false, fmt.Errorf("executor: encode SUBSCRIBE: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	d.setHeaders(req)
	resp, err := d.stream.Do(req)
	if err != nil {
		return false, fmt.Errorf("executor: SUBSCRIBE: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("executor: SUBSCRIBE: %s: %s", resp.Status, readBody(resp.Body))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != d.codec.MediaType {
		return false, fmt.Errorf("executor: SUBSCRIBE answered with Content-Type %q, want %s", resp.Header.Get("Content-Type"), d.codec.MediaType)
	}
	records := api.NewRecordReader(resp.Body)
	for {
		b, err := records.ReadRecord()
		if err != nil {
			if err == io.EOF {
				err = errors.New("the agent closed the event stream")
			}
			return connected, fmt.Errorf("executor: event stream: %w", err)
		}
		var ev executor.Event
		if err := d.codec.Unmarshal(b, &ev); err != nil {
			return connected, fmt.Errorf("executor: decode event: %w", err)
		}
		if !connected && ev.GetType() != executor.Event_SUBSCRIBED && ev.GetType() != executor.Event_SHUTDOWN {
			return false, fmt.Errorf("executor: first event is %s, want SUBSCRIBED", ev.GetType())
		}
		subscribed := ev.GetType() == executor.Event_SUBSCRIBED
		if subscribed {
			connected = true
		}
		if err := d.handle(ctx, &ev); err != nil {
			return connected, err
		}
		if subscribed {
			go d.resendMissed(ctx, included)
		}
	}
}

// resendMissed sends again the updates that are unacknowledged but were
// not in the SUBSCRIBE call (included): updates made while the call was
// in flight, which the agent refused as from an executor not subscribed
// yet. Nothing else would resend them until the next subscription. The
// agent acknowledges and drops a duplicate.
func (d *Driver) resendMissed(ctx context.Context, included map[string]bool) {
	d.mu.Lock()
	var missed []executor.Call_Update
	for _, id := range d.updateOrder {
		if u, ok := d.unackedUpdates[id]; ok && !included[id] {
			missed = append(missed, u)
		}
	}
	d.mu.Unlock()
	for i := range missed {
		call := d.call(executor.Call_UPDATE)
		call.Update = &missed[i]
		if err := d.send(ctx, call); err != nil {
			d.log.Warn("update made during the subscription not resent; the next subscription sends it", "task_id", missed[i].Status.TaskID.Value, "err", err)
			return
		}
	}
}

// handle dispatches one event to the Handler.
func (d *Driver) handle(ctx context.Context, ev *executor.Event) error {
	switch ev.GetType() {
	case executor.Event_SUBSCRIBED:
		if ev.Subscribed == nil {
			return errors.New("executor: SUBSCRIBED without its payload")
		}
		d.mu.Lock()
		d.subscribed = ev.Subscribed
		d.mu.Unlock()
		d.log.Info("subscribed to the agent", "agent", d.cfg.AgentEndpoint, "executor_id", d.cfg.ExecutorID)
		d.h.Subscribed(ctx, ev.Subscribed)
	case executor.Event_LAUNCH:
		if ev.Launch == nil {
			return errors.New("executor: LAUNCH without its payload")
		}
		d.mu.Lock()
		d.unackedTasks[ev.Launch.Task.TaskID.Value] = ev.Launch.Task
		d.mu.Unlock()
		d.h.Launch(ctx, ev.Launch.Task)
	case executor.Event_LAUNCH_GROUP:
		if ev.LaunchGroup == nil {
			return errors.New("executor: LAUNCH_GROUP without its payload")
		}
		d.mu.Lock()
		for _, t := range ev.LaunchGroup.TaskGroup.Tasks {
			d.unackedTasks[t.TaskID.Value] = t
		}
		d.mu.Unlock()
		d.h.LaunchGroup(ctx, ev.LaunchGroup.TaskGroup)
	case executor.Event_KILL:
		if ev.Kill != nil {
			d.h.Kill(ctx, ev.Kill.TaskID, ev.Kill.KillPolicy)
		}
	case executor.Event_ACKNOWLEDGED:
		if a := ev.Acknowledged; a != nil {
			d.mu.Lock()
			delete(d.unackedUpdates, string(a.UUID))
			// A task counts as acknowledged once one of its updates is.
			delete(d.unackedTasks, a.TaskID.Value)
			d.mu.Unlock()
		}
	case executor.Event_MESSAGE:
		if ev.Message != nil {
			d.h.Message(ctx, ev.Message.Data)
		}
	case executor.Event_SHUTDOWN:
		d.log.Info("the agent asked the executor to shut down", "grace_period", d.cfg.ShutdownGracePeriod)
		grace := d.cfg.ShutdownGracePeriod
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace-min(grace/5, time.Second))
		defer cancel()
		d.h.Shutdown(sctx)
		return errShutdown
	case executor.Event_ERROR:
		msg := ""
		if ev.Error != nil {
			msg = ev.Error.Message
		}
		d.log.Warn("the agent sent ERROR", "message", msg)
		d.h.Error(ctx, msg)
		return fmt.Errorf("%w: %s", errAgentError, msg)
	case executor.Event_HEARTBEAT:
	default:
		d.log.Warn("ignoring an unknown event", "type", ev.GetType())
	}
	return nil
}

// unacknowledged is the SUBSCRIBE payload: what the agent has not
// acknowledged, updates in the order they were sent.
func (d *Driver) unacknowledged() *executor.Call_Subscribe {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := &executor.Call_Subscribe{}
	for _, t := range d.unackedTasks {
		s.UnacknowledgedTasks = append(s.UnacknowledgedTasks, t)
	}
	order := d.updateOrder[:0]
	for _, id := range d.updateOrder {
		if u, ok := d.unackedUpdates[id]; ok {
			s.UnacknowledgedUpdates = append(s.UnacknowledgedUpdates, u)
			order = append(order, id)
		}
	}
	d.updateOrder = order
	return s
}

// Subscribed is the payload of the latest SUBSCRIBED (nil before the
// first): this executor's, its framework's and its agent's info.
func (d *Driver) Subscribed() *executor.Event_Subscribed {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.subscribed
}

// Unacknowledged counts the tasks and updates the agent has not
// acknowledged yet.
func (d *Driver) Unacknowledged() (tasks, updates int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.unackedTasks), len(d.unackedUpdates)
}

// Update sends a task's status. It fills in what the executor is expected
// to: a fresh uuid (unless set), source SOURCE_EXECUTOR, the executor ID
// and a timestamp. The update is kept until the agent acknowledges it and
// is sent again with the next SUBSCRIBE, so an error here means "not
// delivered yet", not "lost".
func (d *Driver) Update(ctx context.Context, status mesos.TaskStatus) error {
	if len(status.UUID) == 0 {
		status.UUID = newUUID()
	}
	status.Source = mesos.SOURCE_EXECUTOR.Enum()
	if status.ExecutorID == nil {
		status.ExecutorID = &mesos.ExecutorID{Value: d.cfg.ExecutorID}
	}
	if status.Timestamp == nil {
		ts := float64(time.Now().UnixNano()) / 1e9
		status.Timestamp = &ts
	}
	u := executor.Call_Update{Status: status}
	d.mu.Lock()
	id := string(status.UUID)
	if _, dup := d.unackedUpdates[id]; !dup {
		d.updateOrder = append(d.updateOrder, id)
	}
	d.unackedUpdates[id] = u
	if len(d.updateOrder) > 2*len(d.unackedUpdates)+64 {
		order := d.updateOrder[:0]
		for _, id := range d.updateOrder {
			if _, ok := d.unackedUpdates[id]; ok {
				order = append(order, id)
			}
		}
		d.updateOrder = order
	}
	d.mu.Unlock()
	call := d.call(executor.Call_UPDATE)
	call.Update = &u
	// An agent that cannot record the update yet (503: its checkpoint
	// failed) is asked again, with backoff, for up to updateRetryFor; the
	// update also stays unacknowledged, so a new subscription resends it.
	backoff := 100 * time.Millisecond
	deadline := time.Now().Add(updateRetryFor)
	for {
		err := d.send(ctx, call)
		if err == nil {
			return nil
		}
		var ae *AgentError
		if !errors.As(err, &ae) || ae.Code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return fmt.Errorf("executor: update of task %s to %s: %w", status.TaskID.Value, status.GetState(), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("executor: update of task %s to %s: %w", status.TaskID.Value, status.GetState(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// updateRetryFor bounds how long Update asks again an agent that answers
// 503 (it could not record the update).
const updateRetryFor = 30 * time.Second

// SendStatus sends a status update with a state and an optional message.
func (d *Driver) SendStatus(ctx context.Context, taskID mesos.TaskID, state mesos.TaskState, message string) error {
	st := mesos.TaskStatus{TaskID: taskID, State: state.Enum()}
	if message != "" {
		st.Message = &message
	}
	return d.Update(ctx, st)
}

// Message sends opaque data to the scheduler (no delivery guarantee).
func (d *Driver) Message(ctx context.Context, data []byte) error {
	if data == nil {
		data = []byte{}
	}
	call := d.call(executor.Call_MESSAGE)
	call.Message = &executor.Call_Message{Data: data}
	return d.send(ctx, call)
}

func (d *Driver) call(t executor.Call_Type) *executor.Call {
	return &executor.Call{
		Type:        t,
		FrameworkID: mesos.FrameworkID{Value: d.cfg.FrameworkID},
		ExecutorID:  mesos.ExecutorID{Value: d.cfg.ExecutorID},
	}
}

// AgentError is a call the agent answered with an error status.
type AgentError struct {
	Code    int
	Message string
}

func (e *AgentError) Error() string {
	return fmt.Sprintf("agent answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// send posts a call other than SUBSCRIBE and expects 202 Accepted.
func (d *Driver) send(ctx context.Context, call *executor.Call) error {
	body, err := d.codec.Marshal(call)
	if err != nil {
		return fmt.Errorf("encode %s: %w", call.GetType(), err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	d.setHeaders(req)
	resp, err := d.calls.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return &AgentError{Code: resp.StatusCode, Message: readBody(resp.Body)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return nil
}

func readBody(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	return strings.TrimSpace(string(b))
}

// newUUID returns a random RFC 4122 version-4 UUID as its 16 raw bytes,
// the form status updates carry.
func newUUID() []byte {
	u := make([]byte, 16)
	_, _ = rand.Read(u) // never fails (crypto/rand)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}
