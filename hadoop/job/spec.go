package job

import (
	"fmt"
	"strings"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/format"
	"github.com/agora-cluster/agora/hadoop/partition"
	"github.com/agora-cluster/agora/hadoop/program"
)

// Built-in mapper and reducer classes that run inside the engine instead
// of as a process, and the reducer that makes a job map-only.
const (
	IdentityMapper  = "org.apache.hadoop.mapred.lib.IdentityMapper"
	IdentityReducer = "org.apache.hadoop.mapred.lib.IdentityReducer"
	NoReducer       = "NONE"
)

// Spec is a submitted job. Everything about it lives in Conf under Hadoop's
// property names (the inputs in mapreduce.input.fileinputformat.inputdir,
// the mapper command in stream.map.streamprocessor, ...), so the whole
// configuration can reach every task and its environment. A Spec encodes to
// JSON, which is how it travels to executors.
type Spec struct {
	Conf conf.Conf `json:"conf"`
	// Files are shipped into every task's working directory (Streaming's
	// -file and -files), made executable; absolute paths or URIs.
	Files []string `json:"files,omitempty"`
	// SplitPoints are the total-order partitioner's keys, set by Plan.
	SplitPoints [][]byte `json:"split_points,omitempty"`
}

// Name is the job's name (mapreduce.job.name), or "streamjob".
func (s Spec) Name() string {
	if n := s.Conf.Get(conf.JobName); n != "" {
		return n
	}
	return "streamjob"
}

// Inputs are the input paths.
func (s Spec) Inputs() []string { return format.InputPaths(s.Conf) }

// Output is the output directory.
func (s Spec) Output() string { return s.Conf.Get(conf.OutputDir) }

// Mapper is the mapper command or built-in class.
func (s Spec) Mapper() string { return s.Conf.Get(conf.MapCommand) }

// Reducer is the reducer command or built-in class; "" means the
// IdentityReducer, as in Streaming, and NONE a map-only job.
func (s Spec) Reducer() string {
	if r := s.Conf.Get(conf.ReduceCommand); r != "" {
		return r
	}
	return IdentityReducer
}

// Combiner is the combiner command, or "".
func (s Spec) Combiner() string { return s.Conf.Get(conf.CombineCommand) }

// NumReduces is the number of reduce tasks; 0 for a map-only job.
func (s Spec) NumReduces() (int, error) {
	if s.Conf.Get(conf.ReduceCommand) == NoReducer {
		return 0, nil
	}
	n, err := s.Conf.Int(conf.NumReduces, 1)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("property %s=%d: must not be negative", conf.NumReduces, n)
	}
	return int(n), nil
}

// InputFormat is the canonical input format class.
func (s Spec) InputFormat() (string, error) {
	return format.InputFormatName(s.Conf.Get(conf.InputFormat))
}

// OutputFormat is the canonical output format class.
func (s Spec) OutputFormat() (string, error) {
	return format.OutputFormatName(s.Conf.Get(conf.OutputFormat))
}

// PartitionerName is the canonical partitioner class.
func (s Spec) PartitionerName() (string, error) {
	return partition.Name(s.Conf.Get(conf.PartitionerName))
}

// Partitioner returns the job's partitioner.
func (s Spec) Partitioner() (partition.Partitioner, error) {
	name, err := s.PartitionerName()
	if err != nil {
		return nil, err
	}
	if name == partition.TotalOrderName {
		return partition.TotalOrder{Points: s.SplitPoints}, nil
	}
	return partition.Hash{}, nil
}

// CmdEnv are the -cmdenv NAME=VALUE entries (stream.addenvironment,
// space-separated as Hadoop keeps them).
func (s Spec) CmdEnv() []string { return strings.Fields(s.Conf.Get(conf.AddEnvironment)) }

// IgnoreMapInputKey reports whether map input keys are dropped before the
// record reaches the mapper: stream.map.input.ignoreKey, by default true
// exactly for TextInputFormat (MAPREDUCE-1785).
func (s Spec) IgnoreMapInputKey() (bool, error) {
	in, err := s.InputFormat()
	if err != nil {
		return false, err
	}
	return s.Conf.Bool(conf.MapInputIgnoreKey, in == format.TextInput)
}

// Builtin reports whether cmd names a class or program the engine runs
// in-process: the identity classes, or a registered built-in program
// (package program, `agora:NAME`).
func Builtin(cmd string) bool {
	if cmd == IdentityMapper || cmd == IdentityReducer {
		return true
	}
	_, ok := program.Lookup(cmd)
	return ok
}

// javaClass reports whether cmd looks like a Java class name
// (org.example.Foo) rather than a program.
func javaClass(cmd string) bool {
	if strings.ContainsAny(cmd, " /") {
		return false
	}
	parts := strings.Split(cmd, ".")
	if len(parts) < 3 {
		return false
	}
	last := parts[len(parts)-1]
	return last != "" && last[0] >= 'A' && last[0] <= 'Z'
}
