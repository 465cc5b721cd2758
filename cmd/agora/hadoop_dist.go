package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/hadoop/distribution"
)

func init() {
	hadoopCommands["tasktrackers"] = command{
		name:    "tasktrackers",
		summary: "Run a Hadoop 1.x distribution's TaskTrackers for your JobTracker",
		run: func(args []string) int {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return hadoopTaskTrackers(ctx, args, os.Stderr)
		},
	}
}

// rawProps collects repeated -D key=value flags under the names given
// (Hadoop 1 names must reach mapred-site.xml as written).
type rawProps map[string]string

func (p rawProps) String() string { return "" }

func (p rawProps) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if k = strings.TrimSpace(k); !ok || k == "" {
		return fmt.Errorf("%q is not of the form key=value", s)
	}
	p[k] = v
	return nil
}

const hadoopTaskTrackersUsage = `Usage: agora hadoop tasktrackers --master=HOST:5050 --jobtracker=HOST:PORT
           (--hadoop_uri=URI | --hadoop_home=DIR) [-D key=value]...

Runs TaskTrackers of a real Hadoop 1.x (MRv1) distribution on the cluster's agents,
as mesos/hadoop does, for a JobTracker you run yourself. Each tracker is a task on
one agent, sized from the agent's offer: two ports from the offer for its HTTP and
report addresses, map and reduce slots for the resources left after the tracker's
own share, and a generated mapred-site.xml (those values, mapred.job.tracker,
mapred.local.dir in the sandbox, mapred.child.java.opts from the slot memory and
every -D property). HADOOP_OPTS sets the tracker's heap from its memory share;
JAVA_HOME and JAVA_LIBRARY_PATH are passed on from this command's environment.

The distribution is a tarball each agent fetches and unpacks (--hadoop_uri: http(s)://,
hdfs://, file:// or a path on the agents) or a directory installed on every agent
(--hadoop_home). Its conf/ is copied into the sandbox, so core-site.xml and
hadoop-env.sh still apply; mapred-site.xml is replaced.

Between agora.hadoop.executors.minimum (default 1) and .maximum trackers run, at most
one per agent, more while fewer slots run than mapred.mesos.total.{map,reduce}.slots.minimum.
A tracker that ends is relaunched. Interrupt the command to stop them all.

Sizing properties (mesos/hadoop's names and defaults):
  mapred.mesos.slot.{cpus,mem,disk}          per map or reduce slot (1, 1024, 1024)
  mapred.mesos.tasktracker.{cpus,mem,disk}   per TaskTracker itself (1, 1024, 1024)
  mapred.tasktracker.{map,reduce}.tasks.maximum   slots per tracker (2, 2)
  mapred.mesos.scheduler.policy.fixed        true: every tracker gets the maximums or none
  mapred.mesos.executor.jvm.opts             TaskTracker JVM options before the heap settings
  mapred.mesos.role, mapred.mesos.checkpoint
Values may name the tracker's sandbox as @MESOS_SANDBOX@, e.g.
  -D hadoop.tmp.dir=@MESOS_SANDBOX@/tmp

Example:
  agora hadoop tasktrackers --master=10.0.0.1:5050 --jobtracker=10.0.0.2:9001 \
      --hadoop_uri=hdfs://namenode:8020/dist/hadoop-1.2.1.tar.gz \
      -D fs.default.name=hdfs://namenode:8020 -D agora.hadoop.executors.minimum=10

Flags:
`

// daemonFlags are the flags `agora hadoop tasktrackers` and `agora hadoop
// jobtracker` share: the master, the distribution, the framework's name
// and user, and -D properties.
type daemonFlags struct {
	fs                    *flag.FlagSet
	master                string
	uri, home, name, user *string
	props                 rawProps
	cmd                   string
	stderr                io.Writer
}

func newDaemonFlags(cmd, usage, what, nameDefault string, stderr io.Writer) *daemonFlags {
	d := &daemonFlags{fs: flag.NewFlagSet("agora hadoop "+cmd, flag.ContinueOnError), master: masterAddrDefault(),
		props: rawProps{}, cmd: cmd, stderr: stderr}
	fs := d.fs
	fs.SetOutput(stderr)
	fs.StringVar(&d.master, "master", d.master, "master to subscribe with, host:port (env AGORA_MASTER)")
	d.uri = fs.String("hadoop_uri", "", "Hadoop 1.x tarball the agents fetch and unpack (mapred.mesos.executor.uri)")
	d.home = fs.String("hadoop_home", "", "Hadoop 1.x directory installed on every agent, e.g. from `agora dist install hadoop` (mapred.mesos.executor.directory)")
	d.name = fs.String("name", "", "framework name (default \""+nameDefault+"\")")
	d.user = fs.String("user", "", "user to run the "+what+" as (default: the current user)")
	fs.Var(d.props, "D", "property key=value (repeatable): a sizing property or any Hadoop property for mapred-site.xml")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return d
}

// parse parses args; done says the command is over with code (help, a bad
// flag, or unexpected arguments).
func (d *daemonFlags) parse(args []string) (code int, done bool) {
	if code, done := parseFlags(d.fs, args); done {
		return code, true
	}
	if d.fs.NArg() > 0 {
		return d.fail("unexpected arguments %q", d.fs.Args()), true
	}
	return 0, false
}

func (d *daemonFlags) fail(format string, a ...any) int {
	fmt.Fprintf(d.stderr, "agora hadoop "+d.cmd+": "+format+"\n", a...)
	fmt.Fprintf(d.stderr, "Run `agora hadoop %s --help` for the flags.\n", d.cmd)
	return 2
}

// hadoopTaskTrackers runs `agora hadoop tasktrackers` until ctx ends. Bad
// input exits 2 with a message on stderr; a framework the master refuses, 1.
func hadoopTaskTrackers(ctx context.Context, args []string, stderr io.Writer) int {
	d := newDaemonFlags("tasktrackers", hadoopTaskTrackersUsage, "trackers", "Hadoop TaskTrackers (JobTracker HOST:PORT)", stderr)
	jobTracker := d.fs.String("jobtracker", "", "the JobTracker the trackers report to, host:port (mapred.job.tracker)")
	if code, done := d.parse(args); done {
		return code
	}
	fail, props, uri, home, master, name, user := d.fail, d.props, d.uri, d.home, d.master, d.name, d.user
	for _, f := range []struct{ flag, value, key string }{
		{"--jobtracker", *jobTracker, distribution.KeyJobTracker},
		{"--hadoop_uri", *uri, distribution.KeyExecutorURI},
		{"--hadoop_home", *home, distribution.KeyExecutorDirectory},
	} {
		if f.value == "" {
			continue
		}
		if v, ok := props[f.key]; ok && v != f.value {
			return fail("%s=%s and -D %s=%s disagree: give one", f.flag, f.value, f.key, v)
		}
		props[f.key] = f.value
	}
	switch uri, home := props[distribution.KeyExecutorURI], props[distribution.KeyExecutorDirectory]; {
	case props[distribution.KeyJobTracker] == "":
		return fail("no JobTracker: give --jobtracker=HOST:PORT (the trackers' mapred.job.tracker)")
	case uri == "" && home == "":
		return fail("no Hadoop distribution: give --hadoop_uri (a tarball the agents fetch) or --hadoop_home (a directory installed on every agent)")
	case uri != "" && home != "":
		return fail("both a tarball (%s) and a home directory (%s) are given: give --hadoop_uri or --hadoop_home, not both", uri, home)
	}
	settings, err := distribution.SettingsFrom(props)
	if err != nil {
		return fail("%v", err)
	}
	fw, err := distribution.New(distribution.Config{
		Masters: []string{master}, Settings: settings, Name: *name, User: *user,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel()})),
	})
	if err != nil {
		return fail("%v", err)
	}
	where := settings.URI
	if where == "" {
		where = settings.Home
	}
	fmt.Fprintf(stderr, "agora hadoop tasktrackers: TaskTrackers from %s for JobTracker %s; interrupt to stop them\n", where, settings.JobTracker)
	if err := fw.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "agora hadoop tasktrackers: %v%s\n", err, masterCredentialsHint(master, err))
		return 1
	}
	return 0
}

func logLevel() slog.Level {
	if os.Getenv("AGORA_LOG") == "debug" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

func init() {
	hadoopCommands["jobtracker"] = command{
		name:    "jobtracker",
		summary: "Run a Hadoop 1.x distribution's JobTracker as a task on the cluster",
		run: func(args []string) int {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return hadoopJobTracker(ctx, args, os.Stdout, os.Stderr)
		},
	}
}

const hadoopJobTrackerUsage = `Usage: agora hadoop jobtracker --master=HOST:5050 (--hadoop_uri=URI | --hadoop_home=DIR)
           [-D key=value]...

Runs the JobTracker of a real Hadoop 1.x (MRv1) distribution as a task on one of the
cluster's agents, on two ports from its offer (RPC and web UI), with a generated
mapred-site.xml holding those addresses and every -D property. When it runs, its
address is printed on stdout as

  jobtracker HOST:PORT http://HOST:PORT

for the TaskTrackers (agora hadoop tasktrackers --jobtracker=HOST:PORT) and for
clients (bin/hadoop jar ... -jt HOST:PORT). A JobTracker that ends is launched again,
with new ports; interrupt the command to stop it.

With the local file system (fs.default.name=file:///, the default) the JobTracker's
system and staging directories must be seen by clients and TaskTrackers alike: they
default to ` + distribution.DefaultSharedDir + `/{system,staging} (not /tmp, which isolated containers
do not share). Across machines, use HDFS: -D fs.default.name=hdfs://NAMENODE:PORT.

Properties:
  agora.hadoop.jobtracker.{cpus,mem}   the JobTracker task's resources (1, 1024)
  mapred.mesos.executor.jvm.opts       JVM options before the heap (mem / 1.25)
  mapred.mesos.role                    the role to take offers for

Example:
  agora hadoop jobtracker --master=127.0.0.1:5050 --hadoop_home="$(agora dist install hadoop)"

Flags:
`

// hadoopJobTracker runs `agora hadoop jobtracker` until ctx ends.
func hadoopJobTracker(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	d := newDaemonFlags("jobtracker", hadoopJobTrackerUsage, "JobTracker", "Hadoop JobTracker", stderr)
	if code, done := d.parse(args); done {
		return code
	}
	fail, props, uri, home, master, name, user := d.fail, d.props, d.uri, d.home, d.master, d.name, d.user
	if *uri == "" && *home == "" && props[distribution.KeyExecutorURI] == "" && props[distribution.KeyExecutorDirectory] == "" {
		return fail("no Hadoop distribution: give --hadoop_home=DIR (e.g. \"$(agora dist install hadoop)\") or --hadoop_uri=URI")
	}
	if *uri != "" {
		props[distribution.KeyExecutorURI] = *uri
	}
	if *home != "" {
		props[distribution.KeyExecutorDirectory] = *home
	}
	if v, ok := props[distribution.KeyJobTracker]; ok {
		return fail("-D %s=%s: the JobTracker's address comes from its offer", distribution.KeyJobTracker, v)
	}
	settings, err := distribution.JobTrackerSettingsFrom(props)
	if err != nil {
		return fail("%v", err)
	}
	fw, err := distribution.NewJobTracker(distribution.JobTrackerConfig{
		Masters: []string{master}, Settings: settings, Name: *name, User: *user,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel()})),
	})
	if err != nil {
		return fail("%v", err)
	}
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	// Print each JobTracker's address once it runs.
	printed := ""
	for {
		running := fw.Running()
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintf(stderr, "agora hadoop jobtracker: %v%s\n", err, masterCredentialsHint(master, err))
				return 1
			}
			return 0
		case <-running:
			if jt, ok := fw.Current(); ok && jt.TaskID != printed {
				printed = jt.TaskID
				fmt.Fprintf(stdout, "jobtracker %s http://%s\n", jt.Address, jt.HTTP)
			}
			// Wait for this one to end (Running changes) or the command to.
			for fw.Running() == running {
				select {
				case err := <-done:
					if err != nil {
						fmt.Fprintln(stderr, "agora hadoop jobtracker:", err)
						return 1
					}
					return 0
				case <-time.After(time.Second):
				}
			}
		}
	}
}
