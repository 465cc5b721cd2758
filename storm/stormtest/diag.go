package stormtest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// DaemonLogs is the end of what Nimbus and the supervisors wrote (they
// log to their output), for failure messages.
func (c *Cluster) DaemonLogs(n int) string {
	var b strings.Builder
	for _, p := range c.procs {
		fmt.Fprintf(&b, "== %s\n%s\n", p.Name, p.Tail(n))
	}
	return b.String()
}

// Await polls cond every quarter second until it holds or limit passes;
// on failure it shows cond's last detail and the daemons' and workers'
// logs.
func (c *Cluster) Await(t testing.TB, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var detail string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, detail = cond(); ok {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("no %s within %s (last: %.3000s)\ndaemon logs:\n%s\nworker logs:\n%s", what, limit, detail, c.DaemonLogs(6000), c.WorkerLogs(6000))
}
