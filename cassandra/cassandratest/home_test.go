package cassandratest_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cassandra/cassandratest"
	"github.com/agora-cluster/agora/cassandra/cql"
)

// Cassandra's home runs a node on Java 17 from a generated cassandra.yaml
// on a loopback address: it joins, answers CQL with its own system.local
// (the cluster name of the yaml, release 5.0.9), and nodetool, over the
// node's own JMX port, shows it Up and Normal.
func TestHomeRunsANode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the JVM; not in -short")
	}
	home := cassandratest.Home(t)
	for _, f := range []string{"lib/cassandra-all-5.0.9.jar", "bin/cassandra", "bin/nodetool", "conf/jvm17.options", "conf/logback.xml"} {
		if _, err := os.Stat(filepath.Join(home, f)); err != nil {
			t.Errorf("the home lacks %s: %v", f, err)
		}
	}
	n := cassandratest.StartNode(t, home, "127.0.0.5", 512)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := cql.QueryLocal(ctx, n.Addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if l.ClusterName != "by-hand" || l.Version != "5.0.9" || !l.Joined() || l.DataCenter != "dc1" {
		t.Errorf("system.local: %+v; want cluster by-hand, release 5.0.9, joined, dc1", l)
	}
	if _, err := os.Stat(filepath.Join(n.Dir, "volume", "commitlog")); err != nil {
		t.Errorf("the commit log is not where the yaml put it: %v", err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(home, "bin", "nodetool"), "-h", "127.0.0.1", "-p", itoa(n.Node.JMXPort), "status")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "UN  127.0.0.5") || !strings.Contains(string(out), l.HostID) {
		t.Errorf("nodetool status: %v; want the node UN with host ID %s:\n%s", err, l.HostID, out)
	}
}

func itoa(u uint64) string { return strconv.FormatUint(u, 10) }
