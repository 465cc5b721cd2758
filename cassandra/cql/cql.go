// Package cql talks to Cassandra nodes over the native protocol with
// gocql: one node's own view of itself (system.local), and sessions for
// clients and tests.
package cql

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/gocql/gocql"
)

// Local is a node's row of system.local: what it says about itself.
type Local struct {
	HostID       string `json:"host_id"`
	ClusterName  string `json:"cluster_name"`
	DataCenter   string `json:"data_center"`
	Rack         string `json:"rack"`
	Bootstrapped string `json:"bootstrapped"` // COMPLETED once it has joined
	Version      string `json:"release_version"`
	// Peers is how many peers it knows (system.peers_v2).
	Peers int `json:"peers"`
}

// Joined says whether the node has finished joining the ring: it serves
// CQL only after that, and says so in system.local.
func (l Local) Joined() bool { return l.Bootstrapped == "COMPLETED" && l.HostID != "" }

// QueryLocal asks the node at addr (host:native_port) alone, without
// discovering its peers, about itself.
func QueryLocal(ctx context.Context, addr string, timeout time.Duration) (Local, error) {
	c, err := single(addr, timeout)
	if err != nil {
		return Local{}, err
	}
	s, err := c.CreateSession()
	if err != nil {
		return Local{}, fmt.Errorf("cql %s: %w", addr, err)
	}
	defer s.Close()
	var l Local
	var id gocql.UUID
	if err := s.Query(`SELECT host_id, cluster_name, data_center, rack, bootstrapped, release_version FROM system.local`).
		WithContext(ctx).Scan(&id, &l.ClusterName, &l.DataCenter, &l.Rack, &l.Bootstrapped, &l.Version); err != nil {
		return Local{}, fmt.Errorf("cql %s: system.local: %w", addr, err)
	}
	l.HostID = id.String()
	// Counted here: count(*) would log a warning on the node each time.
	it := s.Query(`SELECT peer FROM system.peers_v2`).WithContext(ctx).Iter()
	var peer string
	for it.Scan(&peer) {
		l.Peers++
	}
	if err := it.Close(); err != nil {
		return Local{}, fmt.Errorf("cql %s: system.peers_v2: %w", addr, err)
	}
	return l, nil
}

func single(addr string, timeout time.Duration) (*gocql.ClusterConfig, error) {
	h, p, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil || h == "" {
		return nil, fmt.Errorf("cql: %q is not HOST:PORT", addr)
	}
	c := gocql.NewCluster(h)
	c.Port = port
	c.Timeout, c.ConnectTimeout = timeout, timeout
	c.DisableInitialHostLookup = true
	c.NumConns = 1
	c.ProtoVersion = 4
	c.Logger = nopLogger{}
	return c, nil
}

// Cluster is a gocql configuration for the nodes at addrs (host:port
// each): gocql finds the rest of the ring, each node's native port
// included, from system.peers_v2.
func Cluster(addrs []string, timeout time.Duration) (*gocql.ClusterConfig, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("cql: no node addresses")
	}
	var hosts []string
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("cql: %q is not HOST:PORT", a)
		}
		hosts = append(hosts, a)
	}
	c := gocql.NewCluster(hosts...)
	c.Timeout, c.ConnectTimeout = timeout, timeout
	c.ProtoVersion = 4
	c.Logger = nopLogger{}
	return c, nil
}

type nopLogger struct{}

func (nopLogger) Print(...any)          {}
func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

// Probe is a node's health: it answers a query of system.local at addr
// and says there that it has joined the ring. The error names addr.
func Probe(ctx context.Context, addr string, timeout time.Duration) error {
	l, err := QueryLocal(ctx, addr, timeout)
	if err != nil {
		return err
	}
	if !l.Joined() {
		return fmt.Errorf("cql %s: the node has not joined the ring (system.local bootstrapped=%q)", addr, l.Bootstrapped)
	}
	return nil
}
