package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/auth"
)

func init() {
	register(command{name: "agent", summary: "Run an agent (offers this machine's resources and runs tasks)", run: runAgent, paced: true})
}

// agentFlags are the agent's flags (Mesos's names), shared with `agora dev`.
type agentFlags struct {
	master, workDir, ip, hostname, resources, attributes string
	port                                                 int
	switchUser, keepTasks                                bool
	iso                                                  isolationFlags   // isolation.go
	dockerFetch                                          dockerFetchFlags // agent_docker.go
	executors                                            executorFlags    // agent_executors.go
	gc                                                   gcFlags          // agent_gc.go
	http                                                 httpFlags        // httpflags.go
	credential                                           string
	// Executor authentication (Mesos's names): the key executors' tokens
	// are signed with, and whether the executor API asks for them.
	jwtSecretKey  string
	authExecutors bool
	acls          string
}

func (f *agentFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.master, "master", "127.0.0.1:5050", "the master: host:port, or zk://host1:2181,host2:2181/path to follow the leader ZooKeeper names")
	fs.StringVar(&f.workDir, "work_dir", "", "directory for sandboxes (WORK_DIR/slaves) and checkpoints (WORK_DIR/meta); required.\nUse a directory that survives reboots, not /tmp")
	fs.StringVar(&f.ip, "ip", "127.0.0.1", "IP address to listen on; use this host's address (or 0.0.0.0) in a multi-machine cluster")
	fs.IntVar(&f.port, "port", 5051, "port to listen on; 0 picks a free one, and the agent advertises the port it bound")
	fs.StringVar(&f.hostname, "hostname", "", "hostname to report to the master (default: the machine's hostname)")
	fs.StringVar(&f.resources, "resources", "", "total resources, e.g. 'cpus:8;mem:16384;disk:100000;ports:[31000-32000]';\nresources not named are detected (cpus, mem, disk, ports)")
	fs.StringVar(&f.attributes, "attributes", "", "attributes frameworks can match on, e.g. 'rack:r1;zone:us-east'")
	fs.BoolVar(&f.switchUser, "switch_user", true, "when running as root, run each task as its framework's (or command's) user")
	fs.BoolVar(&f.keepTasks, "keep_tasks_on_stop", false, "leave tasks running when the agent stops; the next agent on the same --work_dir adopts them")
	f.iso.register(fs, "agora")
	f.dockerFetch.register(fs)
	f.executors.register(fs)
	f.gc.register(fs)
	f.http.register(fs)
	f.http.registerAgent(fs)
	fs.StringVar(&f.credential, "credential", "", "JSON file {\"principal\": ..., \"secret\": ...} this agent presents to the master (for --authenticate_agents)")
	fs.StringVar(&f.jwtSecretKey, "jwt_secret_key", "", "file of the key (at least 32 bytes without the trailing newline, e.g. head -c 32 /dev/urandom | base64 > FILE) the agent signs each executor's token with;\n"+
		"executors get theirs in MESOS_EXECUTOR_AUTHENTICATION_TOKEN and send it as 'Authorization: Bearer'")
	fs.StringVar(&f.jwtSecretKey, "executor_secret_key", "", "the same as --jwt_secret_key")
	fs.StringVar(&f.acls, "acls", "", "authorization of /files: Mesos's ACL JSON, or a file of it; access_sandboxes decides who reads which framework's sandbox (empty: everyone)")
	fs.BoolVar(&f.authExecutors, "authenticate_http_executors", false, "refuse executor API calls (/api/v1/executor) without a valid token of the executor they are for (needs --jwt_secret_key)")
}

func (f *agentFlags) config(logger *slog.Logger) (agent.Config, error) {
	if f.workDir == "" {
		return agent.Config{}, fmt.Errorf("--work_dir is required (sandboxes and the agent's checkpoint live there), e.g. --work_dir=/var/lib/agora/agent")
	}
	if f.port < 0 || f.port > 65535 {
		return agent.Config{}, fmt.Errorf("--port=%d is not a TCP port", f.port)
	}
	httpOpts, err := f.http.options()
	if err != nil {
		return agent.Config{}, err
	}
	credential, err := loadCredential(f.credential) // httpflags.go
	if err != nil {
		return agent.Config{}, err
	}
	// With TLS on (or a CA to verify it with), the master is called over
	// HTTPS too, as libprocess does once SSL is enabled.
	masterTLS, err := f.http.tls.Client()
	if err != nil {
		return agent.Config{}, err
	}
	var secretKey []byte
	switch {
	case f.jwtSecretKey != "":
		if secretKey, err = auth.LoadSecretKey(f.jwtSecretKey); err != nil {
			return agent.Config{}, fmt.Errorf("--jwt_secret_key: %w", err)
		}
		if _, err := auth.NewTokenSigner(secretKey); err != nil {
			return agent.Config{}, fmt.Errorf("--jwt_secret_key %s: %w", f.jwtSecretKey, err)
		}
	case f.authExecutors:
		return agent.Config{}, errors.New("--authenticate_http_executors needs --jwt_secret_key=FILE, the key executors' tokens are signed with")
	}
	var acls *auth.ACLs
	if f.acls != "" {
		if acls, err = auth.LoadACLs(f.acls); err != nil {
			return agent.Config{}, fmt.Errorf("--acls: %w", err)
		}
	}
	ctr, err := f.iso.containerizer(f.iso.cgroupsRoot, offeredCPUs(f.resources), logger)
	if err != nil {
		return agent.Config{}, err
	}
	cfg := agent.Config{
		MasterAddr:      f.master,
		WorkDir:         f.workDir,
		Listen:          net.JoinHostPort(f.ip, strconv.Itoa(f.port)),
		Hostname:        f.hostname,
		Resources:       f.resources,
		Attributes:      f.attributes,
		SwitchUser:      f.switchUser,
		KeepTasksOnStop: f.keepTasks,
		Containerizer:   ctr,
		Logger:          logger,
		HTTP:            httpOpts,
		Credential:      credential,
		TLS:             f.http.serverTLS,
		TLSDowngrade:    f.http.tls.Downgrade,
		TLSCAFile:       f.http.tls.CAFile,
		TLSCertFile:     f.http.tls.CertFile,
		TLSKeyFile:      f.http.tls.KeyFile,
		MasterTLS:       masterTLS,

		ACLs:                      acls,
		ExecutorSecretKey:         secretKey,
		AuthenticateHTTPExecutors: f.authExecutors,
	}
	f.executors.apply(&cfg) // agent_executors.go
	f.gc.apply(&cfg)        // agent_gc.go
	return cfg, nil
}

func runAgent(args []string) int {
	fs := flag.NewFlagSet("agora agent", flag.ContinueOnError)
	var af agentFlags
	af.register(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: agora agent --master=HOST:5050 --work_dir=DIR [flags]\n\n"+
			"Runs an agent: it registers this machine's resources with the master and runs the\n"+
			"tasks frameworks launch on them, each in a sandbox under --work_dir.\n\n"+
			"Once bound, it prints the line 'agora agent: listening on HOST:PORT' on stderr;\n"+
			"with --port=0 the system picks the port. Start an agent again on its --work_dir\n"+
			"with the same port: the executors it left running reconnect to that port.\n\n"+
			"Example:\n  agora agent --master=10.0.0.5:5050 --work_dir=/var/lib/agora/agent --ip=10.0.0.7 \\\n"+
			"      --resources='cpus:8;mem:16384' --attributes='rack:r1'\n\n"+
			"Then look at it: curl http://10.0.0.7:5051/state\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "agora agent: unexpected arguments %q (flags are written --name=value)\n", fs.Args())
		return 2
	}
	cfg, err := af.config(newLogger())
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora agent:", err)
		return 2
	}
	if err := af.dockerFetch.apply(&cfg, af.iso.containerizers, af.iso.cgroupsEnableCFS, cfg.Logger); err != nil { // agent_docker.go
		fmt.Fprintln(os.Stderr, "agora agent:", err)
		return 1
	}
	a, err := agent.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora agent:", err)
		return 1
	}
	// New bound the port: the one the agent advertises, --port=0 too.
	_, port, _ := net.SplitHostPort(a.Addr())
	fmt.Fprintf(os.Stderr, "agora agent: listening on %s\n", net.JoinHostPort(af.ip, port))
	defer closeContainerizer(cfg.Containerizer, cfg.Logger)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.Logger.Info("agent starting", "listen", a.Addr(), "master", cfg.MasterAddr, "work_dir", a.WorkDir(),
		"isolation", describeIsolation(cfg.Containerizer))
	for _, w := range a.Warnings() {
		cfg.Logger.Warn(w)
	}
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "agora agent:", err)
		return 1
	}
	return 0
}
