package master_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	mmaster "github.com/mesos/mesos-go/api/v1/lib/master"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/registry"
)

// While a registry write is in flight the loop serves other calls; the
// changes submitted meanwhile wait for the next commit, and when that
// commit fails every change in it is refused (503) and nothing changes;
// the same calls then go through.
func TestRegistryWritesLeaveTheLoopFreeAndFailTogether(t *testing.T) {
	reg := registry.NewFaulty(nil)
	c := clustertest.Start(t, clustertest.Options{Registry: reg, Agents: 2, AgentResources: "cpus:4;mem:1024;disk:100"})
	st, err := c.State()
	if err != nil || len(st.Slaves) != 2 {
		t.Fatalf("state: %+v, %v", st, err)
	}
	reserve := func(agentID string) string {
		res := `[{"name":"cpus","type":"SCALAR","scalar":{"value":1},"reservations":[{"type":"DYNAMIC","role":"eng","principal":"ops"}]}]`
		return `{"type":"RESERVE_RESOURCES","reserve_resources":{"agent_id":{"value":"` + agentID + `"},"resources":` + res + `}}`
	}
	calls := []string{
		reserve(st.Slaves[0].ID),
		reserve(st.Slaves[1].ID),
		`{"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[{"role":"eng","weight":3}]}}`,
	}
	slaves := func() string { _, body := httpDo(t, http.MethodGet, c.MasterURL+"/master/slaves", ""); return body }
	weights := func() string { _, body := httpDo(t, http.MethodGet, c.MasterURL+"/weights", ""); return body }
	beforeSlaves, beforeWeights := slaves(), weights()

	release := reg.HoldWrites()
	defer release()
	answers := make(chan string, len(calls))
	send := func(call string) {
		go func() {
			code, body := operator(t, c.MasterURL, call)
			answers <- fmt.Sprint(code, " ", body)
		}()
	}
	send(calls[0])
	waitMetric(t, c.MasterURL, "master/registry_changes_pending", 1)
	send(calls[1])
	send(calls[2])
	waitMetric(t, c.MasterURL, "master/registry_changes_pending", 3)
	// The loop answers while the writes wait for the disk.
	if code, body := operator(t, c.MasterURL, `{"type":"GET_HEALTH"}`); code != 200 {
		t.Fatalf("GET_HEALTH during a registry write: %d %s", code, body)
	}
	if got := slaves(); got != beforeSlaves {
		t.Fatalf("a reservation took effect before the registry had it:\n%s", got)
	}
	reg.FailWrites(true)
	release()
	for range calls {
		if got := <-answers; !strings.HasPrefix(got, "503 ") || !strings.Contains(got, "registry") {
			t.Fatalf("a change in a refused batch: %s, want 503 naming the registry", got)
		}
	}
	if got := slaves(); got != beforeSlaves {
		t.Fatalf("refused reservations changed the agents:\n%s\nwas\n%s", got, beforeSlaves)
	}
	if got := weights(); got != beforeWeights {
		t.Fatalf("a refused weight changed the weights: %s, was %s", got, beforeWeights)
	}
	if recs, _ := reg.Agents(); len(recs) != 2 || reservedFor(recs[0], "eng") || reservedFor(recs[1], "eng") {
		t.Fatalf("the registry holds a refused reservation: %+v", recs)
	}

	reg.FailWrites(false)
	for _, call := range calls {
		if code, body := operator(t, c.MasterURL, call); code != 200 {
			t.Fatalf("%s with the registry working: %d %s", call, code, body)
		}
	}
	recs, err := reg.Agents()
	if err != nil || len(recs) != 2 || !reservedFor(recs[0], "eng") || !reservedFor(recs[1], "eng") {
		t.Fatalf("registry after the reservations: %+v, %v", recs, err)
	}
	if got := weights(); !strings.Contains(got, `"eng"`) {
		t.Fatalf("weights after UPDATE_WEIGHTS: %s", got)
	}
}

// waitMetric polls the master's metric until it equals want (60 s).
func waitMetric(t *testing.T, url, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := metric(t, url, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v after 60 s, want %v", name, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A call that panics on the loop is answered 500, counted, and stops the
// master (Run returns the panic) rather than leaving it serving from a
// state the panic may have left half-changed.
func TestCallPanicAnswers500AndStopsTheMaster(t *testing.T) {
	m, err := master.New(master.Config{Hostname: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := m.Server(nil)
	go srv.Serve(ln)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- m.Run(ctx) }()
	url := "http://" + ln.Addr().String()

	undo := master.SetOperatorCallHook(func(c *mmaster.Call) {
		if c.Type == mmaster.Call_GET_VERSION {
			panic("injected for the test")
		}
	})
	defer undo()
	if code, body := operator(t, url, `{"type":"GET_HEALTH"}`); code != 200 {
		t.Fatalf("GET_HEALTH before the panic: %d %s", code, body)
	}
	code, body := operator(t, url, `{"type":"GET_VERSION"}`)
	if code != http.StatusInternalServerError {
		t.Fatalf("a call that panicked: %d %s, want 500", code, body)
	}
	select {
	case err := <-ran:
		if err == nil || !strings.Contains(err.Error(), "injected for the test") {
			t.Fatalf("Run returned %v, want the panic", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the master kept running after a call panicked")
	}
	if n := m.CallPanics(); n != 1 {
		t.Fatalf("master/call_panics = %d, want 1", n)
	}
}

// The server's ReadTimeout bounds reading a call, not a stream: a
// scheduler's SUBSCRIBE outlives it and keeps receiving its heartbeats.
func TestSubscribeOutlivesTheReadTimeout(t *testing.T) {
	m, err := master.New(master.Config{Hostname: "localhost", HeartbeatInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const readTimeout = 200 * time.Millisecond
	srv := m.Server(nil)
	srv.ReadTimeout = readTimeout
	go srv.Serve(ln)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go m.Run(ctx)

	body := `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"outlives-read-timeout"}}}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ln.Addr().String()+"/api/v1/scheduler", strings.NewReader(body))
	req.Header.Set("Content-Type", api.MediaJSON)
	req.Header.Set("Accept", api.MediaJSON)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %s", resp.Status)
	}
	rr := api.NewRecordReader(bufio.NewReader(resp.Body))
	start := time.Now()
	for time.Since(start) < 5*readTimeout {
		if _, err := rr.ReadRecord(); err != nil {
			t.Fatalf("the stream ended %v after it began (read timeout %v): %v", time.Since(start).Round(time.Millisecond), readTimeout, err)
		}
	}
}

// A client that never finishes its request body does not hold a handler
// past the server's ReadTimeout.
func TestReadTimeoutEndsAnUnfinishedBody(t *testing.T) {
	m, err := master.New(master.Config{Hostname: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := m.Server(nil)
	srv.ReadTimeout = 200 * time.Millisecond
	go srv.Serve(ln)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"type\":")
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the master still waits for the body after 20 s")
	}
	if err == nil && resp.StatusCode < 400 {
		t.Fatalf("an unfinished body was answered %s", resp.Status)
	}
}
