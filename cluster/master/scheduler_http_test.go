package master_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/master"
)

// startMaster runs a master on an httptest server for the test's lifetime.
func startMaster(t *testing.T) (*master.Master, string) {
	t.Helper()
	m, err := master.New(master.Config{Hostname: "localhost", AllocationInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go m.Run(ctx)
	srv := httptest.NewServer(m.Handler(nil))
	t.Cleanup(func() { srv.Close(); cancel() })
	return m, srv.URL
}

func post(t *testing.T, url, contentType string, body []byte, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/scheduler", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK && strings.Contains(string(body), "SUBSCRIBE") {
		return resp, ""
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

const subscribeJSON = `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"test"}}}`

// subscribe opens a JSON subscription and returns the framework ID, the
// stream ID and a reader positioned after SUBSCRIBED.
func subscribe(t *testing.T, url string) (string, string, *api.RecordReader, io.Closer) {
	t.Helper()
	resp, _ := post(t, url, api.MediaJSON, []byte(subscribeJSON), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SUBSCRIBE: status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != api.MediaJSON {
		t.Fatalf("SUBSCRIBE content type %q", ct)
	}
	rr := api.NewRecordReader(resp.Body)
	ev := readEvent(t, rr, api.JSON)
	if ev.GetType() != scheduler.Event_SUBSCRIBED {
		t.Fatalf("first event %v, want SUBSCRIBED", ev.GetType())
	}
	return ev.Subscribed.FrameworkID.Value, resp.Header.Get("Mesos-Stream-Id"), rr, resp.Body
}

func readEvent(t *testing.T, rr *api.RecordReader, codec api.Codec) *scheduler.Event {
	t.Helper()
	b, err := rr.ReadRecord()
	if err != nil {
		t.Fatalf("read event: %v", err)
	}
	var ev scheduler.Event
	if err := codec.Unmarshal(b, &ev); err != nil {
		t.Fatalf("decode event %q: %v", b, err)
	}
	return &ev
}

func TestSchedulerRejectsBadRequests(t *testing.T) {
	_, url := startMaster(t)
	fid, stream, _, body := subscribe(t, url)
	defer body.Close()
	declineJSON := `{"type":"DECLINE","framework_id":{"value":"` + fid + `"},"decline":{"offer_ids":[]}}`
	cases := []struct {
		name        string
		method      string
		contentType string
		body        string
		hdr         map[string]string
		want        int
		wantMsg     string
	}{
		{name: "GET", method: http.MethodGet, want: 405},
		{name: "no content type", body: subscribeJSON, want: 400, wantMsg: "Content-Type"},
		{name: "wrong content type", contentType: "text/plain", body: subscribeJSON, want: 415, wantMsg: "text/plain"},
		{name: "malformed JSON", contentType: api.MediaJSON, body: `{"type":`, want: 400, wantMsg: "parse"},
		{name: "malformed protobuf", contentType: api.MediaProtobuf, body: "\xff\xff\xff", want: 400, wantMsg: "parse"},
		{name: "missing type", contentType: api.MediaJSON, body: `{}`, want: 400, wantMsg: "type"},
		{name: "subscribe with stream id", contentType: api.MediaJSON, body: subscribeJSON, hdr: map[string]string{"Mesos-Stream-Id": stream}, want: 400, wantMsg: "Mesos-Stream-Id"},
		{name: "subscribe not acceptable", contentType: api.MediaJSON, body: subscribeJSON, hdr: map[string]string{"Accept": "text/html"}, want: 406},
		{name: "subscribe without name", contentType: api.MediaJSON, body: `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root"}}}`, want: 400, wantMsg: "name"},
		{name: "bad role", contentType: api.MediaJSON, body: `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"x","role":"a b"}}}`, want: 400, wantMsg: "role"},
		{name: "call before subscribe", contentType: api.MediaJSON, body: `{"type":"DECLINE","framework_id":{"value":"nope"},"decline":{"offer_ids":[]}}`, hdr: map[string]string{"Mesos-Stream-Id": stream}, want: 403, wantMsg: "not subscribed"},
		{name: "missing stream id", contentType: api.MediaJSON, body: declineJSON, want: 400, wantMsg: "Mesos-Stream-Id"},
		{name: "wrong stream id", contentType: api.MediaJSON, body: declineJSON, hdr: map[string]string{"Mesos-Stream-Id": "not-the-stream"}, want: 400, wantMsg: "stream ID"},
		{name: "missing payload", contentType: api.MediaJSON, body: `{"type":"ACCEPT","framework_id":{"value":"` + fid + `"}}`, hdr: map[string]string{"Mesos-Stream-Id": stream}, want: 400, wantMsg: "accept"},
		{name: "oversized", contentType: api.MediaJSON, body: `{"type":"SUBSCRIBE","x":"` + strings.Repeat("a", master.MaxRequestBody) + `"}`, want: 413},
		{name: "valid decline", contentType: api.MediaJSON, body: declineJSON, hdr: map[string]string{"Mesos-Stream-Id": stream}, want: 202},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := c.method
			if method == "" {
				method = http.MethodPost
			}
			req, _ := http.NewRequest(method, url+"/api/v1/scheduler", strings.NewReader(c.body))
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			for k, v := range c.hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, b, c.want)
			}
			if c.wantMsg != "" && !strings.Contains(string(b), c.wantMsg) {
				t.Fatalf("body %q does not mention %q", b, c.wantMsg)
			}
			if c.want == 202 && resp.Header.Get("Content-Type") != "" {
				t.Fatalf("202 carries a Content-Type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}

func TestSubscribeProtobufAndHeartbeat(t *testing.T) {
	_, url := startMaster(t)
	call := &scheduler.Call{Type: scheduler.Call_SUBSCRIBE, Subscribe: &scheduler.Call_Subscribe{
		FrameworkInfo: &mesos.FrameworkInfo{User: "root", Name: "pb"}}}
	b, err := proto.Marshal(call)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/scheduler", bytes.NewReader(b))
	req.Header.Set("Content-Type", api.MediaProtobuf)
	req.Header.Set("Accept", api.MediaProtobuf)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != api.MediaProtobuf || resp.Header.Get("Mesos-Stream-Id") == "" {
		t.Fatalf("status %d, content type %q, stream id %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Mesos-Stream-Id"))
	}
	if resp.ContentLength != -1 {
		t.Fatalf("stream has a Content-Length (%d); mesos-go needs a chunked response", resp.ContentLength)
	}
	rr := api.NewRecordReader(resp.Body)
	ev := readEvent(t, rr, api.Protobuf)
	if ev.GetType() != scheduler.Event_SUBSCRIBED || ev.Subscribed.FrameworkID.Value == "" || ev.Subscribed.GetHeartbeatIntervalSeconds() != 15 {
		t.Fatalf("unexpected first event %v", ev)
	}
	if ev := readEvent(t, rr, api.Protobuf); ev.GetType() != scheduler.Event_HEARTBEAT {
		t.Fatalf("second event %v, want HEARTBEAT", ev.GetType())
	}
}

func TestFrameworkWithoutFailoverIsRemovedWhenStreamCloses(t *testing.T) {
	m, url := startMaster(t)
	fid, _, _, body := subscribe(t, url)
	body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/master/frameworks")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		s := string(b)
		if strings.Contains(s, `"completed_frameworks":[{`) && strings.Contains(s, fid) && strings.Contains(s, `"frameworks":[]`) {
			snap, _ := m.Snapshot(context.Background())
			if snap["master/frameworks_active"] != 0 {
				t.Fatalf("frameworks_active = %v after removal", snap["master/frameworks_active"])
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("framework %s was not removed after its stream closed", fid)
}
