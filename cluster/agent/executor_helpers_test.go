package agent_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
)

// These helpers drive a real cluster (cluster/clustertest) as a scheduler
// over the JSON v1 API, for the executor and health check tests.

// TestMain lets the test binary play the programs the tests launch: a
// mesos-go executor, an HTTP server.
func TestMain(m *testing.M) {
	switch os.Getenv("AGORA_TEST_ROLE") {
	case "mesos-go-executor":
		os.Exit(runMesosGoExecutor())
	case "http-server":
		os.Exit(runHTTPServer())
	case "agent":
		os.Exit(runAgentProcess()) // executor_recover_test.go
	case "sdk-executor":
		os.Exit(runSDKExecutor())
	}
	path, cleanup, err := copySelf()
	if err != nil {
		fmt.Fprintln(os.Stderr, "copy the test binary:", err)
		os.Exit(2)
	}
	selfCopy = path
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// wait bounds every wait; it turns a hang into a failure and is never
// what a test asserts.
const wait = 60 * time.Second

type sched struct {
	t      *testing.T
	url    string
	id     string
	stream string
	events chan *scheduler.Event

	mu      sync.Mutex
	updates map[string][]mesos.TaskStatus // by task ID, in arrival order
	notify  chan struct{}
	other   chan *scheduler.Event // events other than UPDATE
}

// subscribe subscribes a framework (fi is its FrameworkInfo as JSON) and
// acknowledges every update it receives.
func subscribe(t *testing.T, masterURL, fi string) *sched {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, masterURL+"/api/v1/scheduler",
		strings.NewReader(`{"type":"SUBSCRIBE","subscribe":{"framework_info":`+fi+`}}`))
	req.Header.Set("Content-Type", api.MediaJSON)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("SUBSCRIBE: %d %s", resp.StatusCode, b)
	}
	// The reader stops at cleanup even when the test no longer takes
	// events and s.other is full.
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); resp.Body.Close() })
	s := &sched{t: t, url: masterURL, stream: resp.Header.Get("Mesos-Stream-Id"),
		updates: map[string][]mesos.TaskStatus{}, notify: make(chan struct{}, 1), other: make(chan *scheduler.Event, 4096)}
	subscribed := make(chan string, 1)
	rr := api.NewRecordReader(resp.Body)
	go func() {
		for {
			b, err := rr.ReadRecord()
			if err != nil {
				close(s.other)
				return
			}
			var ev scheduler.Event
			if err := json.Unmarshal(b, &ev); err != nil {
				continue
			}
			switch ev.GetType() {
			case scheduler.Event_SUBSCRIBED:
				select {
				case subscribed <- ev.Subscribed.FrameworkID.Value:
				default: // only the first SUBSCRIBED is waited for
				}
			case scheduler.Event_UPDATE:
				st := ev.Update.Status
				if len(st.UUID) > 0 {
					go s.call(&scheduler.Call{Type: scheduler.Call_ACKNOWLEDGE, Acknowledge: &scheduler.Call_Acknowledge{
						AgentID: *st.AgentID, TaskID: st.TaskID, UUID: st.UUID}})
				}
				s.mu.Lock()
				s.updates[st.TaskID.Value] = append(s.updates[st.TaskID.Value], st)
				s.mu.Unlock()
				select {
				case s.notify <- struct{}{}:
				default:
				}
			case scheduler.Event_HEARTBEAT:
			default:
				select {
				case s.other <- &ev:
				case <-stop:
					return
				}
			}
		}
	}()
	select {
	case s.id = <-subscribed:
	case <-time.After(wait):
		t.Fatal("no SUBSCRIBED")
	}
	return s
}

// next returns the next event of type typ other than UPDATE, skipping
// others.
func (s *sched) next(typ scheduler.Event_Type) *scheduler.Event {
	s.t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev, ok := <-s.other:
			if !ok {
				s.t.Fatalf("stream closed while waiting for %v", typ)
			}
			if ev.GetType() == typ {
				return ev
			}
		case <-timeout:
			s.t.Fatalf("no %v event", typ)
		}
	}
}

// offer waits for an offer (declining nothing: offers not used stay
// outstanding until the test ends).
func (s *sched) offer() mesos.Offer {
	s.t.Helper()
	return s.next(scheduler.Event_OFFERS).Offers.Offers[0]
}

// call sends a call with the framework ID filled in and returns the status
// code.
func (s *sched) call(c *scheduler.Call) int {
	c.FrameworkID = &mesos.FrameworkID{Value: s.id}
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/scheduler", bytes.NewReader(b))
	req.Header.Set("Content-Type", api.MediaJSON)
	req.Header.Set("Mesos-Stream-Id", s.stream)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (s *sched) mustCall(c *scheduler.Call) {
	s.t.Helper()
	if code := s.call(c); code != http.StatusAccepted {
		s.t.Fatalf("%v: %d", c.GetType(), code)
	}
}

// launch accepts an offer with one LAUNCH of tasks.
func (s *sched) launch(offer mesos.Offer, tasks ...mesos.TaskInfo) {
	s.t.Helper()
	s.mustCall(&scheduler.Call{Type: scheduler.Call_ACCEPT, Accept: &scheduler.Call_Accept{OfferIDs: []mesos.OfferID{offer.ID}, Filters: noFilter(),
		Operations: []mesos.Offer_Operation{{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{TaskInfos: tasks}}}}})
}

// launchGroup accepts an offer with one LAUNCH_GROUP.
func (s *sched) launchGroup(offer mesos.Offer, exec mesos.ExecutorInfo, tasks ...mesos.TaskInfo) {
	s.t.Helper()
	s.mustCall(&scheduler.Call{Type: scheduler.Call_ACCEPT, Accept: &scheduler.Call_Accept{OfferIDs: []mesos.OfferID{offer.ID}, Filters: noFilter(),
		Operations: []mesos.Offer_Operation{{Type: mesos.Offer_Operation_LAUNCH_GROUP, LaunchGroup: &mesos.Offer_Operation_LaunchGroup{
			Executor: exec, TaskGroup: mesos.TaskGroupInfo{Tasks: tasks}}}}}})
}

// noFilter lets the rest of an accepted offer come back at once.
func noFilter() *mesos.Filters {
	zero := 0.0
	return &mesos.Filters{RefuseSeconds: &zero}
}

// statuses returns the updates received for a task so far.
func (s *sched) statuses(id string) []mesos.TaskStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mesos.TaskStatus(nil), s.updates[id]...)
}

// waitUpdate waits until the task has an update for which match holds and
// returns it.
func (s *sched) waitUpdate(id string, what string, match func(mesos.TaskStatus) bool) mesos.TaskStatus {
	s.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		for _, st := range s.statuses(id) {
			if match(st) {
				return st
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("task %s: no update %s; got %s", id, what, describe(s.statuses(id)))
		}
		select {
		case <-s.notify:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitState waits for a task to reach state.
func (s *sched) waitState(id string, state mesos.TaskState) mesos.TaskStatus {
	s.t.Helper()
	return s.waitUpdate(id, state.String(), func(st mesos.TaskStatus) bool { return st.GetState() == state })
}

// waitTerminal waits for a task's terminal update.
func (s *sched) waitTerminal(id string) mesos.TaskStatus {
	s.t.Helper()
	return s.waitUpdate(id, "in a terminal state", func(st mesos.TaskStatus) bool { return terminal(st.GetState()) })
}

func terminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
		mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

func describe(sts []mesos.TaskStatus) string {
	var parts []string
	for _, st := range sts {
		p := st.GetState().String()
		if st.Reason != nil {
			p += "/" + st.GetReason().String()
		}
		if st.Healthy != nil {
			p += map[bool]string{true: "/healthy", false: "/unhealthy"}[*st.Healthy]
		}
		if st.Message != nil {
			p += " (" + st.GetMessage() + ")"
		}
		parts = append(parts, p)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func resources(t *testing.T, text string) []mesos.Resource {
	t.Helper()
	rs, err := api.ParseResources(text)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func shellTask(t *testing.T, id string, agent mesos.AgentID, script, res string) mesos.TaskInfo {
	return mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: agent,
		Command: &mesos.CommandInfo{Value: &script}, Resources: resources(t, res)}
}

func strp(s string) *string { return &s }

// testBinary is a copy of this test binary that tasks and executors run
// (TestMain gives it their role); a copy, so that the program outlives the
// build directory whatever happens to it. TestMain makes it before any
// test runs: a binary written while other goroutines fork could not be
// executed (ETXTBSY).
func testBinary(t *testing.T) string {
	t.Helper()
	if selfCopy == "" {
		t.Fatal("no copy of the test binary")
	}
	return selfCopy
}

var selfCopy string

func copySelf() (path string, cleanup func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	b, err := os.ReadFile(self)
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "agent-test-bin-")
	if err != nil {
		return "", nil, err
	}
	path = filepath.Join(dir, "agent.test")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return path, func() { os.RemoveAll(dir) }, nil
}
