package master_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/clustertest"
)

func TestMetricsEndpoints(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Agents: 2, AgentResources: "cpus:3;mem:1000;disk:10"})
	resp, err := http.Get(c.MasterURL + "/metrics/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	var snap map[string]float64
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for name, want := range map[string]float64{
		"master/cpus_total": 6, "master/mem_total": 2000, "master/slaves_active": 2,
		"master/tasks_running": 0, "master/elected": 1, "master/slave_registrations": 2,
	} {
		if got, ok := snap[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	resp, err = http.Get(c.MasterURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "agora_master_cpus_total 6") || !strings.Contains(string(b), "go_goroutines") {
		t.Fatalf("Prometheus exposition lacks agora_master_cpus_total 6:\n%.2000s", b)
	}
}
