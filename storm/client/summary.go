package client

import "github.com/apache/thrift/lib/go/thrift"

// The cluster as Nimbus reports it (getClusterInfo, getTopologyInfo). Field
// IDs follow storm.thrift; fields Storm adds later are skipped on reading.

// ClusterSummary is getClusterInfo's answer.
type ClusterSummary struct {
	Supervisors []SupervisorSummary `json:"supervisors"`
	Topologies  []TopologySummary   `json:"topologies"`
	Nimbuses    []NimbusSummary     `json:"nimbuses"`
}

// SupervisorSummary is one supervisor: NumWorkers is its slots.
type SupervisorSummary struct {
	Host           string             `json:"host"`
	UptimeSecs     int32              `json:"uptime_secs"`
	NumWorkers     int32              `json:"num_workers"`
	NumUsedWorkers int32              `json:"num_used_workers"`
	ID             string             `json:"supervisor_id"`
	Version        string             `json:"version,omitempty"`
	TotalResources map[string]float64 `json:"total_resources,omitempty"`
	UsedMem        float64            `json:"used_mem,omitempty"`
	UsedCPU        float64            `json:"used_cpu,omitempty"`
	Blacklisted    bool               `json:"blacklisted,omitempty"`
}

// TopologySummary is one running topology.
type TopologySummary struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	NumTasks     int32  `json:"num_tasks"`
	NumExecutors int32  `json:"num_executors"`
	NumWorkers   int32  `json:"num_workers"`
	UptimeSecs   int32  `json:"uptime_secs"`
	Status       string `json:"status"`
	StormVersion string `json:"storm_version,omitempty"`
	SchedStatus  string `json:"sched_status,omitempty"`
	Owner        string `json:"owner,omitempty"`
}

// NimbusSummary is one Nimbus.
type NimbusSummary struct {
	Host       string `json:"host"`
	Port       int32  `json:"port"`
	UptimeSecs int32  `json:"uptime_secs"`
	IsLeader   bool   `json:"is_leader"`
	Version    string `json:"version"`
}

// TopologyInfo is getTopologyInfo's answer: the topology's executors with
// their statistics, and the errors its components reported.
type TopologyInfo struct {
	ID          string                 `json:"id"`
	Name        string                 `json:"name"`
	UptimeSecs  int32                  `json:"uptime_secs"`
	Executors   []ExecutorSummary      `json:"executors"`
	Status      string                 `json:"status"`
	Errors      map[string][]ErrorInfo `json:"errors,omitempty"`
	SchedStatus string                 `json:"sched_status,omitempty"`
	Owner       string                 `json:"owner,omitempty"`
}

// ExecutorSummary is one executor: its tasks, where it runs and its
// statistics (nil until its worker has reported).
type ExecutorSummary struct {
	TaskStart   int32          `json:"task_start"`
	TaskEnd     int32          `json:"task_end"`
	ComponentID string         `json:"component_id"`
	Host        string         `json:"host"`
	Port        int32          `json:"port"`
	UptimeSecs  int32          `json:"uptime_secs"`
	Stats       *ExecutorStats `json:"stats,omitempty"`
}

// ExecutorStats are counts by time window ("600", "10800", "86400",
// ":all-time") and then by stream (for a bolt's inputs, "component:stream").
type ExecutorStats struct {
	Emitted     map[string]map[string]int64 `json:"emitted"`
	Transferred map[string]map[string]int64 `json:"transferred"`
	// Bolt statistics, for a bolt's executor.
	Executed map[string]map[string]int64 `json:"executed,omitempty"`
	// Acked and Failed: a bolt's by input stream, a spout's by stream.
	Acked  map[string]map[string]int64 `json:"acked,omitempty"`
	Failed map[string]map[string]int64 `json:"failed,omitempty"`
	// CompleteMsAvg is a spout's average complete latency (emit to the
	// whole tuple tree acked) by window and stream.
	CompleteMsAvg map[string]map[string]float64 `json:"complete_ms_avg,omitempty"`
	Rate          float64                       `json:"rate"`
}

// ErrorInfo is one error a component reported.
type ErrorInfo struct {
	Error     string `json:"error"`
	ErrorTime int32  `json:"error_time_secs"`
	Host      string `json:"host,omitempty"`
	Port      int32  `json:"port,omitempty"`
}

// AllTime is the statistics window that covers the executor's life.
const AllTime = ":all-time"

// Total sums a statistic of one window over its streams.
func Total(stat map[string]map[string]int64, window string) int64 {
	var n int64
	for _, v := range stat[window] {
		n += v
	}
	return n
}

func readClusterSummary(r *rd) ClusterSummary {
	var c ClusterSummary
	r.strct(map[int16]field{
		1: {thrift.LIST, func() {
			r.list(func() { c.Supervisors = append(c.Supervisors, readSupervisor(r)) })
		}},
		3: {thrift.LIST, func() {
			r.list(func() { c.Topologies = append(c.Topologies, readTopologySummary(r)) })
		}},
		4: {thrift.LIST, func() {
			r.list(func() { c.Nimbuses = append(c.Nimbuses, readNimbus(r)) })
		}},
	})
	return c
}

func readSupervisor(r *rd) SupervisorSummary {
	var s SupervisorSummary
	r.strct(map[int16]field{
		1: {thrift.STRING, func() { s.Host = r.str() }},
		2: {thrift.I32, func() { s.UptimeSecs = r.i32() }},
		3: {thrift.I32, func() { s.NumWorkers = r.i32() }},
		4: {thrift.I32, func() { s.NumUsedWorkers = r.i32() }},
		5: {thrift.STRING, func() { s.ID = r.str() }},
		6: {thrift.STRING, func() { s.Version = r.str() }},
		7: {thrift.MAP, func() {
			s.TotalResources = map[string]float64{}
			r.mapping(func() { k := r.str(); s.TotalResources[k] = r.f64() })
		}},
		8:  {thrift.DOUBLE, func() { s.UsedMem = r.f64() }},
		9:  {thrift.DOUBLE, func() { s.UsedCPU = r.f64() }},
		12: {thrift.BOOL, func() { s.Blacklisted = r.boolean() }},
	})
	return s
}

func readTopologySummary(r *rd) TopologySummary {
	var s TopologySummary
	r.strct(map[int16]field{
		1:   {thrift.STRING, func() { s.ID = r.str() }},
		2:   {thrift.STRING, func() { s.Name = r.str() }},
		3:   {thrift.I32, func() { s.NumTasks = r.i32() }},
		4:   {thrift.I32, func() { s.NumExecutors = r.i32() }},
		5:   {thrift.I32, func() { s.NumWorkers = r.i32() }},
		6:   {thrift.I32, func() { s.UptimeSecs = r.i32() }},
		7:   {thrift.STRING, func() { s.Status = r.str() }},
		8:   {thrift.STRING, func() { s.StormVersion = r.str() }},
		513: {thrift.STRING, func() { s.SchedStatus = r.str() }},
		514: {thrift.STRING, func() { s.Owner = r.str() }},
	})
	return s
}

func readNimbus(r *rd) NimbusSummary {
	var s NimbusSummary
	r.strct(map[int16]field{
		1: {thrift.STRING, func() { s.Host = r.str() }},
		2: {thrift.I32, func() { s.Port = r.i32() }},
		3: {thrift.I32, func() { s.UptimeSecs = r.i32() }},
		4: {thrift.BOOL, func() { s.IsLeader = r.boolean() }},
		5: {thrift.STRING, func() { s.Version = r.str() }},
	})
	return s
}

func readTopologyInfo(r *rd) TopologyInfo {
	var t TopologyInfo
	r.strct(map[int16]field{
		1: {thrift.STRING, func() { t.ID = r.str() }},
		2: {thrift.STRING, func() { t.Name = r.str() }},
		3: {thrift.I32, func() { t.UptimeSecs = r.i32() }},
		4: {thrift.LIST, func() {
			r.list(func() { t.Executors = append(t.Executors, readExecutor(r)) })
		}},
		5: {thrift.STRING, func() { t.Status = r.str() }},
		6: {thrift.MAP, func() {
			t.Errors = map[string][]ErrorInfo{}
			r.mapping(func() {
				k := r.str()
				var errs []ErrorInfo
				r.list(func() { errs = append(errs, readErrorInfo(r)) })
				t.Errors[k] = errs
			})
		}},
		513: {thrift.STRING, func() { t.SchedStatus = r.str() }},
		514: {thrift.STRING, func() { t.Owner = r.str() }},
	})
	return t
}

func readErrorInfo(r *rd) ErrorInfo {
	var e ErrorInfo
	r.strct(map[int16]field{
		1: {thrift.STRING, func() { e.Error = r.str() }},
		2: {thrift.I32, func() { e.ErrorTime = r.i32() }},
		3: {thrift.STRING, func() { e.Host = r.str() }},
		4: {thrift.I32, func() { e.Port = r.i32() }},
	})
	return e
}

func readExecutor(r *rd) ExecutorSummary {
	var e ExecutorSummary
	r.strct(map[int16]field{
		1: {thrift.STRUCT, func() {
			r.strct(map[int16]field{
				1: {thrift.I32, func() { e.TaskStart = r.i32() }},
				2: {thrift.I32, func() { e.TaskEnd = r.i32() }},
			})
		}},
		2: {thrift.STRING, func() { e.ComponentID = r.str() }},
		3: {thrift.STRING, func() { e.Host = r.str() }},
		4: {thrift.I32, func() { e.Port = r.i32() }},
		5: {thrift.I32, func() { e.UptimeSecs = r.i32() }},
		7: {thrift.STRUCT, func() { e.Stats = readExecutorStats(r) }},
	})
	return e
}

func readExecutorStats(r *rd) *ExecutorStats {
	s := &ExecutorStats{}
	r.strct(map[int16]field{
		1: {thrift.MAP, func() { s.Emitted = readWindowed(r, r.str) }},
		2: {thrift.MAP, func() { s.Transferred = readWindowed(r, r.str) }},
		3: {thrift.STRUCT, func() {
			r.strct(map[int16]field{
				1: {thrift.STRUCT, func() { // BoltStats: inputs keyed by GlobalStreamId
					key := func() string { g := readStreamID(r); return g.ComponentID + ":" + g.StreamID }
					r.strct(map[int16]field{
						1: {thrift.MAP, func() { s.Acked = readWindowed(r, key) }},
						2: {thrift.MAP, func() { s.Failed = readWindowed(r, key) }},
						4: {thrift.MAP, func() { s.Executed = readWindowed(r, key) }},
					})
				}},
				2: {thrift.STRUCT, func() { // SpoutStats
					r.strct(map[int16]field{
						1: {thrift.MAP, func() { s.Acked = readWindowed(r, r.str) }},
						2: {thrift.MAP, func() { s.Failed = readWindowed(r, r.str) }},
						3: {thrift.MAP, func() { s.CompleteMsAvg = readWindowedAvg(r) }},
					})
				}},
			})
		}},
		4: {thrift.DOUBLE, func() { s.Rate = r.f64() }},
	})
	return s
}

// readWindowed reads map<string, map<K, i64>> with key reading each K as
// a string.
func readWindowed(r *rd, key func() string) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	r.mapping(func() {
		window := r.str()
		m := map[string]int64{}
		r.mapping(func() { k := key(); m[k] = r.i64() })
		out[window] = m
	})
	return out
}

// readWindowedAvg reads map<string, map<string, double>>.
func readWindowedAvg(r *rd) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	r.mapping(func() {
		window := r.str()
		m := map[string]float64{}
		r.mapping(func() { k := r.str(); m[k] = r.f64() })
		out[window] = m
	})
	return out
}

func readStreamID(r *rd) StreamID {
	var g StreamID
	r.strct(map[int16]field{
		1: {thrift.STRING, func() { g.ComponentID = r.str() }},
		2: {thrift.STRING, func() { g.StreamID = r.str() }},
	})
	return g
}
