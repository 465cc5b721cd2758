package distribution

import (
	"net"
	"os"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// SiteEnv is the environment variable that carries the generated
// mapred-site.xml into the task (see the package documentation).
const SiteEnv = "AGORA_HADOOP_MAPRED_SITE"

// passEnv are the framework's environment variables a tracker inherits,
// as mesos/hadoop passes on the JobTracker's.
var passEnv = []string{"JAVA_HOME", "JAVA_LIBRARY_PATH"}

// passedEnv is this process's values of passEnv.
func passedEnv() map[string]string {
	env := map[string]string{}
	for _, k := range passEnv {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	return env
}

// Tracker is one TaskTracker: where it runs and what it was given.
type Tracker struct {
	TaskID  string `json:"task_id"`
	AgentID string `json:"agent_id"`
	// Host is the agent's hostname: the tracker's slave.host.name and the
	// host of its addresses.
	Host        string `json:"host"`
	HTTPPort    uint64 `json:"http_port"`
	ReportPort  uint64 `json:"report_port"`
	MapSlots    int    `json:"map_slots"`
	ReduceSlots int    `json:"reduce_slots"`
	// CPUs, Mem and Disk are the task's resources: the tracker's own share
	// and its slots'.
	CPUs float64 `json:"cpus"`
	Mem  float64 `json:"mem"`
	Disk float64 `json:"disk"`
	// State is the task's last known state (TASK_STAGING until the first
	// update).
	State string `json:"state"`
}

// SiteProps are the properties of t's mapred-site.xml: every property the
// framework was given, then the tracker's own (ports, slots, local
// directory, host name, JobTracker), which win. mapred.child.java.opts is
// derived from the slot memory unless given.
func (s Settings) SiteProps(t Tracker) map[string]string {
	p := make(map[string]string, len(s.Props)+8)
	for k, v := range s.Props {
		p[k] = v
	}
	if _, ok := p[KeyChildJavaOpts]; !ok {
		if opts := ChildJavaOpts(s.Sizing.SlotMem); opts != "" {
			p[KeyChildJavaOpts] = opts
		}
	}
	p[KeyJobTracker] = s.JobTracker
	p[KeyHTTPAddress] = net.JoinHostPort(t.Host, strconv.FormatUint(t.HTTPPort, 10))
	p[KeyReportAddress] = net.JoinHostPort(t.Host, strconv.FormatUint(t.ReportPort, 10))
	p["mapred.tasktracker.map.tasks.maximum"] = strconv.Itoa(t.MapSlots)
	p["mapred.tasktracker.reduce.tasks.maximum"] = strconv.Itoa(t.ReduceSlots)
	p[KeyLocalDir] = SandboxPlaceholder + "/mapred/local"
	p[KeySlaveHostName] = t.Host
	return p
}

// TaskEnv is t's environment: the generated mapred-site.xml, HADOOP_OPTS with
// the heap of the tracker's memory share, and the passed-on variables.
func (s Settings) TaskEnv(t Tracker) map[string]string {
	env := map[string]string{}
	for _, k := range passEnv {
		if v, ok := s.Env[k]; ok && v != "" {
			env[k] = v
		}
	}
	env["HADOOP_OPTS"] = HadoopOpts(s.JVMOpts, s.Sizing.TrackerMem)
	env[SiteEnv] = string(SiteXML(s.SiteProps(t)))
	return env
}

// CommandInfo is the command that runs t: the distribution's tarball to
// fetch and unpack (URI mode), the shell script that writes the
// configuration and starts the TaskTracker, and its environment.
func (s Settings) CommandInfo(t Tracker) mesos.CommandInfo {
	shell := true
	script := s.Script()
	ci := mesos.CommandInfo{Shell: &shell, Value: &script, Environment: &mesos.Environment{}}
	if s.URI != "" {
		extract := true
		ci.URIs = []mesos.CommandInfo_URI{{Value: s.URI, Extract: &extract}}
	}
	env := s.TaskEnv(t)
	for _, k := range sortedKeys(env) {
		v := env[k]
		ci.Environment.Variables = append(ci.Environment.Variables, mesos.Environment_Variable{Name: k, Value: &v})
	}
	return ci
}

// TaskInfo is the Mesos task of t on its agent, holding res.
func (s Settings) TaskInfo(t Tracker, res []mesos.Resource) mesos.TaskInfo {
	ci := s.CommandInfo(t)
	return mesos.TaskInfo{
		Name:      "Hadoop TaskTracker",
		TaskID:    mesos.TaskID{Value: t.TaskID},
		AgentID:   mesos.AgentID{Value: t.AgentID},
		Resources: res,
		Command:   &ci,
	}
}

// Script is the tracker's shell command (run by /bin/sh -c in the
// sandbox). It finds the Hadoop directory (the one unpacked in the sandbox
// that has bin/hadoop, or Home), copies its conf/ into the sandbox,
// writes $AGORA_HADOOP_MAPRED_SITE over mapred-site.xml there with the
// sandbox's path in place of @MESOS_SANDBOX@, and runs Command from the
// Hadoop directory with HADOOP_CONF_DIR and HADOOP_LOG_DIR in the sandbox.
func (s Settings) Script() string {
	var b strings.Builder
	line := func(l ...string) {
		for _, x := range l {
			b.WriteString(x)
		}
		b.WriteByte('\n')
	}
	line("set -e")
	line(`sandbox=${MESOS_SANDBOX:-$PWD}`)
	line(`case $sandbox in *[\&\<\>]*) echo "agora: the sandbox path $sandbox holds & < or >, which mapred-site.xml cannot name unescaped" >&2; exit 1 ;; esac`)
	if s.Home != "" {
		line("hadoop=", shellQuote(s.Home))
		line(`if [ ! -x "$hadoop/bin/hadoop" ]; then echo "agora: $hadoop/bin/hadoop is missing or not executable on this agent (`, KeyExecutorDirectory, `)" >&2; exit 1; fi`)
	} else {
		line("hadoop=")
		line(`for d in "$sandbox"/*/; do if [ -x "${d}bin/hadoop" ]; then hadoop=${d%/}; break; fi; done`)
		line(`if [ -z "$hadoop" ]; then echo "agora: no directory with bin/hadoop was unpacked in the sandbox from `, KeyExecutorURI, `" >&2; exit 1; fi`)
	}
	line(`export HADOOP_CONF_DIR="$sandbox/hadoop-conf" HADOOP_LOG_DIR="$sandbox/logs"`)
	line(`mkdir -p "$HADOOP_CONF_DIR" "$HADOOP_LOG_DIR" "$sandbox/mapred/local"`)
	line(`if [ -d "$hadoop/conf" ]; then cp -R "$hadoop/conf/." "$HADOOP_CONF_DIR/"; fi`)
	line(`rm -f "$HADOOP_CONF_DIR/mapred-site.xml"`)
	line(`site=$`, SiteEnv, ` out=`)
	line(`while :; do case $site in *`, SandboxPlaceholder, `*) out=$out${site%%`, SandboxPlaceholder, `*}$sandbox; site=${site#*`, SandboxPlaceholder, `} ;; *) break ;; esac; done`)
	line(`printf '%s' "$out$site" > "$HADOOP_CONF_DIR/mapred-site.xml"`)
	line(`unset `, SiteEnv, ` site out`)
	line(`cd "$hadoop"`)
	if s.Command == DefaultCommand || s.Command == JobTrackerCommand {
		line("exec ", s.Command)
	} else {
		line(s.Command)
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
