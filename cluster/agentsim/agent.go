package agentsim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

// callTimeout bounds one agent→master call.
const callTimeout = 15 * time.Second

// agent is one simulated agent.
type agent struct {
	fleet    *Fleet
	client   *http.Client // shared with other agents (Fleet.newClients)
	hostname string

	mu       sync.Mutex
	id       string
	masterID string // the master it is registered with now, "" when none
	online   bool   // registered: updates may be sent
	session  context.Context
	endpoint string
	tasks    map[taskKey]*task
	sending  bool        // a STATUS_UPDATE call is in flight
	retry    *time.Timer // fires when the earliest unacknowledged update is due again

	// The REGISTER body as last encoded, kept until what it reports
	// changes (version counts the changes): an agent whose master is
	// gone tries again every few seconds with the same body, and a whole
	// fleet encoding its bodies the moment a new leader is named holds
	// up every agent's registration on the cores the master needs.
	version     uint64
	body        []byte
	bodyVersion uint64
	bodyCodec   api.Codec
}

// run keeps the agent registered with the current master until ctx ends.
func (a *agent) run(ctx context.Context) {
	f := a.fleet
	backoff := f.cfg.Backoff
	var last *leaderEpoch
	for ctx.Err() == nil {
		ep, changed := f.current()
		if ep.addr == "" {
			select {
			case <-ctx.Done():
			case <-changed:
			}
			continue
		}
		if ep != last {
			// A new leader: the backoff grown against the old one (or
			// while none was named) does not apply to it.
			last, backoff = ep, f.cfg.Backoff
			if !a.spread(ctx, changed) {
				continue // another leader meanwhile, or the end
			}
		}
		registered, why, err := a.serve(ep)
		if ctx.Err() != nil {
			return
		}
		if registered {
			backoff = f.cfg.Backoff
		} else {
			f.count(func(s *Stats) {
				s.FailedAttempts++
				switch why {
				case failedUnreachable:
					s.FailedUnreachable++
				case failedNotLeading:
					s.FailedNotLeading++
				}
			})
		}
		if err != nil {
			f.noteError(err)
		}
		// A new leader ends the wait at once; otherwise jitter keeps the
		// agents from coming back in lock step.
		delay := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
		case <-changed:
		case <-time.After(delay):
		}
		backoff = min(2*backoff, f.cfg.BackoffMax)
	}
}

// spread waits a random part of RegistrationBackoffFactor before the
// first attempt with a new leader; false if changed fired (another
// leader) or ctx ended first.
func (a *agent) spread(ctx context.Context, changed <-chan struct{}) bool {
	factor := a.fleet.cfg.RegistrationBackoffFactor
	if factor <= 0 {
		return true
	}
	t := time.NewTimer(rand.N(factor + 1))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-changed:
	case <-ctx.Done():
	}
	return false
}

// Why an attempt to register failed, for the fleet's counters.
type failure int

const (
	failedOther       failure = iota
	failedUnreachable         // no answer: refused, reset, timed out
	failedNotLeading          // 503 or 307: the master does not act as leader
)

// serve registers with ep's master and handles its event stream until
// the stream breaks, PINGs stop or the epoch ends. It reports whether
// REGISTERED arrived, and if not, why.
func (a *agent) serve(ep *leaderEpoch) (bool, failure, error) {
	f := a.fleet
	ctx, cancel := context.WithCancel(ep.ctx)
	defer cancel()
	url := f.scheme() + "://" + ep.addr + api.AgentPath
	body, used, err := a.registerBody()
	if err != nil {
		return false, failedOther, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false, failedOther, err
	}
	req.Header.Set("Content-Type", used.MediaType)
	req.Header.Set("Accept", f.cfg.Codec.MediaType)
	ep.note(&ep.sent)
	resp, err := a.client.Do(req)
	if err != nil {
		ep.noteFailure(err)
		return false, failedUnreachable, nil // the master is not there (yet): retry
	}
	ep.note(&ep.answered)
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusConflict:
		// The master does not know our ID: forget it and what we run,
		// and register afresh (as the real agent does).
		f.count(func(s *Stats) { s.Refusals++ })
		a.reset()
		return false, failedOther, nil
	case http.StatusServiceUnavailable, http.StatusTemporaryRedirect:
		return false, failedNotLeading, nil // not (yet) the acting leader
	default:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return false, failedOther, &protocolError{fmt.Sprintf("%s: REGISTER: %s: %s", a.hostname, resp.Status, strings.TrimSpace(string(b)))}
	}
	codec := api.JSON
	if resp.Header.Get("Content-Type") == api.MediaProtobuf {
		codec = api.Protobuf
	}
	// The buffer holds only a record's length line (a record is read past
	// it): a 64 KiB buffer per agent would be gigabytes for a large fleet,
	// and even 4 KiB, allocated anew by every agent at each change of
	// leader, is 160 MB of garbage at 40,000 agents, collected on the
	// cores the new leader needs.
	events := api.NewRecordReaderSize(resp.Body, 512)
	ev, err := readEvent(events, codec)
	if err != nil {
		return false, failedOther, nil
	}
	if ev.Type != api.AgentRegistered || ev.Registered == nil || ev.Registered.AgentID == "" {
		return false, failedOther, &protocolError{fmt.Sprintf("%s: first event is %s, want REGISTERED", a.hostname, ev.Type)}
	}
	r := ev.Registered
	ep.note(&ep.registered)
	if err := a.registered(ctx, url, r); err != nil {
		return false, failedOther, err
	}
	defer a.disconnected(r.MasterID)

	pingTimeout := time.Duration(r.PingIntervalNanos) * time.Duration(max(r.MaxPingTimeouts, 1))
	if pingTimeout <= 0 {
		pingTimeout = 75 * time.Second
	}
	watchdog := time.AfterFunc(pingTimeout, cancel)
	defer watchdog.Stop()
	for {
		ev, err := readEvent(events, codec)
		if err != nil {
			return true, failedOther, nil
		}
		switch ev.Type {
		case api.AgentPing:
			watchdog.Reset(pingTimeout)
			if ev.Ping != nil {
				seq := ev.Ping.Seq
				go a.call(ctx, &api.AgentCall{Type: api.AgentPong, AgentID: r.AgentID, Pong: &api.Pong{Seq: seq}})
			}
		case api.AgentRunTask:
			a.runTask(ev.RunTask)
		case api.AgentKillTask:
			if k := ev.KillTask; k != nil {
				a.kill(taskKey{k.FrameworkID, k.TaskID})
			}
		case api.AgentAcknowledge:
			a.acknowledge(ev.Acknowledge)
		case api.AgentShutdownFramework:
			if s := ev.ShutdownFramework; s != nil {
				a.shutdownFramework(s.FrameworkID)
			}
		case api.AgentReconcileTasks:
			a.reconcile(ev.ReconcileTasks)
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

// ID is the agent's ID, "" before its first registration.
func (a *agent) ID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.id
}

// registered records REGISTERED and makes every pending update due.
func (a *agent) registered(ctx context.Context, url string, r *api.AgentRegisteredInfo) error {
	f := a.fleet
	a.mu.Lock()
	old := a.id
	if old != "" && old != r.AgentID {
		a.mu.Unlock()
		return &protocolError{fmt.Sprintf("%s: master registered agent %s as %s", a.hostname, old, r.AgentID)}
	}
	if old != r.AgentID {
		a.changedLocked()
	}
	a.id, a.masterID, a.online, a.session, a.endpoint = r.AgentID, r.MasterID, true, ctx, url
	for _, t := range a.tasks {
		t.due, t.backoff = time.Time{}, 0
	}
	a.mu.Unlock()
	f.noteRegistered(r.MasterID, 1)
	f.count(func(s *Stats) {
		if old == "" {
			s.Registrations++
		} else {
			s.Reregistrations++
		}
	})
	a.flush()
	return nil
}

func (a *agent) disconnected(masterID string) {
	a.mu.Lock()
	a.online, a.masterID, a.session = false, "", nil
	a.mu.Unlock()
	a.fleet.noteRegistered(masterID, -1)
}

// reset forgets the agent's ID and tasks (the master refused the ID).
func (a *agent) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.tasks {
		t.stop()
	}
	a.id, a.tasks = "", map[taskKey]*task{}
	a.changedLocked()
}

// changedLocked notes a change to what REGISTER reports (the agent's ID,
// its tasks, their states and pending updates); a.mu is held.
func (a *agent) changedLocked() {
	a.version++
	a.body = nil
}

// registerBody is the encoded REGISTER call, encoded again only if what
// it reports changed since the last time.
func (a *agent) registerBody() ([]byte, api.Codec, error) {
	a.mu.Lock()
	if a.body != nil && a.bodyVersion == a.version {
		body, used := a.body, a.bodyCodec
		a.mu.Unlock()
		return body, used, nil
	}
	a.mu.Unlock()
	reg, id, version := a.registration()
	body, used, err := api.EncodeAgentCall(a.fleet.cfg.Codec, &api.AgentCall{Type: api.AgentRegister, AgentID: id, Register: reg})
	if err != nil {
		return nil, api.Codec{}, err
	}
	a.mu.Lock()
	if a.version == version { // nothing changed while it was encoded
		a.body, a.bodyVersion, a.bodyCodec = body, version, used
	}
	a.mu.Unlock()
	return body, used, nil
}

// registration is the REGISTER payload: who the agent is and what it
// runs, each task with its latest state and the head of its updates;
// with the agent's ID and the version of its state it describes.
func (a *agent) registration() (*api.RegisterAgent, string, uint64) {
	f := a.fleet
	port := int32(5051)
	info := &mesos.AgentInfo{Hostname: a.hostname, Port: &port, Resources: f.resources}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.id != "" {
		info.ID = &mesos.AgentID{Value: a.id}
	}
	reg := &api.RegisterAgent{Info: info, Version: api.Version}
	seen := map[string]bool{}
	for k, t := range a.tasks {
		state := t.state
		mt := &mesos.Task{
			Name: t.name, TaskID: mesos.TaskID{Value: k.task}, FrameworkID: mesos.FrameworkID{Value: k.framework},
			AgentID: mesos.AgentID{Value: a.id}, State: &state, Resources: t.resources, Statuses: []mesos.TaskStatus{*t.last},
		}
		if len(t.pending) > 0 {
			hs := t.pending[0].Status.GetState()
			mt.StatusUpdateState, mt.StatusUpdateUUID = &hs, t.pending[0].Status.UUID
		}
		reg.Tasks = append(reg.Tasks, mt)
		if !seen[k.framework] && t.framework != nil {
			seen[k.framework] = true
			reg.Frameworks = append(reg.Frameworks, t.framework)
		}
	}
	return reg, a.id, a.version
}

// call POSTs one agent→master message to the master of the session.
func (a *agent) call(ctx context.Context, c *api.AgentCall) error {
	a.mu.Lock()
	url := a.endpoint
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	body, used, err := api.EncodeAgentCall(a.fleet.cfg.Codec, c)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", used.MediaType)
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s to %s: %s", c.Type, url, resp.Status)
	}
	return nil
}
