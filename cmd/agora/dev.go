package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/containerizer"
	"github.com/agora-cluster/agora/cluster/containerizer/docker"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/cluster/webui"
)

func init() {
	register(command{name: "dev", summary: "Run a whole dev cluster in one process: master, agents and the web UI", run: runDev, paced: true})
}

func runDev(args []string) int {
	fs := flag.NewFlagSet("agora dev", flag.ContinueOnError)
	var mf masterFlags
	mf.register(fs)
	agents := fs.Int("agents", 1, "number of agents; the machine's cpus, memory, disk and ports are split between them")
	resources := fs.String("resources", "", "resources of the whole dev cluster in Mesos syntax (default: detected), split between the agents")
	var iso isolationFlags // isolation.go
	iso.register(fs, "agora-dev")
	var hadoop devHadoop // hadoop_dev.go
	hadoop.register(fs)
	var spark devSpark // spark_dev.go
	spark.register(fs)
	services := []struct {
		name string
		svc  devService
	}{
		{"the services framework (Marathon)", &devMarathon{}},     // marathon_dev.go
		{"the scheduled-jobs framework (Chronos)", &devChronos{}}, // chronos.go
		{"the DNS resolver", &devDNS{}},                           // dns.go
		{"the Storm framework", &devStorm{}},                      // storm_dev.go
		{"the Cassandra framework", &devCassandra{}},              // cassandra_dev.go
	}
	for _, s := range services {
		s.svc.register(fs)
	}
	var secure devSecure // dev_secure.go
	secure.register(fs)
	dockerSocket := fs.String("docker_socket", docker.DefaultSocket, "the Docker Engine's socket: when an Engine answers there, the agents run tasks of container type DOCKER in it; \"\" runs none")
	home, _ := os.UserHomeDir()
	fs.Lookup("work_dir").DefValue = filepath.Join(home, ".agora", "dev")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: agora dev [--agents N] [flags]\n\n"+
			"Runs a master (with the web UI) and N agents in one process, on this machine's\n"+
			"resources, with the built-in Hadoop framework and services beside them: Marathon's\n"+
			"API on :8080, Chronos's on :4400, Mesos-DNS names on :8053 (API :8123); each port\n"+
			"flag set to 0 runs none. When a Docker Engine answers on --docker_socket, tasks and\n"+
			"apps of container type DOCKER run in it. State lives under --work_dir (default\n"+
			"~/.agora/dev).\n"+
			"With --port=0 the master and the agents bind free ports; the master's address\n"+
			"is printed on stderr as the line 'agora dev: listening on HOST:PORT'.\n\n"+
			"Example:\n  agora dev --agents 2\n  agora run -- echo hello   # in another terminal\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if mf.workDir == "" {
		mf.workDir = fs.Lookup("work_dir").DefValue
	}
	if *agents < 1 || *agents > 64 {
		fmt.Fprintf(os.Stderr, "agora dev: --agents=%d: choose between 1 and 64\n", *agents)
		return 2
	}
	logger := newLogger()
	if err := os.MkdirAll(mf.workDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "agora dev:", err)
		return 1
	}
	if err := secure.apply(&mf); err != nil {
		fmt.Fprintln(os.Stderr, "agora dev: --secure:", err)
		return 2
	}
	cfg, reg, code := mf.openRegistry("agora dev", filepath.Join(mf.workDir, "master", "registry.db"), logger)
	if code != 0 {
		return code
	}
	defer reg.Close()
	total, err := agent.DetectResources(*resources, mf.workDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora dev: --resources:", err)
		return 2
	}
	shares := splitResources(total, *agents)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := mf.listen("agora dev", &cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "agora dev: %v (is another agora running? try --port, or --port=0 for any free one)\n", err)
		return 1
	}
	masterAddr := net.JoinHostPort(mf.ip, strconv.Itoa(cfg.Port))
	// With TLS (--secure, or --ssl_cert_file), the agents and the built-in
	// services call the master over HTTPS, trusting --ssl_ca_file.
	var masterTLS *tls.Config
	if mf.http.serverTLS != nil {
		if masterTLS, err = mf.http.tls.Client(); err != nil {
			ln.Close()
			fmt.Fprintln(os.Stderr, "agora dev:", err)
			return 2
		}
		tlsconf.TrustProcessWide(masterTLS)
		masterAddr = "https://" + masterAddr
	}
	// The built-in services' APIs follow the master's security: its
	// credentials (--secure) and its certificate.
	svcSec, err := newDevServiceSecurity(&mf.http)
	if err != nil {
		ln.Close()
		fmt.Fprintln(os.Stderr, "agora dev:", err)
		return 2
	}
	m, err := master.New(cfg)
	if err != nil {
		ln.Close()
		fmt.Fprintln(os.Stderr, "agora dev:", err)
		return 1
	}
	// Each part stops on its own context, in order: the framework first
	// (its teardown kills its tasks), then the agents (which stop what
	// runs), then the master; each is waited for.
	masterCtx, stopMaster := context.WithCancel(context.Background())
	defer stopMaster()
	agentsCtx, stopAgents := context.WithCancel(context.Background())
	defer stopAgents()
	frameworkCtx, stopFrameworks := context.WithCancel(context.Background())
	defer stopFrameworks()
	masterDone := make(chan error, 1)
	go func() { masterDone <- serveMaster(masterCtx, m, ln, webui.Handler()) }()
	agentsDone := make(chan error, *agents)
	started := 0
	var containerizers []containerizer.Containerizer
	dockerC := devDocker(*dockerSocket, iso.cgroupsEnableCFS, logger) // agent_docker.go
	shutdown := func() {
		stopFrameworks()
		stopAgents()
		deadline := time.After(30 * time.Second)
	agents:
		for ; started > 0; started-- {
			select {
			case <-agentsDone:
			case <-deadline:
				logger.Warn("agents did not stop within 30 s", "left", started)
				break agents
			}
		}
		for _, c := range containerizers {
			closeContainerizer(c, logger)
		}
		if dockerC != nil {
			dockerC.Close()
		}
		stopMaster()
		select {
		case <-masterDone:
		case <-time.After(30 * time.Second):
			logger.Warn("the master did not stop within 30 s")
		}
	}

	var warnings []string
	agentAddrs := make([]string, *agents)
	for i := 0; i < *agents; i++ {
		port := mf.port + 1 + i
		if mf.port == 0 {
			port = 0 // each agent binds a free port of its own too
		}
		// Every agent weighs its root with the whole cluster's CPUs: the
		// agents share the parent, which should weigh them all.
		ctr, err := iso.containerizer(fmt.Sprintf("%s/agent%d", iso.cgroupsRoot, i), scalarSums(total)["cpus"], logger)
		if err != nil {
			fmt.Fprintln(os.Stderr, "agora dev:", err)
			shutdown()
			return 2
		}
		containerizers = append(containerizers, ctr)
		if i == 0 {
			logger.Info("task isolation", "isolation", describeIsolation(ctr))
		}
		acfg := agent.Config{
			MasterAddr:    masterAddr,
			WorkDir:       filepath.Join(mf.workDir, fmt.Sprintf("agent%d", i)),
			Listen:        net.JoinHostPort(mf.ip, strconv.Itoa(port)),
			Hostname:      cfg.Hostname,
			Resources:     api.FormatResources(shares[i]),
			Containerizer: ctr,
			Docker:        dockerC,
			Logger:        logger.With("agent", i),
			HTTP:          cfg.HTTP, // --cors_allowed_origins, --enable_pprof: the agents' too
			Credential:    secure.agent,
			ACLs:          cfg.ACLs, // the master's --acls: its agents' /files too
			TLS:           mf.http.serverTLS,
			// Executors get the CA and call their agent over TLS; plain
			// HTTP stays accepted beside it for the executors that do
			// not read LIBPROCESS_SSL_* (mesos-go's, those in Docker).
			TLSDowngrade: mf.http.serverTLS != nil,
			TLSCAFile:    mf.http.tls.CAFile,
			MasterTLS:    masterTLS,
			// With --secure, each executor's calls carry its own token.
			ExecutorSecretKey:         secure.executorKey,
			AuthenticateHTTPExecutors: secure.executorKey != nil,
		}
		acfg.HTTP.Auth = cfg.HTTP.Auth.Clone() // the same flags, counters of its own
		a, err := agent.New(acfg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "agora dev: agent %d: %v\n", i, err)
			shutdown()
			return 1
		}
		agentAddrs[i] = a.Addr()
		warnings = append(warnings, a.Warnings()...)
		started++
		go func() { agentsDone <- a.Run(agentsCtx) }()
	}
	hadoopLine, hadoopDone, err := hadoop.start(frameworkCtx, masterAddr, mf.ip, mf.workDir, secure.framework, svcSec, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora dev:", err)
		shutdown()
		return 1
	}
	sparkLine, sparkDone, err := spark.start(frameworkCtx, masterAddr, mf.ip, mf.workDir, secure.framework, svcSec, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora dev:", err)
		stopFrameworks()
		select {
		case <-hadoopDone:
		case <-time.After(30 * time.Second):
		}
		shutdown()
		return 1
	}
	// What runs beside the cluster, in the order it stops.
	running := []devRunning{{"the Hadoop framework", hadoopDone}, {"the Spark dispatcher", sparkDone}}
	waitStopped := func() {
		for _, r := range running {
			select {
			case <-r.done:
			case <-time.After(30 * time.Second):
				logger.Warn(r.name + " did not stop within 30 s")
			}
		}
	}
	lines := []string{hadoopLine, sparkLine, secure.lines(masterAddr)}
	if dockerC != nil {
		lines = append(lines, devDockerLine(*dockerSocket))
	}
	for _, s := range services {
		line, warning, done, err := s.svc.start(frameworkCtx, fs, masterAddr, mf.ip, mf.workDir, secure.framework, svcSec, logger)
		if err != nil {
			fmt.Fprintln(os.Stderr, "agora dev:", err)
			stopFrameworks()
			waitStopped()
			shutdown()
			return 1
		}
		running = append(running, devRunning{s.name, done})
		lines = append(lines, line)
		if warning != "" {
			warnings = append(warnings, warning)
		}
	}
	printDevBanner(masterAddr, agentAddrs, shares, dedupe(warnings), lines...)
	code = 0
	select {
	case <-ctx.Done():
		stop() // a second interrupt ends the process at once
		fmt.Fprintln(os.Stderr, "agora dev: stopping the frameworks, the agents and their tasks, then the master (interrupt again to quit at once)")
	case err := <-masterDone:
		masterDone <- err // shutdown waits for it too
		fmt.Fprintln(os.Stderr, "agora dev: the master stopped:", err)
		code = 1
	case err := <-agentsDone:
		started--
		fmt.Fprintln(os.Stderr, "agora dev: an agent stopped:", err)
		code = 1
	}
	stopFrameworks()
	waitStopped()
	shutdown()
	return code
}

// devService is a built-in service `agora dev` runs beside the cluster
// when its port flag is not 0, presenting cred to the master (none unless
// --secure) and securing its own API with svc: start returns the banner
// line that says
// where it answers ("" when disabled), a warning ("" when none) and a
// channel closed once it has stopped.
type devService interface {
	register(fs *flag.FlagSet)
	start(ctx context.Context, fs *flag.FlagSet, masterAddr, ip, workDir string, cred auth.Credential, svc devServiceSecurity, logger *slog.Logger) (line, warning string, done <-chan struct{}, err error)
}

// devRunning is something `agora dev` started beside the cluster, and the
// channel closed once it has stopped.
type devRunning struct {
	name string
	done <-chan struct{}
}

// splitResources divides scalars evenly and ranges into contiguous pieces.
func splitResources(total mesos.Resources, n int) []mesos.Resources {
	out := make([]mesos.Resources, n)
	for _, r := range total {
		switch r.GetType() {
		case mesos.SCALAR:
			v := r.GetScalar().GetValue() / float64(n)
			if r.Name == "cpus" {
				v = float64(int64(v*1000)) / 1000
			} else {
				v = float64(int64(v)) // whole megabytes
			}
			for i := range out {
				c := r
				c.Scalar = &mesos.Value_Scalar{Value: v}
				out[i] = append(out[i], c)
			}
		case mesos.RANGES:
			var all []uint64
			for _, rg := range r.GetRanges().GetRange() {
				for p := rg.Begin; p <= rg.End && len(all) < 1<<20; p++ {
					all = append(all, p)
				}
			}
			per := len(all) / n
			for i := range out {
				if per == 0 {
					break
				}
				end := (i + 1) * per
				if i == n-1 {
					end = len(all) // the last agent takes the remainder
				}
				part := all[i*per : end]
				c := r
				c.Ranges = &mesos.Value_Ranges{Range: mesos.NewRanges(part...)}
				out[i] = append(out[i], c)
			}
		default:
			for i := range out {
				out[i] = append(out[i], r)
			}
		}
	}
	return out
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func printDevBanner(masterAddr string, agentAddrs []string, shares []mesos.Resources, warnings []string, services ...string) {
	var b strings.Builder
	scheme := "http"
	if strings.HasPrefix(masterAddr, "https://") {
		scheme = "https"
	}
	url := scheme + "://" + strings.TrimPrefix(masterAddr, "https://")
	fmt.Fprintf(&b, "\nagora dev cluster is up\n\n")
	fmt.Fprintf(&b, "  web UI      %s\n", url)
	fmt.Fprintf(&b, "  scheduler   %s/api/v1/scheduler   (Mesos v1 scheduler API)\n", url)
	fmt.Fprintf(&b, "  state       %s/master/state\n", url)
	for i, addr := range agentAddrs {
		fmt.Fprintf(&b, "  agent %-5d %s://%s   %s\n", i, scheme, addr, shares[i].String())
	}
	for _, line := range services { // frameworks running in-process
		if line != "" {
			fmt.Fprintln(&b, line)
		}
	}
	for _, w := range warnings {
		fmt.Fprintf(&b, "\n  WARNING: %s\n", w)
	}
	fmt.Fprintf(&b, "\nTry, in another terminal:\n")
	fmt.Fprintf(&b, "  agora run -- echo hello\n  agora tasks\n  agora bench launch --tasks 1000\n\nCtrl-C stops the cluster.\n\n")
	fmt.Fprint(os.Stderr, b.String())
}
