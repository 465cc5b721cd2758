package agent_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest"
)

// Agents in one process (agora dev --agents N) each report their own
// HTTP connections in slave/http_connections, not the last one started.
func TestEachAgentReportsItsOwnHTTPConnections(t *testing.T) {
	c := startCluster(t, clustertest.Options{Agents: 2})
	const held = 5
	addr := c.Agents[0].Addr()
	for range held {
		// A request answered, then the connection kept alive, idle.
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(wait))
		if _, err := io.WriteString(conn, "GET /health HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// Agent 0 counts the held connections and the one reading its
	// metrics; agent 1 none of them.
	var first, second float64
	waitFor(t, "agent 0 to count the connections held to it", func() bool {
		first = agentMetric(t, c.Agents[0], "slave/http_connections")
		return first >= held+1
	})
	if second = agentMetric(t, c.Agents[1], "slave/http_connections"); second >= held {
		t.Errorf("agent 1 reports %v HTTP connections, agent 0 %v: it counts agent 0's %d held ones", second, first, held)
	}
}
