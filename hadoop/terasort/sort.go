package terasort

import (
	"strconv"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/format"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/partition"
)

// SortSpec is the TeraSort job: 100-byte records in (TeraInputFormat),
// identity map and reduce, a total-order partitioner from 100,000 sampled
// keys (TeraSort's mapreduce.terasort.partitions.sample), records out
// unchanged (TeraOutputFormat). Extra properties (e.g. split sizes) can be
// set on the returned Spec's Conf.
func SortSpec(input, output string, reduces int) job.Spec {
	c := conf.New()
	c.Set(conf.JobName, "TeraSort")
	c.Set(conf.InputDir, input)
	c.Set(conf.OutputDir, output)
	c.Set(conf.InputFormat, format.TeraInput)
	c.Set(conf.OutputFormat, format.TeraOutput)
	c.Set(conf.MapCommand, job.IdentityMapper)
	c.Set(conf.ReduceCommand, job.IdentityReducer)
	c.Set(conf.PartitionerName, partition.TotalOrderName)
	c.Set(conf.NumReduces, strconv.Itoa(reduces))
	c.Set(conf.TotalOrderSamples, "100000")
	return job.Spec{Conf: c}
}
