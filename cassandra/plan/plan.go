// Package plan is a Cassandra cluster's spec for agora — how many nodes,
// each node's cpus, memory, persistent volume and heap, its seeds and its
// cassandra.yaml overrides — with the checks that refuse a spec Cassandra
// or the cluster could not run, the heap formula of cassandra-env.sh
// applied to the task's memory, and each node's generated cassandra.yaml.
package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Spec is a Cassandra cluster as `agora cassandra scheduler --spec FILE`
// reads it (JSON).
type Spec struct {
	// Name is the cluster_name, and names the framework.
	Name string `json:"name"`
	// Nodes is how many Cassandra nodes run.
	Nodes int `json:"nodes"`
	// CPUs, Mem (MB) and Disk (MB, the persistent volume) are each node's.
	CPUs float64 `json:"cpus"`
	Mem  float64 `json:"mem"`
	Disk float64 `json:"disk"`
	// Heap is the JVM heap in MB; 0 (or "auto") applies cassandra-env.sh's
	// formula to Mem.
	Heap Heap `json:"heap"`
	// Seeds is how many of the nodes are seeds; they start first.
	Seeds int `json:"seeds"`
	// NumTokens is num_tokens (Cassandra 5.0's default, 16).
	NumTokens int `json:"num_tokens"`
	// Role is the role the framework reserves the nodes' resources for.
	Role string `json:"role"`
	// Principal is the framework's principal, which the reservations and
	// volumes carry.
	Principal string `json:"principal"`
	// NodesPerAgent is how many nodes one agent may hold (1: a node's
	// data and its replicas' never share a machine).
	NodesPerAgent int `json:"nodes_per_agent"`
	// YAML are cassandra.yaml keys and their values (JSON, which YAML
	// reads as it is), over the framework's defaults.
	YAML map[string]json.RawMessage `json:"yaml"`
	// JVMOptions are more options for each node's JVM (-D...).
	JVMOptions []string `json:"jvm_options"`
	// ReplaceTimeout is how long a node's agent may be away (not active
	// at the master) while the node is not running before the node is
	// replaced on another agent with replace_address_first_boot.
	ReplaceTimeout Duration `json:"replace_timeout"`
	// RepairInterval, if set, repairs the ring (`nodetool repair -pr`,
	// one node at a time) this long after the last full repair, as the
	// DC/OS service's scheduled repairs did; "" or "0s" runs none.
	RepairInterval Duration `json:"repair_interval"`
	// HealthCheck is the health check each node's task carries.
	HealthCheck HealthCheck `json:"health_check"`
}

// HealthCheck is the COMMAND health check the agent runs beside each node
// (`agora cassandra probe`, a CQL query of the node's system.local).
type HealthCheck struct {
	// Disabled gives the nodes' tasks no health check; the framework's
	// own probes still run.
	Disabled bool `json:"disabled,omitempty"`
	// Grace is how long after a node's launch failed checks are not
	// counted. It also ends at the first check that passes, so a long one
	// costs nothing once a node is up, and a node that is still streaming
	// data to join or replace (CQL opens only after that, which can take
	// hours) is not killed for it; a node that never comes up is the
	// replace timeout's business.
	Grace Duration `json:"grace"`
	// Interval is the time between checks.
	Interval Duration `json:"interval"`
	// ConsecutiveFailures is how many failed checks in a row kill a node.
	ConsecutiveFailures int `json:"consecutive_failures"`
}

// Duration is a time.Duration written as Go does ("10m", "90s").
type Duration time.Duration

// UnmarshalJSON reads "10m", "90s" and the like.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s: give it as a string such as \"10m\" or \"90s\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: give it as a string such as \"10m\" or \"90s\"", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as UnmarshalJSON reads it.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Heap is a heap size in MB; 0 means "auto".
type Heap int

// UnmarshalJSON reads a number of MB or "auto".
func (h *Heap) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		if s == "auto" || s == "" {
			*h = 0
			return nil
		}
		return fmt.Errorf("heap %q: give a number of MB or \"auto\"", s)
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil || n < 0 {
		return fmt.Errorf("heap %s: give a number of MB or \"auto\"", b)
	}
	*h = Heap(n)
	return nil
}

// Defaults: a small node; Cassandra's own defaults elsewhere.
const (
	DefaultNodes     = 3
	DefaultSeeds     = 2
	DefaultCPUs      = 1.0
	DefaultMem       = 2048.0
	DefaultDisk      = 2048.0
	DefaultNumTokens = 16
	DefaultRole      = "cassandra"
	// DefaultReplaceTimeout outlasts the master's detection of a lost
	// agent (75 s) and its wait for agents after a failover (10 min):
	// replacing streams a node's whole data, so an agent that is only
	// restarting is waited for.
	DefaultReplaceTimeout = Duration(10 * time.Minute)
	// DefaultHealthGrace outlasts a join or replacement that streams a
	// large node's data.
	DefaultHealthGrace = Duration(48 * time.Hour)
	// DefaultHealthInterval and DefaultHealthFailures: a node silent for
	// three checks in a row, 30 s apart, is killed.
	DefaultHealthInterval = Duration(30 * time.Second)
	DefaultHealthFailures = 3
	// MinHealthInterval keeps checks (each a process and a CQL
	// connection) from following each other back to back.
	MinHealthInterval = Duration(time.Second)
	// MinReplaceTimeout keeps a slow probe from replacing a live node.
	MinReplaceTimeout = Duration(time.Second)
	// MinRepairInterval keeps scheduled repairs from following each other
	// back to back.
	MinRepairInterval = Duration(time.Minute)
	// OffHeapMin is what a node needs beside its heap: metaspace, thread
	// stacks, direct buffers, compression and bloom filters.
	OffHeapMin = 256.0
)

// Parse reads a spec, fills in the defaults and checks it. Unknown fields
// are refused, as a misspelt one would otherwise be ignored.
func Parse(b []byte) (Spec, error) {
	var s Spec
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("cassandra spec: %w", err)
	}
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// WithDefaults fills in what s leaves out.
func (s Spec) WithDefaults() Spec {
	if s.Name == "" {
		s.Name = "cassandra"
	}
	if s.Nodes == 0 {
		s.Nodes = DefaultNodes
	}
	if s.Seeds == 0 {
		s.Seeds = min(DefaultSeeds, s.Nodes)
	}
	if s.CPUs == 0 {
		s.CPUs = DefaultCPUs
	}
	if s.Mem == 0 {
		s.Mem = DefaultMem
	}
	if s.Disk == 0 {
		s.Disk = DefaultDisk
	}
	if s.NumTokens == 0 {
		s.NumTokens = DefaultNumTokens
	}
	if s.Role == "" {
		s.Role = DefaultRole
	}
	if s.NodesPerAgent == 0 {
		s.NodesPerAgent = 1
	}
	if s.ReplaceTimeout == 0 {
		s.ReplaceTimeout = DefaultReplaceTimeout
	}
	if s.HealthCheck.Grace == 0 {
		s.HealthCheck.Grace = DefaultHealthGrace
	}
	if s.HealthCheck.Interval == 0 {
		s.HealthCheck.Interval = DefaultHealthInterval
	}
	if s.HealthCheck.ConsecutiveFailures == 0 {
		s.HealthCheck.ConsecutiveFailures = DefaultHealthFailures
	}
	return s
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// frameworkKeys are the cassandra.yaml keys the framework sets for each
// node from its offer and volume; a spec cannot override them.
var frameworkKeys = map[string]string{
	"cluster_name":           "the spec's name",
	"num_tokens":             "the spec's num_tokens",
	"seed_provider":          "the seed nodes",
	"listen_address":         "the agent's address",
	"rpc_address":            "the agent's address",
	"broadcast_address":      "the agent's address",
	"broadcast_rpc_address":  "the agent's address",
	"storage_port":           "a port of the offer",
	"native_transport_port":  "a port of the offer",
	"data_file_directories":  "the persistent volume",
	"commitlog_directory":    "the persistent volume",
	"hints_directory":        "the persistent volume",
	"saved_caches_directory": "the persistent volume",
	"cdc_raw_directory":      "the persistent volume",
}

// Validate checks s (with its defaults filled in) on its own; Fit checks
// it against the cluster's agents. All that is wrong is reported at once.
func (s Spec) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !nameRE.MatchString(s.Name) {
		bad("name %q: use letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit)", s.Name)
	}
	if s.Nodes < 1 {
		bad("nodes %d: at least 1", s.Nodes)
	}
	if s.Seeds < 1 || s.Seeds > s.Nodes {
		bad("seeds %d: between 1 and the %d nodes", s.Seeds, s.Nodes)
	}
	if s.CPUs <= 0 {
		bad("cpus %v: more than 0", s.CPUs)
	}
	if s.Mem < OffHeapMin*2 {
		bad("mem %v MB: at least %v", s.Mem, OffHeapMin*2)
	}
	if s.Disk <= 0 {
		bad("disk %v MB: more than 0", s.Disk)
	}
	if s.Heap < 0 {
		bad("heap %d MB: 0 (auto) or more", s.Heap)
	} else if h := float64(s.Heap); h > 0 && h > s.Mem-OffHeapMin {
		if h >= s.Mem {
			bad("heap %d MB is larger than the task's memory (mem %v MB)", s.Heap, s.Mem)
		} else {
			bad("heap %d MB leaves less than %v MB of the task's %v MB for off-heap memory", s.Heap, OffHeapMin, s.Mem)
		}
	}
	if s.NumTokens < 1 || s.NumTokens > 1536 {
		bad("num_tokens %d: between 1 and 1536", s.NumTokens)
	}
	if s.Role == "*" || strings.ContainsAny(s.Role, "/ ") {
		bad("role %q: a named role (resources are reserved for it), not '*'", s.Role)
	}
	if s.NodesPerAgent < 1 {
		bad("nodes_per_agent %d: at least 1", s.NodesPerAgent)
	}
	if s.RepairInterval != 0 && s.RepairInterval < MinRepairInterval {
		bad("repair_interval %v: at least %v, or 0 for none", time.Duration(s.RepairInterval), time.Duration(MinRepairInterval))
	}
	if s.ReplaceTimeout < MinReplaceTimeout {
		bad("replace_timeout %v: at least %v", time.Duration(s.ReplaceTimeout), time.Duration(MinReplaceTimeout))
	}
	if hc := s.HealthCheck; !hc.Disabled {
		if hc.Grace < 0 {
			bad("health_check grace %v: not negative", time.Duration(hc.Grace))
		}
		if hc.Interval < MinHealthInterval {
			bad("health_check interval %v: at least %v", time.Duration(hc.Interval), time.Duration(MinHealthInterval))
		}
		if hc.ConsecutiveFailures < 1 {
			bad("health_check consecutive_failures %d: at least 1", hc.ConsecutiveFailures)
		}
		// The probe logs in with no credentials: with logins required
		// every node would fail its checks at once after the grace and
		// the whole ring would be killed.
		if a, ok := s.YAML["authenticator"]; ok && !allowsAll(a) {
			bad("cassandra.yaml authenticator %s with health_check on: the health probe connects without credentials, so every node would fail it; use AllowAllAuthenticator or set health_check disabled", a)
		}
	}
	keys := make([]string, 0, len(s.YAML))
	for k := range s.YAML {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch by, owned := frameworkKeys[k]; {
		case owned:
			bad("cassandra.yaml key %q is set by the framework (from %s)", k, by)
		case !configKeys[k] && !replacedKeys[k]:
			bad("unknown cassandra.yaml key %q (Cassandra 5.0 has no such setting)", k)
		case !json.Valid(s.YAML[k]):
			bad("cassandra.yaml key %q: its value is not valid JSON", k)
		}
	}
	for _, o := range s.JVMOptions {
		switch {
		case !strings.HasPrefix(o, "-"):
			bad("jvm_options %q: not a JVM option", o)
		case strings.HasPrefix(o, "-Xmx"), strings.HasPrefix(o, "-Xms"):
			bad("jvm_options %q: set the heap with heap", o)
		case o == RingDelayOption || strings.HasPrefix(o, RingDelayOption+"="):
			if _, ok := RingDelayMS(o); !ok {
				bad("jvm_options %q: the ring delay is a whole number of milliseconds from 1 to 2147483647", o)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cassandra spec: %w", errors.Join(errs...))
	}
	return nil
}

// RingDelayOption is the JVM option of Cassandra's ring delay
// (RingDelayOption=MS): how long a starting node waits to learn the ring
// and the schema from gossip (30 s when unset).
const RingDelayOption = "-Dcassandra.ring_delay_ms"

// RingDelayMS reads the milliseconds a ring delay option o sets; ok is
// false unless that is a whole number from 1 to an int's largest, as
// Cassandra parses it (the bare option sets "", on which Cassandra does
// not start).
func RingDelayMS(o string) (ms int64, ok bool) {
	v, set := strings.CutPrefix(o, RingDelayOption+"=")
	if !set {
		return 0, false
	}
	ms, err := strconv.ParseInt(v, 10, 32)
	return ms, err == nil && ms > 0
}

// Agent is what Fit knows of an agent: its total resources.
type Agent struct {
	ID, Host        string
	CPUs, Mem, Disk float64
}

// Fit checks that the cluster's agents can hold s: a node must fit the
// largest agent, and with NodesPerAgent there must be agents enough.
func (s Spec) Fit(agents []Agent) error {
	var maxCPU, maxMem, maxDisk float64
	fits := 0
	for _, a := range agents {
		maxCPU, maxMem, maxDisk = max(maxCPU, a.CPUs), max(maxMem, a.Mem), max(maxDisk, a.Disk)
		if a.CPUs >= s.CPUs && a.Mem >= s.Mem && a.Disk >= s.Disk {
			fits++
		}
	}
	var errs []error
	switch {
	case len(agents) == 0:
		errs = append(errs, errors.New("the cluster has no agents"))
	case s.Mem > maxMem:
		errs = append(errs, fmt.Errorf("a node needs mem %v MB, more memory than any agent has (the largest has %v MB)", s.Mem, maxMem))
	}
	if len(agents) > 0 && s.CPUs > maxCPU {
		errs = append(errs, fmt.Errorf("a node needs cpus %v, more than any agent has (the largest has %v)", s.CPUs, maxCPU))
	}
	if len(agents) > 0 && s.Disk > maxDisk {
		errs = append(errs, fmt.Errorf("a node needs disk %v MB, more than any agent has (the largest has %v MB)", s.Disk, maxDisk))
	}
	if len(errs) == 0 && fits*s.NodesPerAgent < s.Nodes {
		errs = append(errs, fmt.Errorf("%d nodes at most %d per agent need %d agents that can each hold one; the cluster has %d",
			s.Nodes, s.NodesPerAgent, (s.Nodes+s.NodesPerAgent-1)/s.NodesPerAgent, fits))
	}
	if len(errs) > 0 {
		return fmt.Errorf("cassandra spec: %w", errors.Join(errs...))
	}
	return nil
}

// AutoHeap is cassandra-env.sh's MAX_HEAP_SIZE for memMB of memory:
// max(min(½ mem, 1 GB), min(¼ mem, 8 GB)). Applied to the task's memory,
// not the machine's, since the node gets only that.
func AutoHeap(memMB float64) int {
	half := int(memMB) / 2
	quarter := half / 2
	return max(min(half, 1024), min(quarter, 8192))
}

// HeapMB is the heap each node runs with.
func (s Spec) HeapMB() int {
	if s.Heap > 0 {
		return int(s.Heap)
	}
	return AutoHeap(s.Mem)
}

// Node is one node's place: its agent's address and the ports of its
// offer.
type Node struct {
	Host        string
	StoragePort uint64
	NativePort  uint64
	JMXPort     uint64
}

// Ports is how many ports a node takes from its offer: storage (gossip
// and streaming), native transport (CQL) and JMX.
const Ports = 3

// NodeYAML is node's cassandra.yaml: the framework's keys, then the spec's
// overrides over its defaults. volume is the persistent volume's path on
// the agent; seeds are the seed nodes' host:storage_port.
//
// Every node takes its storage_port from its own offer: Cassandra 4.0 and
// later gossip each node's storage port (system.peers_v2.peer_port) and
// accept host:port seeds, so agents need not offer one port in common, and
// nodes sharing a host (nodes_per_agent > 1) do not collide.
func (s Spec) NodeYAML(n Node, seeds []string, volume string) []byte {
	type kv struct{ k, v string }
	q := func(v string) string { b, _ := json.Marshal(v); return string(b) }
	seedList := q(strings.Join(seeds, ","))
	kvs := []kv{
		{"cluster_name", q(s.Name)},
		{"num_tokens", strconv.Itoa(s.NumTokens)},
		{"allocate_tokens_for_local_replication_factor", "3"},
		{"partitioner", "org.apache.cassandra.dht.Murmur3Partitioner"},
		{"endpoint_snitch", "GossipingPropertyFileSnitch"},
		{"commitlog_sync", "periodic"},
		{"commitlog_sync_period", q("10000ms")},
		{"seed_provider", `[{"class_name": "org.apache.cassandra.locator.SimpleSeedProvider", "parameters": [{"seeds": ` + seedList + `}]}]`},
		{"listen_address", q(n.Host)},
		{"rpc_address", q(n.Host)},
		{"storage_port", strconv.FormatUint(n.StoragePort, 10)},
		{"native_transport_port", strconv.FormatUint(n.NativePort, 10)},
		{"start_native_transport", "true"},
		{"data_file_directories", `[` + q(volume+"/data") + `]`},
		{"commitlog_directory", q(volume + "/commitlog")},
		{"hints_directory", q(volume + "/hints")},
		{"saved_caches_directory", q(volume + "/saved_caches")},
		{"cdc_raw_directory", q(volume + "/cdc_raw")},
	}
	var b strings.Builder
	b.WriteString("# Generated by agora's Cassandra framework; the spec's yaml overrides follow its defaults.\n")
	over := make([]string, 0, len(s.YAML))
	for k := range s.YAML {
		over = append(over, k)
	}
	slices.Sort(over)
	for _, e := range kvs {
		if _, ok := s.YAML[e.k]; ok {
			continue
		}
		fmt.Fprintf(&b, "%s: %s\n", e.k, e.v)
	}
	for _, k := range over {
		var c bytes.Buffer
		if json.Compact(&c, s.YAML[k]) != nil {
			continue // Validate refuses it
		}
		fmt.Fprintf(&b, "%s: %s\n", k, c.String())
	}
	return []byte(b.String())
}

// RackDC is cassandra-rackdc.properties for GossipingPropertyFileSnitch.
func RackDC(dc, rack string) []byte {
	if dc == "" {
		dc = "dc1"
	}
	if rack == "" {
		rack = "rack1"
	}
	return []byte("dc=" + dc + "\nrack=" + rack + "\n")
}

// allowsAll reports whether a cassandra.yaml authenticator value (a class
// name, or Cassandra 5.0's {class_name: ...}) lets clients in without
// credentials.
func allowsAll(v json.RawMessage) bool {
	var name string
	if json.Unmarshal(v, &name) != nil {
		var m struct {
			ClassName string `json:"class_name"`
		}
		if json.Unmarshal(v, &m) != nil {
			return false
		}
		name = m.ClassName
	}
	return name == "AllowAllAuthenticator" || name == "org.apache.cassandra.auth.AllowAllAuthenticator"
}
