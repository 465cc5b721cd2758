package master_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/registry"
)

// postAgentCall POSTs body to the master's agent endpoint.
func postAgentCall(t testing.TB, url, contentType, accept string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+api.AgentPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// An agent registers in protobuf or JSON, and reads its event stream in
// the codec it accepts.
func TestAgentRegistersInEitherCodec(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	for i, tc := range []struct{ contentType, accept string }{
		{api.MediaProtobuf, api.MediaProtobuf},
		{api.MediaProtobuf, api.MediaJSON},
		{api.MediaJSON, api.MediaProtobuf},
		{api.MediaJSON, ""}, // curl: JSON both ways
	} {
		call := clustertest.Reregistration("", fmt.Sprintf("codec-%d", i), 0)
		body, err := api.JSON.MarshalAgent(call)
		if tc.contentType == api.MediaProtobuf {
			body, err = api.Protobuf.MarshalAgent(call)
		}
		if err != nil {
			t.Fatal(err)
		}
		resp := postAgentCall(t, c.MasterURL, tc.contentType, tc.accept, body)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("%+v: %s %s", tc, resp.Status, b)
		}
		want := api.JSON
		if tc.accept == api.MediaProtobuf {
			want = api.Protobuf
		}
		if got := resp.Header.Get("Content-Type"); got != want.MediaType {
			t.Fatalf("%+v: stream Content-Type %q, want %q", tc, got, want.MediaType)
		}
		rec, err := api.NewRecordReader(resp.Body).ReadRecord()
		if err != nil {
			t.Fatal(err)
		}
		ev, err := api.DecodeAgentEvent(want, rec)
		if err != nil {
			t.Fatalf("%+v: first record %q: %v", tc, rec, err)
		}
		if ev.Type != api.AgentRegistered || ev.Registered == nil || ev.Registered.AgentID == "" {
			t.Fatalf("%+v: first event %+v, want REGISTERED with an ID", tc, ev)
		}
	}
	c.WaitFor("4 more agents", func(s *clustertest.State) bool { return len(s.Slaves) == 5 })
}

// Agent calls that cannot be read are refused with what is wrong, and
// register nothing.
func TestMalformedAgentCallsAreRefused(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	good, err := api.Protobuf.MarshalAgent(clustertest.Reregistration("", "bad-host", 3))
	if err != nil {
		t.Fatal(err)
	}
	nan := clustertest.Reregistration("", "bad-host", 1)
	nan.Register.Info.Resources[0].Scalar.Value = math.NaN()
	nanBody, err := nan.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	wrongType := protowire.AppendVarint(protowire.AppendTag([]byte(nil), 3, protowire.VarintType), 1)
	oversized := append(protowire.AppendTag(append([]byte(nil), good...), 100, protowire.BytesType), protowire.AppendVarint(nil, master.MaxRequestBody)...)
	oversized = append(oversized, make([]byte, master.MaxRequestBody)...)
	for _, tc := range []struct {
		name        string
		contentType string
		body        []byte
		code        int
		want        string
	}{
		{"truncated", api.MediaProtobuf, good[:len(good)-7], 400, "failed to parse agent call (application/x-protobuf): agent call: field 3"},
		{"wrong wire type", api.MediaProtobuf, wrongType, 400, "agent call.register (field 3): a varint, want length-delimited"},
		{"NaN resource", api.MediaProtobuf, nanBody, 400, "register.info.resources[0] (cpus): scalar NaN is not a finite number"},
		{"oversized", api.MediaProtobuf, oversized, 400, fmt.Sprintf("agent call exceeds %d bytes", master.MaxRequestBody)},
		{"protobuf sent as JSON", api.MediaJSON, good, 400, "failed to parse agent call (application/json)"},
		{"unknown media type", "text/plain", good, 415, "expecting 'Content-Type' of application/json or application/x-protobuf, got \"text/plain\""},
	} {
		resp := postAgentCall(t, c.MasterURL, tc.contentType, api.MediaProtobuf, tc.body)
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %s %q, want %d and %q", tc.name, resp.Status, b, tc.code, tc.want)
		}
	}
	s, err := c.State()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Slaves) != 1 {
		t.Fatalf("agents after refused calls: %d, want 1", len(s.Slaves))
	}
}

// The master's work to take back one agent with 10 tasks after a
// failover: b.N agents the registry has admitted re-register, each
// answered REGISTERED (the HTTP round trip and the client's share are
// included; the bodies are encoded beforehand). Run it with -benchtime
// of at most a few thousand x: every agent keeps its stream open.
func BenchmarkAgentReregistration(b *testing.B) {
	for _, codec := range []api.Codec{api.JSON, api.Protobuf} {
		name := "json"
		if codec == api.Protobuf {
			name = "protobuf"
		}
		b.Run(name, func(b *testing.B) { benchReregistration(b, codec) })
	}
}

func benchReregistration(b *testing.B, codec api.Codec) {
	reg := registry.NewMemory()
	bodies := make([][]byte, b.N)
	for i := range bodies {
		call := clustertest.Reregistration(fmt.Sprintf("S-%d", i), fmt.Sprintf("sim-%d", i), 10)
		if err := reg.PutAgent(registry.AgentRecord{ID: call.AgentID, State: registry.AgentAdmitted, Info: call.Register.Info, Since: time.Now(), PID: simAgentPID}); err != nil {
			b.Fatal(err)
		}
		body, err := codec.MarshalAgent(call)
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = body
	}
	url := startBareMaster(b, reg)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var open []io.Closer
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest(http.MethodPost, url+api.AgentPath, bytes.NewReader(bodies[i]))
		req.Header.Set("Content-Type", codec.MediaType)
		req.Header.Set("Accept", codec.MediaType)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		open = append(open, resp.Body)
		if resp.StatusCode != http.StatusOK {
			msg, _ := io.ReadAll(resp.Body)
			b.Fatalf("agent %d: %s %s", i, resp.Status, msg)
		}
		rec, err := api.NewRecordReader(resp.Body).ReadRecord()
		if err != nil {
			b.Fatal(err)
		}
		if ev, err := api.DecodeAgentEvent(codec, rec); err != nil || ev.Type != api.AgentRegistered {
			b.Fatalf("agent %d: first event %v, %v", i, ev, err)
		}
	}
	b.StopTimer()
}

// h2cTransport speaks cleartext HTTP/2 over at most conns connections.
func h2cTransport(conns int) *http.Transport {
	tr := &http.Transport{MaxConnsPerHost: conns}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetUnencryptedHTTP2(true)
	return tr
}

// reregisterAll sends every REGISTER body at once through tr and reads
// each agent's first event, which must be REGISTERED. It returns the
// event streams, still open, for the caller to close.
func reregisterAll(url string, tr *http.Transport, bodies [][]byte) ([]io.Closer, error) {
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	errs := make(chan error, len(bodies))
	open := make([]io.Closer, len(bodies))
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, url+api.AgentPath, bytes.NewReader(bodies[i]))
			req.Header.Set("Content-Type", api.MediaProtobuf)
			req.Header.Set("Accept", api.MediaProtobuf)
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			open[i] = resp.Body
			if resp.StatusCode != http.StatusOK {
				msg, _ := io.ReadAll(resp.Body)
				errs <- fmt.Errorf("agent %d: %s %s", i, resp.Status, msg)
				return
			}
			rec, err := api.NewRecordReaderSize(resp.Body, 4096).ReadRecord()
			if err != nil {
				errs <- fmt.Errorf("agent %d: %w", i, err)
				return
			}
			if ev, err := api.DecodeAgentEvent(api.Protobuf, rec); err != nil || ev.Type != api.AgentRegistered {
				errs <- fmt.Errorf("agent %d: first event %v, %v", i, ev, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var streams []io.Closer
	for _, c := range open {
		if c != nil {
			streams = append(streams, c)
		}
	}
	if err := <-errs; err != nil {
		for _, c := range streams {
			c.Close()
		}
		return nil, err
	}
	return streams, nil
}

// Hundreds of agents' event streams on one HTTP/2 connection, as a
// simulated fleet's share them: every agent re-registers and reads its
// REGISTERED while the others' streams stay open beside it.
func TestManyAgentStreamsShareOneHTTP2Connection(t *testing.T) {
	const n = 300 // with their PONGs, within master.MaxStreamsPerConn
	reg := registry.NewMemory()
	bodies := make([][]byte, n)
	for i := range bodies {
		call := clustertest.Reregistration(fmt.Sprintf("S-%d", i), fmt.Sprintf("sim-%d", i), 2)
		body, err := api.Protobuf.MarshalAgent(call)
		if err != nil {
			t.Fatal(err)
		}
		info := call.Register.Info
		if err := reg.PutAgent(registry.AgentRecord{ID: info.ID.Value, State: registry.AgentAdmitted, Info: info, Since: time.Now(), PID: simAgentPID}); err != nil {
			t.Fatal(err)
		}
		bodies[i] = body
	}
	url := startBareMaster(t, reg)
	tr := h2cTransport(1)
	tr.HTTP2 = &http.HTTP2Config{StrictMaxConcurrentRequests: true} // as agentsim's clients
	var dials atomic.Int32
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	defer tr.CloseIdleConnections()
	streams, err := reregisterAll(url, tr, bodies)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range streams {
		c.Close()
	}
	if len(streams) != n {
		t.Fatalf("%d of %d agents' streams open", len(streams), n)
	}
	if d := dials.Load(); d != 1 {
		t.Fatalf("the agents used %d connections; want them all on one", d)
	}
}

// startBareMaster runs a master without agents on reg until the
// benchmark or test ends, and returns its URL.
func startBareMaster(tb testing.TB, reg registry.Registry) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	m, err := master.New(master.Config{Hostname: "localhost", IP: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port,
		AllocationInterval: time.Second, Registry: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	srv := m.Server(nil)
	go func() { m.Run(ctx); close(done) }()
	go srv.Serve(ln)
	tb.Cleanup(func() {
		srv.Close()
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			tb.Error("the master's loop did not stop within 30s of its cancel")
		}
	})
	return "http://" + ln.Addr().String()
}

// BenchmarkMassReregistration is a failover in miniature: a master
// recovers N agents with 10 tasks each from its registry and all of
// them re-register at once over HTTP/2, as the simulated agents of
// `agora bench failover --http2` do (AGORA_BENCH_AGENTS, default 2000).
// It reports the time until every agent has its REGISTERED, per agent;
// the client shares the process and its two cores with the master.
func BenchmarkMassReregistration(b *testing.B) {
	n := 2000
	if s := os.Getenv("AGORA_BENCH_AGENTS"); s != "" {
		if v, err := strconv.Atoi(s); err == nil && v > 0 {
			n = v
		}
	}
	bodies := make([][]byte, n)
	infos := make([]*mesos.AgentInfo, n)
	for i := range bodies {
		call := clustertest.Reregistration(fmt.Sprintf("S-%d", i), fmt.Sprintf("sim-%d", i), 10)
		body, err := api.Protobuf.MarshalAgent(call)
		if err != nil {
			b.Fatal(err)
		}
		bodies[i], infos[i] = body, call.Register.Info
	}
	b.ReportAllocs()
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		reg := registry.NewMemory()
		for _, info := range infos {
			if err := reg.PutAgent(registry.AgentRecord{ID: info.ID.Value, State: registry.AgentAdmitted, Info: info, Since: time.Now(), PID: simAgentPID}); err != nil {
				b.Fatal(err)
			}
		}
		url := startBareMaster(b, reg)
		tr := h2cTransport(n/500 + 2)
		b.StartTimer()
		bodiesOpen, err := reregisterAll(url, tr, bodies)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range bodiesOpen {
			c.Close()
		}
		tr.CloseIdleConnections()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/agent")
}

// simAgentPID is the pid a master records for a simulated agent
// (clustertest.Reregistration: port 5051) re-registering from this
// machine, as a master that admitted it would have: the records the
// re-registrations here find are as they left them, with nothing to write.
const simAgentPID = "slave(1)@127.0.0.1:5051"
