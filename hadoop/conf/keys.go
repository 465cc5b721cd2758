package conf

import "slices"

// Keys the engine reads, under their current Hadoop names.
const (
	JobName    = "mapreduce.job.name"
	JobID      = "mapreduce.job.id"
	JobUser    = "mapreduce.job.user.name"
	NumMaps    = "mapreduce.job.maps"    // a hint for splitting (old mapred API)
	NumReduces = "mapreduce.job.reduces" // 0 = map-only

	InputDir        = "mapreduce.input.fileinputformat.inputdir"
	InputRecursive  = "mapreduce.input.fileinputformat.input.dir.recursive"
	SplitMinSize    = "mapreduce.input.fileinputformat.split.minsize"
	SplitMaxSize    = "mapreduce.input.fileinputformat.split.maxsize"
	OutputDir       = "mapreduce.output.fileoutputformat.outputdir"
	OutputCompress  = "mapreduce.output.fileoutputformat.compress"
	MarkSuccess     = "mapreduce.fileoutputcommitter.marksuccessfuljobs"
	LocalBlockSize  = "fs.local.block.size"
	TextOutputSep   = "mapreduce.output.textoutputformat.separator"
	KeyValueSep     = "mapreduce.input.keyvaluelinerecordreader.key.value.separator"
	InputFormat     = "mapred.input.format.class"  // old API, as Streaming sets it
	OutputFormat    = "mapred.output.format.class" // old API
	PartitionerName = "mapred.partitioner.class"   // old API
	TotalOrderPath  = "mapreduce.totalorderpartitioner.path"
	CacheFiles      = "mapreduce.job.cache.files"
	WorkingDir      = "mapreduce.job.working.dir" // the submitter's directory

	MapMaxAttempts      = "mapreduce.map.maxattempts"
	ReduceMaxAttempts   = "mapreduce.reduce.maxattempts"
	MapSpeculative      = "mapreduce.map.speculative"
	ReduceSpeculative   = "mapreduce.reduce.speculative"
	SlowStart           = "mapreduce.job.reduce.slowstart.completedmaps"
	TaskTimeout         = "mapreduce.task.timeout" // ms; 0 disables
	MaxFailuresPerHost  = "mapreduce.job.maxtaskfailures.per.tracker"
	MapFailuresPercent  = "mapreduce.map.failures.maxpercent"
	ReduceFailuresPct   = "mapreduce.reduce.failures.maxpercent"
	SlowTaskThreshold   = "mapreduce.job.speculative.slowtaskthreshold"
	SpeculativeCap      = "mapreduce.job.speculative.speculative-cap-running-tasks"
	SpeculativeMinTasks = "mapreduce.job.speculative.minimum-allowed-tasks"
	// LocalityDelay is how long (ms) a job waits for a data-local slot before
	// taking a non-local one: delay scheduling, under the Hadoop 1 fair
	// scheduler's name.
	LocalityDelay = "mapred.fairscheduler.locality.delay"
	// SpeculativeLag is how long (ms) an attempt must have run before it can
	// be speculated (Hadoop 1's fixed SPECULATIVE_LAG, made a property).
	SpeculativeLag = "agora.hadoop.speculative.lag"

	SortMB          = "mapreduce.task.io.sort.mb"
	SortFactor      = "mapreduce.task.io.sort.factor"
	SpillPercent    = "mapreduce.map.sort.spill.percent"
	CombineMinSpill = "mapreduce.map.combine.minspills"
	ParallelCopies  = "mapreduce.reduce.shuffle.parallelcopies"
	// SortBufferBytes overrides SortMB with an exact byte count; tests use
	// it to force many spills. Not a Hadoop key.
	SortBufferBytes = "agora.hadoop.sort.buffer.bytes"
	// TotalOrderSamples and TotalOrderSampleSplits size the input sample
	// taken at submission when a total-order partitioner has no partition
	// file (InputSampler.SplitSampler's numSamples and maxSplitsSampled).
	TotalOrderSamples      = "agora.hadoop.totalorder.samples"
	TotalOrderSampleSplits = "agora.hadoop.totalorder.sample.splits"

	// Streaming.
	MapCommand         = "stream.map.streamprocessor"
	ReduceCommand      = "stream.reduce.streamprocessor"
	CombineCommand     = "stream.combine.streamprocessor"
	AddEnvironment     = "stream.addenvironment"
	MapInputSep        = "stream.map.input.field.separator"
	MapInputIgnoreKey  = "stream.map.input.ignoreKey"
	MapOutputSep       = "stream.map.output.field.separator"
	MapOutputKeyFields = "stream.num.map.output.key.fields"
	ReduceInputSep     = "stream.reduce.input.field.separator"
	ReduceOutputSep    = "stream.reduce.output.field.separator"
	ReduceOutKeyFields = "stream.num.reduce.output.key.fields"
	NonZeroExitFails   = "stream.non.zero.exit.is.failure"
	ReporterPrefix     = "stream.stderr.reporter.prefix"
	EnvTruncateLimit   = "stream.jobconf.truncate.limit"
	ReporterEnabled    = "stream.stderr.reporter.enabled"

	// Per-task properties, set by the TaskTracker side for each attempt.
	TaskAttemptID = "mapreduce.task.attempt.id"
	TaskID        = "mapreduce.task.id"
	TaskIsMap     = "mapreduce.task.ismap"
	TaskPartition = "mapreduce.task.partition"
	TaskOutputDir = "mapreduce.task.output.dir"
	MapInputFile  = "mapreduce.map.input.file"
	MapInputStart = "mapreduce.map.input.start"
	MapInputLen   = "mapreduce.map.input.length"
	JobLocalDir   = "mapreduce.job.local.dir"
	LocalDir      = "mapreduce.cluster.local.dir"
)

// deprecated maps Hadoop 1 names to current ones, as in Hadoop's
// ConfigUtil.addDeprecatedKeys (the subset a Streaming job meets).
var deprecated = map[string]string{
	"mapred.job.name":                                JobName,
	"mapred.job.id":                                  JobID,
	"user.name":                                      JobUser,
	"mapred.map.tasks":                               NumMaps,
	"mapred.reduce.tasks":                            NumReduces,
	"mapred.input.dir":                               InputDir,
	"mapred.input.dir.recursive":                     InputRecursive,
	"mapred.min.split.size":                          SplitMinSize,
	"mapred.max.split.size":                          SplitMaxSize,
	"mapred.output.dir":                              OutputDir,
	"mapred.output.compress":                         OutputCompress,
	"mapred.textoutputformat.separator":              TextOutputSep,
	"key.value.separator.in.input.line":              KeyValueSep,
	"total.order.partitioner.path":                   TotalOrderPath,
	"mapred.cache.files":                             CacheFiles,
	"mapred.map.max.attempts":                        MapMaxAttempts,
	"mapred.reduce.max.attempts":                     ReduceMaxAttempts,
	"mapred.map.tasks.speculative.execution":         MapSpeculative,
	"mapred.reduce.tasks.speculative.execution":      ReduceSpeculative,
	"mapred.reduce.slowstart.completed.maps":         SlowStart,
	"mapred.task.timeout":                            TaskTimeout,
	"mapred.max.tracker.failures":                    MaxFailuresPerHost,
	"mapred.max.map.failures.percent":                MapFailuresPercent,
	"mapred.max.reduce.failures.percent":             ReduceFailuresPct,
	"mapred.speculative.execution.slowTaskThreshold": SlowTaskThreshold,
	"mapred.speculative.execution.speculativeCap":    SpeculativeCap,
	"io.sort.mb":                                     SortMB,
	"io.sort.factor":                                 SortFactor,
	"io.sort.spill.percent":                          SpillPercent,
	"min.num.spills.for.combine":                     CombineMinSpill,
	"mapred.reduce.parallel.copies":                  ParallelCopies,
	"mapred.task.id":                                 TaskAttemptID,
	"mapred.tip.id":                                  TaskID,
	"mapred.task.is.map":                             TaskIsMap,
	"mapred.task.partition":                          TaskPartition,
	"mapred.work.output.dir":                         TaskOutputDir,
	"map.input.file":                                 MapInputFile,
	"map.input.start":                                MapInputStart,
	"map.input.length":                               MapInputLen,
	"job.local.dir":                                  JobLocalDir,
	"mapred.local.dir":                               LocalDir,
	"mapred.job.queue.name":                          "mapreduce.job.queuename",
	"mapred.output.key.comparator.class":             "mapreduce.job.output.key.comparator.class",
	"mapred.text.key.partitioner.options":            "mapreduce.partition.keypartitioner.options",
	"mapred.text.key.comparator.options":             "mapreduce.partition.keycomparator.options",
	"map.output.key.field.separator":                 "mapreduce.map.output.key.field.separator",
	"mapred.compress.map.output":                     "mapreduce.map.output.compress",
	"mapred.working.dir":                             "mapreduce.job.working.dir",
	"mapred.jar":                                     "mapreduce.job.jar",
	"dfs.block.size":                                 "dfs.blocksize",
	"fs.default.name":                                "fs.defaultFS",
}

// oldNames is the reverse of deprecated: current name → old names.
var oldNames = func() map[string][]string {
	m := map[string][]string{}
	for old, cur := range deprecated {
		m[cur] = append(m[cur], old)
	}
	return m
}()

// defaults are Hadoop's defaults (mapred-default.xml and the Streaming
// code) for the keys the engine reads.
var defaults = map[string]string{
	NumMaps:                "2",
	NumReduces:             "1",
	InputRecursive:         "false",
	SplitMinSize:           "1",
	LocalBlockSize:         "33554432",
	MarkSuccess:            "true",
	TextOutputSep:          "\t",
	KeyValueSep:            "\t",
	MapMaxAttempts:         "4",
	ReduceMaxAttempts:      "4",
	MapSpeculative:         "true",
	ReduceSpeculative:      "true",
	SlowStart:              "0.05",
	TaskTimeout:            "600000",
	MaxFailuresPerHost:     "3",
	MapFailuresPercent:     "0",
	ReduceFailuresPct:      "0",
	SlowTaskThreshold:      "1.0",
	SpeculativeCap:         "0.1",
	SpeculativeMinTasks:    "10",
	LocalityDelay:          "3000",
	SpeculativeLag:         "60000",
	SortMB:                 "100",
	SortFactor:             "10",
	SpillPercent:           "0.80",
	CombineMinSpill:        "3",
	ParallelCopies:         "5",
	TotalOrderSamples:      "100000",
	TotalOrderSampleSplits: "10",
	MapInputSep:            "\t",
	MapOutputSep:           "\t",
	MapOutputKeyFields:     "1",
	ReduceInputSep:         "\t",
	ReduceOutputSep:        "\t",
	ReduceOutKeyFields:     "1",
	NonZeroExitFails:       "true",
	ReporterPrefix:         "reporter:",
	ReporterEnabled:        "true",
	EnvTruncateLimit:       "-1",
}

// Canonical returns the current name of key: key itself unless it is a
// deprecated name.
func Canonical(key string) string {
	if cur, ok := deprecated[key]; ok {
		return cur
	}
	return key
}

// Names returns every name of key: the current name first, then the
// deprecated ones in sorted order.
func Names(key string) []string {
	cur := Canonical(key)
	old := oldNames[cur]
	out := make([]string, 0, 1+len(old))
	out = append(out, cur)
	out = append(out, slices.Sorted(slices.Values(old))...)
	return out
}

// Default returns Hadoop's default for key, if the engine knows one.
func Default(key string) (string, bool) {
	v, ok := defaults[Canonical(key)]
	return v, ok
}
