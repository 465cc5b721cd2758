package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	executorpb "github.com/mesos/mesos-go/api/v1/lib/executor"

	"github.com/agora-cluster/agora/cluster/api"
)

// The server's read timeout ends a request whose body never comes, but
// not an executor's event stream, which lives on well past it.
func TestReadTimeoutSparesExecutorStreams(t *testing.T) {
	saved := readTimeout
	readTimeout = 300 * time.Millisecond
	t.Cleanup(func() { readTimeout = saved }) // runs after the agent stops
	fm := newFakeMaster(t)
	cfg := testConfig(t, fm, "")
	cfg.ExecutorShutdownGracePeriod = time.Second
	ta, _ := startRegistered(t, fm, cfg)
	rt := shellTask("t1", "true")
	rt.Task.Command = nil
	rt.Task.Executor = &mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: "ex"}, Command: &mesos.CommandInfo{Value: proto("sleep 600")}}
	run(fm, rt)
	url := "http://" + ta.Addr() + ExecutorAPIPath
	call := func(typ executorpb.Call_Type) []byte {
		b, _ := json.Marshal(&executorpb.Call{Type: typ, FrameworkID: mesos.FrameworkID{Value: testFramework},
			ExecutorID: mesos.ExecutorID{Value: "ex"}, Subscribe: &executorpb.Call_Subscribe{}})
		return b
	}
	waitFor(t, "the executor launched", func() bool {
		resp, err := http.Post(url, api.MediaJSON, bytes.NewReader(call(executorpb.Call_HEARTBEAT)))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusForbidden // not subscribed yet
	})

	// A request whose body stalls is answered and its connection closed.
	conn, err := net.Dial("tcp", ta.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: agent\r\nContent-Type: %s\r\nContent-Length: 1000\r\n\r\n{", ExecutorAPIPath, api.MediaJSON)
	conn.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("a request whose body never came was not ended by the read timeout: %v", err)
	}

	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(call(executorpb.Call_SUBSCRIBE)))
	req.Header.Set("Content-Type", api.MediaJSON)
	req.Header.Set("Accept", api.MediaJSON)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SUBSCRIBE: %s", resp.Status)
	}
	subscribed := time.Now()
	events := make(chan *executorpb.Event, 64) // a handful come
	go func() {
		defer close(events)
		rr := api.NewRecordReader(resp.Body)
		for {
			b, err := rr.ReadRecord()
			if err != nil {
				return
			}
			var ev executorpb.Event
			if json.Unmarshal(b, &ev) == nil {
				select {
				case events <- &ev:
				default:
				}
			}
		}
	}()
	// Outlive the read timeout a few times over, then send the executor
	// a message: it still arrives on the stream.
	waitFor(t, "the read timeout to pass", func() bool { return time.Since(subscribed) > 4*readTimeout })
	fm.send(&api.AgentEvent{Type: api.AgentFrameworkMessage, FrameworkMessage: &api.FrameworkMessage{
		FrameworkID: testFramework, ExecutorID: "ex", Data: []byte("still there")}})
	timeout := time.After(waitTimeout)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the executor's stream ended with the read timeout")
			}
			if ev.GetType() == executorpb.Event_MESSAGE {
				if string(ev.Message.Data) != "still there" {
					t.Fatalf("MESSAGE %q", ev.Message.Data)
				}
				return
			}
		case <-timeout:
			t.Fatal("no MESSAGE on the executor's stream")
		}
	}
}
