// Package client talks to Storm's Nimbus over its Thrift API (framed
// binary protocol, port 6627 by default): the cluster's supervisors,
// Nimbuses and topologies, a topology's executors and their statistics,
// Nimbus's configuration, uploading a topology jar, and submitting,
// killing, activating and deactivating topologies. The Thrift types are
// written by hand for the calls used, with storm.thrift's field IDs.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
)

// DefaultPort is nimbus.thrift.port's default.
const DefaultPort = 6627

// Options tune a Client.
type Options struct {
	// ConnectTimeout bounds connecting to Nimbus (default 5 s).
	ConnectTimeout time.Duration
	// CallTimeout bounds each call, from sending to the whole answer
	// (default 30 s); a context deadline that comes sooner wins.
	CallTimeout time.Duration
	// ChunkSize is the size of the pieces a jar is uploaded in
	// (default 256 KiB; Nimbus takes frames up to 1 MiB).
	ChunkSize int
}

// Client is a connection to one Nimbus. Calls are serialised on one
// connection; after a failed call the connection is dropped and the next
// call connects again. A Client is safe for concurrent use.
type Client struct {
	addr string
	opts Options

	mu   sync.Mutex
	conn net.Conn
	tc   *thrift.TStandardClient
}

// New returns a client of the Nimbus at addr (HOST:PORT; HOST alone means
// port 6627). It connects on the first call.
func New(addr string, opts Options) (*Client, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		if addr == "" {
			return nil, errors.New("no Nimbus address: give HOST:PORT")
		}
		addr = net.JoinHostPort(addr, fmt.Sprint(DefaultPort))
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 30 * time.Second
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = 256 << 10
	}
	return &Client{addr: addr, opts: opts}, nil
}

// Addr is the Nimbus address the client talks to.
func (c *Client) Addr() string { return c.addr }

// Close drops the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drop()
	return nil
}

func (c *Client) drop() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.tc = nil, nil
	}
}

func (c *Client) connect(ctx context.Context) error {
	if c.conn != nil {
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, c.opts.ConnectTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", c.addr)
	if err != nil {
		return fmt.Errorf("nimbus at %s is not reachable: %w", c.addr, err)
	}
	conf := &thrift.TConfiguration{MaxFrameSize: 64 << 20}
	sock := thrift.NewTSocketFromConnConf(conn, conf)
	trans := thrift.NewTFramedTransportConf(sock, conf)
	proto := thrift.NewTBinaryProtocolConf(trans, conf)
	c.conn, c.tc = conn, thrift.NewTStandardClient(proto, proto)
	return nil
}

// call runs one Thrift call: args writes the arguments struct, success
// reads the answer (nil for void calls), excs maps result fields to
// exceptions. topology names the topology for errors.
func (c *Client) call(ctx context.Context, method, topology string, args func(w *wr), success func(r *rd), excs exceptions) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.connect(ctx); err != nil {
		return err
	}
	// The Thrift socket sets its own deadline before every read, so the
	// call's bound is enforced by closing the connection when it passes
	// (or when ctx is cancelled): that unblocks the read.
	callCtx, cancel := context.WithTimeout(ctx, c.opts.CallTimeout)
	defer cancel()
	conn := c.conn
	stop := context.AfterFunc(callCtx, func() { conn.Close() })
	defer stop()

	var exc *NimbusError
	result := message{read: func(r *rd) {
		fs := map[int16]field{}
		if success != nil {
			fs[0] = field{successType(method), func() { success(r) }}
		}
		for id, kind := range excs {
			fs[id] = field{thrift.STRUCT, func() {
				exc = &NimbusError{Call: method, Topology: topology, Kind: kind, Msg: readException(r)}
			}}
		}
		r.strct(fs)
	}}
	argsMsg := message{write: func(w *wr) { w.strct(method+"_args", func() { args(w) }) }}
	if args == nil {
		argsMsg.write = nil
	}
	_, err := c.tc.Call(callCtx, method, argsMsg, result)
	if err != nil {
		c.drop()
		return c.callError(ctx, callCtx, method, topology, err)
	}
	if exc != nil {
		return exc
	}
	return nil
}

// callError says why a call failed: Nimbus gone, too slow, or what it
// answered.
func (c *Client) callError(ctx, callCtx context.Context, method, topology string, err error) error {
	what := method
	if topology != "" {
		what += " " + topology
	}
	var appErr thrift.TApplicationException
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("nimbus %s at %s: %w", what, c.addr, ctx.Err())
	case callCtx.Err() != nil:
		return fmt.Errorf("nimbus %s at %s: no answer within %s", what, c.addr, c.opts.CallTimeout)
	case errors.As(err, &appErr):
		return fmt.Errorf("nimbus %s at %s failed: %s", what, c.addr, appErr.Error())
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("nimbus %s at %s: the connection was closed (Nimbus stopped, or refused the request): %w", what, c.addr, err)
	}
	return fmt.Errorf("nimbus %s at %s: %w", what, c.addr, err)
}

// successType is the wire type of a call's answer.
func successType(method string) thrift.TType {
	switch method {
	case "getClusterInfo", "getTopologyInfo":
		return thrift.STRUCT
	}
	return thrift.STRING
}

var (
	authOnly     = exceptions{1: ErrAuthorization}
	notAliveExcs = exceptions{1: ErrNotAlive, 2: ErrAuthorization}
)

// ClusterInfo is getClusterInfo: supervisors, Nimbuses and topologies.
func (c *Client) ClusterInfo(ctx context.Context) (ClusterSummary, error) {
	var s ClusterSummary
	err := c.call(ctx, "getClusterInfo", "", nil, func(r *rd) { s = readClusterSummary(r) }, authOnly)
	return s, err
}

// TopologyInfo is getTopologyInfo for a topology ID (not its name).
func (c *Client) TopologyInfo(ctx context.Context, id string) (TopologyInfo, error) {
	var t TopologyInfo
	err := c.call(ctx, "getTopologyInfo", id, func(w *wr) {
		w.field("id", thrift.STRING, 1, func() { w.str(id) })
	}, func(r *rd) { t = readTopologyInfo(r) }, notAliveExcs)
	return t, err
}

// NimbusConf is getNimbusConf: Nimbus's configuration as JSON.
func (c *Client) NimbusConf(ctx context.Context) (string, error) {
	var s string
	err := c.call(ctx, "getNimbusConf", "", nil, func(r *rd) { s = r.str() }, authOnly)
	return s, err
}

// TopologyConf is getTopologyConf for a topology ID: the topology's
// configuration as JSON (topology.workers is the workers it asks for).
func (c *Client) TopologyConf(ctx context.Context, id string) (string, error) {
	var s string
	err := c.call(ctx, "getTopologyConf", id, func(w *wr) {
		w.field("id", thrift.STRING, 1, func() { w.str(id) })
	}, func(r *rd) { s = r.str() }, notAliveExcs)
	return s, err
}

// BeginFileUpload starts a jar upload and returns where Nimbus keeps it.
func (c *Client) BeginFileUpload(ctx context.Context) (string, error) {
	var loc string
	err := c.call(ctx, "beginFileUpload", "", nil, func(r *rd) { loc = r.str() }, authOnly)
	return loc, err
}

// UploadChunk sends the next piece of the upload at location.
func (c *Client) UploadChunk(ctx context.Context, location string, chunk []byte) error {
	return c.call(ctx, "uploadChunk", "", func(w *wr) {
		w.field("location", thrift.STRING, 1, func() { w.str(location) })
		w.field("chunk", thrift.STRING, 2, func() { w.bin(chunk) })
	}, nil, authOnly)
}

// FinishFileUpload ends the upload at location.
func (c *Client) FinishFileUpload(ctx context.Context, location string) error {
	return c.call(ctx, "finishFileUpload", "", func(w *wr) {
		w.field("location", thrift.STRING, 1, func() { w.str(location) })
	}, nil, authOnly)
}

// UploadJar uploads a topology jar in chunks and returns its location on
// Nimbus, for Submit.
func (c *Client) UploadJar(ctx context.Context, jar io.Reader) (string, error) {
	loc, err := c.BeginFileUpload(ctx)
	if err != nil {
		return "", err
	}
	buf := make([]byte, c.opts.ChunkSize)
	for {
		n, rerr := io.ReadFull(jar, buf)
		if n > 0 {
			if err := c.UploadChunk(ctx, loc, buf[:n]); err != nil {
				return "", err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return "", fmt.Errorf("upload the topology jar: %w", rerr)
		}
	}
	if err := c.FinishFileUpload(ctx, loc); err != nil {
		return "", err
	}
	return loc, nil
}

// Submit is submitTopology: the topology under name, its code in the jar
// uploaded at jarLocation, with jsonConf (a JSON object of topology
// configuration, "" for none). A topology that cannot be encoded is
// refused before anything is sent.
func (c *Client) Submit(ctx context.Context, name, jarLocation, jsonConf string, t Topology) error {
	if name == "" {
		return errors.New("submit: the topology has no name")
	}
	if err := t.validate(); err != nil {
		return fmt.Errorf("submit %s: %w", name, err)
	}
	if jsonConf == "" {
		jsonConf = "{}"
	}
	return c.call(ctx, "submitTopology", name, func(w *wr) {
		w.field("name", thrift.STRING, 1, func() { w.str(name) })
		w.field("uploadedJarLocation", thrift.STRING, 2, func() { w.str(jarLocation) })
		w.field("jsonConf", thrift.STRING, 3, func() { w.str(jsonConf) })
		w.field("topology", thrift.STRUCT, 4, func() { t.write(w) })
	}, nil, exceptions{1: ErrAlreadyAlive, 2: ErrInvalidTopology, 3: ErrAuthorization})
}

// Kill is killTopologyWithOpts: Nimbus deactivates the topology, waits
// wait (Storm's topology.message.timeout.secs when negative) and removes
// it.
func (c *Client) Kill(ctx context.Context, name string, wait time.Duration) error {
	return c.call(ctx, "killTopologyWithOpts", name, func(w *wr) {
		w.field("name", thrift.STRING, 1, func() { w.str(name) })
		w.field("options", thrift.STRUCT, 2, func() {
			w.strct("KillOptions", func() {
				if wait >= 0 {
					w.field("wait_secs", thrift.I32, 1, func() { w.i32(int32(wait / time.Second)) })
				}
			})
		})
	}, nil, notAliveExcs)
}

// Rebalance is what rebalance asks Nimbus to change: zero values keep
// what the topology has.
type Rebalance struct {
	// Wait is how long Nimbus deactivates the topology before moving it
	// (negative: topology.message.timeout.secs).
	Wait time.Duration
	// Workers is the new topology.workers.
	Workers int32
	// Executors are new executor counts by component ID.
	Executors map[string]int32
}

// Rebalance is rebalance: Nimbus spreads the topology's executors again,
// with new worker and executor counts.
func (c *Client) Rebalance(ctx context.Context, name string, r Rebalance) error {
	return c.call(ctx, "rebalance", name, func(w *wr) {
		w.field("name", thrift.STRING, 1, func() { w.str(name) })
		w.field("options", thrift.STRUCT, 2, func() {
			w.strct("RebalanceOptions", func() {
				if r.Wait >= 0 {
					w.field("wait_secs", thrift.I32, 1, func() { w.i32(int32(r.Wait / time.Second)) })
				}
				if r.Workers > 0 {
					w.field("num_workers", thrift.I32, 2, func() { w.i32(r.Workers) })
				}
				if len(r.Executors) > 0 {
					w.field("num_executors", thrift.MAP, 3, func() {
						ids := sortedKeys(r.Executors)
						w.mapping(thrift.STRING, thrift.I32, len(ids), func() {
							for _, id := range ids {
								w.str(id)
								w.i32(r.Executors[id])
							}
						})
					})
				}
			})
		})
	}, nil, exceptions{1: ErrNotAlive, 2: ErrInvalidTopology, 3: ErrAuthorization})
}

// Activate is activate: the topology's spouts run again.
func (c *Client) Activate(ctx context.Context, name string) error {
	return c.nameCall(ctx, "activate", name)
}

// Deactivate is deactivate: the topology's spouts stop emitting.
func (c *Client) Deactivate(ctx context.Context, name string) error {
	return c.nameCall(ctx, "deactivate", name)
}

func (c *Client) nameCall(ctx context.Context, method, name string) error {
	return c.call(ctx, method, name, func(w *wr) {
		w.field("name", thrift.STRING, 1, func() { w.str(name) })
	}, nil, notAliveExcs)
}

// TopologyByName finds a running topology's summary by its name; ok is
// false when none has it.
func (c *Client) TopologyByName(ctx context.Context, name string) (TopologySummary, bool, error) {
	cs, err := c.ClusterInfo(ctx)
	if err != nil {
		return TopologySummary{}, false, err
	}
	for _, t := range cs.Topologies {
		if t.Name == name {
			return t, true, nil
		}
	}
	return TopologySummary{}, false, nil
}
