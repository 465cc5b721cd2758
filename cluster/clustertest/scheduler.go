package clustertest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/auth"
)

// Scheduler is a minimal JSON scheduler over real HTTP for tests that need
// to send exactly the calls they are about. It reads the event stream in
// the background; the test consumes events with Next and Update.
type Scheduler struct {
	t       testing.TB
	url     string
	ID      string // the framework ID
	stream  string
	events  chan *scheduler.Event
	pending map[string][]mesos.TaskStatus // updates of other tasks, by task ID
	skipped []mesos.OfferID               // offers Next passed over while waiting for another event
	body    io.Closer
	// Credential is presented on every call (HTTP Basic); set it to call
	// as another principal than the one that subscribed.
	Credential auth.Credential
}

// Subscribe subscribes a framework whose FrameworkInfo is given as JSON.
func (c *Cluster) Subscribe(fi string) *Scheduler {
	c.t.Helper()
	return SubscribeTo(c.t, c.MasterURL, fi)
}

// SubscribeTo subscribes to the master at url.
func SubscribeTo(t testing.TB, url, fi string) *Scheduler {
	t.Helper()
	return SubscribeWith(t, url, fi, auth.Credential{})
}

// SubscribeWith subscribes to the master at url presenting cred (for a
// master with --authenticate_frameworks); the calls present it too.
func SubscribeWith(t testing.TB, url, fi string, cred auth.Credential) *Scheduler {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/scheduler",
		strings.NewReader(`{"type":"SUBSCRIBE","subscribe":{"framework_info":`+fi+`}}`))
	req.Header.Set("Content-Type", api.MediaJSON)
	cred.Apply(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("subscribe: %d %s", resp.StatusCode, b)
	}
	s := &Scheduler{t: t, url: url, stream: resp.Header.Get("Mesos-Stream-Id"), body: resp.Body, Credential: cred,
		events: make(chan *scheduler.Event, 4096), pending: map[string][]mesos.TaskStatus{}}
	// The reader stops at cleanup even if the test stopped taking events
	// and the buffer is full, rather than staying blocked on it.
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); resp.Body.Close() })
	rr := api.NewRecordReader(resp.Body)
	go func() {
		defer close(s.events)
		for {
			b, err := rr.ReadRecord()
			if err != nil {
				return
			}
			var ev scheduler.Event
			if json.Unmarshal(b, &ev) == nil {
				select {
				case s.events <- &ev:
				case <-stop:
					return
				}
			}
		}
	}()
	s.ID = s.Next(scheduler.Event_SUBSCRIBED).Subscribed.FrameworkID.Value
	return s
}

// Close ends the subscription (the framework disconnects).
func (s *Scheduler) Close() { s.body.Close() }

// Next returns the next event of type typ, skipping others. The IDs of
// offers it skips are kept: the framework holds those offers (and their
// resources) until DeclineSkipped returns them.
func (s *Scheduler) Next(typ scheduler.Event_Type) *scheduler.Event {
	s.t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				s.t.Fatalf("stream closed while waiting for %v", typ)
			}
			if ev.GetType() == typ {
				return ev
			}
			if ev.GetType() == scheduler.Event_OFFERS {
				for _, o := range ev.GetOffers().Offers {
					s.skipped = append(s.skipped, o.ID)
				}
			}
		case <-timeout:
			s.t.Fatalf("no %v event", typ)
		}
	}
}

// DeclineSkipped declines, with no filter, the offers Next passed over (an
// offer made while a test waited for an update would otherwise hold its
// agent's resources for good); offers rescinded meanwhile are ignored by
// the master.
func (s *Scheduler) DeclineSkipped() {
	s.t.Helper()
	if len(s.skipped) == 0 {
		return
	}
	zero := 0.0
	s.Call(&scheduler.Call{Type: scheduler.Call_DECLINE, Decline: &scheduler.Call_Decline{
		OfferIDs: s.skipped, Filters: &mesos.Filters{RefuseSeconds: &zero}}})
	s.skipped = nil
}

// Offer waits for the next offer.
func (s *Scheduler) Offer() mesos.Offer {
	s.t.Helper()
	return s.Next(scheduler.Event_OFFERS).Offers.Offers[0]
}

// Call sends a call with the framework ID filled in and returns the HTTP
// status code.
func (s *Scheduler) Call(c *scheduler.Call) int {
	s.t.Helper()
	code, _ := s.CallBody(c)
	return code
}

// CallBody is Call that also returns the answer's body (a refusal's
// message).
func (s *Scheduler) CallBody(c *scheduler.Call) (int, string) {
	s.t.Helper()
	c.FrameworkID = &mesos.FrameworkID{Value: s.ID}
	b, err := json.Marshal(c)
	if err != nil {
		s.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/scheduler", bytes.NewReader(b))
	req.Header.Set("Content-Type", api.MediaJSON)
	req.Header.Set("Mesos-Stream-Id", s.stream)
	s.Credential.Apply(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

// MustCall sends a call that must be accepted (202).
func (s *Scheduler) MustCall(c *scheduler.Call) {
	s.t.Helper()
	if code := s.Call(c); code != http.StatusAccepted {
		s.t.Fatalf("%v: %d", c.GetType(), code)
	}
}

// Update waits for the next update of task id, acknowledging every update
// (updates of other tasks are kept for later calls).
func (s *Scheduler) Update(id string) mesos.TaskStatus {
	s.t.Helper()
	if q := s.pending[id]; len(q) > 0 {
		s.pending[id] = q[1:]
		return q[0]
	}
	for {
		st := s.Next(scheduler.Event_UPDATE).Update.Status
		if len(st.UUID) > 0 {
			s.Call(&scheduler.Call{Type: scheduler.Call_ACKNOWLEDGE, Acknowledge: &scheduler.Call_Acknowledge{
				AgentID: *st.AgentID, TaskID: st.TaskID, UUID: st.UUID}})
		}
		if st.TaskID.Value == id {
			return st
		}
		s.pending[st.TaskID.Value] = append(s.pending[st.TaskID.Value], st)
	}
}

// Pending returns the updates of task id received (while waiting for
// other tasks' updates) and not yet consumed by Update.
func (s *Scheduler) Pending(id string) []mesos.TaskStatus {
	return append([]mesos.TaskStatus(nil), s.pending[id]...)
}

// Until waits for task id to reach state, failing on another terminal state.
func (s *Scheduler) Until(id string, want mesos.TaskState) mesos.TaskStatus {
	s.t.Helper()
	for {
		st := s.Update(id)
		if st.GetState() == want {
			return st
		}
		switch st.GetState() {
		case mesos.TASK_STAGING, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_KILLING:
			continue
		}
		s.t.Fatalf("task %s: %v (%v) %q, want %v", id, st.GetState(), st.GetReason(), st.GetMessage(), want)
	}
}

// Launch accepts offer with one LAUNCH of tasks; the rest of the offer
// comes back at once (no decline filter).
func (s *Scheduler) Launch(offer mesos.Offer, tasks ...mesos.TaskInfo) {
	s.t.Helper()
	zero := 0.0
	s.MustCall(&scheduler.Call{Type: scheduler.Call_ACCEPT, Accept: &scheduler.Call_Accept{
		OfferIDs:   []mesos.OfferID{offer.ID},
		Operations: []mesos.Offer_Operation{{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{TaskInfos: tasks}}},
		Filters:    &mesos.Filters{RefuseSeconds: &zero},
	}})
}
