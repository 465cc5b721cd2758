package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/dist"
	"github.com/agora-cluster/agora/storm/framework"
	"github.com/agora-cluster/agora/storm/plan"
)

// stormRuntimeDefault decides the runtime of an `agora storm submit`
// whose --runtime was not given. A Nimbus named (--nimbus or
// AGORA_STORM_NIMBUS) or a Storm home (--storm_home, or `agora dist
// install storm` done) means real Storm, as before; with neither there is
// no Storm to submit to, so the topology runs on the native runtime on the
// cluster of --master (AGORA_MASTER, default agora dev's). why says so,
// for stderr; it is empty when real Storm is chosen.
func stormRuntimeDefault(nimbusNamed bool, home, master string) (runtime, why string) {
	if nimbusNamed || home != "" {
		return "storm", ""
	}
	return "native", fmt.Sprintf("no Storm distribution is installed (agora dist install storm) and no --nimbus given: "+
		"running the topology on agora's native runtime on the cluster of %s (--runtime storm to submit to a Nimbus)", master)
}

// stormDevLine is `agora dev`'s banner line for Storm: which runtime
// `agora storm submit` takes against the dev cluster.
func stormDevLine() string {
	if home := defaultStormHome(); home != "" {
		return "  storm       agora storm submit TOPOLOGY.yaml|JAR   (real Storm from " + home + ": `agora dev --storm` runs it, or start `agora storm scheduler`; --runtime native for no JVM)"
	}
	return "  storm       agora storm submit TOPOLOGY.yaml   (native runtime: no Storm distribution installed)"
}

// stormDevSecureLine is the banner's hint, when the dev cluster speaks
// TLS, to serve a native topology's control port with the dev
// certificate: `agora dev` does not submit topologies, the user's `agora
// storm submit` does, so it is told the files ("" without TLS).
func stormDevSecureLine(sec devServiceSecurity) string {
	if sec.tls == nil || sec.certFile == "" {
		return ""
	}
	// A credentials file, not --http_credentials USER:PASSWORD, which
	// any local user would read in the process list.
	creds := "--credentials=FILE (the master's --credentials format)"
	if sec.credsFile != "" {
		creds = "--credentials=" + sec.credsFile
	}
	return "\n              --runtime native: add --ssl_cert_file=" + sec.certFile + " --ssl_key_file=" + sec.keyFile + "\n" +
		"              and " + creds + " to serve its control port over TLS behind credentials"
}

// devStorm runs real Storm inside `agora dev` with --storm: a ZooKeeper
// (Debian's zookeeper package, or AGORA_ZOOKEEPER_CLASSPATH) as a child
// process, unless --storm_zookeeper names one, and the Storm framework
// in-process, which launches Nimbus as a task and supervisors as
// topologies ask for workers. It is off by default: ZooKeeper and Nimbus
// are two JVMs that take a gigabyte and more of the cluster's memory and
// tens of seconds to start, which `agora dev` without Storm must not pay;
// without it the banner names the runtime `agora storm submit` takes.
type devStorm struct {
	on bool
	zk string
}

func (d *devStorm) register(fs *flag.FlagSet) {
	fs.BoolVar(&d.on, "storm", false, "run real Storm (`agora dist install storm`, installed if missing): a ZooKeeper, and Nimbus as a task;\n"+
		"`agora storm submit|list --master` finds it")
	fs.StringVar(&d.zk, "storm_zookeeper", "", "with --storm: Storm's ZooKeeper servers, HOST:PORT,... (default: start one, from "+zooKeeperJar+")")
}

// zooKeeperJar is where Debian's zookeeper package puts the server.
const zooKeeperJar = "/usr/share/java/zookeeper.jar"

// devStormSizes fit Nimbus and a supervisor with a worker slot on a
// dev cluster of two cpus (Storm's own sizes, a cpu a slot and a cpu for
// Nimbus, would leave no room for the supervisor).
var devStormSizes = map[string]string{
	plan.KeyNimbusCPU: "0.5", plan.KeyNimbusMem: "768",
	plan.KeyExecutorCPU: "0.1", plan.KeyExecutorMem: "256",
	plan.KeyWorkerCPU: "0.5", plan.KeyWorkerMem: "512",
}

// devStormNimbusWait bounds the wait for the Nimbus task to answer before
// the banner is printed.
const devStormNimbusWait = 3 * time.Minute

func (d *devStorm) start(ctx context.Context, fs *flag.FlagSet, masterAddr, ip, workDir string, cred auth.Credential, sec devServiceSecurity, logger *slog.Logger) (line, warning string, done <-chan struct{}, err error) {
	stopped := make(chan struct{})
	if !d.on {
		if d.zk != "" {
			return "", "", nil, errors.New("storm: --storm_zookeeper needs --storm")
		}
		close(stopped)
		return stormDevLine() + stormDevSecureLine(sec), "", stopped, nil
	}
	// ctx ends when agora dev stops, which it does only after its banner;
	// an interrupt must end the waits below before that (agora dev's own
	// handler sees it too, and stops once they have returned).
	waitCtx, stopWaiting := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopWaiting()
	spec, _ := dist.Resolve("storm")
	home, err := dist.Installer{Log: logWriter{logger}}.Install(waitCtx, spec)
	if err != nil {
		return "", "", nil, fmt.Errorf("storm: %v (or run without --storm)", err)
	}
	host := ip
	if a := net.ParseIP(ip); a == nil || a.IsUnspecified() {
		host = "127.0.0.1"
	}
	var zk *devZooKeeper
	zks := d.zk
	if zks == "" {
		if zk, err = startDevZooKeeper(waitCtx, host, filepath.Join(workDir, "storm", "zookeeper")); err != nil {
			return "", "", nil, fmt.Errorf("storm: %v (or --storm_zookeeper HOST:PORT, or run without --storm)", err)
		}
		zks = zk.addr
	}
	settings, err := plan.From(devStormSizes)
	if err != nil {
		zk.stop()
		return "", "", nil, err
	}
	nimbus := make(chan string, 1)
	fw, err := framework.New(framework.Config{
		Masters: []string{masterAddr}, Settings: settings, Home: home, ZooKeeper: strings.Split(zks, ","),
		OnNimbus: func(addr string) {
			select {
			case nimbus <- addr:
			default:
			}
		},
		Logger:    logger.With("framework", "storm"),
		Principal: cred.Principal, Secret: cred.Secret,
	})
	if err != nil {
		zk.stop()
		return "", "", nil, err
	}
	ended := make(chan struct{})
	go func() {
		defer close(stopped)
		if err := fw.Run(ctx); err != nil && ctx.Err() == nil {
			logger.Error("the Storm framework stopped", "err", err)
		}
		close(ended)
		zk.stop() // after the framework: its teardown has had Nimbus killed
	}()
	logger.Info("storm: waiting for the Nimbus task to answer", "zookeeper", zks, "home", home)
	addr := "(not answering yet)"
	select {
	case addr = <-nimbus:
	case <-ended:
		warning = "the Storm framework stopped before Nimbus answered; see the log"
	case <-waitCtx.Done():
	case <-time.After(devStormNimbusWait):
		warning = fmt.Sprintf("Storm's Nimbus task did not answer within %s; `agora storm list --master %s` finds it once it does", devStormNimbusWait, masterAddr)
	}
	return fmt.Sprintf("  storm       nimbus %s   (real Storm from %s, ZooKeeper %s: agora storm submit|list --master %s ...)", addr, home, zks, masterAddr),
		warning, stopped, nil
}

// devZooKeeper is the ZooKeeper server `agora dev --storm` runs as a child
// process, in a process group of its own, killed with agora dev.
type devZooKeeper struct {
	addr   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// startDevZooKeeper starts a standalone ZooKeeper on a free port of host,
// its data (emptied first: Storm's state there is of an earlier Nimbus) and
// its log under dir, and waits until it serves.
func startDevZooKeeper(ctx context.Context, host, dir string) (*devZooKeeper, error) {
	cp := os.Getenv("AGORA_ZOOKEEPER_CLASSPATH")
	if cp == "" {
		if _, err := os.Stat(zooKeeperJar); err != nil {
			return nil, fmt.Errorf("no ZooKeeper server to start: %s is missing (install Debian's zookeeper package) and AGORA_ZOOKEEPER_CLASSPATH is unset", zooKeeperJar)
		}
		cp = zooKeeperJar
	}
	java := "java"
	if jh := os.Getenv("JAVA_HOME"); jh != "" {
		java = filepath.Join(jh, "bin", "java")
	}
	if _, err := exec.LookPath(java); err != nil {
		return nil, fmt.Errorf("ZooKeeper needs Java: %v", err)
	}
	os.RemoveAll(filepath.Join(dir, "data"))
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	l.Close()
	cfg := fmt.Sprintf("tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%s\nclientPortAddress=%s\n"+
		"admin.enableServer=false\n4lw.commands.whitelist=ruok,srvr,stat\nmaxClientCnxns=0\n", filepath.Join(dir, "data"), port, host)
	cfgPath := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "zookeeper.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(java, "-Xmx128m", "-XX:+UseSerialGC", "-Dzookeeper.jmx.log4j.disable=true",
		"-cp", cp, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own group, so a terminal's Ctrl-C reaches agora dev only, which
	// stops it after Storm; killed with agora dev should that die first.
	// Pdeathsig fires when the OS thread that forked the child ends, not
	// the process: the child is started from a goroutine locked to its
	// thread, which stays until the child has exited.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	z := &devZooKeeper{addr: addr, cmd: cmd, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine, after the child
		defer close(z.exited)
		defer logf.Close()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start ZooKeeper: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for !zooKeeperServes(addr) {
		select {
		case <-z.exited:
			return nil, fmt.Errorf("ZooKeeper exited (%v): see %s", cmd.ProcessState, logPath)
		case <-ctx.Done():
			z.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			z.stop()
			return nil, fmt.Errorf("ZooKeeper did not serve on %s within a minute: see %s", addr, logPath)
		}
	}
	return z, nil
}

// zooKeeperServes asks the server's srvr command whether it serves.
func zooKeeperServes(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return false
	}
	b, _ := io.ReadAll(c)
	return strings.Contains(string(b), "Mode:")
}

// stop kills the server's group and waits for it (nil: none started).
func (z *devZooKeeper) stop() {
	if z == nil {
		return
	}
	select {
	case <-z.exited: // reaped: its pid may be another process's group now
		return
	default:
	}
	syscall.Kill(-z.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-z.exited:
	case <-time.After(30 * time.Second):
	}
}
