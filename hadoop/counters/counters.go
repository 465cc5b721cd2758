// Package counters holds MapReduce counters: named 64-bit totals in groups,
// reported by tasks (the framework's own and the user's, from Streaming's
// reporter:counter lines) and summed per job.
package counters

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Hadoop's built-in counter groups and the names the engine maintains.
const (
	TaskGroup = "org.apache.hadoop.mapreduce.TaskCounter"
	JobGroup  = "org.apache.hadoop.mapreduce.JobCounter"
	FSGroup   = "org.apache.hadoop.mapreduce.FileSystemCounter"

	MapInputRecords      = "MAP_INPUT_RECORDS"
	MapOutputRecords     = "MAP_OUTPUT_RECORDS"
	MapOutputBytes       = "MAP_OUTPUT_BYTES"
	SpilledRecords       = "SPILLED_RECORDS"
	CombineInputRecords  = "COMBINE_INPUT_RECORDS"
	CombineOutputRecords = "COMBINE_OUTPUT_RECORDS"
	ReduceShuffleBytes   = "REDUCE_SHUFFLE_BYTES"
	ReduceInputRecords   = "REDUCE_INPUT_RECORDS"
	ReduceOutputRecords  = "REDUCE_OUTPUT_RECORDS"

	TotalLaunchedMaps    = "TOTAL_LAUNCHED_MAPS"
	TotalLaunchedReduces = "TOTAL_LAUNCHED_REDUCES"
	DataLocalMaps        = "DATA_LOCAL_MAPS"
	OtherLocalMaps       = "OTHER_LOCAL_MAPS"
	NumFailedMaps        = "NUM_FAILED_MAPS"
	NumFailedReduces     = "NUM_FAILED_REDUCES"
	NumKilledMaps        = "NUM_KILLED_MAPS"
	NumKilledReduces     = "NUM_KILLED_REDUCES"

	FileBytesRead    = "FILE_BYTES_READ"
	FileBytesWritten = "FILE_BYTES_WRITTEN"
)

// Counters maps group → counter → value. The zero value (nil) reads as
// empty; use New or Add to get a writable one.
type Counters map[string]map[string]int64

// New returns empty counters.
func New() Counters { return Counters{} }

// Add adds n to group/name.
func (c Counters) Add(group, name string, n int64) {
	g := c[group]
	if g == nil {
		g = map[string]int64{}
		c[group] = g
	}
	g[name] += n
}

// Get returns the value of group/name (0 if absent).
func (c Counters) Get(group, name string) int64 { return c[group][name] }

// Merge adds every counter of o into c.
func (c Counters) Merge(o Counters) {
	for g, names := range o {
		for n, v := range names {
			c.Add(g, n, v)
		}
	}
}

// Clone returns an independent copy.
func (c Counters) Clone() Counters {
	out := make(Counters, len(c))
	for g, names := range c {
		out[g] = maps.Clone(names)
	}
	return out
}

// String lists the counters one per line, "group\tname=value", sorted.
func (c Counters) String() string {
	var b strings.Builder
	for _, g := range slices.Sorted(maps.Keys(c)) {
		for _, n := range slices.Sorted(maps.Keys(c[g])) {
			fmt.Fprintf(&b, "%s\t%s=%d\n", g, n, c[g][n])
		}
	}
	return b.String()
}
