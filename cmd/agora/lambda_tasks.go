package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/lambda"
	"github.com/agora-cluster/agora/lambda/batch"
	"github.com/agora-cluster/agora/lambda/framework"
	"github.com/agora-cluster/agora/lambda/ingest"
	"github.com/agora-cluster/agora/lambda/pipeline"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/stormspeed"
	"github.com/agora-cluster/agora/lambda/view"
	stormclient "github.com/agora-cluster/agora/storm/client"
	"golang.org/x/sys/unix"
)

// upTasks are the flags of `agora lambda up --master`.
type upTasks struct {
	master         string
	hadoop         string // agora's Hadoop framework runs the batch jobs
	nimbus         string // a real Storm runs the speed layer's topology
	stormFramework bool   // agora's Storm framework runs it
	batchPause     time.Duration
	// cred and tls (of caFile) are what the framework presents to the
	// master and verifies it with; the speed task's topology, a
	// framework of its own, gets them through the work directory
	// (lambdaTaskSecurity).
	cred   auth.Credential
	caFile string
	tls    *tls.Config
}

// The files in the pipeline's work directory through which the speed
// task's Storm topology gets the master's credentials and CA: the secret
// never goes on a command line or into the task's environment (both are
// shown by the master and the agents), and the work directory is one
// every agent sees.
const (
	lambdaSecureDir  = ".secure"
	lambdaSecretFile = "master.secret"
	lambdaMasterCA   = "master-ca.pem"
)

// lambdaTaskSecurity writes o's secret and CA into the work directory dir
// and returns the speed task's flags that name them (none without them)
// and the files written, which `up` removes as it stops (nil without
// them).
func lambdaTaskSecurity(dir string, o upTasks) (args []string, files *privateFiles, err error) {
	if o.cred.Principal == "" && o.caFile == "" {
		return nil, nil, nil
	}
	var ca []byte
	if o.caFile != "" {
		if ca, err = os.ReadFile(o.caFile); err != nil {
			return nil, nil, fmt.Errorf("--ca_file: %w", err)
		}
	}
	files, err = openPrivateDir(filepath.Join(dir, lambdaSecureDir))
	if err != nil {
		return nil, nil, fmt.Errorf("the speed task's credentials in the work directory: %w", err)
	}
	defer func() {
		if err != nil {
			files.remove()
			files = nil
		}
	}()
	if o.cred.Principal != "" {
		p, err := files.write(lambdaSecretFile, []byte(o.cred.Secret+"\n"))
		if err != nil {
			return nil, nil, fmt.Errorf("the speed task's secret in the work directory: %w", err)
		}
		args = append(args, "--principal", o.cred.Principal, "--secret_file", p)
	}
	if ca != nil {
		p, err := files.write(lambdaMasterCA, ca)
		if err != nil {
			return nil, nil, fmt.Errorf("the speed task's CA in the work directory: %w", err)
		}
		args = append(args, "--ca_file", p)
	}
	return args, files, nil
}

// privateFiles are files of this user's only in a directory of this
// user's only, held open: every file is made, renamed and removed
// relative to the directory opened, so a symbolic link put in the
// directory's place afterwards sends nothing elsewhere.
type privateFiles struct {
	dir   *os.File
	names []string // written, in order
}

// openPrivateDir makes dir, or takes the one there, as a directory of
// this user's only (0700), and opens it. Anything else there is refused
// and left as it is: a symbolic link (which could send the secret
// elsewhere), a file, or a directory of another user. dir is opened
// without following a link and checked through the handle, so nothing
// swapped in between the check and the writes is used.
func openPrivateDir(dir string) (*privateFiles, error) {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		what := "not a directory"
		if fi, lerr := os.Lstat(dir); lerr == nil {
			what = fi.Mode().Type().String()
		}
		return nil, fmt.Errorf("%s is not a directory (%s): remove it, `up` makes it", dir, what)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	d := os.NewFile(uintptr(fd), dir)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		d.Close()
		return nil, &fs.PathError{Op: "fstat", Path: dir, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		d.Close()
		return nil, fmt.Errorf("%s is not a directory: remove it, `up` makes it", dir)
	}
	if int(st.Uid) != os.Getuid() {
		d.Close()
		return nil, fmt.Errorf("%s belongs to user %d, not to this user (%d): remove it, `up` makes it", dir, st.Uid, os.Getuid())
	}
	if err := unix.Fchmod(fd, 0o700); err != nil {
		d.Close()
		return nil, &fs.PathError{Op: "chmod", Path: dir, Err: err}
	}
	return &privateFiles{dir: d}, nil
}

// write writes b to the file name in the directory, readable by this user
// only, by a rename (a task reading it meanwhile sees the old file or the
// new one), and returns its path. The temporary file is a new one (never
// one already there, nor a link's target).
func (p *privateFiles) write(name string, b []byte) (string, error) {
	dfd := int(p.dir.Fd())
	var tmp string
	var fd int
	for range 100 {
		tmp = fmt.Sprintf("%s.%d.tmp", name, rand.Uint32())
		var err error
		fd, err = unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EEXIST) {
			return "", &fs.PathError{Op: "create", Path: filepath.Join(p.dir.Name(), tmp), Err: err}
		}
		fd = -1
	}
	if fd < 0 {
		return "", fmt.Errorf("%s: no free temporary name for %s", p.dir.Name(), name)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(p.dir.Name(), tmp))
	_, err := f.Write(b)
	if err == nil {
		err = f.Chmod(0o600) // whatever the umask
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if rerr := unix.Renameat(dfd, tmp, dfd, name); rerr != nil {
			err = &os.LinkError{Op: "rename", Old: tmp, New: filepath.Join(p.dir.Name(), name), Err: rerr}
		}
	}
	if err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return "", err
	}
	if !slices.Contains(p.names, name) {
		p.names = append(p.names, name)
	}
	return filepath.Join(p.dir.Name(), name), nil
}

// paths are the files written, by their paths.
func (p *privateFiles) paths() []string {
	var out []string
	for _, n := range p.names {
		out = append(out, filepath.Join(p.dir.Name(), n))
	}
	return out
}

// remove removes the files written, in the directory opened, and closes
// it; the errors but a file already gone are returned. Once is enough:
// another call does nothing.
func (p *privateFiles) remove() error {
	if p == nil || p.dir == nil {
		return nil
	}
	var errs []error
	for _, n := range p.names {
		if err := unix.Unlinkat(int(p.dir.Fd()), n, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, &fs.PathError{Op: "remove", Path: filepath.Join(p.dir.Name(), n), Err: err})
		}
	}
	p.names = nil
	errs = append(errs, p.dir.Close())
	p.dir = nil
	return errors.Join(errs...)
}

// lambdaUpTasks is `agora lambda up --master`: the broker (unless real
// ones are given) and the query API stay in this process, the layers run
// as tasks of a framework on the cluster.
func lambdaUpTasks(ctx context.Context, specPath string, o upTasks, cfg pipeline.Config, stdout, stderr io.Writer) int {
	master := o.master
	fail := func(err error) int {
		fmt.Fprintf(stderr, "agora lambda up: %v%s\n", err, masterCredentialsHint(master, err))
		return 1
	}
	// A Nimbus that does not answer ends `up` before anything is made,
	// naming it, rather than leaving the speed task to fail at every
	// launch.
	var nc *stormclient.Client
	if o.nimbus != "" {
		var err error
		if nc, err = nimbusClient(ctx, o.nimbus); err != nil {
			return fail(err)
		}
		defer nc.Close()
	}
	specPath, err := filepath.Abs(specPath)
	if err != nil {
		return fail(err)
	}
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(pipeline.DatasetDir(cfg.Dir), 0o755); err != nil {
		return fail(err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	brokers := cfg.Brokers
	if len(brokers) == 0 {
		fake, err := pipeline.StartBroker(cfg.Dir, cfg.BrokerAddr)
		if err != nil {
			return fail(err)
		}
		defer fake.Close()
		brokers = fake.ListenAddrs()
	}
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = ingest.EnsureTopics(tctx, brokers, cfg.Spec)
	cancel()
	if err != nil {
		return fail(err)
	}
	period := cfg.BatchPeriod
	if period == 0 {
		period = time.Duration(cfg.Spec.Batch.Period)
	}
	common := []string{specPath, "--brokers", strings.Join(brokers, ","), "--work_dir", cfg.Dir}
	speedArgs := common
	if len(cfg.Cassandra) > 0 {
		speedArgs = append(slices.Clip(speedArgs), "--cassandra", strings.Join(cfg.Cassandra, ","), "--cassandra_rf", strconv.Itoa(cfg.CassandraRF))
	}
	removeSecure := func() {}
	switch {
	case o.stormFramework:
		speedArgs = append(slices.Clip(speedArgs), "--storm_master", master)
		sec, files, err := lambdaTaskSecurity(cfg.Dir, o)
		if err != nil {
			return fail(err)
		}
		// The secret stays only while the pipeline runs: `down` (or an
		// interrupt) removes it before the query API stops answering.
		removeSecure = func() {
			if err := files.remove(); err != nil {
				fmt.Fprintln(stderr, "agora lambda up:", err)
			}
		}
		defer removeSecure()
		speedArgs = append(speedArgs, sec...)
	case o.nimbus != "":
		speedArgs = append(slices.Clip(speedArgs), "--nimbus", o.nimbus)
	}
	batchArgs := []string{specPath, "--work_dir", cfg.Dir, "--pause_before_swap", o.batchPause.String()}
	if o.hadoop != "" {
		batchArgs = append(batchArgs, "--hadoop", o.hadoop)
	}
	f, err := framework.New(framework.Config{
		Masters: []string{master}, Name: cfg.Spec.Name, Command: []string{exe, "lambda"}, Verbs: speedVerb(cfg.Spec),
		Args: map[string][]string{
			framework.Ingest: common,
			framework.Speed:  speedArgs,
			framework.Batch:  batchArgs,
		},
		// A master that cannot be reached for about half a minute ends
		// `up` (and so the pipeline) with an error naming it.
		MaxConnectFailures: 8,
		Log:                slog.New(slog.NewTextHandler(stderr, nil)),
		Principal:          o.cred.Principal, Secret: o.cred.Secret, TLS: o.tls,
	})
	if err != nil {
		return fail(err)
	}
	// `agora lambda down` ends ctx as an interrupt would.
	ctx, down := context.WithCancel(ctx)
	defer down()
	afterRun := func() {}
	api := &framework.API{F: f, Dir: cfg.Dir, Down: down, SpeedAddr: boltAddr(o.stormFramework || o.nimbus != "", cfg.Dir), Status: func(st *pipeline.Status) {
		st.Brokers, st.Embedded, st.BatchPeriodS = brokers, len(cfg.Brokers) == 0, period.Seconds()
	}}
	// The pipeline's page, following the tasks' status.
	api.Board = lambda.NewBoard(cfg.Spec, func() (lambda.Progress, error) {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		st, err := api.Current(sctx)
		if err == nil && st.SpeedError != "" {
			err = errors.New(st.SpeedError)
		}
		if err == nil && st.SpeedNext == nil {
			err = errors.New("no speed-layer task serves the views yet")
		}
		return pipeline.ProgressOf(st.Status), err
	})
	go api.Board.Watch(ctx)

	if nc != nil {
		name := stormspeed.TopologyName(cfg.Spec)
		api.Topology = func(ctx context.Context) stormspeed.Topology { return stormspeed.Describe(ctx, nc, name) }
		// The speed task kills its topology when it is killed; should
		// it have died first (kill -9, a lost agent), the topology would
		// outlive the pipeline: `up` kills what is left as it stops,
		// before its API goes (so `down` returns with the topology gone).
		afterRun = func() { killTopologyLeft(nc, name, cfg.Dir, stderr) }
	}
	ln, err := net.Listen("tcp", cfg.QueryAddr)
	if err != nil {
		return fail(fmt.Errorf("the query API on %s: %w", cfg.QueryAddr, err))
	}
	hs := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer func() {
		api.Board.Close() // the page's feeds end, so Shutdown need not wait for them
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		hs.Shutdown(sctx)
		cancel()
	}()
	spec := cfg.Spec
	fmt.Fprintf(stdout, "pipeline %s is up, its layers as tasks of framework lambda-%s on %s\n  send events to:  topic %s on %s (agora lambda send --brokers %s --topic %s)\n  query:           http://%s/v1/query?view=%s&key=... (agora lambda query --api %s)\n  page:            http://%s/ui/\n  dataset:         %s\n",
		spec.Name, spec.Name, master, spec.Input.Topic, strings.Join(brokers, ","), strings.Join(brokers, ","), spec.Input.Topic, ln.Addr(), spec.Views[0].Name, ln.Addr(), ln.Addr(), cfg.Dir)
	go func() {
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if _, _, err := api.RunBatch(ctx); err != nil && ctx.Err() == nil {
					fmt.Fprintln(stderr, "agora lambda up: batch run failed; the previous batch view stays:", err)
				}
			}
		}
	}()
	err = f.Run(ctx)
	afterRun()
	removeSecure()
	if err != nil {
		return fail(err)
	}
	return 0
}

// nimbusClient connects to the Nimbus of `up --nimbus` and checks that it
// answers.
func nimbusClient(ctx context.Context, addr string) (*stormclient.Client, error) {
	c, err := stormclient.New(addr, stormclient.Options{CallTimeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("--nimbus: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := c.ClusterInfo(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("--nimbus: the Nimbus at %s does not answer: %w", addr, err)
	}
	return c, nil
}

// killTopologyLeft kills the pipeline's topology on Nimbus if it still
// runs, waiting until it is gone (bounded), and says so.
func killTopologyLeft(c *stormclient.Client, name, workDir string, stderr io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	killed, err := stormspeed.KillOwn(ctx, c, name, workDir)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "agora lambda up: the speed layer's topology %s on Nimbus %s: %v\n", name, c.Addr(), err)
	case killed:
		fmt.Fprintf(stderr, "agora lambda up: the speed layer's topology %s is off Nimbus %s\n", name, c.Addr())
	}
}

// lambdaTask runs a layer task's function until SIGTERM (the agent's kill).
func lambdaTask(run func(context.Context, []string, io.Writer) int) func([]string) int {
	return func(args []string) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return run(ctx, args, os.Stderr)
	}
}

// lambdaTaskFlags are a layer task's flags; each task adds its own.
type lambdaTaskFlags struct {
	name    string
	fs      *flag.FlagSet
	brokers *string
	dir     *string
	stderr  io.Writer
	spec    string // the spec's path, once parsed
}

func newLambdaTaskFlags(name string, stderr io.Writer) *lambdaTaskFlags {
	fs := flag.NewFlagSet("agora lambda "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &lambdaTaskFlags{name: name, fs: fs, stderr: stderr,
		brokers: fs.String("brokers", "", "the Kafka bootstrap servers"),
		dir:     fs.String("work_dir", "", "the pipeline's work directory, shared by its tasks (required)")}
}

// parse reads SPEC and the flags; code is the exit code when !ok.
func (t *lambdaTaskFlags) parse(args []string, needBrokers bool) (spec *plan.Spec, code int, ok bool) {
	pos, code, done := parseInterspersed(t.fs, args)
	if done {
		return nil, code, false
	}
	if len(pos) != 1 || *t.dir == "" || (needBrokers && *t.brokers == "") {
		fmt.Fprintf(t.stderr, "agora lambda %s: give the pipeline spec, --work_dir and --brokers (`agora lambda up --master` launches this task)\n", t.name)
		return nil, 2, false
	}
	spec, err := readSpec(pos[0])
	if err != nil {
		fmt.Fprintf(t.stderr, "agora lambda %s: %v\n", t.name, err)
		return nil, 2, false
	}
	t.spec = pos[0]
	return spec, 0, true
}

func lambdaIngestTask(ctx context.Context, args []string, stderr io.Writer) int {
	t := newLambdaTaskFlags("ingest", stderr)
	spec, code, ok := t.parse(args, true)
	if !ok {
		return code
	}
	if err := pipeline.RunIngest(ctx, spec, strings.Split(*t.brokers, ","), *t.dir, slog.New(slog.NewTextHandler(stderr, nil))); err != nil {
		fmt.Fprintln(stderr, "agora lambda ingest:", err)
		return 1
	}
	return 0
}

func lambdaSpeedTask(ctx context.Context, args []string, stderr io.Writer) int {
	t := newLambdaTaskFlags("speed", stderr)
	api := t.fs.String("api", "127.0.0.1:0", "the query API's address")
	cassandra := t.fs.String("cassandra", "", "Cassandra addresses (HOST:9042,...) that keep the batch views; none keeps them in memory")
	cassandraRF := t.fs.Int("cassandra_rf", 1, "the replication factor of the batch views' keyspace")
	spec, code, ok := t.parse(args, true)
	if !ok {
		return code
	}
	cfg := pipeline.SpeedConfig{Spec: spec, Brokers: strings.Split(*t.brokers, ","), Dir: *t.dir, Addr: *api,
		CassandraRF: *cassandraRF, Log: slog.New(slog.NewTextHandler(stderr, nil))}
	if *cassandra != "" {
		cfg.Cassandra = strings.Split(*cassandra, ",")
	}
	err := pipeline.RunSpeed(ctx, cfg)
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "agora lambda speed:", err)
		return 1
	}
	return 0
}

func lambdaRecomputeTask(ctx context.Context, args []string, stderr io.Writer) int {
	t := newLambdaTaskFlags("recompute", stderr)
	pause := t.fs.Duration("pause_before_swap", 0, "hold the finished view this long before writing it (for fault tests)")
	hadoop := t.fs.String("hadoop", "", "run the job on agora's Hadoop framework at this HOST:PORT instead of in this process")
	spec, code, ok := t.parse(args, false)
	if !ok {
		return code
	}
	start := time.Now()
	var b *view.Batch
	var err error
	if *hadoop != "" {
		var exe, specPath, jobID string
		if exe, err = os.Executable(); err == nil {
			specPath, err = filepath.Abs(t.spec)
		}
		if err == nil {
			b, jobID, err = pipeline.HadoopJob{Spec: spec, SpecPath: specPath, Dir: *t.dir, Hadoop: *hadoop, Exe: exe, Pause: *pause}.Run(ctx)
		}
		if jobID != "" {
			fmt.Fprintf(stderr, "agora lambda recompute: Hadoop job %s\n", jobID)
		}
	} else {
		b, err = pipeline.RunBatchJob(ctx, spec, *t.dir, *pause)
	}
	if err != nil {
		fmt.Fprintln(stderr, "agora lambda recompute:", err)
		return 1
	}
	fmt.Fprintf(stderr, "agora lambda recompute: batch view of %d rows up to %v in %s\n", len(b.Rows), b.Watermark, time.Since(start).Round(time.Millisecond))
	return 0
}

func lambdaMap(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora lambda map", flag.ContinueOnError)
	fs.SetOutput(stderr)
	wmFlag := fs.String("watermark", "", "PARTITION=OFFSET,...: the events below it are mapped")
	pos, code, done := parseInterspersed(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "agora lambda map: give the pipeline spec (a Streaming mapper of `agora lambda recompute --hadoop`)")
		return 2
	}
	spec, err := readSpec(pos[0])
	if err != nil {
		fmt.Fprintln(stderr, "agora lambda map:", err)
		return 2
	}
	wm, err := batch.ParseWatermark(*wmFlag)
	if err != nil {
		fmt.Fprintln(stderr, "agora lambda map:", err)
		return 2
	}
	// Streaming names the split's file in the task's environment.
	file := os.Getenv("mapreduce_map_input_file")
	if file == "" {
		file = os.Getenv("map_input_file")
	}
	if err := batch.Map(spec, wm, file, stdin, stdout); err != nil {
		fmt.Fprintln(stderr, "agora lambda map:", err)
		return 1
	}
	return 0
}

func lambdaReduce(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "agora lambda reduce: takes no arguments (a Streaming reducer of `agora lambda recompute --hadoop`)")
		return 2
	}
	if err := batch.Reduce(stdin, stdout); err != nil {
		fmt.Fprintln(stderr, "agora lambda reduce:", err)
		return 1
	}
	return 0
}

// lambdaStormSpeed runs the speed layer as a topology on the native Storm
// runtime (in this process, or on agora's Storm framework), or on a real
// Storm's Nimbus; its components are this binary's storm-spout and
// storm-bolt.
func lambdaStormSpeed(ctx context.Context, args []string, stderr io.Writer) int {
	t := newLambdaTaskFlags("storm-speed", stderr)
	api := t.fs.String("api", "127.0.0.1:0", "the counting bolt's query API address")
	cassandra := t.fs.String("cassandra", "", "Cassandra addresses (HOST:9042,...) that keep the batch views; none keeps them in memory")
	cassandraRF := t.fs.Int("cassandra_rf", 1, "the replication factor of the batch views' keyspace")
	stormMaster := t.fs.String("storm_master", "", "submit the topology to agora's Storm framework on this master (its worker a task\nof agora-storm-native) instead of running it in this process; the bolt then\nlistens on --bolt_api and writes its address to the work directory")
	nimbus := t.fs.String("nimbus", "", "submit the topology to the real Storm whose Nimbus is at HOST:PORT and kill it\nthere when this process ends (one of this pipeline's left there is killed and\nreplaced; another pipeline's of the same name is left alone); its workers run\nthis binary, the spec and --work_dir at the same paths, and the bolt listens on\n--bolt_api and writes its address to the work directory")
	boltAPI := t.fs.String("bolt_api", "127.0.0.1:0", "with --storm_master or --nimbus: the bolt's query API address")
	var master stormTarget
	master.opts.registerCredential(t.fs)
	t.fs.StringVar(&master.opts.caFile, "ca_file", "", "with --storm_master: PEM file of the CA that signed the master's certificate\n"+
		"(`agora lambda up` passes a copy of its own --ca_file; default: the system's roots, or the CA of\n"+
		"LIBPROCESS_SSL_CA_FILE when the task inherits it from its agent's environment)")
	spec, code, ok := t.parse(args, true)
	if !ok {
		return code
	}
	exe, err := os.Executable()
	if err == nil {
		t.spec, err = filepath.Abs(t.spec)
	}
	if err == nil {
		// The components run in the topology's resources directory.
		*t.dir, err = filepath.Abs(*t.dir)
	}
	if err == nil && *stormMaster != "" && *nimbus != "" {
		fmt.Fprintln(stderr, "agora lambda storm-speed: give --storm_master or --nimbus, not both")
		return 2
	}
	cfg := stormspeed.Config{Spec: spec, SpecPath: t.spec, Brokers: strings.Split(*t.brokers, ","), WorkDir: *t.dir, Addr: *api,
		Cassandra: splitList(*cassandra), CassandraRF: *cassandraRF, Exe: exe, Stderr: stderr, Log: slog.New(slog.NewTextHandler(stderr, nil))}
	if err == nil && *stormMaster != "" {
		cfg.Addr = *boltAPI
		top, path, yaml, err := stormspeed.Resources(cfg)
		if err != nil {
			fmt.Fprintln(stderr, "agora lambda storm-speed:", err)
			return 1
		}
		master.master = *stormMaster
		// The control port speaks plain HTTP whatever LIBPROCESS_SSL_*
		// the task inherits from its agent, and serves no page: its
		// changes are refused, the pipeline runs the topology.
		ns, err := master.nativeSecurity(nil, nil)
		if err != nil {
			fmt.Fprintln(stderr, "agora lambda storm-speed:", err)
			return 2
		}
		ns.managedBy = "the pipeline " + spec.Name + " (agora lambda up)"
		// Blocks while the topology runs; SIGTERM (this task's kill)
		// kills the topology.
		return nativeSubmitPage(ns, *stormMaster, path, yaml, "", top, nil, "", 0.5, 256, stderr, stderr)
	}
	switch {
	case err == nil && *nimbus != "":
		cfg.Addr = *boltAPI
		err = stormspeed.RunOnNimbus(ctx, cfg, *nimbus)
	case err == nil:
		err = stormspeed.Run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(stderr, "agora lambda storm-speed:", err)
		return 1
	}
	return 0
}

// lambdaStormComponent runs the spout or the bolt of storm-speed: stdin
// and stdout are its multilang protocol, stderr its log.
func lambdaStormComponent(name string, args []string) int {
	t := newLambdaTaskFlags(name, os.Stderr)
	api := t.fs.String("api", "127.0.0.1:0", "the bolt's query API address")
	cassandra := t.fs.String("cassandra", "", "the bolt's Cassandra addresses (HOST:9042,...) for the batch views")
	cassandraRF := t.fs.Int("cassandra_rf", 1, "the replication factor of the batch views' keyspace")
	spec, code, ok := t.parse(args, name == "storm-spout")
	if !ok {
		return code
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var err error
	if name == "storm-spout" {
		err = stormspeed.RunSpout(stormspeed.SpoutConfig{Spec: spec, Brokers: strings.Split(*t.brokers, ","), WorkDir: *t.dir, Log: log}, os.Stdin, os.Stdout)
	} else {
		err = stormspeed.RunBolt(stormspeed.BoltConfig{Spec: spec, WorkDir: *t.dir, Addr: *api,
			Cassandra: splitList(*cassandra), CassandraRF: *cassandraRF, Log: log}, os.Stdin, os.Stdout)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "agora lambda %s: %v\n", name, err)
		return 1
	}
	return 0
}

// speedVerb runs the speed-layer task as the Storm topology when the spec
// says layers.speed: storm.
func speedVerb(spec *plan.Spec) map[string]string {
	if spec.Layers.Speed == "storm" {
		return map[string]string{framework.Speed: "storm-speed"}
	}
	return nil
}

// boltAddr is where queries go when the speed layer's topology runs on
// agora's Storm framework: its bolt's address, which the bolt writes to
// the work directory (nil otherwise: the speed task's).
func boltAddr(stormFramework bool, dir string) func() string {
	if !stormFramework {
		return nil
	}
	return func() string {
		b, _ := os.ReadFile(stormspeed.AddrFile(dir))
		return strings.TrimSpace(string(b))
	}
}
