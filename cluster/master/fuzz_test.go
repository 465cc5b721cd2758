package master_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/mesos/mesos-go/api/v1/lib/master"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	agmaster "github.com/agora-cluster/agora/cluster/master"
)

// fwPlaceholder in a seed stands for the subscribed framework's ID, so
// that fuzzed calls reach the handlers behind the framework check.
const fwPlaceholder = "@FW@"

// FuzzSchedulerCall: no body, in JSON or protobuf, posted to a running
// master's scheduler API panics it (master/call_panics stays 0) or gets a
// 5xx; a call that decodes re-encodes to bytes that decode the same.
func FuzzSchedulerCall(f *testing.F) {
	for _, s := range []string{
		`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n"}}}`,
		`{"type":"DECLINE","framework_id":{"value":"@FW@"},"decline":{"offer_ids":[{"value":"o"}],"filters":{"refuse_seconds":-1}}}`,
		`{"type":"ACCEPT","framework_id":{"value":"@FW@"},"accept":{"offer_ids":[{"value":"o"}],"operations":[{"type":"LAUNCH","launch":{"task_infos":[{"name":"t","task_id":{"value":"t"},"agent_id":{"value":"a"},"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":1e300}}]}]}}]}}`,
		`{"type":"ACCEPT","framework_id":{"value":"@FW@"},"accept":{"operations":[{"type":"RESERVE"},{"type":"CREATE","create":{}},{"type":"LAUNCH_GROUP"}]}}`,
		`{"type":"KILL","framework_id":{"value":"@FW@"},"kill":{"task_id":{"value":""}}}`,
		`{"type":"RECONCILE","framework_id":{"value":"@FW@"},"reconcile":{"tasks":[{"task_id":{"value":"x"}}]}}`,
		`{"type":"ACKNOWLEDGE","framework_id":{"value":"@FW@"},"acknowledge":{"agent_id":{"value":"a"},"task_id":{"value":"t"},"uuid":"AA=="}}`,
		`{"type":"MESSAGE","framework_id":{"value":"@FW@"},"message":{"agent_id":{"value":"a"},"executor_id":{"value":"e"},"data":""}}`,
		`{"type":"REVIVE","framework_id":{"value":"@FW@"},"revive":{"roles":["*","../x"]}}`,
		`{"type":"SUPPRESS","framework_id":{"value":"@FW@"}}`,
		`{"type":"UPDATE_FRAMEWORK","framework_id":{"value":"@FW@"},"update_framework":{"framework_info":{"user":"u","name":"n","roles":["a","a"]}}}`,
		`{"type":"TEARDOWN","framework_id":{"value":"other"}}`,
		`{"type":"SHUTDOWN","framework_id":{"value":"@FW@"},"shutdown":{"executor_id":{"value":"e"},"agent_id":{"value":"a"}}}`,
		`{"type":"REQUEST","framework_id":{"value":"@FW@"},"request":{}}`,
		`{"type":99}`, `{}`, `[]`, `null`, `{"type":"ACCEPT","accept":null}`,
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte{0x08, 0x04, 0x0a, 0x04, '@', 'F', 'W', '@'}, true)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, true)
	f.Add([]byte{}, true)
	h, fw, streamID, panics := fuzzMaster(f)
	f.Fuzz(func(t *testing.T, body []byte, protobuf bool) {
		codec := map[bool]api.Codec{true: api.Protobuf, false: api.JSON}[protobuf]
		body = bytes.ReplaceAll(body, []byte(fwPlaceholder), []byte(fw))
		var call scheduler.Call
		if codec.Unmarshal(body, &call) == nil {
			reencodes(t, codec, &call, func() api.Message { return new(scheduler.Call) })
			if call.GetType() == scheduler.Call_SUBSCRIBE {
				return // answered with a stream: its validation is the decoder's
			}
		}
		code := serve(t, h, "/api/v1/scheduler", codec, body, map[string]string{"Mesos-Stream-Id": streamID})
		if code >= 500 && code != http.StatusNotImplemented && code != http.StatusServiceUnavailable {
			t.Fatalf("%s: status %d", body, code)
		}
		if n := panics(t); n != 0 {
			t.Fatalf("%s: master/call_panics is %v", body, n)
		}
	})
}

// FuzzOperatorCall: the same for the operator API (/api/v1).
func FuzzOperatorCall(f *testing.F) {
	for _, s := range []string{
		`{"type":"GET_STATE"}`, `{"type":"GET_FRAMEWORKS"}`, `{"type":"GET_TASKS"}`, `{"type":"GET_AGENTS"}`,
		`{"type":"GET_ROLES"}`, `{"type":"GET_METRICS","get_metrics":{"timeout":{"nanoseconds":-1}}}`,
		`{"type":"TEARDOWN","teardown":{"framework_id":{"value":"nope"}}}`,
		`{"type":"MARK_AGENT_GONE","mark_agent_gone":{"agent_id":{"value":"nope"}}}`,
		`{"type":"RESERVE_RESOURCES","reserve_resources":{"agent_id":{"value":"a"},"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":-1}}]}}`,
		`{"type":"UNRESERVE_RESOURCES","unreserve_resources":{"agent_id":{"value":"a"}}}`,
		`{"type":"CREATE_VOLUMES","create_volumes":{"agent_id":{"value":"a"},"volumes":[{"name":"disk","type":"SCALAR","scalar":{"value":1},"disk":{"persistence":{"id":"../x"},"volume":{"container_path":"/","mode":"RW"}}}]}}`,
		`{"type":"DESTROY_VOLUMES","destroy_volumes":{}}`,
		`{"type":"UPDATE_QUOTA","update_quota":{"quota_configs":[{"role":"r","guarantees":{"cpus":{"value":-5}}}]}}`,
		`{"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[{"role":"r","weight":-1}]}}`,
		`{"type":"UPDATE_MAINTENANCE_SCHEDULE","update_maintenance_schedule":{"schedule":{"windows":[{"machine_ids":[{"hostname":"h"}],"unavailability":{"start":{"nanoseconds":9223372036854775807},"duration":{"nanoseconds":9223372036854775807}}}]}}}`,
		`{"type":"START_MAINTENANCE","start_maintenance":{"machines":[{"hostname":""}]}}`,
		`{"type":"DRAIN_AGENT","drain_agent":{"agent_id":{"value":"a"}}}`,
		`{"type":"SET_LOGGING_LEVEL","set_logging_level":{"level":4294967295,"duration":{"nanoseconds":-1}}}`,
		`{"type":"READ_FILE","read_file":{"path":"/etc/passwd","offset":18446744073709551615}}`,
		`{"type":"LIST_FILES","list_files":{"path":"../../"}}`, `{"type":"GET_FLAGS"}`, `{"type":"GET_VERSION"}`,
		`{"type":"GET_HEALTH"}`, `{"type":"GET_QUOTA"}`, `{"type":"GET_WEIGHTS"}`, `{"type":"GET_MAINTENANCE_STATUS"}`,
		`{"type":"UNKNOWN"}`, `{"type":"SUBSCRIBE"}`, `{}`, `"x"`,
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte{0x08, 0x02}, true)
	f.Add([]byte{0x08, 0xff, 0x01}, true)
	h, _, _, panics := fuzzMaster(f)
	f.Fuzz(func(t *testing.T, body []byte, protobuf bool) {
		codec := map[bool]api.Codec{true: api.Protobuf, false: api.JSON}[protobuf]
		var call master.Call
		if codec.Unmarshal(body, &call) == nil {
			reencodes(t, codec, &call, func() api.Message { return new(master.Call) })
			if call.GetType() == master.Call_SUBSCRIBE {
				return // answered with a stream
			}
		}
		code := serve(t, h, "/api/v1", codec, body, nil)
		if code >= 500 && code != http.StatusNotImplemented && code != http.StatusServiceUnavailable {
			t.Fatalf("%s: status %d", body, code)
		}
		if n := panics(t); n != 0 {
			t.Fatalf("%s: master/call_panics is %v", body, n)
		}
	})
}

// reencodes asserts that a decoded call encodes, and that its encoding
// decodes to a call that encodes the same.
func reencodes(t *testing.T, codec api.Codec, call api.Message, fresh func() api.Message) {
	t.Helper()
	once, err := codec.Marshal(call)
	if err != nil {
		if codec.MediaType == api.MediaProtobuf {
			return // a nested message lacking a required field decodes but does not encode
		}
		t.Fatalf("a decoded call does not encode: %v", err)
	}
	again := fresh()
	if err := codec.Unmarshal(once, again); err != nil {
		if strings.Contains(err.Error(), "unrecognized enum") {
			// mesos-go's JSON writes an enum value it has no name for as
			// a quoted number, which its reader refuses: the call is
			// refused on its way in again, as it is by validation.
			return
		}
		t.Fatalf("a re-encoded call does not decode: %v\n%s", err, once)
	}
	// JSON may change the bytes once (invalid UTF-8 becomes U+FFFD,
	// escaped or not): what decodes from the re-encoding is compared.
	twice, err := codec.Marshal(again)
	if err != nil {
		t.Fatalf("a re-encoded call does not encode again: %v", err)
	}
	third := fresh()
	if err := codec.Unmarshal(twice, third); err != nil || !proto.Equal(again, third) {
		t.Fatalf("a re-encoded call decodes differently (%v):\n%q\n%q", err, once, twice)
	}
	if codec.MediaType == api.MediaProtobuf && !proto.Equal(call, again) {
		t.Fatalf("a re-encoded call decodes differently:\n%v\n%v", call, again)
	}
}

// fuzzMaster runs a master for the fuzz target with one subscribed
// framework; it returns the master's handler, the framework's ID and
// stream ID, and a reader of master/call_panics.
func fuzzMaster(f *testing.F) (http.Handler, string, string, func(*testing.T) float64) {
	m, err := agmaster.New(agmaster.Config{Hostname: "localhost", AllocationInterval: time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	h := m.Handler(nil)
	srv := httptest.NewServer(h)
	f.Cleanup(func() {
		srv.Close()
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			f.Error("the master's loop did not stop within 30s")
		}
	})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/scheduler", bytes.NewReader([]byte(subscribeJSON)))
	req.Header.Set("Content-Type", api.MediaJSON)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		f.Fatalf("SUBSCRIBE: status %d", resp.StatusCode)
	}
	b, err := api.NewRecordReader(resp.Body).ReadRecord()
	if err != nil {
		f.Fatal(err)
	}
	var ev scheduler.Event
	if err := api.JSON.Unmarshal(b, &ev); err != nil || ev.Subscribed == nil {
		f.Fatalf("first event %s: %v", b, err)
	}
	// The stream is not read further: its outbox bounds what waits, as for
	// any slow subscriber.
	panics := func(t *testing.T) float64 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics/snapshot", nil))
		var snap map[string]float64
		if err := json.Unmarshal(rec.Body.Bytes(), &snap); err != nil {
			t.Fatalf("/metrics/snapshot: %v", err)
		}
		return snap["master/call_panics"]
	}
	return h, ev.Subscribed.FrameworkID.Value, resp.Header.Get("Mesos-Stream-Id"), panics
}

// serve posts body to the handler in process and returns the status.
func serve(t *testing.T, h http.Handler, path string, codec api.Codec, body []byte, hdr map[string]string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)).WithContext(ctx)
	req.Header.Set("Content-Type", codec.MediaType)
	req.Header.Set("Accept", codec.MediaType)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if ctx.Err() != nil {
		t.Fatalf("%s %s: no answer within 30s", path, body)
	}
	return rec.Code
}
