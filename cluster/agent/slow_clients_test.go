package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

// dialStalled connects to addr with a 4 KB receive buffer, sends request
// and reads only the first byte of the answer (so the server is writing
// it): from then on the test reads nothing, and the server's writes block
// once the socket buffers between them are full.
func dialStalled(t *testing.T, addr, request string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(wait))
	if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil {
		t.Fatalf("no answer to a request that then stalls: %v", err)
	}
	return conn
}

// agentMetric reads one value of an agent's /metrics/snapshot.
func agentMetric(t *testing.T, ra *clustertest.RunningAgent, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + ra.Addr() + "/metrics/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]float64
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	v, ok := m[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	return v
}

// A client that asks for /state and then stops reading does not hold the
// agent: tasks still launch, finish and get killed while its answer is
// stuck in the socket. (Large labels make /state megabytes long, more
// than the socket buffers hold, so the server's write does block.)
func TestStalledStateClientDoesNotHoldTheAgent(t *testing.T) {
	c := startCluster(t, clustertest.Options{})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"stalled-state"}`)
	offer := s.offer()
	label := strings.Repeat("x", 1<<20)
	var big []mesos.TaskInfo
	for i := range 6 {
		ti := shellTask(t, fmt.Sprintf("big-%d", i), offer.AgentID, "sleep 600", "cpus:0.1;mem:16")
		ti.Labels = &mesos.Labels{Labels: []mesos.Label{{Key: "padding", Value: &label}}}
		big = append(big, ti)
	}
	s.launch(offer, big...)
	for _, ti := range big {
		s.waitState(ti.TaskID.Value, mesos.TASK_RUNNING)
	}
	addr := c.Agents[0].Addr()
	for range 3 {
		dialStalled(t, addr, "GET /state HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
	}

	// The agent goes on: short tasks launch and finish, a long one is
	// killed, and another client's /state is answered.
	offer = s.offer()
	var short []mesos.TaskInfo
	for i := range 4 {
		short = append(short, shellTask(t, fmt.Sprintf("short-%d", i), offer.AgentID, "true", "cpus:0.1;mem:16"))
	}
	s.launch(offer, short...)
	for _, ti := range short {
		if st := s.waitTerminal(ti.TaskID.Value); st.GetState() != mesos.TASK_FINISHED {
			t.Fatalf("task %s while /state stalls: %s", ti.TaskID.Value, describe(s.statuses(ti.TaskID.Value)))
		}
	}
	s.mustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: "big-0"}, AgentID: &offer.AgentID}})
	s.waitState("big-0", mesos.TASK_KILLED)
	client := &http.Client{Timeout: wait}
	resp, err := client.Get("http://" + addr + "/state")
	if err != nil {
		t.Fatalf("/state for a client that reads, while others stall: %v", err)
	}
	defer resp.Body.Close()
	var state struct{ Frameworks []json.RawMessage }
	if err := json.NewDecoder(resp.Body).Decode(&state); err != nil || len(state.Frameworks) != 1 {
		t.Fatalf("/state: %d frameworks, %v", len(state.Frameworks), err)
	}
}

// eventLog reads an executor's event stream into an unbounded list, so a
// test that stops looking never blocks the reader (nor the agent's writer).
type eventLog struct {
	t      *testing.T
	mu     sync.Mutex
	events []*executor.Event
	ended  bool
	notify chan struct{}
}

func readEvents(t *testing.T, body io.Reader) *eventLog {
	l := &eventLog{t: t, notify: make(chan struct{}, 1)}
	rr := api.NewRecordReader(body)
	go func() {
		for {
			b, err := rr.ReadRecord()
			var ev executor.Event
			if err == nil {
				err = json.Unmarshal(b, &ev)
			}
			l.mu.Lock()
			if err != nil {
				l.ended = true
			} else {
				l.events = append(l.events, &ev)
			}
			l.mu.Unlock()
			select {
			case l.notify <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return l
}

// next waits for the first event of type typ after the ones seen so far
// (*from), and moves *from past it.
func (l *eventLog) next(from *int, typ executor.Event_Type) *executor.Event {
	l.t.Helper()
	deadline := time.After(wait)
	for {
		l.mu.Lock()
		for ; *from < len(l.events); *from++ {
			if ev := l.events[*from]; ev.GetType() == typ {
				*from++
				l.mu.Unlock()
				return ev
			}
		}
		ended := l.ended
		l.mu.Unlock()
		if ended {
			l.t.Fatalf("executor stream ended while waiting for %v", typ)
		}
		select {
		case <-l.notify:
		case <-deadline:
			l.t.Fatalf("no %v event on the executor stream", typ)
		}
	}
}

// An executor that subscribes and then stops reading is cut off once it
// is MaxExecutorBacklog events behind, and counted in
// slave/slow_executors_disconnected; it subscribes again and gets the
// launch it had not acknowledged. (Framework messages of 64 KB fill the
// socket buffers first.)
func TestExecutorThatStopsReadingIsCutOff(t *testing.T) {
	c := startCluster(t, clustertest.Options{Agent: func(_ int, cfg *agent.Config) {
		cfg.ExecutorShutdownGracePeriod = time.Second
		cfg.MaxExecutorBacklog = 16
	}})
	s := subscribe(t, c.MasterURL, `{"user":"tester","name":"slow-executor","checkpoint":true}`)
	offer := s.offer()
	s.launch(offer, execTask(t, "t1", offer.AgentID, standIn(t, "raw", "sleep 600"), "cpus:0.1;mem:16"))
	ra := c.Agents[0]
	url := executorURL(ra)
	awaitExecutor(t, url, s.id, "raw")

	sub := mustJSON(&executor.Call{Type: executor.Call_SUBSCRIBE, FrameworkID: mesos.FrameworkID{Value: s.id},
		ExecutorID: mesos.ExecutorID{Value: "raw"}, Subscribe: &executor.Call_Subscribe{}})
	stalled := dialStalled(t, ra.Addr(), fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nAccept: %s\r\nContent-Length: %d\r\n\r\n%s",
		agent.ExecutorAPIPath, ra.Addr(), api.MediaJSON, api.MediaJSON, len(sub), sub))

	data := bytes.Repeat([]byte("m"), 64<<10)
	for sent := 0; agentMetric(t, ra, "slave/slow_executors_disconnected") < 1; sent++ {
		if sent == 2000 {
			t.Fatal("the executor that stopped reading was not cut off after 2000 messages of 64 KB")
		}
		s.mustCall(&scheduler.Call{Type: scheduler.Call_MESSAGE, Message: &scheduler.Call_Message{AgentID: offer.AgentID,
			ExecutorID: mesos.ExecutorID{Value: "raw"}, Data: data}})
	}
	// Its connection ends: what is left in the socket, then EOF.
	stalled.SetReadDeadline(time.Now().Add(wait))
	if _, err := io.Copy(io.Discard, stalled); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the stream of the executor that was cut off stays open: %v", err)
		}
	}

	// It subscribes again (the executor API's answer to a broken stream)
	// and gets the launch it never acknowledged; it runs on.
	resp := postStream(t, url, sub)
	events := readEvents(t, resp.Body)
	seen := 0
	events.next(&seen, executor.Event_SUBSCRIBED)
	if l := events.next(&seen, executor.Event_LAUNCH).Launch; l.Task.TaskID.Value != "t1" {
		t.Fatalf("LAUNCH after re-subscribing: %+v", l.Task.TaskID)
	}
	running := uuid16(7)
	x := &rawExecutor{t: t, url: url, fw: s.id, id: "raw"}
	if code, body := x.call(update("t1", mesos.TASK_RUNNING, running, mesos.SOURCE_EXECUTOR)); code != http.StatusAccepted {
		t.Fatalf("UPDATE after re-subscribing: %d %s", code, body)
	}
	if ack := events.next(&seen, executor.Event_ACKNOWLEDGED).Acknowledged; !bytes.Equal(ack.UUID, running) {
		t.Fatalf("ACKNOWLEDGED %x, want %x", ack.UUID, running)
	}
	s.waitState("t1", mesos.TASK_RUNNING)
	if n := agentMetric(t, ra, "slave/slow_executors_disconnected"); n != 1 {
		t.Errorf("slave/slow_executors_disconnected = %v, want 1", n)
	}
}

// postStream POSTs an executor call and returns the streamed answer,
// closed when the test ends.
func postStream(t *testing.T, url string, body []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", api.MediaJSON)
	req.Header.Set("Accept", api.MediaJSON)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("executor SUBSCRIBE: %d %s", resp.StatusCode, b)
	}
	return resp
}
