package format

import (
	"fmt"
	"io"
	"strconv"

	"github.com/agora-cluster/agora/hadoop/conf"
)

// RangeInput is TeraGen's RangeInputFormat: no input files, just row
// numbers. The rows (mapreduce.terasort.num-rows) are split across
// mapreduce.job.maps splits as Hadoop's TeraGen splits them (each gets
// rows/maps rows, the last the rest); a split's Start is its first row
// and its Length its row count. Each record's key is the row number in
// decimal, its value empty.
const RangeInput = "org.apache.hadoop.examples.terasort.TeraGen$RangeInputFormat"

// TeraGenRows is the number of rows TeraGen generates.
const TeraGenRows = "mapreduce.terasort.num-rows"

// RangeSplits splits the rows of a RangeInputFormat job.
func RangeSplits(c conf.Conf) ([]Split, error) {
	rows, err := c.Int(TeraGenRows, 0)
	if err != nil {
		return nil, err
	}
	if rows < 1 {
		return nil, fmt.Errorf("property %s=%d: TeraGen needs at least one row", TeraGenRows, rows)
	}
	maps, err := c.Int(conf.NumMaps, 1)
	if err != nil {
		return nil, err
	}
	if maps < 1 {
		return nil, fmt.Errorf("property %s=%d: must be at least 1", conf.NumMaps, maps)
	}
	maps = min(maps, rows)
	per := rows / maps
	out := make([]Split, 0, maps)
	var first int64
	for i := int64(0); i < maps-1; i++ {
		out = append(out, Split{Start: first, Length: per})
		first += per
	}
	return append(out, Split{Start: first, Length: rows - first}), nil
}

// rangeReader reads a range split's row numbers.
type rangeReader struct {
	s   Split
	n   int64
	buf []byte
}

func (r *rangeReader) Next() ([]byte, []byte, error) {
	if r.n >= r.s.Length {
		return nil, nil, io.EOF
	}
	r.buf = strconv.AppendInt(r.buf[:0], r.s.Start+r.n, 10)
	r.n++
	return r.buf, nil, nil
}

func (r *rangeReader) Progress() float64 {
	if r.s.Length == 0 {
		return 1
	}
	return float64(r.n) / float64(r.s.Length)
}

func (r *rangeReader) BytesRead() int64 { return 0 }
func (r *rangeReader) Close() error     { return nil }
