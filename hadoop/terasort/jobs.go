package terasort

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/counters"
	"github.com/agora-cluster/agora/hadoop/format"
	"github.com/agora-cluster/agora/hadoop/fs"
	"github.com/agora-cluster/agora/hadoop/job"
)

// GenSpec is TeraGen as a map-only job: maps map tasks split the rows
// (RangeInputFormat) and each writes Hadoop's records for its rows,
// starting at its first row, into its part file (TeraOutputFormat). The
// job's CHECKSUM counter (ChecksumGroup) is the data's checksum.
func GenSpec(rows uint64, maps int, output string) job.Spec {
	c := conf.New()
	c.Set(conf.JobName, "TeraGen")
	c.Set(conf.InputFormat, format.RangeInput)
	c.Set(format.TeraGenRows, strconv.FormatUint(rows, 10))
	c.Set(conf.NumMaps, strconv.Itoa(max(maps, 1)))
	c.Set(conf.OutputDir, output)
	c.Set(conf.OutputFormat, format.TeraOutput)
	c.Set(conf.MapCommand, GenProgram)
	c.Set(conf.ReduceCommand, job.NoReducer)
	return job.Spec{Conf: c}
}

// GenChecksum is the checksum a TeraGen job's counters report.
func GenChecksum(c counters.Counters) Uint128 {
	return Uint128{Lo: uint64(c.Get(ChecksumGroup, ChecksumCounter))}
}

// ValidateSpec is TeraValidate as a job: one map per input file (Hadoop's
// TeraValidate reads each file whole) checks the order within it, and
// one reduce checks the boundaries between files and sums the checksums
// into the report directory's part-00000. With rows and sum set (non
// zero), the reduce also reports a row count or checksum that differs.
func ValidateSpec(input, report string, rows uint64, sum Uint128) job.Spec {
	c := conf.New()
	c.Set(conf.JobName, "TeraValidate")
	c.Set(conf.InputDir, input)
	c.Set(conf.OutputDir, report)
	c.Set(conf.InputFormat, format.TeraInput)
	c.Set(conf.SplitMinSize, strconv.FormatInt(math.MaxInt64, 10))
	c.Set(conf.MapCommand, ValidateProgram)
	c.Set(conf.ReduceCommand, ValidateProgram)
	c.Set(conf.NumReduces, "1")
	if rows > 0 {
		c.Set(ExpectRows, strconv.FormatUint(rows, 10))
	}
	if sum != (Uint128{}) {
		c.Set(ExpectChecksum, sum.String())
	}
	return job.Spec{Conf: c}
}

// ReadReport reads the report a TeraValidate job wrote: its checksum,
// row count and errors (an error may span lines, as Hadoop writes bad
// key partitioning).
func ReadReport(dir string) (Report, error) {
	fsys, p, err := fs.Lookup(dir, 0)
	if err != nil {
		return Report{}, err
	}
	b, err := fs.ReadFile(fsys, fs.Join(p, "part-00000"))
	if err != nil {
		return Report{}, fmt.Errorf("teravalidate report: %w", err)
	}
	var r Report
	sc := bufio.NewScanner(bytes.NewReader(b))
	inError := false
	for sc.Scan() {
		line := sc.Text()
		k, v, _ := strings.Cut(line, "\t")
		switch k {
		case keyChecksum:
			if r.Checksum, err = ParseUint128(v); err != nil {
				return r, fmt.Errorf("teravalidate report: %w", err)
			}
			inError = false
		case keyRows:
			if r.Records, err = strconv.ParseUint(v, 10, 64); err != nil {
				return r, fmt.Errorf("teravalidate report: rows %q: %w", v, err)
			}
			inError = false
		case keyError:
			r.Errors = append(r.Errors, v)
			inError = true
		default:
			if !inError {
				return r, fmt.Errorf("teravalidate report: unexpected line %q", line)
			}
			r.Errors[len(r.Errors)-1] += "\n" + line
		}
	}
	return r, sc.Err()
}
