package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/agora-cluster/agora/cluster/agentsim"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/zk"
)

// Helpers of the benchmarks that run masters as child processes against
// simulated agents (bench failover, bench scale; bench crash logs as they
// do).

// benchLogger logs a benchmark's progress on stderr when verbose, else
// nowhere.
func benchLogger(verbose bool) *slog.Logger {
	var out io.Writer = io.Discard
	if verbose {
		out = os.Stderr
	}
	return slog.New(slog.NewTextHandler(out, nil))
}

// startFleet starts simulated agents as cfg says and waits, at most limit,
// until every one has registered. stop ends them and waits until they
// have; the caller calls it whatever the error.
func startFleet(ctx context.Context, cfg agentsim.Config, limit time.Duration) (fleet *agentsim.Fleet, stop func(), err error) {
	fctx, cancel := context.WithCancel(ctx)
	fleet, err = agentsim.Start(fctx, cfg)
	if err != nil {
		cancel()
		return nil, func() {}, err
	}
	stop = func() { cancel(); fleet.Wait() }
	err = waitCond(ctx, limit, "every agent to register", func() (bool, string) {
		n := fleet.Registered()
		return n == cfg.Agents, fmt.Sprintf("%d of %d registered", n, cfg.Agents)
	})
	return fleet, stop, err
}

// launchWorkers hands each queued launch to send from n goroutines until
// ctx ends: a framework's ACCEPTs go out from them so that its event
// stream is read on meanwhile (a framework that falls far behind is cut
// off).
func launchWorkers(ctx context.Context, n int, queue <-chan failoverLaunch, send func(failoverLaunch)) {
	for i := 0; i < n; i++ {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case l := <-queue:
					send(l)
				}
			}
		}()
	}
}

// simMaster is a master run as a child process, its output in a log file.
type simMaster struct {
	*childProc
	addr string
	log  string
}

func startSimMaster(bin, logPath string, args []string) (*simMaster, error) {
	p, from, err := startChild(bin, logPath, withPort(args, "0"))
	if err != nil {
		return nil, err
	}
	m := &simMaster{childProc: p, log: logPath}
	// It binds port 0 and says which port it got.
	deadline := time.Now().Add(time.Minute)
	for {
		b, _ := os.ReadFile(logPath)
		if int64(len(b)) > from {
			if addr, ok := listeningAddr(string(b[from:])); ok {
				m.addr = addr
				return m, nil
			}
		}
		if m.exited() || time.Now().After(deadline) {
			m.kill9()
			return nil, fmt.Errorf("agora master did not say where it listens (see %s)", logPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (m *simMaster) pid() int { return m.cmd.Process.Pid }

// kill9 kills the master with SIGKILL and waits until it is gone.
func (m *simMaster) kill9() error {
	if err := m.cmd.Process.Signal(syscall.SIGKILL); err != nil && !m.exited() {
		return err
	}
	select {
	case <-m.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("master pid %d still runs 10 s after SIGKILL", m.pid())
	}
}

// fleetFiles raises the open-file limit for a fleet of n simulated agents
// (this process holds a connection per agent, and so does the master, a
// child that inherits the limit) and refuses a fleet that cannot fit
// unless its agents multiplex their streams over HTTP/2.
func fleetFiles(n int, http2 bool, log *slog.Logger) error {
	want := uint64(n + 4096)
	if http2 {
		want = uint64(n/master.MaxStreamsPerConn*4 + 4096)
	}
	err := raiseNoFile(want)
	if err == nil {
		return nil
	}
	if http2 {
		log.Warn("raising the open-file limit", "err", err)
		return nil
	}
	return fmt.Errorf("%d agents need about %d open files in this process and in the master: %w; "+
		"--http2 multiplexes the agents over a few connections", n, want, err)
}

// raiseNoFile raises this process's open-file limit to at least n (soft
// and hard; raising the hard limit needs root), for the connections of
// many simulated agents. Child processes inherit it.
func raiseNoFile(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= n {
		return nil
	}
	want := syscall.Rlimit{Cur: n, Max: max(lim.Max, n)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		// Not root: go as far as the hard limit.
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		return fmt.Errorf("open-file limit: %d wanted, %d allowed: %w", n, lim.Max, err)
	}
	return nil
}

// procStatusMB reads a memory field of /proc/<pid>/status (VmRSS, VmHWM)
// in MB; pid 0 is this process.
func procStatusMB(pid int, field string) float64 {
	p := "/proc/self/status"
	if pid > 0 {
		p = fmt.Sprintf("/proc/%d/status", pid)
	}
	return kBFieldMB(p, field)
}

// memTotalBytes is the machine's memory (/proc/meminfo), 0 if unknown.
func memTotalBytes() int64 {
	return int64(kBFieldMB("/proc/meminfo", "MemTotal") * 1024 * 1024)
}

// kBFieldMB is a "Field:   N kB" line of a /proc file, in MB; 0 if absent.
func kBFieldMB(p, field string) float64 {
	f, err := os.Open(p)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times (100 on
// every Linux architecture agora runs on).
const clockTicks = 100

// procCPUSeconds is the CPU time (user + system) a process has used.
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis start with field 3.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return (utime + stime) / clockTicks, nil
}

var benchHTTP = &http.Client{Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// masterMetrics fetches a master's /metrics/snapshot (its own, not
// following a redirect).
func masterMetrics(addr string) (map[string]float64, error) {
	resp, err := benchHTTP.Get("http://" + addr + "/metrics/snapshot")
	if err != nil {
		return nil, err
	}
	return decodeMetrics(addr, resp)
}

// decodeMetrics reads a /metrics/snapshot answer and closes its body.
func decodeMetrics(addr string, resp *http.Response) (map[string]float64, error) {
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics/snapshot: %s", addr, resp.Status)
	}
	var m map[string]float64
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, fmt.Errorf("GET %s/metrics/snapshot: %w", addr, err)
	}
	return m, nil
}

// zkURLAt is u with its path replaced (credentials kept).
func zkURLAt(u zk.URL, p string) string {
	auth := ""
	if u.User != "" {
		auth = url.PathEscape(u.User) + ":" + url.PathEscape(u.Password) + "@"
	}
	return "zk://" + auth + strings.Join(u.Servers, ",") + p
}

// deleteZKTree removes the znode root and everything below it (a
// benchmark's election group and registry).
func deleteZKTree(u zk.URL, root string) error {
	conn, _, err := gozk.Connect(u.Servers, 10*time.Second, gozk.WithLogInfo(false), gozk.WithLogger(discardZKLog{}))
	if err != nil {
		return err
	}
	defer conn.Close()
	if u.User != "" {
		if err := conn.AddAuth("digest", []byte(u.User+":"+u.Password)); err != nil {
			return err
		}
	}
	var walk func(p string) error
	walk = func(p string) error {
		children, _, err := conn.Children(p)
		if err == gozk.ErrNoNode {
			return nil
		}
		if err != nil {
			return err
		}
		sort.Strings(children)
		for _, c := range children {
			if err := walk(path.Join(p, c)); err != nil {
				return err
			}
		}
		if err := conn.Delete(p, -1); err != nil && err != gozk.ErrNoNode {
			return err
		}
		return nil
	}
	return walk(root)
}

type discardZKLog struct{}

func (discardZKLog) Printf(string, ...any) {}

// percentile is the p-th percentile (0-100) of sorted xs, 0 for none.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

// round3 keeps three decimals, for tables and JSON.
func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }
