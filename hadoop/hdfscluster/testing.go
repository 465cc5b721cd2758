package hdfscluster

import (
	"context"
	"os"
	"testing"

	"github.com/agora-cluster/agora/dist/disttest"
)

// StartForTest starts a cluster of the HDFS distribution (installed on
// first use) in a temporary directory, stopped when the test ends; the
// daemons' logs are shown if the test failed. cfg's Home and Dir are
// filled in. A cluster that does not start fails the test.
func StartForTest(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts an HDFS NameNode and DataNodes (JVMs); not in -short")
	}
	cfg.Home = disttest.Home(t, "hdfs")
	dir, err := os.MkdirTemp("/var/tmp", "agora-hdfs-")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dir = dir
	c, err := Start(context.Background(), cfg)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("HDFS logs:\n%s", c.Logs())
		}
		c.Stop()
		os.RemoveAll(dir)
	})
	return c
}
