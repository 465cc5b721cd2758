package framework

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/storm/plan"
)

// passEnv are this process's environment variables the daemons inherit.
var passEnv = []string{"JAVA_HOME"}

// zooKeeper is the ensemble as Storm names it: hosts and one port.
type zooKeeper struct {
	hosts []string
	port  int
}

// parseZooKeeper reads host:port,host:port. Storm gives every server the
// same port (storm.zookeeper.port), so they must agree.
func parseZooKeeper(addrs []string) (zooKeeper, error) {
	var z zooKeeper
	for _, a := range addrs {
		h, p, err := net.SplitHostPort(strings.TrimSpace(a))
		port, perr := strconv.Atoi(p)
		if err != nil || perr != nil || h == "" || port < 1 || port > 65535 {
			return zooKeeper{}, fmt.Errorf("ZooKeeper server %q is not HOST:PORT", a)
		}
		if z.port != 0 && port != z.port {
			return zooKeeper{}, fmt.Errorf("ZooKeeper servers on ports %d and %d: Storm takes one storm.zookeeper.port for all", z.port, port)
		}
		z.hosts, z.port = append(z.hosts, h), port
	}
	if len(z.hosts) == 0 {
		return zooKeeper{}, fmt.Errorf("no ZooKeeper servers")
	}
	return z, nil
}

// zooKeeperFromConf reads storm.zookeeper.servers and .port from Nimbus's
// configuration (getNimbusConf's JSON).
func zooKeeperFromConf(conf string) (zooKeeper, error) {
	var c struct {
		Servers []string `json:"storm.zookeeper.servers"`
		Port    int      `json:"storm.zookeeper.port"`
	}
	if err := json.Unmarshal([]byte(conf), &c); err != nil {
		return zooKeeper{}, fmt.Errorf("Nimbus's configuration: %w", err)
	}
	if len(c.Servers) == 0 || c.Port == 0 {
		return zooKeeper{}, fmt.Errorf("Nimbus's configuration names no storm.zookeeper.servers")
	}
	return zooKeeper{c.Servers, c.Port}, nil
}

// daemon is one Storm daemon to run as a task.
type daemon struct {
	home     string
	command  string // nimbus or supervisor
	localDir string // storm.local.dir under the sandbox
	heap     int    // the daemon's -Xmx, MB
	opts     map[string]string
	env      map[string]string
}

// stormOpts are the -c options every daemon gets: the user's Storm keys,
// ZooKeeper and Nimbus.
func stormOpts(s plan.Settings, z zooKeeper, nimbusHost string, nimbusPort uint64, host string) map[string]string {
	o := map[string]string{}
	for k, v := range s.Storm {
		o[k] = toJSON(v)
	}
	o["storm.zookeeper.servers"] = jsonOf(z.hosts)
	o["storm.zookeeper.port"] = strconv.Itoa(z.port)
	o["nimbus.seeds"] = jsonOf([]string{nimbusHost})
	o["nimbus.thrift.port"] = strconv.FormatUint(nimbusPort, 10)
	o["storm.local.hostname"] = jsonOf(host)
	return o
}

// supervisorDaemon is the supervisor sup runs: its ports, the workers'
// heap from mesos.worker.mem.mb, its capacity for the resource-aware
// scheduler, and its own heap from mesos.executor.mem.mb.
func supervisorDaemon(home string, s plan.Settings, z zooKeeper, nimbusHost string, nimbusPort uint64, sup plan.Supervisor, env map[string]string) daemon {
	o := stormOpts(s, z, nimbusHost, nimbusPort, sup.Host)
	o["supervisor.thrift.port"] = strconv.FormatUint(sup.Port, 10)
	o["supervisor.slots.ports"] = jsonOf(sup.SlotPorts)
	heap := plan.WorkerHeap(s.WorkerMem)
	o["worker.heap.memory.mb"] = strconv.Itoa(heap)
	if _, ok := s.Storm["worker.childopts"]; !ok {
		o["worker.childopts"] = jsonOf(fmt.Sprintf("-Xmx%dm -XX:+UseSerialGC -XX:+HeapDumpOnOutOfMemoryError -XX:HeapDumpPath=artifacts/heapdump", heap))
	}
	if _, ok := s.Storm["supervisor.memory.capacity.mb"]; !ok {
		o["supervisor.memory.capacity.mb"] = jsonOf(float64(sup.Slots()) * s.WorkerMem)
	}
	if _, ok := s.Storm["supervisor.cpu.capacity"]; !ok {
		o["supervisor.cpu.capacity"] = jsonOf(float64(sup.Slots()) * s.WorkerCPU * 100)
	}
	sh := plan.WorkerHeap(s.ExecutorMem)
	o["supervisor.childopts"] = jsonOf(fmt.Sprintf("-Xmx%dm", sh))
	return daemon{home: home, command: "supervisor", localDir: s.LocalDir, heap: sh, opts: o, env: env}
}

// nimbusDaemon is a Nimbus on host:port.
func nimbusDaemon(home string, s plan.Settings, z zooKeeper, host string, port uint64, env map[string]string) daemon {
	o := stormOpts(s, z, host, port, host)
	h := plan.WorkerHeap(s.NimbusMem)
	o["nimbus.childopts"] = jsonOf(fmt.Sprintf("-Xmx%dm", h))
	return daemon{home: home, command: "nimbus", localDir: "nimbus-local", heap: h, opts: o, env: env}
}

// script is the task's shell command, run in the sandbox: bin/storm of
// the home installed on the agent, storm.local.dir and the logs in the
// sandbox, every other key a -c option (a JSON value, which Storm reads
// as such).
func (d daemon) script() string {
	var b strings.Builder
	line := func(l ...string) {
		for _, x := range l {
			b.WriteString(x)
		}
		b.WriteByte('\n')
	}
	storm := shellQuote(d.home + "/bin/storm")
	line("set -e")
	line(`sandbox=${MESOS_SANDBOX:-$PWD}`)
	line(`case $sandbox in *[\"\\]*) echo "agora: the sandbox path $sandbox holds a quote or backslash, which storm.local.dir cannot hold" >&2; exit 1 ;; esac`)
	line(`if [ ! -x `, storm, ` ]; then echo "agora: `, strings.Trim(storm, "'"), ` is missing or not executable on this agent (--storm_home)" >&2; exit 1; fi`)
	line(`mkdir -p "$sandbox/`, d.localDir, `" "$sandbox/logs"`)
	line(`export STORM_LOG_DIR="$sandbox/logs"`)
	b.WriteString("exec " + storm + " " + d.command + ` -c "storm.local.dir=\"$sandbox/` + d.localDir + `\""`)
	keys := make([]string, 0, len(d.opts))
	for k := range d.opts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteString(" -c " + shellQuote(k+"="+d.opts[k]))
	}
	b.WriteByte('\n')
	return b.String()
}

// commandInfo is the task's command and environment.
func (d daemon) commandInfo() mesos.CommandInfo {
	shell := true
	script := d.script()
	env := map[string]string{"STORM_JAR_JVM_OPTS": fmt.Sprintf("-Xmx%dm -XX:+UseSerialGC", d.heap)}
	for _, k := range passEnv {
		if v, ok := d.env[k]; ok && v != "" {
			env[k] = v
		}
	}
	ci := mesos.CommandInfo{Shell: &shell, Value: &script, Environment: &mesos.Environment{}}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := env[k]
		ci.Environment.Variables = append(ci.Environment.Variables, mesos.Environment_Variable{Name: k, Value: &v})
	}
	return ci
}

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

// toJSON turns a storm.yaml value into JSON for a -c option: JSON as is,
// a quoted string or a bare word as a JSON string, a flow list of bare
// words as a JSON list.
func toJSON(v string) string {
	v = strings.TrimSpace(v)
	if json.Valid([]byte(v)) {
		return v
	}
	if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		var items []any
		for _, x := range strings.Split(v[1:len(v)-1], ",") {
			x = strings.TrimSpace(x)
			if x == "" {
				continue
			}
			if json.Valid([]byte(x)) {
				items = append(items, json.RawMessage(x))
			} else {
				items = append(items, strings.Trim(x, `'"`))
			}
		}
		return jsonOf(items)
	}
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		v = strings.ReplaceAll(v[1:len(v)-1], "''", "'")
	}
	return jsonOf(v)
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
