package stormspeed

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/storm/flux"
	"github.com/agora-cluster/agora/storm/multilang"
	"github.com/agora-cluster/agora/storm/native"
)

// Config is the speed layer as a topology.
type Config struct {
	Spec     *plan.Spec
	SpecPath string // the spec's file, which the components read
	Brokers  []string
	WorkDir  string
	// Addr is the bolt's query API address (default 127.0.0.1:0); a bolt
	// started again after a death takes it again.
	Addr string
	// Cassandra and CassandraRF keep the batch views in Cassandra (as in
	// pipeline.Config).
	Cassandra   []string
	CassandraRF int
	// Exe is the agora binary the components run.
	Exe    string
	Stderr io.Writer // the components' stderr
	Log    *slog.Logger
}

// topology is the speed layer's Flux file: the spout, the counting bolt,
// and Storm's tracking of every tuple to its ack. The components are
// scripts of the resources directory run by sh, not executables of their
// own: a real Storm supervisor extracts the jar's resources/ without file
// modes, so a script it was to execute directly would not run.
const topology = `name: %q
config:
  topology.workers: 1
  topology.message.timeout.secs: 30
  topology.max.spout.pending: 2000
spouts:
  - id: "kafka"
    className: "org.apache.storm.flux.wrappers.spouts.FluxShellSpout"
    constructorArgs:
      - ["sh", "spout"]
      - ["partition", "offset", "event"]
    parallelism: 1
bolts:
  - id: "count"
    className: "org.apache.storm.flux.wrappers.bolts.FluxShellBolt"
    constructorArgs:
      - ["sh", "bolt"]
    parallelism: 1
streams:
  - name: "kafka --> count"
    from: "kafka"
    to: "count"
    grouping:
      type: SHUFFLE
`

// Resources writes the topology's resources directory (the components'
// scripts) and its Flux file, and returns the topology and the file's
// path and text.
func Resources(cfg Config) (top *flux.Topology, path string, yaml []byte, err error) {
	res := filepath.Join(Dir(cfg.WorkDir), "resources")
	if err := os.MkdirAll(res, 0o755); err != nil {
		return nil, "", nil, fmt.Errorf("storm speed: %w", err)
	}
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	common := quote(cfg.SpecPath) + " --work_dir " + quote(cfg.WorkDir)
	bolt := common + " --api " + quote(addr)
	if len(cfg.Cassandra) > 0 {
		bolt += " --cassandra " + quote(strings.Join(cfg.Cassandra, ",")) + " --cassandra_rf " + strconv.Itoa(max(cfg.CassandraRF, 1))
	}
	files := map[string]string{
		"spout": "#!/bin/sh\nexec " + quote(cfg.Exe) + " lambda storm-spout " + common + " --brokers " + quote(strings.Join(cfg.Brokers, ",")) + "\n",
		"bolt":  "#!/bin/sh\nexec " + quote(cfg.Exe) + " lambda storm-bolt " + bolt + "\n",
		// The runtime looks for Storm's Python module beside the
		// components; these are agora's own and do not import it.
		multilang.StormPy: "# the components of this topology are agora's own and do not import storm.py\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(res, name), []byte(body), 0o755); err != nil {
			return nil, "", nil, fmt.Errorf("storm speed: %w", err)
		}
	}
	yaml = []byte(fmt.Sprintf(topology, TopologyName(cfg.Spec)))
	path = filepath.Join(Dir(cfg.WorkDir), "topology.yaml")
	if err := os.WriteFile(path, yaml, 0o644); err != nil {
		return nil, "", nil, fmt.Errorf("storm speed: %w", err)
	}
	if top, err = flux.Parse(yaml, res); err != nil {
		return nil, "", nil, fmt.Errorf("storm speed: the topology: %w", err)
	}
	return top, path, yaml, nil
}

// Run runs the speed layer's topology on the native Storm runtime until
// ctx ends or the topology fails.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	top, _, _, err := Resources(cfg)
	if err != nil {
		return err
	}
	rt, err := native.Start(ctx, top, native.Options{Stderr: cfg.Stderr, Logger: cfg.Log})
	if err != nil {
		return fmt.Errorf("storm speed: %w", err)
	}
	defer rt.Stop()
	select {
	case <-ctx.Done():
		return nil
	case <-rt.Done():
		return fmt.Errorf("storm speed: the topology stopped: %v", rt.Err())
	}
}
