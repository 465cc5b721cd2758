package master_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/master"
)

// An operator subscriber hears a HEARTBEAT every heartbeat interval, not
// only the one after SUBSCRIBED: clients (agora events, top, the native
// Storm page's feed) take a stream silent for a few intervals for dead.
func TestOperatorSubscriberGetsHeartbeats(t *testing.T) {
	m, err := master.New(master.Config{Hostname: "localhost", HeartbeatInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go m.Run(ctx)
	srv := httptest.NewServer(m.Handler(nil))
	t.Cleanup(func() { srv.Close(); cancel() })

	body, _ := json.Marshal(map[string]string{"type": "SUBSCRIBE"})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1", bytes.NewReader(body))
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
	rr := api.NewRecordReader(resp.Body)
	heartbeats := 0
	// SUBSCRIBED, the HEARTBEAT that follows it, then at least two more
	// from the master's ticker (nothing else happens on this master). A
	// master that stops after the first leaves the read blocked: the
	// deadline below ends it.
	deadline := time.AfterFunc(2*time.Minute, func() { resp.Body.Close() })
	defer deadline.Stop()
	for heartbeats < 3 {
		rec, err := rr.ReadRecord()
		if err != nil {
			t.Fatalf("after %d heartbeats: %v", heartbeats, err)
		}
		var ev struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(rec, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type == "HEARTBEAT" {
			heartbeats++
		}
	}
}
