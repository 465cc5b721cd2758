package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/agora-cluster/agora/cassandra/framework"
	"github.com/agora-cluster/agora/cassandra/plan"
	"github.com/agora-cluster/agora/cluster/auth"
)

// devCassandra runs the Cassandra framework inside `agora dev` when asked
// (--cassandra_nodes or --cassandra_spec): a Cassandra JVM per node is
// heavy, so it is off by default. It needs the distribution installed
// (`agora dist install cassandra`), since the agents launch its home.
type devCassandra struct {
	nodes    int
	specFile string
	port     int
}

func (d *devCassandra) register(fs *flag.FlagSet) {
	fs.IntVar(&d.nodes, "cassandra_nodes", 0, "run a Cassandra ring of this many nodes (named dev; needs `agora dist install cassandra`); 0 runs none")
	fs.StringVar(&d.specFile, "cassandra_spec", "", "run the Cassandra ring of this spec (JSON, as `agora cassandra scheduler --spec`) instead")
	_, port, _ := net.SplitHostPort(cassandraAPIDefault)
	def, _ := strconv.Atoi(port)
	fs.IntVar(&d.port, "cassandra_port", def, "port of the Cassandra framework's API (`agora cassandra status|nodes|endpoints ...`)")
}

// devCassandraSpec is the dev ring of n nodes: small nodes that all fit
// one agent, started without the waits a ring of many machines needs (a
// node added later, or a replacement, still waits 10 s to learn the ring:
// the framework raises the ring delay for nodes that join a ring with
// data).
func devCassandraSpec(n int) (plan.Spec, error) {
	b, err := json.Marshal(map[string]any{"name": "dev", "nodes": n, "seeds": min(n, 2), "cpus": 0.5, "mem": 1536, "disk": 2048,
		"heap": "auto", "nodes_per_agent": n,
		"jvm_options": []string{"-Dcassandra.ring_delay_ms=1000", "-Dcassandra.skip_wait_for_gossip_to_settle=0"}})
	if err != nil {
		return plan.Spec{}, err
	}
	return plan.Parse(b)
}

// start starts the framework, presenting cred to the master (none unless
// --secure), and returns the banner line that says where its API is (""
// when not asked for) and a channel closed once it has stopped. A spec
// that cannot be read, or a missing distribution, is an error.
func (d *devCassandra) start(ctx context.Context, fs *flag.FlagSet, masterAddr, ip, workDir string, cred auth.Credential, svc devServiceSecurity, logger *slog.Logger) (line, warning string, done <-chan struct{}, err error) {
	stopped := make(chan struct{})
	if d.nodes == 0 && d.specFile == "" {
		close(stopped)
		return "", "", stopped, nil
	}
	var spec plan.Spec
	switch {
	case d.nodes != 0 && d.specFile != "":
		return "", "", nil, errors.New("cassandra: give --cassandra_nodes or --cassandra_spec, not both")
	case d.nodes < 0 || d.nodes > 9:
		return "", "", nil, fmt.Errorf("cassandra: --cassandra_nodes %d: 1 to 9 on a dev cluster (a spec file for more)", d.nodes)
	case d.specFile != "":
		b, err := os.ReadFile(d.specFile)
		if err != nil {
			return "", "", nil, fmt.Errorf("cassandra: --cassandra_spec: %w", err)
		}
		if spec, err = plan.Parse(b); err != nil {
			return "", "", nil, fmt.Errorf("cassandra: --cassandra_spec %s: %w", d.specFile, err)
		}
	default:
		if spec, err = devCassandraSpec(d.nodes); err != nil {
			return "", "", nil, fmt.Errorf("cassandra: %w", err)
		}
	}
	home := defaultCassandraHome()
	if home == "" {
		return "", "", nil, errors.New("cassandra: the distribution is not installed: run `agora dist install cassandra` first (or drop --cassandra_nodes and --cassandra_spec)")
	}
	if cred.Principal != "" {
		spec.Principal = cred.Principal
	}
	// Under --secure the API asks for the master's credentials and speaks
	// its TLS, as the other services' do: it destroys rings.
	sec, err := svc.security("cassandra")
	if err != nil {
		return "", "", nil, fmt.Errorf("cassandra: %w", err)
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(d.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", "", nil, fmt.Errorf("cassandra: cannot listen on %s: %v (try another --cassandra_port)", addr, err)
	}
	fw, err := framework.New(framework.Config{Masters: []string{masterAddr}, Spec: spec, Home: home, Agora: agoraPath(),
		StateDir: filepath.Join(workDir, "cassandra"), Secret: cred.Secret, WebUIURL: sec.scheme() + "://" + advertiseAddr(ip, ln),
		Logger: logger.With("framework", "cassandra")})
	if err != nil {
		ln.Close()
		return "", "", nil, fmt.Errorf("cassandra: %w", err)
	}
	srv := serveCassandraAPI(fw.Handler(), ln, sec)
	go func() {
		defer close(stopped)
		defer srv.Close()
		if err := fw.Run(ctx); err != nil {
			logger.Error("the Cassandra framework stopped", "err", err)
		}
	}()
	api := ln.Addr().String()
	env := api // the client commands call a host:port over HTTPS only with --ca_file
	if sec.tls != nil {
		env = "https://" + api
	}
	return fmt.Sprintf("  cassandra   %s://%s/v1/status   (ring %s, %d nodes: agora cassandra status|endpoints; AGORA_CASSANDRA_API=%s)",
		sec.scheme(), api, spec.Name, spec.Nodes, env), "", stopped, nil
}
