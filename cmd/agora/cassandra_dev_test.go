package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cassandra/cassandratest"
	"github.com/agora-cluster/agora/cassandra/cql"
	"github.com/agora-cluster/agora/cassandra/framework"
	cassandralocal "github.com/agora-cluster/agora/cassandra/local"
	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/tlsconf"
)

// agora dev --cassandra_nodes 1 runs the Cassandra framework beside the
// dev cluster: its node comes up on the dev agent on a reservation and
// volume, `agora cassandra status` and `endpoints` answer on
// --cassandra_port, the node answers CQL as ring dev, and its task's
// health check (run by the agent) reports it healthy. Stopping agora dev
// stops the node.
func TestDevRunsCassandra(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Cassandra JVM; not in -short")
	}
	cassandratest.Home(t) // installed where agora dev looks for it
	port, _ := clustertest.PortRange(1)
	api := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// Ports of the test's own for the node, not the machine's usual
	// range, which another dev cluster on this machine may be using.
	first, last := clustertest.PortRange(20)
	resources := fmt.Sprintf("cpus:2;mem:6000;disk:10000;ports:[%d-%d]", first, last)
	// The work directory is not below /tmp, as agora dev's default is
	// not: its agent gives each task a /tmp of its own, so the framework
	// copies the test's agora binary (below /tmp) into its state
	// directory there for the node's health check.
	work, err := os.MkdirTemp("/var/tmp", "agora-dev-cassandra-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the node's stderr:\n%s", nodeStderr(work, 6000))
		}
	})
	t.Cleanup(func() { // a failed test may leave the node behind
		for _, pid := range cassandralocal.DaemonPIDs(work) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	dev, _ := startBound(t, "dev", "--agents", "1", "--port=0", "--hadoop_port", "0", "--marathon_port", "0", "--chronos_port", "0", "--dns_port", "0",
		"--spark_port", "0", "--resources", resources, "--cassandra_nodes", "1", "--cassandra_port", strconv.Itoa(port), "--work_dir", work)

	var st framework.Status
	for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(time.Second) {
		var out, errOut strings.Builder
		code := cassandraGet("status", []string{"--api", api, "--json"}, &out, &errOut)
		if code == 0 && json.Unmarshal([]byte(out.String()), &st) == nil && st.Up == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dev ring's node not up within 4 minutes: exit %d, %s%s", code, out.String(), errOut.String())
		}
	}
	if st.Cluster != "dev" || st.Nodes != 1 || st.Placed != 1 {
		t.Errorf("status %+v; want ring dev with its one node placed", st)
	}
	var out, errOut strings.Builder
	var e framework.Endpoints
	if code := cassandraGet("endpoints", []string{"--api", api, "--json"}, &out, &errOut); code != 0 || json.Unmarshal([]byte(out.String()), &e) != nil || len(e.Native) != 1 {
		t.Fatalf("agora cassandra endpoints: exit %d, %s%s", code, out.String(), errOut.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	local, err := cql.QueryLocal(ctx, e.Native[0], 20*time.Second)
	if err != nil || local.ClusterName != "dev" || !local.Joined() {
		t.Errorf("the node at %s over CQL: %+v, %v; want ring dev, joined", e.Native[0], local, err)
	}
	// The agent runs the node's health check (agora cassandra probe, from
	// the copy in the framework's state directory, inside the node's
	// container) and reports it healthy; the probe by hand agrees.
	var nodes []framework.Node
	for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(2 * time.Second) {
		out.Reset()
		errOut.Reset()
		code := cassandraGet("nodes", []string{"--api", api, "--json"}, &out, &errOut)
		if code == 0 && json.Unmarshal([]byte(out.String()), &nodes) == nil && len(nodes) == 1 && nodes[0].Healthy != nil && *nodes[0].Healthy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node's task not reported healthy by its health check within 4 minutes: exit %d, %s%s", code, out.String(), errOut.String())
		}
	}
	out.Reset()
	errOut.Reset()
	if code := cassandraProbe(ctx, []string{"--host", nodes[0].Host, "--port", strconv.FormatUint(nodes[0].NativePort, 10), "--timeout", "30s"}, &out, &errOut); code != 0 {
		t.Errorf("agora cassandra probe of %s: exit %d, %s%s", nodes[0].NativeAddr(), code, out.String(), errOut.String())
	}
	if _, err := os.Stat(filepath.Join(work, "cassandra", framework.StateFile)); err != nil {
		t.Errorf("the framework's state under the work directory: %v", err)
	}

	if err := dev.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-dev.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("agora dev did not stop within 2 minutes of SIGTERM")
	}
	if pids := cassandralocal.DaemonPIDs(work); len(pids) > 0 {
		t.Errorf("Cassandra processes %v left after agora dev stopped", pids)
	}
}

// nodeStderr is the end (at most n bytes) of the stderr of each task
// under the agents of work.
func nodeStderr(work string, n int) string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(work, "agent*", "slaves", "*", "frameworks", "*", "executors", "*", "runs", "*", "stderr"))
	for _, f := range files {
		if strings.HasSuffix(filepath.Dir(f), "latest") {
			continue
		}
		out, _ := os.ReadFile(f)
		if len(out) > n {
			out = out[len(out)-n:]
		}
		fmt.Fprintf(&b, "== %s\n%s\n", f, out)
	}
	return b.String()
}

// agora dev refuses a Cassandra ring it cannot run before starting it:
// both --cassandra_nodes and --cassandra_spec, a node count out of range,
// a spec file that is not a spec; without either it runs none.
func TestDevCassandraRefusesBadFlags(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "ring.json")
	if err := os.WriteFile(bad, []byte(`{"name":"ring","yaml":{"concurent_reads":8}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	for _, c := range []struct {
		d    devCassandra
		want string
	}{
		{devCassandra{nodes: 1, specFile: bad}, "not both"},
		{devCassandra{nodes: 10}, "--cassandra_nodes 10: 1 to 9"},
		{devCassandra{nodes: -1}, "--cassandra_nodes -1: 1 to 9"},
		{devCassandra{specFile: bad}, `unknown cassandra.yaml key "concurent_reads"`},
		{devCassandra{specFile: bad + ".missing"}, "--cassandra_spec"},
	} {
		_, _, _, err := c.d.start(t.Context(), nil, "127.0.0.1:1", "127.0.0.1", t.TempDir(), auth.Credential{}, devServiceSecurity{}, logger)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v; want an error saying %q", c.d, err, c.want)
		}
	}
	d := devCassandra{}
	line, _, done, err := d.start(t.Context(), nil, "127.0.0.1:1", "127.0.0.1", t.TempDir(), auth.Credential{}, devServiceSecurity{}, logger)
	if err != nil || line != "" {
		t.Fatalf("no ring asked for: %q, %v", line, err)
	}
	select {
	case <-done:
	default:
		t.Error("no ring asked for, yet its done channel is open")
	}
	if s, err := devCassandraSpec(3); err != nil || s.Nodes != 3 || s.Seeds != 2 || s.NodesPerAgent != 3 {
		t.Errorf("the dev spec of 3 nodes: %+v, %v", s, err)
	}
}

// Under --secure the dev Cassandra API is guarded and served as the other
// services' are: a call without the master's credentials is refused with
// 401 and changes nothing (no destroy, no nodes added), the client
// commands present --principal/--secret_file over TLS with --ca_file, and
// one without the CA is told to pass it.
func TestDevCassandraAPISecured(t *testing.T) {
	dir := t.TempDir()
	files, err := tlsconf.GenerateCA(filepath.Join(dir, "tls"), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srvTLS, err := (&tlsconf.Flags{CertFile: files.Cert, KeyFile: files.Key}).Server()
	if err != nil {
		t.Fatal(err)
	}
	creds, err := auth.ParseUserPassword("ops:s3cret")
	if err != nil {
		t.Fatal(err)
	}
	sec, err := devServiceSecurity{creds: creds, tls: srvTLS, caFile: files.CA}.security("cassandra")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := devCassandraSpec(1)
	if err != nil {
		t.Fatal(err)
	}
	// Not run: the API answers from the framework's state alone.
	fw, err := framework.New(framework.Config{Masters: []string{"127.0.0.1:1"}, Spec: spec, Home: dir, StateDir: filepath.Join(dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := serveCassandraAPI(fw.Handler(), ln, sec)
	t.Cleanup(func() { srv.Close() })
	api := ln.Addr().String()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AGORA_PRINCIPAL", "")
	t.Setenv("AGORA_SECRET", "")
	t.Setenv("AGORA_CA_FILE", "")

	var out, errOut strings.Builder
	if code := cassandraDestroy([]string{"--api", api, "--ca_file", files.CA, "--cluster", "dev"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "401") || !strings.Contains(errOut.String(), "--principal=NAME --secret_file=FILE") {
		t.Errorf("agora cassandra destroy without credentials: exit %d, %q; want 1, a 401 and the flags to pass", code, errOut.String())
	}
	errOut.Reset()
	if code := cassandraAddNodes([]string{"--api", api, "--ca_file", files.CA, "2"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "401") {
		t.Errorf("agora cassandra nodes add without credentials: exit %d, %q; want 1 and a 401", code, errOut.String())
	}
	if st := fw.Status(); st.Destroying || st.Destroyed || st.Nodes != 1 {
		t.Errorf("after the refused calls: %+v; want ring dev of 1 node, not destroying", st)
	}
	errOut.Reset()
	if code := cassandraGet("status", []string{"--api", "https://" + api, "--principal", "ops", "--secret_file", secret}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "--ca_file=FILE") {
		t.Errorf("agora cassandra status without the CA: exit %d, %q; want 1 naming --ca_file", code, errOut.String())
	}
	out.Reset()
	errOut.Reset()
	var st framework.Status
	if code := cassandraGet("status", []string{"--api", api, "--ca_file", files.CA, "--principal", "ops", "--secret_file", secret, "--json"}, &out, &errOut); code != 0 ||
		json.Unmarshal([]byte(out.String()), &st) != nil || st.Cluster != "dev" {
		t.Errorf("agora cassandra status with credentials and the CA: exit %d, %s%s; want ring dev", code, out.String(), errOut.String())
	}
	// The ring's page is behind the same credentials as the API.
	clientTLS, err := tlsconf.ClientConfig(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS}}
	for _, principal := range []string{"", "ops"} {
		req, _ := http.NewRequest(http.MethodGet, "https://"+api+"/ui/", nil)
		if principal != "" {
			req.SetBasicAuth(principal, "s3cret")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case principal == "" && resp.StatusCode != http.StatusUnauthorized:
			t.Errorf("GET /ui/ without credentials: %s, want 401", resp.Status)
		case principal != "" && (resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "agora Cassandra ring")):
			t.Errorf("GET /ui/ with credentials: %s %.200s, want the page", resp.Status, body)
		}
	}
}
