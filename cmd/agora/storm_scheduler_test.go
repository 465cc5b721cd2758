package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/clustertest"
)

// Bad input to `agora storm scheduler` is a usage error (2) naming what is
// wrong, before anything subscribes; a Nimbus that is not there is a
// failure (1) saying so.
func TestStormSchedulerRefusesBadInput(t *testing.T) {
	refused := clustertest.RefusedAddr(t)
	home := t.TempDir()
	badYAML := filepath.Join(t.TempDir(), "storm.yaml")
	if err := os.WriteFile(badYAML, []byte("mesos.worker.cpu: 1\n  nested: map\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"--master", refused, "--storm_home", home}
	for _, tc := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"bad --nimbus", []string{"--nimbus", "nimbus-without-port"}, 2, `--nimbus: "nimbus-without-port" is not HOST:PORT`},
		{"no ZooKeeper to launch Nimbus", nil, 2, "needs its ZooKeeper servers (--storm_zookeeper"},
		{"bad ZooKeeper", []string{"--storm_zookeeper", "zk1"}, 2, `ZooKeeper server "zk1" is not HOST:PORT`},
		{"bad size", []string{"--nimbus", refused, "-c", "mesos.worker.mem.mb=lots"}, 2, `mesos.worker.mem.mb="lots": not a number`},
		{"too small", []string{"--nimbus", refused, "-c", "mesos.worker.cpu=0"}, 2, "a worker needs at least 0.01 cpus"},
		{"unknown key", []string{"--nimbus", refused, "-c", "mesos.workers.cpu=1"}, 2, "unknown key mesos.workers.cpu"},
		{"bad constraint", []string{"--nimbus", refused, "--constraints", "rack"}, 2, `"rack" is not of the form attribute:value`},
		{"bad storm.yaml", []string{"--nimbus", refused, "--conf", badYAML}, 2, "line 2"},
		{"missing storm.yaml", []string{"--nimbus", refused, "--conf", badYAML + ".none"}, 2, "--conf:"},
		{"bad page credentials", []string{"--nimbus", refused, "--http_credentials", "nocolon"}, 2, "--http_credentials"},
		{"nimbus not there", []string{"--nimbus", refused}, 1, "nimbus at " + refused + " is not reachable"},
		{"an open page is warned of", []string{"--nimbus", refused}, 1, "WARNING: the topologies page on 0.0.0.0:8080 kills topologies for anyone who reaches it: give --http_credentials or --credentials"},
	} {
		var out, errb bytes.Buffer
		code := stormScheduler(context.Background(), append(append([]string{}, base...), tc.args...), &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.err) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tc.name, code, errb.String(), tc.code, tc.err)
		}
	}
}

// A page behind credentials, or no page, is not warned of.
func TestStormSchedulerWarnsOnlyOfAnOpenPage(t *testing.T) {
	refused := clustertest.RefusedAddr(t)
	base := []string{"--master", refused, "--storm_home", t.TempDir(), "--nimbus", refused}
	for _, extra := range [][]string{{"--http_credentials", "ops:pw"}, {"--http_port", "-1"}} {
		var out, errb bytes.Buffer
		code := stormScheduler(context.Background(), append(append([]string{}, base...), extra...), &out, &errb)
		if code != 1 || strings.Contains(errb.String(), "WARNING") {
			t.Errorf("%v: exit %d, stderr %q; want 1 (no Nimbus) and no warning", extra, code, errb.String())
		}
	}
}
