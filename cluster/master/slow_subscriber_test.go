package master_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
)

// A scheduler that subscribes and then stops reading is cut off once it
// is MaxSubscriberBacklog events behind, and the master counts it; its
// framework is then disconnected, to fail over when it subscribes again. (The socket buffers between them hold
// megabytes, so the agent offers ports in thousands of single-port ranges,
// making each offer large, and offers time out at once to be made again.)
func TestSchedulerThatStopsReadingIsCutOff(t *testing.T) {
	var ports []string
	for p := 20000; p < 26000; p += 2 {
		ports = append(ports, fmt.Sprintf("%d-%d", p, p))
	}
	c := clustertest.Start(t, clustertest.Options{
		Agents:         2,
		AgentResources: "cpus:4;mem:4096;disk:100;ports:[" + strings.Join(ports, ",") + "]",
		Master: func(cfg *master.Config) {
			cfg.MaxSubscriberBacklog = 100
			cfg.HeartbeatInterval = time.Millisecond
			cfg.OfferTimeout = 10 * time.Millisecond
		},
	})
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", c.MasterAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"never-reads","failover_timeout":600}}}`
	fmt.Fprintf(conn, "POST /api/v1/scheduler HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: %d\r\n\r\n%s",
		c.MasterAddr, len(body), body)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 512), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("SUBSCRIBE: %v %v", resp, err)
	}
	// From here on nothing is read.

	deadline := time.Now().Add(3 * time.Minute)
	for {
		if n := metric(t, c.MasterURL, "master/slow_subscribers_disconnected"); n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the scheduler that stopped reading was not cut off in 3 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.WaitFor("its framework disconnected", func(s *clustertest.State) bool {
		for _, f := range s.Frameworks {
			if f.Name == "never-reads" {
				return !f.Active
			}
		}
		return false
	})
}

// metric reads one value of the master's /metrics/snapshot.
func metric(t *testing.T, url, name string) float64 {
	resp, err := http.Get(url + "/metrics/snapshot")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var m map[string]float64
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m[name]; !ok {
		t.Fatalf("no metric %s in %s", name, strings.Join(keys(m), ", "))
	}
	return m[name]
}

func keys(m map[string]float64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
