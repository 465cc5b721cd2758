// Package hdfscluster runs a real HDFS — a NameNode and DataNodes of an
// HDFS distribution's home (`agora dist install hdfs`) — as local
// processes: for tests, benchmarks and a single-machine cluster.
//
// Every DataNode listens on the cluster's address with ports of its own and
// is known to the NameNode by the host name it is given
// (dfs.datanode.hostname): block locations then name DataNodes apart on one
// machine, so block locality can be matched against agents that carry
// those host names. Clients reach the DataNodes by their address, never
// their name (dfs.client.use.datanode.hostname stays false), so a name
// needs no DNS entry.
package hdfscluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/hadoop/distribution"
)

// Config describes a cluster.
type Config struct {
	// Home is the HDFS distribution's home (it has bin/hdfs).
	Home string
	// Dir holds the cluster's state: name and data directories, the
	// configuration and each daemon's log.
	Dir string
	// Addr is the address the daemons listen on (default 127.0.0.1).
	Addr string
	// DataNodes is how many DataNodes run (default 1), unless
	// DataNodeHosts is given.
	DataNodes int
	// DataNodeHosts are the DataNodes' host names, one per DataNode
	// (default: Addr for each).
	DataNodeHosts []string
	// Replication is dfs.replication (default 1).
	Replication int
	// BlockSize is dfs.blocksize in bytes (default HDFS's, 128 MiB).
	BlockSize int64
	// NameNodeHeapMB and DataNodeHeapMB are the daemons' heaps (default
	// 96 and 64).
	NameNodeHeapMB, DataNodeHeapMB int
	// Props are further hdfs-site.xml properties.
	Props map[string]string
	// StartTimeout bounds Start (default 2 minutes).
	StartTimeout time.Duration
}

// Cluster is a running HDFS.
type Cluster struct {
	cfg Config
	// NameNode is the NameNode's RPC address, host:port.
	NameNode string
	// HTTP is the NameNode's HTTP address (JMX, WebHDFS).
	HTTP      string
	DataNodes []*DataNode
	nn        *daemon
}

// DataNode is one running DataNode.
type DataNode struct {
	// Host is the name the NameNode knows it by.
	Host string
	// Addr is its data transfer address, host:port.
	Addr string
	d    *daemon
}

type daemon struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// Start formats a new file system in cfg.Dir, starts the NameNode and the
// DataNodes, and returns once the NameNode is out of safe mode with every
// DataNode live. On an error nothing is left running.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Home == "" || cfg.Dir == "" {
		return nil, errors.New("hdfscluster: Home and Dir are required")
	}
	if _, err := os.Stat(filepath.Join(cfg.Home, "bin", "hdfs")); err != nil {
		return nil, fmt.Errorf("hdfscluster: %s is not an HDFS home (`agora dist install hdfs` makes one): %w", cfg.Home, err)
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1"
	}
	if len(cfg.DataNodeHosts) == 0 {
		n := max(cfg.DataNodes, 1)
		for i := 0; i < n; i++ {
			cfg.DataNodeHosts = append(cfg.DataNodeHosts, cfg.Addr)
		}
	}
	cfg.DataNodes = len(cfg.DataNodeHosts)
	if cfg.Replication == 0 {
		cfg.Replication = 1
	}
	if cfg.NameNodeHeapMB == 0 {
		cfg.NameNodeHeapMB = 96
	}
	if cfg.DataNodeHeapMB == 0 {
		cfg.DataNodeHeapMB = 64
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()

	// Every daemon binds port 0 and the cluster learns the ports they got
	// (no port is chosen ahead and then taken by another process): the
	// NameNode's from its log, the DataNodes' from the NameNode.
	c := &Cluster{cfg: cfg, NameNode: net.JoinHostPort(cfg.Addr, "0"), HTTP: net.JoinHostPort(cfg.Addr, "0")}
	if err := c.writeConf(); err != nil {
		return nil, err
	}
	format := c.command(ctx, "namenode", cfg.NameNodeHeapMB, "-format", "-nonInteractive", "-force")
	if out, err := format.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("hdfscluster: format the NameNode: %v\n%s", err, tail(out))
	}
	var err error
	if c.nn, err = c.start("namenode", cfg.NameNodeHeapMB); err != nil {
		return nil, err
	}
	if err := c.nameNodePorts(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.writeConf(); err != nil { // for the DataNodes and clients
		c.Stop()
		return nil, err
	}
	port0 := net.JoinHostPort(cfg.Addr, "0")
	for i, host := range cfg.DataNodeHosts {
		dn := &DataNode{Host: host}
		dn.d, err = c.start(fmt.Sprintf("datanode%d", i), cfg.DataNodeHeapMB,
			"-D", "dfs.datanode.data.dir=file://"+c.dataDir(i),
			"-D", "dfs.datanode.address="+port0,
			"-D", "dfs.datanode.http.address="+port0,
			"-D", "dfs.datanode.ipc.address="+port0,
			"-D", "dfs.datanode.hostname="+host)
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.DataNodes = append(c.DataNodes, dn)
	}
	if err := c.waitReady(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.dataNodeAddrs(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) dataDir(i int) string { return filepath.Join(c.cfg.Dir, fmt.Sprintf("data%d", i)) }

// The NameNode's log lines that give the ports it bound (Hadoop's
// HttpServer2 and NameNode log them at INFO, to the daemon's output).
var (
	httpBound = regexp.MustCompile(`Jetty bound to port (\d+)`)
	rpcBound  = regexp.MustCompile(`NameNode RPC up at: \S*:(\d+)`)
)

// nameNodePorts waits for the NameNode to log the ports it bound and sets
// NameNode and HTTP; the NameNode exiting first fails it with its log.
func (c *Cluster) nameNodePorts(ctx context.Context) error {
	for {
		b, _ := os.ReadFile(c.nn.log)
		h, r := httpBound.FindSubmatch(b), rpcBound.FindSubmatch(b)
		if h != nil && r != nil {
			c.HTTP = net.JoinHostPort(c.cfg.Addr, string(h[1]))
			c.NameNode = net.JoinHostPort(c.cfg.Addr, string(r[1]))
			return nil
		}
		select {
		case <-c.nn.done:
			return fmt.Errorf("hdfscluster: the namenode exited (%v) before it was up; its log ends:\n%s", c.nn.err, c.nn.logTail())
		case <-ctx.Done():
			return fmt.Errorf("hdfscluster: the NameNode did not log its RPC and HTTP ports in time; its log ends:\n%s", c.nn.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// dataNodeAddrs sets each DataNode's Addr to the data transfer address the
// NameNode knows it by, matched on the DataNode's UUID (in its storage's
// VERSION file).
func (c *Cluster) dataNodeAddrs(ctx context.Context) error {
	var info struct {
		Beans []struct {
			LiveNodes string `json:"LiveNodes"`
		} `json:"beans"`
	}
	if err := c.jmx(ctx, "Hadoop:service=NameNode,name=NameNodeInfo", &info); err != nil {
		return fmt.Errorf("hdfscluster: %w", err)
	}
	var live map[string]struct {
		XferAddr string `json:"xferaddr"`
		UUID     string `json:"uuid"`
	}
	if err := json.Unmarshal([]byte(info.Beans[0].LiveNodes), &live); err != nil {
		return fmt.Errorf("hdfscluster: the NameNode's LiveNodes: %w", err)
	}
	for i, dn := range c.DataNodes {
		b, err := os.ReadFile(filepath.Join(c.dataDir(i), "current", "VERSION"))
		if err != nil {
			return fmt.Errorf("hdfscluster: datanode%d: %w", i, err)
		}
		uuid := ""
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "datanodeUuid="); ok {
				uuid = strings.TrimSpace(v)
			}
		}
		for _, n := range live {
			if n.UUID == uuid && uuid != "" {
				if _, port, err := net.SplitHostPort(n.XferAddr); err == nil {
					dn.Addr = net.JoinHostPort(c.cfg.Addr, port)
				}
			}
		}
		if dn.Addr == "" {
			return fmt.Errorf("hdfscluster: datanode%d (UUID %q) is not among the NameNode's live nodes %s", i, uuid, info.Beans[0].LiveNodes)
		}
	}
	return nil
}

// URI is the hdfs:// URI of path on this cluster.
func (c *Cluster) URI(path string) string {
	return "hdfs://" + c.NameNode + "/" + strings.TrimPrefix(path, "/")
}

// ConfDir is the directory of the cluster's core-site.xml and
// hdfs-site.xml (HADOOP_CONF_DIR for clients).
func (c *Cluster) ConfDir() string { return filepath.Join(c.cfg.Dir, "conf") }

func (c *Cluster) writeConf() error {
	conf := c.ConfDir()
	if err := os.MkdirAll(conf, 0o755); err != nil {
		return fmt.Errorf("hdfscluster: %w", err)
	}
	core := map[string]string{
		"fs.defaultFS":   "hdfs://" + c.NameNode,
		"hadoop.tmp.dir": filepath.Join(c.cfg.Dir, "tmp"),
	}
	site := map[string]string{
		"dfs.namenode.name.dir":                                "file://" + filepath.Join(c.cfg.Dir, "name"),
		"dfs.namenode.rpc-address":                             c.NameNode,
		"dfs.namenode.http-address":                            c.HTTP,
		"dfs.namenode.secondary.http-address":                  net.JoinHostPort(c.cfg.Addr, "0"),
		"dfs.replication":                                      strconv.Itoa(c.cfg.Replication),
		"dfs.permissions.enabled":                              "false",
		"dfs.namenode.datanode.registration.ip-hostname-check": "false",
		"dfs.heartbeat.interval":                               "1",
		// Out of safe mode at once: a fresh file system has no blocks.
		"dfs.namenode.safemode.threshold-pct":   "0",
		"dfs.namenode.safemode.extension":       "0",
		"dfs.namenode.safemode.min.datanodes":   "0",
		"dfs.namenode.fs-limits.min-block-size": "1024",
		// A new block may be asked for while the one before it is
		// committed but not yet reported by its DataNode (Hadoop's own
		// client retries addBlock on NotReplicatedYetException; the Go
		// client does not, and a busy machine delays the report).
		"dfs.namenode.file.close.num-committed-allowed": "1",
	}
	if c.cfg.BlockSize > 0 {
		site["dfs.blocksize"] = strconv.FormatInt(c.cfg.BlockSize, 10)
	}
	for k, v := range c.cfg.Props {
		site[k] = v
	}
	for name, props := range map[string]map[string]string{"core-site.xml": core, "hdfs-site.xml": site} {
		if err := os.WriteFile(filepath.Join(conf, name), distribution.SiteXML(props), 0o644); err != nil {
			return fmt.Errorf("hdfscluster: %w", err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(c.cfg.Home, "conf", "log4j.properties")); err == nil {
		if err := os.WriteFile(filepath.Join(conf, "log4j.properties"), b, 0o644); err != nil {
			return fmt.Errorf("hdfscluster: %w", err)
		}
	}
	return nil
}

func (c *Cluster) command(ctx context.Context, what string, heapMB int, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.cfg.Home, "bin", "hdfs"), append([]string{what}, args...)...)
	cmd.Env = append(os.Environ(),
		"HADOOP_CONF_DIR="+c.ConfDir(),
		"HADOOP_LOG_DIR="+filepath.Join(c.cfg.Dir, "logs"),
		fmt.Sprintf("HADOOP_OPTS=-Xms16m -Xmx%dm -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=32m -Xss512k", heapMB))
	cmd.Dir = c.cfg.Dir
	// Pdeathsig: a daemon dies with the process that started it, even
	// when that one is killed before it can stop the cluster.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

func (c *Cluster) start(name string, heapMB int, args ...string) (*daemon, error) {
	what := strings.TrimRight(name, "0123456789")
	log := filepath.Join(c.cfg.Dir, "logs", name+".log")
	if err := os.MkdirAll(filepath.Dir(log), 0o755); err != nil {
		return nil, fmt.Errorf("hdfscluster: %w", err)
	}
	f, err := os.Create(log)
	if err != nil {
		return nil, fmt.Errorf("hdfscluster: %w", err)
	}
	defer f.Close()
	d := &daemon{name: name, cmd: c.command(context.Background(), what, heapMB, args...), log: log, done: make(chan struct{})}
	d.cmd.Stdout, d.cmd.Stderr = f, f
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("hdfscluster: start the %s: %w", name, err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	return d, nil
}

// waitReady waits until the NameNode answers, is out of safe mode and
// counts every DataNode live; a daemon that exits meanwhile fails it with
// the end of its log.
func (c *Cluster) waitReady(ctx context.Context) error {
	for {
		for _, d := range c.daemons() {
			select {
			case <-d.done:
				return fmt.Errorf("hdfscluster: the %s exited (%v) before the cluster was ready; its log ends:\n%s", d.name, d.err, d.logTail())
			default:
			}
		}
		live, safe, err := c.Status(ctx)
		if err == nil && live == len(c.DataNodes) && !safe {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("hdfscluster: not ready in time (live DataNodes %d of %d, safe mode %v, last error %v); the NameNode's log ends:\n%s",
				live, len(c.DataNodes), safe, err, c.nn.logTail())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Status asks the NameNode (over its HTTP JMX) how many DataNodes are
// live and whether it is in safe mode.
func (c *Cluster) Status(ctx context.Context) (live int, safeMode bool, err error) {
	var state struct {
		Beans []struct {
			NumLiveDataNodes int `json:"NumLiveDataNodes"`
		} `json:"beans"`
	}
	if err := c.jmx(ctx, "Hadoop:service=NameNode,name=FSNamesystemState", &state); err != nil {
		return 0, true, err
	}
	live = state.Beans[0].NumLiveDataNodes
	var info struct {
		Beans []struct {
			Safemode string `json:"Safemode"`
		} `json:"beans"`
	}
	if err := c.jmx(ctx, "Hadoop:service=NameNode,name=NameNodeInfo", &info); err != nil {
		return live, true, err
	}
	return live, info.Beans[0].Safemode != "", nil
}

// jmx reads one bean of the NameNode's JMX into v, a struct whose Beans
// is a slice: an empty answer is an error.
func (c *Cluster) jmx(ctx context.Context, query string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.HTTP+"/jmx?qry="+query, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("NameNode JMX %s: HTTP %d", query, resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var n struct {
		Beans []json.RawMessage `json:"beans"`
	}
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("NameNode JMX %s: %w", query, err)
	}
	if len(n.Beans) == 0 {
		return fmt.Errorf("NameNode JMX %s: no such bean", query)
	}
	return json.Unmarshal(b, v)
}

func (c *Cluster) daemons() []*daemon {
	var ds []*daemon
	if c.nn != nil {
		ds = append(ds, c.nn)
	}
	for _, dn := range c.DataNodes {
		ds = append(ds, dn.d)
	}
	return ds
}

// Kill stops one DataNode with SIGKILL, as a crash would.
func (dn *DataNode) Kill() { dn.d.stop(syscall.SIGKILL) }

// Stop stops every daemon (SIGTERM, then SIGKILL after 10 s) and waits
// for them.
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for _, d := range c.daemons() {
		wg.Add(1)
		go func(d *daemon) { defer wg.Done(); d.stop(syscall.SIGTERM) }(d)
	}
	wg.Wait()
}

func (d *daemon) stop(sig syscall.Signal) {
	select {
	case <-d.done: // reaped: its pid may be another process's now
		return
	default:
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, sig)
	select {
	case <-d.done:
		return
	case <-time.After(10 * time.Second):
	}
	select {
	case <-d.done:
		return
	default:
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
	}
}

// Exited says which daemon has exited since the cluster started, if any:
// a cluster that keeps running needs every one.
func (c *Cluster) Exited() error {
	for _, d := range c.daemons() {
		select {
		case <-d.done:
			return fmt.Errorf("the %s exited (%v); its log ends:\n%s", d.name, d.err, d.logTail())
		default:
		}
	}
	return nil
}

func (d *daemon) logTail() string {
	b, _ := os.ReadFile(d.log)
	return tail(b)
}

// Logs is the end of every daemon's log, for a failed test to show.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, d := range c.daemons() {
		fmt.Fprintf(&b, "--- %s (%s)\n%s\n", d.name, d.log, d.logTail())
	}
	return b.String()
}

func tail(b []byte) string {
	const n = 4000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
