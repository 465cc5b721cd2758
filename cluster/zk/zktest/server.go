// Package zktest runs real ZooKeeper servers for tests: one, or an
// ensemble of three, on loopback, from the jar of Debian's zookeeper
// package (or the class path in AGORA_ZOOKEEPER_CLASSPATH). It also has a
// TCP proxy that tests freeze or cut to partition a client from its
// ensemble.
package zktest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/hosts"
	"github.com/agora-cluster/agora/cluster/clustertest/tier"
)

// DebianJar is where Debian's zookeeper package puts the server.
const DebianJar = "/usr/share/java/zookeeper.jar"

// ClassPath is the class path of the ZooKeeper server, or an error saying
// why there is none.
func ClassPath() (string, error) {
	if cp := os.Getenv("AGORA_ZOOKEEPER_CLASSPATH"); cp != "" {
		return cp, nil
	}
	if _, err := os.Stat(DebianJar); err != nil {
		return "", fmt.Errorf("no ZooKeeper server: %s is missing (make test-deps installs Debian's zookeeper package) and AGORA_ZOOKEEPER_CLASSPATH is unset", DebianJar)
	}
	return DebianJar, nil
}

// Need goes on with the test when a ZooKeeper server can run (java and
// the jar); otherwise it skips, or with CI=true fails, naming the tier.
func Need(t testing.TB) {
	t.Helper()
	err := tier.JavaErr()
	if err == nil {
		_, err = ClassPath()
	}
	tier.Need(t, tier.ZooKeeper, err)
}

// TickTime is the servers' tick: sessions may last 2 to 20 ticks, so
// tests can ask for session timeouts between 1 s and 10 s.
const TickTime = 500 * time.Millisecond

// Server is one running ZooKeeper server.
type Server struct {
	ID     int
	Addr   string // client address, 127.0.0.1:port
	dir    string
	cfg    string
	cp     string
	host   *hosts.Host // nil: the machine's loopback
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	logf   string
}

// Ensemble is a set of servers; Servers lists their client addresses.
type Ensemble struct {
	Servers []*Server
}

// Addrs is the client addresses, for a zk:// URL.
func (e *Ensemble) Addrs() []string {
	var out []string
	for _, s := range e.Servers {
		out = append(out, s.Addr)
	}
	return out
}

// URL is zk://addr1,addr2,.../path.
func (e *Ensemble) URL(path string) string {
	return "zk://" + strings.Join(e.Addrs(), ",") + "/" + strings.TrimPrefix(path, "/")
}

// Start runs an ensemble of n servers (1, or 3 for quorum tests) and
// waits until it serves; they are stopped when the test ends. A port
// taken by another process between picking and binding makes the start
// fail, and it is tried again with fresh ports.
func Start(t testing.TB, n int) *Ensemble {
	t.Helper()
	return startEnsemble(t, n, nil)
}

// StartOn runs one server on each of hs (hosts of a hosts.Net), on
// ZooKeeper's usual ports at each host's address.
func StartOn(t testing.TB, hs []*hosts.Host) *Ensemble {
	t.Helper()
	return startEnsemble(t, len(hs), hs)
}

func startEnsemble(t testing.TB, n int, hs []*hosts.Host) *Ensemble {
	t.Helper()
	Need(t)
	cp, _ := ClassPath()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		e, err := start(t, cp, n, hs)
		if err == nil {
			t.Cleanup(func() {
				for _, s := range e.Servers {
					s.Stop()
				}
			})
			return e
		}
		lastErr = err
		for _, s := range e.Servers {
			s.Stop()
		}
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("zktest: start %d ZooKeeper server(s): %v", n, lastErr)
	return nil
}

var errPortTaken = errors.New("port taken")

func start(t testing.TB, cp string, n int, hs []*hosts.Host) (*Ensemble, error) {
	ip := func(int) string { return "127.0.0.1" }
	var ports []int
	if hs != nil {
		// Each host is a network of its own: the usual ports are free.
		ip = func(i int) string { return hs[i].IP }
		for range n {
			ports = append(ports, 2181, 2888, 3888)
		}
	} else {
		var err error
		if ports, err = pickPorts(3 * n); err != nil {
			return &Ensemble{}, err
		}
	}
	base := t.TempDir()
	e := &Ensemble{}
	var servers strings.Builder
	if n > 1 {
		for i := 0; i < n; i++ {
			fmt.Fprintf(&servers, "server.%d=%s:%d:%d\n", i+1, ip(i), ports[3*i+1], ports[3*i+2])
		}
	}
	for i := 0; i < n; i++ {
		dir := filepath.Join(base, fmt.Sprintf("zk%d", i+1))
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
			return e, err
		}
		if err := os.WriteFile(filepath.Join(dir, "data", "myid"), []byte(fmt.Sprintf("%d\n", i+1)), 0o644); err != nil {
			return e, err
		}
		cfg := fmt.Sprintf("tickTime=%d\ninitLimit=20\nsyncLimit=10\ndataDir=%s\nclientPort=%d\nclientPortAddress=%s\nadmin.enableServer=false\n4lw.commands.whitelist=ruok,srvr,stat\nmaxClientCnxns=0\n%s",
			TickTime.Milliseconds(), filepath.Join(dir, "data"), ports[3*i], ip(i), servers.String())
		cfgPath := filepath.Join(dir, "zoo.cfg")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			return e, err
		}
		s := &Server{ID: i + 1, Addr: fmt.Sprintf("%s:%d", ip(i), ports[3*i]), dir: dir, cfg: cfgPath, cp: cp, logf: filepath.Join(dir, "server.log")}
		if hs != nil {
			s.host = hs[i]
		}
		e.Servers = append(e.Servers, s)
		if err := s.Start(); err != nil {
			return e, err
		}
	}
	for _, s := range e.Servers {
		if err := s.waitServing(2 * time.Minute); err != nil {
			return e, err
		}
	}
	return e, nil
}

// pickPorts finds n ports free at this moment. Another process may take
// one before the server binds it; Start then tries again.
func pickPorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// Start (re)starts the server process with its data directory kept.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("zookeeper %d is running", s.ID)
	}
	logf, err := os.OpenFile(s.logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	java := "java"
	if jh := os.Getenv("JAVA_HOME"); jh != "" {
		java = filepath.Join(jh, "bin", "java")
	}
	args := []string{"-Xmx128m", "-XX:+UseSerialGC", "-Dzookeeper.jmx.log4j.disable=true",
		"-cp", s.cp, "org.apache.zookeeper.server.quorum.QuorumPeerMain", s.cfg}
	cmd := exec.Command(java, args...)
	if s.host != nil {
		cmd = s.host.Command(java, args...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start zookeeper %d: %w", s.ID, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	return nil
}

// Stop kills the server (kill -9) and waits for it.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited: // reaped: its pid may be another process's group now
		return
	default:
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
	}
}

// Log is the server's output so far, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logf)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// waitServing waits until the server answers "imok" and serves a
// session (an ensemble member only does once a quorum formed), or its
// process exits.
func (s *Server) waitServing(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		exited := s.exited
		s.mu.Unlock()
		select {
		case <-exited:
			log := s.Log()
			if strings.Contains(log, "Address already in use") || strings.Contains(log, "BindException") {
				return fmt.Errorf("zookeeper %d: %w: %s", s.ID, errPortTaken, lastLine(log))
			}
			return fmt.Errorf("zookeeper %d exited: %s", s.ID, log)
		default:
		}
		if r, err := fourLetter(s.Addr, "srvr"); err == nil && strings.Contains(r, "Mode:") {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("zookeeper %d did not serve on %s within %s: %s", s.ID, s.Addr, limit, s.Log())
}

// Mode is "leader", "follower" or "standalone" from the server's srvr
// answer, or "" when it does not answer.
func (s *Server) Mode() string {
	r, err := fourLetter(s.Addr, "srvr")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(r, "\n") {
		if m, ok := strings.CutPrefix(l, "Mode: "); ok {
			return strings.TrimSpace(m)
		}
	}
	return ""
}

func fourLetter(addr, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return "", err
	}
	var b strings.Builder
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return b.String(), nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
