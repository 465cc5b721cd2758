package job

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/format"
	"github.com/agora-cluster/agora/hadoop/fs"
	"github.com/agora-cluster/agora/hadoop/partition"
)

// Plan is what a job runs: one map per split and NumReduces reduces. For a
// total-order partitioner it also fixes the split points (into Spec).
type Plan struct {
	Spec       Spec
	Splits     []format.Split
	NumReduces int
}

// NewPlan splits the input and, for a total-order partitioner without
// split points, reads them from mapreduce.totalorderpartitioner.path (one
// key per line, sorted) or samples the input keys the way InputSampler's
// SplitSampler does: the first records of up to
// agora.hadoop.totalorder.sample.splits splits spread across the input,
// agora.hadoop.totalorder.samples keys in all. A sampled key is the input
// record's key, or for TextInputFormat the line up to the map output
// separator (the key an identity mapper would emit).
func NewPlan(s Spec, resolve fs.Resolver) (Plan, error) {
	var splits []format.Split
	var err error
	if in, _ := s.InputFormat(); in == format.RangeInput {
		splits, err = format.RangeSplits(s.Conf)
	} else {
		splits, err = format.Splits(resolve, s.Conf)
	}
	if err != nil {
		return Plan{}, err
	}
	reduces, err := s.NumReduces()
	if err != nil {
		return Plan{}, err
	}
	p := Plan{Spec: s, Splits: splits, NumReduces: reduces}
	pname, err := s.PartitionerName()
	if err != nil {
		return Plan{}, err
	}
	if pname != partition.TotalOrderName || reduces < 2 || len(s.SplitPoints) > 0 {
		return p, nil
	}
	if path := s.Conf.Get(conf.TotalOrderPath); path != "" {
		points, err := readPartitionFile(resolve, path)
		if err != nil {
			return Plan{}, err
		}
		if len(points) != reduces-1 {
			return Plan{}, fmt.Errorf("partition file %s has %d keys; %d reduces need %d", path, len(points), reduces, reduces-1)
		}
		p.Spec.SplitPoints = points
		return p, nil
	}
	samples, err := sampleKeys(s, resolve, splits)
	if err != nil {
		return Plan{}, err
	}
	p.Spec.SplitPoints = partition.PickPoints(samples, reduces)
	return p, nil
}

func readPartitionFile(resolve fs.Resolver, path string) ([][]byte, error) {
	fsys, p, err := resolve(path)
	if err != nil {
		return nil, err
	}
	b, err := fs.ReadFile(fsys, p)
	if err != nil {
		return nil, fmt.Errorf("partition file: %w", err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		out = append(out, bytes.Clone(sc.Bytes()))
	}
	for i := 1; i < len(out); i++ {
		if bytes.Compare(out[i-1], out[i]) >= 0 {
			return nil, fmt.Errorf("partition file %s: keys not strictly increasing at line %d", path, i+1)
		}
	}
	return out, sc.Err()
}

func sampleKeys(s Spec, resolve fs.Resolver, splits []format.Split) ([][]byte, error) {
	total, err := s.Conf.Int(conf.TotalOrderSamples, 100000)
	if err != nil {
		return nil, err
	}
	maxSplits, err := s.Conf.Int(conf.TotalOrderSampleSplits, 10)
	if err != nil {
		return nil, err
	}
	in, err := s.InputFormat()
	if err != nil {
		return nil, err
	}
	sep := []byte(s.Conf.Get(conf.MapOutputSep))
	n := min(int(maxSplits), len(splits))
	step := len(splits) / max(n, 1)
	perSplit := int(total) / max(n, 1)
	var out [][]byte
	for i := 0; i < n; i++ {
		r, err := format.Open(resolve, splits[i*step], s.Conf)
		if err != nil {
			return nil, err
		}
		for j := 0; j < perSplit; j++ {
			k, v, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("sampling %s: %w", splits[i*step], err)
			}
			if in == format.TextInput {
				k = v
				if i := bytes.Index(v, sep); i >= 0 && len(sep) > 0 {
					k = v[:i]
				}
			}
			out = append(out, bytes.Clone(k))
		}
		r.Close()
	}
	return out, nil
}
