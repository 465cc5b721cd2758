package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A call that reaches a master while it recovers the registry after its
// election waits, and is answered by the leading master once it acts,
// rather than by the standby API's 503.
func TestHAMasterHoldsCallsWhileItRecovers(t *testing.T) {
	h := &haMaster{}
	var standby http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no master is the leader now", http.StatusServiceUnavailable)
	})
	h.current.Store(&standby)
	ready := make(chan struct{})
	h.recovering.Store(&ready)
	srv := httptest.NewServer(h)
	defer srv.Close()

	type answer struct {
		code int
		body string
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/api/v1/scheduler")
		if err != nil {
			got <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- answer{resp.StatusCode, string(b), err}
	}()
	for deadline := time.Now().Add(30 * time.Second); h.held.Load() != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the call did not wait for the recovery")
		}
	}
	var leading http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "leader") })
	h.current.Store(&leading)
	h.recovering.Store(nil)
	close(ready)
	select {
	case a := <-got:
		if a.err != nil || a.code != http.StatusOK || a.body != "leader" {
			t.Fatalf("the held call got %d %q (%v); want the leader's 200", a.code, a.body, a.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the held call was not answered after the recovery")
	}
	// Once it acts, calls go straight through.
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || h.held.Load() != 0 {
		t.Fatalf("after the recovery: %s, %d held", resp.Status, h.held.Load())
	}
}
