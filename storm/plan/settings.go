// Package plan is the Storm framework's decisions, free of I/O: its
// settings under mesos/storm's keys, which offers it may use, how a
// supervisor is sized from an offer, and how many worker slots the
// topologies Nimbus runs still lack and which supervisors are idle.
package plan

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// mesos/storm's keys (its README and MesosCommon), and agora's own for
// what mesos/storm does not launch (Nimbus is its scheduler there).
const (
	KeyWorkerCPU       = "mesos.worker.cpu"
	KeyWorkerMem       = "mesos.worker.mem.mb"
	KeyExecutorCPU     = "mesos.executor.cpu"
	KeyExecutorMem     = "mesos.executor.mem.mb"
	KeySuicideTimeout  = "mesos.supervisor.suicide.inactive.timeout.secs"
	KeyLocalDir        = "mesos.supervisor.storm.local.dir"
	KeyFrameworkName   = "mesos.framework.name"
	KeyRole            = "mesos.framework.role"
	KeyCheckpoint      = "mesos.framework.checkpoint"
	KeyUser            = "mesos.framework.user"
	KeyFailoverTimeout = "mesos.master.failover.timeout.secs"
	KeyAllowedHosts    = "mesos.allowed.hosts"
	KeyDisallowedHosts = "mesos.disallowed.hosts"
	KeyMasterURL       = "mesos.master.url"

	// KeyConstraints are attribute constraints on the agents a supervisor
	// may run on: "attr:value;attr2:value2", every one must hold.
	KeyConstraints = "agora.storm.offer.constraints"
	// KeySupervisorsPerAgent bounds the supervisors on one agent (1).
	KeySupervisorsPerAgent = "agora.storm.supervisors.per.agent"
	// KeyNimbusCPU and KeyNimbusMem size a Nimbus the framework launches.
	KeyNimbusCPU = "agora.storm.nimbus.cpu"
	KeyNimbusMem = "agora.storm.nimbus.mem.mb"
)

// topologyPrefix: mesos/storm reads its sizing keys as topology.mesos.*
// (settable per topology); the framework takes either spelling.
const topologyPrefix = "topology."

// mesos/storm's minimums for a worker.
const (
	minWorkerCPU = 0.01
	minWorkerMem = 32
)

// Settings are the framework's settings.
type Settings struct {
	WorkerCPU, WorkerMem     float64 // per worker slot
	ExecutorCPU, ExecutorMem float64 // per supervisor itself
	NimbusCPU, NimbusMem     float64 // a launched Nimbus
	// SuicideTimeout is how long a supervisor of the framework may run no
	// worker before it is released.
	SuicideTimeout time.Duration
	// LocalDir is the supervisors' storm.local.dir, relative to the sandbox.
	LocalDir           string
	Name, Role, User   string
	Checkpoint         bool
	FailoverTimeout    time.Duration
	Constraints        []Constraint
	Allowed, Forbidden []string // host names; Allowed empty means any
	PerAgent           int
	// Storm are the other keys, Storm's own, handed to every daemon the
	// framework launches (as -c options, values as JSON).
	Storm map[string]string
}

// Defaults are mesos/storm's defaults (agora's for its own keys).
func Defaults() Settings {
	return Settings{
		WorkerCPU: 1, WorkerMem: 1000, ExecutorCPU: 0.1, ExecutorMem: 500,
		NimbusCPU: 1, NimbusMem: 1024,
		SuicideTimeout: 120 * time.Second, LocalDir: "storm-local",
		Name: "Storm!!!", Role: "*", Checkpoint: true,
		FailoverTimeout: 7 * 24 * time.Hour, PerAgent: 1,
		Storm: map[string]string{},
	}
}

// From reads props (key → value as written in storm.yaml or on the
// command line) over the defaults. A mesos.* key it does not know, a
// value that is not a number where one is wanted, or a size below
// mesos/storm's minimums is an error naming the key.
func From(props map[string]string) (Settings, error) {
	s := Defaults()
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := s.set(k, props[k]); err != nil {
			return Settings{}, err
		}
	}
	return s, s.check()
}

func (s *Settings) set(key, value string) error {
	k := strings.TrimPrefix(key, topologyPrefix)
	if k != key && !strings.HasPrefix(k, "mesos.") {
		k = key // an ordinary topology.* key of Storm's
	}
	v := strings.TrimSpace(unquote(value))
	num := func(dst *float64) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%s=%q: not a number", key, value)
		}
		*dst = f
		return nil
	}
	secs := func(dst *time.Duration) error {
		var f float64
		if err := num(&f); err != nil {
			return err
		}
		if f <= 0 {
			return fmt.Errorf("%s=%s: must be more than 0 seconds", key, v)
		}
		*dst = time.Duration(f * float64(time.Second))
		return nil
	}
	switch k {
	case KeyWorkerCPU:
		return num(&s.WorkerCPU)
	case KeyWorkerMem:
		return num(&s.WorkerMem)
	case KeyExecutorCPU:
		return num(&s.ExecutorCPU)
	case KeyExecutorMem:
		return num(&s.ExecutorMem)
	case KeyNimbusCPU:
		return num(&s.NimbusCPU)
	case KeyNimbusMem:
		return num(&s.NimbusMem)
	case KeySuicideTimeout:
		return secs(&s.SuicideTimeout)
	case KeyFailoverTimeout:
		return secs(&s.FailoverTimeout)
	case KeyLocalDir:
		if v == "" || strings.HasPrefix(v, "/") || slices.Contains(strings.Split(v, "/"), "..") {
			return fmt.Errorf("%s=%q: want a path inside the sandbox, relative and without ..", key, value)
		}
		s.LocalDir = v
	case KeyFrameworkName:
		s.Name = v
	case KeyRole:
		s.Role = v
	case KeyUser:
		s.User = v
	case KeyCheckpoint:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%s=%q: want true or false", key, value)
		}
		s.Checkpoint = b
	case KeyAllowedHosts:
		s.Allowed = list(value)
	case KeyDisallowedHosts:
		s.Forbidden = list(value)
	case KeyConstraints:
		c, err := ParseConstraints(v)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		s.Constraints = c
	case KeySupervisorsPerAgent:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("%s=%q: want a whole number, at least 1", key, value)
		}
		s.PerAgent = n
	case KeyMasterURL:
		// The master comes from --master; the key is accepted so that a
		// mesos/storm storm.yaml can be given unchanged.
	default:
		if why, ok := unsupported[k]; ok {
			return fmt.Errorf("%s is mesos/storm's and not supported here: %s", key, why)
		}
		if strings.HasPrefix(k, "mesos.") || strings.HasPrefix(k, "agora.storm.") {
			return fmt.Errorf("unknown key %s (the framework knows %s)", key, strings.Join(Known(), ", "))
		}
		s.Storm[key] = value
	}
	return nil
}

func (s *Settings) check() error {
	switch {
	case s.WorkerCPU < minWorkerCPU:
		return fmt.Errorf("%s=%g: a worker needs at least %g cpus", KeyWorkerCPU, s.WorkerCPU, minWorkerCPU)
	case s.WorkerMem < minWorkerMem:
		return fmt.Errorf("%s=%g: a worker needs at least %d MB", KeyWorkerMem, s.WorkerMem, minWorkerMem)
	case s.ExecutorCPU <= 0:
		return fmt.Errorf("%s=%g: a supervisor needs more than 0 cpus", KeyExecutorCPU, s.ExecutorCPU)
	case s.ExecutorMem < minWorkerMem:
		return fmt.Errorf("%s=%g: a supervisor needs at least %d MB", KeyExecutorMem, s.ExecutorMem, minWorkerMem)
	case s.NimbusCPU <= 0 || s.NimbusMem < minWorkerMem:
		return fmt.Errorf("%s=%g, %s=%g: Nimbus needs more than 0 cpus and at least %d MB", KeyNimbusCPU, s.NimbusCPU, KeyNimbusMem, s.NimbusMem, minWorkerMem)
	}
	for _, k := range launcherKeys {
		if _, ok := s.Storm[k]; ok {
			return fmt.Errorf("%s is set by the framework for each daemon it launches; do not give it", k)
		}
	}
	return nil
}

// unsupported are mesos/storm's keys the framework does not implement,
// and why.
var unsupported = map[string]string{
	"mesos.executor.uri":              "the Storm home is installed on every agent (--storm_home)",
	"mesos.container.docker.image":    "supervisors run as command tasks from --storm_home",
	"mesos.local.file.server.port":    "no configuration file server: each daemon gets its keys as -c options",
	"mesos.logviewer.sidecar.enabled": "the distribution has no logviewer",
	"mesos.prefer.reserved.resources": "resources come from whichever role of the offer fits",
	"mesos.framework.principal":       "authentication is not supported",
	"mesos.framework.secret.file":     "authentication is not supported",
	"mesos.worker.prefix":             "supervisors, not workers, are tasks here",
	"mesos.worker.prefix.delimiter":   "supervisors, not workers, are tasks here",
	"mesos.component.name.delimiter":  "supervisors, not workers, are tasks here",
}

// launcherKeys are Storm keys the framework sets per daemon.
var launcherKeys = []string{"supervisor.slots.ports", "storm.local.dir", "nimbus.seeds", "nimbus.thrift.port", "supervisor.thrift.port", "storm.local.hostname"}

// Known lists the keys the framework reads.
func Known() []string {
	return []string{KeyWorkerCPU, KeyWorkerMem, KeyExecutorCPU, KeyExecutorMem, KeySuicideTimeout, KeyLocalDir,
		KeyFrameworkName, KeyRole, KeyCheckpoint, KeyUser, KeyFailoverTimeout, KeyAllowedHosts, KeyDisallowedHosts,
		KeyMasterURL, KeyConstraints, KeySupervisorsPerAgent, KeyNimbusCPU, KeyNimbusMem}
}

// WorkerHeap is a worker's -Xmx in MB: its memory less the 20% mesos/storm
// advises to leave for the JVM's own use.
func WorkerHeap(mem float64) int { return max(16, int(mem/1.2)) }

// unquote strips one pair of YAML/JSON quotes.
func unquote(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"') {
		var s string
		if json.Unmarshal([]byte(v), &s) == nil {
			return s
		}
	}
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return strings.ReplaceAll(v[1:len(v)-1], "''", "'")
	}
	return v
}

// list reads a list value: a YAML flow list ["a", "b"] or a comma list.
func list(v string) []string {
	v = strings.TrimSpace(v)
	v = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	var out []string
	for _, x := range strings.Split(v, ",") {
		if x = unquote(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
