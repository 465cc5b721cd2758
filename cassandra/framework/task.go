package framework

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cassandra/plan"
)

// passEnv are this process's environment variables the nodes inherit.
var passEnv = []string{"JAVA_HOME"}

func passedEnv() map[string]string {
	env := map[string]string{}
	for _, k := range passEnv {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	return env
}

// seedsLocked are the seeds of self: the seed nodes placed so far,
// host:storage_port. A seed lists itself, and the first node is the whole
// list; but a node replacing another must bootstrap, which a node in its
// own seed list does not, so a replacing seed lists only the others (or,
// with no other seed, the nodes that have joined).
func (f *Framework) seedsLocked(self *Node) []string {
	replacing := self.ReplaceAddress != ""
	var out, joined []string
	for _, n := range f.nodes {
		if n.AgentID == "" || (replacing && n == self) {
			continue
		}
		addr := n.Host + ":" + strconv.FormatUint(n.StoragePort, 10)
		if n.Seed {
			out = append(out, addr)
		}
		if n.Joined {
			joined = append(joined, addr)
		}
	}
	if len(out) == 0 && replacing {
		return joined
	}
	return out
}

// volumeMark stands for the volume's path in the yaml until the task's
// shell knows it.
const volumeMark = "@AGORA_VOLUME@"

// commandLocked is n's task command: write cassandra.yaml and
// cassandra-rackdc.properties into the sandbox, with the data, commit log,
// hints and saved caches on the persistent volume, then run bin/cassandra
// of the home installed on the agent in the foreground.
func (f *Framework) commandLocked(n *Node) mesos.CommandInfo {
	yaml := f.spec.NodeYAML(planNode(n), f.seedsLocked(n), volumeMark)
	cassandra := shellQuote(f.cfg.Home + "/bin/cassandra")
	var b strings.Builder
	line := func(l ...string) {
		for _, x := range l {
			b.WriteString(x)
		}
		b.WriteByte('\n')
	}
	line("set -e")
	line(`sandbox=${MESOS_SANDBOX:-$PWD}`)
	line(`if [ ! -x `, cassandra, ` ]; then echo "agora: `, strings.Trim(cassandra, "'"), ` is missing or not executable on this agent (--cassandra_home; agora dist install cassandra)" >&2; exit 1; fi`)
	line(`if [ ! -d "$sandbox/`, VolumePath, `" ]; then echo "agora: the persistent volume is not at $sandbox/`, VolumePath, `" >&2; exit 1; fi`)
	line(`volume=$(cd "$sandbox/`, VolumePath, `" && pwd -P)`)
	line(`case $volume in *'#'* | *'"'* | *'\'*) echo "agora: the volume path $volume holds # \" or \\, which the yaml cannot hold as written" >&2; exit 1 ;; esac`)
	line(`mkdir -p "$sandbox/conf"`)
	line(`cat > "$sandbox/conf/cassandra.yaml.in" <<'AGORA_YAML_END'`)
	b.Write(yaml)
	line("AGORA_YAML_END")
	line(`sed "s#`, volumeMark, `#$volume#g" "$sandbox/conf/cassandra.yaml.in" > "$sandbox/conf/cassandra.yaml"`)
	line(`printf 'dc=%s\nrack=%s\n' `, shellQuote(orDefault(n.DC, "dc1")), " ", shellQuote(orDefault(n.Rack, "rack1")), ` > "$sandbox/conf/cassandra-rackdc.properties"`)
	line(`export CASSANDRA_CONF="$sandbox/conf" CASSANDRA_DATA="$volume"`)
	line(`exec `, cassandra, ` -f`)
	script := b.String()
	jvm := slices.Clone(f.spec.JVMOptions)
	if n.ReplaceAddress != "" {
		// Ignored by a node that has bootstrapped already (first boot),
		// so a relaunch during the replacement resumes it.
		jvm = append(jvm, "-Dcassandra.replace_address_first_boot="+n.ReplaceAddress)
	}
	if !n.Joined && (n.ReplaceAddress != "" || n.Added) {
		var from string
		var raised bool
		if jvm, from, raised = ringDelayAtLeast(jvm, joinRingDelay); raised {
			f.log.Info("a node joining a ring that has data waits longer to learn the ring and the schema",
				"node", n.Name, "ring_delay_ms", joinRingDelay.Milliseconds(), "spec_ring_delay_ms", from)
		}
	}
	env := map[string]string{
		"MAX_HEAP_SIZE":  fmt.Sprintf("%dM", f.spec.HeapMB()),
		"JMX_PORT":       strconv.FormatUint(n.JMXPort, 10),
		"JVM_EXTRA_OPTS": strings.Join(jvm, " "),
	}
	for _, k := range passEnv {
		if v, ok := f.cfg.Env[k]; ok && v != "" {
			env[k] = v
		}
	}
	shell := true
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

// joinRingDelay is the shortest ring delay a node gets when it bootstraps
// into a ring that has data: a replacement, or a node added to scale out.
// A spec's shorter one (a quick start for a new ring) is raised to it for
// that node's launches until it has joined. With a second, a replacement
// on a loaded machine started before gossip had told it the ring ("Cannot
// replace token ... which does not exist!"), and on its next launch before
// it had seen a live peer to pull the schema from: it declared the schema
// complete, the schema arrived during its bootstrap, and Cassandra 5.0's
// schema migration and pending-range calculation then waited on each other
// for good (MigrationStage in Keyspace.open →
// DiskBoundaryManager.getLocalRanges →
// PendingRangeCalculatorService.blockUntilFinished, while the calculation
// waited in Keyspace.open of the same keyspace): the node never joined.
const joinRingDelay = 10 * time.Second

// ringDelayAtLeast returns jvm with a ring delay of at least d: the
// options that set a shorter one (or no valid one, plan.RingDelayMS) are
// replaced by one that sets d, and from is the value replaced. It
// returns jvm as it was (raised false) when it sets no ring delay,
// Cassandra's default being longer, or one of d or more.
func ringDelayAtLeast(jvm []string, d time.Duration) (out []string, from string, raised bool) {
	isRingDelay := func(o string) bool {
		return o == plan.RingDelayOption || strings.HasPrefix(o, plan.RingDelayOption+"=")
	}
	short := false
	for _, o := range jvm {
		if isRingDelay(o) {
			// The JVM takes the last one.
			ms, ok := plan.RingDelayMS(o)
			short = !ok || ms < d.Milliseconds()
			from = strings.TrimPrefix(strings.TrimPrefix(o, plan.RingDelayOption), "=")
		}
	}
	if !short {
		return jvm, "", false
	}
	out = slices.DeleteFunc(slices.Clone(jvm), isRingDelay)
	return append(out, plan.RingDelayOption+"="+strconv.FormatInt(d.Milliseconds(), 10)), from, true
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
