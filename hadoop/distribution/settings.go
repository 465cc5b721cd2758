package distribution

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/framework"
)

// Properties under mesos/hadoop's (and Hadoop 1's) names.
const (
	// KeyExecutorURI is the Hadoop tarball the agents fetch and unpack.
	KeyExecutorURI = "mapred.mesos.executor.uri"
	// KeyExecutorDirectory is a Hadoop directory installed on every agent.
	KeyExecutorDirectory = "mapred.mesos.executor.directory"
	// KeyExecutorCommand replaces the command run in the Hadoop directory
	// (default DefaultCommand).
	KeyExecutorCommand = "mapred.mesos.executor.command"
	// KeyExecutorJVMOpts are the TaskTracker JVM's options before its heap
	// settings (default DefaultJVMOpts).
	KeyExecutorJVMOpts = "mapred.mesos.executor.jvm.opts"

	KeyJobTracker    = "mapred.job.tracker"
	KeyHTTPAddress   = "mapred.task.tracker.http.address"
	KeyReportAddress = "mapred.task.tracker.report.address"
	KeyLocalDir      = "mapred.local.dir"
	KeyChildJavaOpts = "mapred.child.java.opts"
	KeySlaveHostName = "slave.host.name"
)

// SandboxPlaceholder stands for the tracker's sandbox directory in the
// generated mapred-site.xml; the task's command replaces it on the agent.
const SandboxPlaceholder = "@MESOS_SANDBOX@"

// DefaultCommand starts the TaskTracker from the Hadoop directory.
const DefaultCommand = "./bin/hadoop tasktracker"

// DefaultJVMOpts are the daemon JVMs' options when
// mapred.mesos.executor.jvm.opts is unset: the serial collector, which
// suits a daemon's heap of a few hundred MB on a shared agent, and small
// thread stacks. (mesos/hadoop's default, the concurrent collector, is gone
// from the Java 17 that runs Hadoop 1.2.1 here: a JVM asked for it does not
// start.)
const DefaultJVMOpts = "-XX:+UseSerialGC -Xss512k"

// jvmOverhead is mesos/hadoop's JVM_MEM_OVERHEAD_PERCENT_DEFAULT: a JVM
// given M MB of memory gets a heap of M / (1 + 0.25).
const jvmOverhead = 0.25

// upstreamSizing are mesos/hadoop's defaults for the sizing keys: real
// TaskTrackers and their child tasks are JVMs, so distribution mode does
// not use hadoop/framework's smaller defaults (sized for Go processes).
var upstreamSizing = map[string]string{
	framework.KeySlotCPUs:     "1",
	framework.KeySlotMem:      "1024",
	framework.KeySlotDisk:     "1024",
	framework.KeyTrackerCPUs:  "1",
	framework.KeyTrackerMem:   "1024",
	framework.KeyTrackerDisk:  "1024",
	framework.KeyMinExecutors: "1",
}

// Settings is what the framework needs to know to launch TaskTrackers,
// read from properties by SettingsFrom.
type Settings struct {
	// JobTracker is mapred.job.tracker, host:port.
	JobTracker string
	// URI (a tarball the agent fetches and unpacks) or Home (a directory
	// on every agent) holds the distribution; exactly one is set.
	URI, Home string
	// Command runs in the Hadoop directory (DefaultCommand).
	Command string
	// JVMOpts precede the heap settings in HADOOP_OPTS.
	JVMOpts string
	// Sizing sizes trackers from offers (mesos/hadoop's keys).
	Sizing framework.Sizing
	// Role and Checkpoint are mapred.mesos.role and mapred.mesos.checkpoint.
	Role       string
	Checkpoint bool
	// Props are every property given, under the names given; they all go
	// to the trackers' mapred-site.xml, as mesos/hadoop sends the
	// JobTracker's whole configuration.
	Props map[string]string
	// Env holds the variables passed on to the trackers: JAVA_HOME and
	// JAVA_LIBRARY_PATH, as mesos/hadoop passes on the JobTracker's. Nil
	// (as SettingsFrom leaves it) means New takes them from the
	// framework's own environment.
	Env map[string]string
}

// SettingsFrom reads and checks the properties. Bad input gets an error
// that names the property.
func SettingsFrom(props map[string]string) (Settings, error) {
	s := Settings{Props: map[string]string{}}
	c := conf.New()
	for k, v := range props {
		s.Props[k] = v
		c.Set(k, v)
	}
	for k, v := range upstreamSizing {
		c.SetDefault(k, v)
	}
	var err error
	if s.Sizing, err = framework.SizingFrom(c); err != nil {
		return Settings{}, err
	}
	if s.Sizing.MaxExecutors > 0 && s.Sizing.MinExecutors > s.Sizing.MaxExecutors {
		return Settings{}, fmt.Errorf("properties %s=%d and %s=%d: the minimum is above the maximum",
			framework.KeyMinExecutors, s.Sizing.MinExecutors, framework.KeyMaxExecutors, s.Sizing.MaxExecutors)
	}
	if s.Checkpoint, err = c.Bool(framework.KeyCheckpoint, false); err != nil {
		return Settings{}, err
	}
	s.Role = strings.TrimSpace(props[framework.KeyRole])
	if s.Role == "" {
		s.Role = "*"
	}
	s.JobTracker = strings.TrimSpace(props[KeyJobTracker])
	if err := checkJobTracker(s.JobTracker); err != nil {
		return Settings{}, err
	}
	s.URI = strings.TrimSpace(props[KeyExecutorURI])
	s.Home = strings.TrimSpace(props[KeyExecutorDirectory])
	switch {
	case s.URI == "" && s.Home == "":
		return Settings{}, fmt.Errorf("no Hadoop distribution: set %s (a tarball the agents fetch) or %s (a directory installed on every agent)", KeyExecutorURI, KeyExecutorDirectory)
	case s.URI != "" && s.Home != "":
		return Settings{}, fmt.Errorf("both %s and %s are set: give one", KeyExecutorURI, KeyExecutorDirectory)
	case s.Home != "" && !filepath.IsAbs(s.Home):
		return Settings{}, fmt.Errorf("property %s=%q: not an absolute path", KeyExecutorDirectory, s.Home)
	}
	if s.Home != "" {
		s.Home = filepath.Clean(s.Home)
	}
	s.Command = strings.TrimSpace(props[KeyExecutorCommand])
	if s.Command == "" {
		s.Command = DefaultCommand
	}
	s.JVMOpts = strings.TrimSpace(props[KeyExecutorJVMOpts])
	if _, ok := props[KeyExecutorJVMOpts]; !ok {
		s.JVMOpts = DefaultJVMOpts
	}
	return s, nil
}

func checkJobTracker(addr string) error {
	if addr == "" {
		return fmt.Errorf("no JobTracker: set %s to its host:port", KeyJobTracker)
	}
	host, port, err := net.SplitHostPort(addr)
	if err == nil && host == "" {
		err = errors.New("no host")
	}
	if err == nil {
		if n, perr := strconv.Atoi(port); perr != nil || n < 1 || n > 65535 {
			err = fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
	}
	if err != nil {
		return fmt.Errorf("property %s=%q: not host:port: %w", KeyJobTracker, addr, err)
	}
	return nil
}

// HadoopOpts is the TaskTracker's HADOOP_OPTS for a tracker given memMB
// of memory, as mesos/hadoop computes it: the JVM options, then a heap of
// memMB/1.25 (rounded), a young generation of a third of it growing to
// 60%.
func HadoopOpts(jvmOpts string, memMB float64) string {
	heap := heapMB(memMB)
	opts := fmt.Sprintf("-Xmx%dm -XX:NewSize=%dm -XX:MaxNewSize=%dm", heap, heap/3, heap*6/10)
	if jvmOpts = strings.TrimSpace(jvmOpts); jvmOpts != "" {
		opts = jvmOpts + " " + opts
	}
	return opts
}

// ChildJavaOpts is the default mapred.child.java.opts for slots of memMB:
// the heap that leaves the JVM its overhead in the slot's share. (Upstream
// computes this heap but leaves the child's options to the user; Hadoop's
// own default, -Xmx200m, ignores the slot's size.) Empty for no memory.
func ChildJavaOpts(memMB float64) string {
	if heap := heapMB(memMB); heap > 0 {
		return fmt.Sprintf("-Xmx%dm", heap)
	}
	return ""
}

func heapMB(memMB float64) int64 {
	return int64(memMB/(1+jvmOverhead) + 0.5)
}
