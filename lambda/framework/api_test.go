package framework

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/lambda/pipeline"
)

// getStatus asks the API's /v1/status and decodes the answer.
func getStatus(t *testing.T, a *API) (int, Status) {
	t.Helper()
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("decode /v1/status: %v", err)
	}
	return resp.StatusCode, st
}

func testAPI(t *testing.T, speed string) *API {
	t.Helper()
	f, err := New(Config{Masters: []string{"127.0.0.1:1"}, Command: []string{"agora"}, Name: "views"})
	if err != nil {
		t.Fatal(err)
	}
	return &API{F: f, Dir: t.TempDir(), SpeedAddr: func() string { return speed },
		Status: func(st *pipeline.Status) { st.Brokers = []string{"broker:9092"} }}
}

// A speed task that cannot be asked leaves the rest of the status to be
// seen, with the reason beside it, rather than failing it whole.
func TestStatusWithoutTheSpeedTask(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close() // nothing answers there now

	code, st := getStatus(t, testAPI(t, gone))
	if code != http.StatusOK {
		t.Fatalf("/v1/status answered %d with the speed task unreachable; want 200 with the rest", code)
	}
	if !strings.Contains(st.SpeedError, gone) {
		t.Errorf("speed_error %q does not name the speed task's address %s", st.SpeedError, gone)
	}
	if len(st.Tasks) != 3 || st.Tasks[0].Layer != Ingest {
		t.Errorf("tasks %+v; want the three layers", st.Tasks)
	}
	if len(st.Brokers) != 1 || st.Brokers[0] != "broker:9092" {
		t.Errorf("brokers %v; want what up fills in", st.Brokers)
	}

	// A speed task answering an error is reported the same way.
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "restarting", http.StatusServiceUnavailable)
	}))
	defer busy.Close()
	code, st = getStatus(t, testAPI(t, strings.TrimPrefix(busy.URL, "http://")))
	if code != http.StatusOK || !strings.Contains(st.SpeedError, "503") || !strings.Contains(st.SpeedError, "restarting") {
		t.Errorf("speed task answering 503: code %d, speed_error %q; want 200 and the task's answer", code, st.SpeedError)
	}
}

// A speed task that answers gives its own status, and no error.
func TestStatusFromTheSpeedTask(t *testing.T) {
	speed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(pipeline.Status{Pipeline: "views", SpeedNext: map[int32]int64{0: 42}})
	}))
	defer speed.Close()
	code, st := getStatus(t, testAPI(t, strings.TrimPrefix(speed.URL, "http://")))
	if code != http.StatusOK || st.SpeedError != "" || st.Pipeline != "views" || st.SpeedNext[0] != 42 {
		t.Errorf("code %d, status %+v; want the speed task's status and no error", code, st)
	}
	if len(st.Brokers) != 1 {
		t.Errorf("brokers %v; want what up fills in over the speed task's", st.Brokers)
	}
}
