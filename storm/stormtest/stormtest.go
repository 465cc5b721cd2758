// Package stormtest runs a real Storm cluster for tests: a Nimbus and
// supervisors of `agora dist install storm` as local processes, against a
// ZooKeeper of zktest, each with its own storm.local.dir and ports, stopped
// (with the workers they launched) when the test ends.
package stormtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/zk/zktest"
	"github.com/agora-cluster/agora/dist/disttest"
	"github.com/agora-cluster/agora/storm/client"
)

// Cluster is a running Storm cluster.
type Cluster struct {
	Home   string // the Storm home the daemons run from
	Nimbus string // Nimbus's Thrift address, 127.0.0.1:PORT
	// Slots are each supervisor's worker ports.
	Slots [][]int
	dir   string
	procs []*Process
}

// Process is one Storm daemon.
type Process struct {
	Name   string
	Log    string // its output
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start runs ZooKeeper, a Nimbus and supervisors (each with slots worker
// ports) and waits until Nimbus lists every supervisor with its slots. A
// port taken by another process between picking and binding makes the
// start fail, and it is tried again on other ports.
func Start(t testing.TB, supervisors, slots int) *Cluster {
	t.Helper()
	zktest.Need(t)
	home := disttest.Home(t, "storm")
	zk := zktest.Start(t, 1)
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		c := &Cluster{Home: home, dir: t.TempDir()}
		err := c.start(zk.Addrs()[0], supervisors, slots)
		if err == nil {
			t.Cleanup(c.Stop)
			return c
		}
		c.Stop()
		last = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("stormtest: %v", last)
	return nil
}

var errPortTaken = errors.New("port taken")

func (c *Cluster) start(zkAddr string, supervisors, slots int) error {
	zkHost, zkPort, _ := strings.Cut(zkAddr, ":")
	first, _ := clustertest.PortRange(1 + supervisors*(1+slots))
	nimbusPort := first
	c.Nimbus = fmt.Sprintf("127.0.0.1:%d", nimbusPort)
	conf := filepath.Join(c.dir, "conf")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		return err
	}
	// The cluster's storm.yaml; each daemon's own keys come as -c options
	// (which a supervisor hands on to its workers).
	yaml := fmt.Sprintf(`storm.zookeeper.servers: ["%s"]
storm.zookeeper.port: %s
nimbus.seeds: ["127.0.0.1"]
nimbus.thrift.port: %d
storm.local.hostname: "127.0.0.1"
worker.heap.memory.mb: 256
topology.worker.max.heap.size.mb: 512
worker.childopts: "-Xmx%%HEAP-MEM%%m -XX:+UseSerialGC -Xss512k"
`, zkHost, zkPort, nimbusPort)
	if err := os.WriteFile(filepath.Join(conf, "storm.yaml"), []byte(yaml), 0o644); err != nil {
		return err
	}
	nimbus, err := c.daemon("nimbus", conf, "-c", "storm.local.dir="+filepath.Join(c.dir, "nimbus"))
	if err != nil {
		return err
	}
	port := nimbusPort + 1
	for i := 0; i < supervisors; i++ {
		supPort := port
		var ports []string
		var slotPorts []int
		for j := 0; j < slots; j++ {
			ports = append(ports, fmt.Sprint(port+1+j))
			slotPorts = append(slotPorts, port+1+j)
		}
		port += 1 + slots
		c.Slots = append(c.Slots, slotPorts)
		if _, err := c.daemon(fmt.Sprintf("supervisor%d", i+1), conf,
			"-c", "storm.local.dir="+filepath.Join(c.dir, fmt.Sprintf("supervisor%d", i+1)),
			"-c", fmt.Sprintf("supervisor.thrift.port=%d", supPort),
			"-c", "supervisor.slots.ports=["+strings.Join(ports, ",")+"]"); err != nil {
			return err
		}
	}
	return c.waitReady(nimbus, supervisors, slots, 3*time.Minute)
}

// daemon starts bin/storm CMD in its own process group (so that stopping
// it stops the workers a supervisor launched) with its output in a file.
func (c *Cluster) daemon(name, conf string, args ...string) (*Process, error) {
	cmdName := strings.TrimRight(name, "0123456789")
	logf := filepath.Join(c.dir, name+".log")
	f, err := os.Create(logf)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(c.Home, "bin", "storm"), append([]string{cmdName}, args...)...)
	cmd.Env = append(os.Environ(), "STORM_CONF_DIR="+conf,
		"STORM_LOG_DIR="+filepath.Join(c.dir, "logs-"+name),
		"STORM_JAR_JVM_OPTS=-Xmx384m -XX:+UseSerialGC")
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Log: logf, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.exited) }()
	c.procs = append(c.procs, p)
	return p, nil
}

// waitReady polls getClusterInfo until every supervisor is listed with
// its slots, or a daemon exits, or limit passes.
func (c *Cluster) waitReady(nimbus *Process, supervisors, slots int, limit time.Duration) error {
	cl, err := client.New(c.Nimbus, client.Options{CallTimeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(limit)
	var last string
	for time.Now().Before(deadline) {
		for _, p := range c.procs {
			select {
			case <-p.exited:
				log := p.Tail(4000)
				if strings.Contains(log, "BindException") || strings.Contains(log, "Address already in use") {
					return fmt.Errorf("%s: %w: %s", p.Name, errPortTaken, log)
				}
				return fmt.Errorf("%s exited: %s", p.Name, log)
			default:
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cs, err := cl.ClusterInfo(ctx)
		cancel()
		if err == nil {
			ready := 0
			for _, s := range cs.Supervisors {
				if int(s.NumWorkers) == slots {
					ready++
				}
			}
			if ready >= supervisors {
				return nil
			}
			last = fmt.Sprintf("%d of %d supervisors with %d slots", ready, supervisors, slots)
		} else {
			last = err.Error()
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("the cluster was not ready within %s (last: %s); nimbus: %s", limit, last, nimbus.Tail(3000))
}

// Tail is the end of the daemon's output, for failure messages.
func (p *Process) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// WorkerLogs is the end of every worker log the supervisors wrote, for
// failure messages.
func (c *Cluster) WorkerLogs(n int) string {
	logs, _ := filepath.Glob(filepath.Join(c.dir, "logs-supervisor*", "workers-artifacts", "*", "*", "worker.log"))
	var b strings.Builder
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		if len(data) > n {
			data = data[len(data)-n:]
		}
		fmt.Fprintf(&b, "== %s\n%s\n", l, data)
	}
	return b.String()
}

// Stop kills every daemon's process group (kill -9: the supervisors'
// workers too) and waits for them.
func (c *Cluster) Stop() {
	for _, p := range c.procs {
		select {
		case <-p.exited: // reaped: its pid may be another process's group now
			continue
		default:
		}
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	for _, p := range c.procs {
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
		}
	}
	c.procs = nil
}

// WorkerPIDs are the worker JVMs running topology id on slot port (not
// the LogWriter JVMs that start them), found by their command lines.
func WorkerPIDs(id string, port int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if slices.Contains(args, "org.apache.storm.daemon.worker.Worker") && !slices.Contains(args, "org.apache.storm.LogWriter") &&
			slices.Contains(args, id) && slices.Contains(args, strconv.Itoa(port)) {
			pids = append(pids, pid)
		}
	}
	return pids
}
