package terasort

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"path"
	"strconv"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/program"
)

// The built-in programs TeraGen and TeraValidate run as, on the cluster.
const (
	// GenProgram is TeraGen's SortGenMapper: each map gets a range of row
	// numbers (RangeInputFormat) and writes Hadoop's exact records for
	// them, adding their checksum to the CHECKSUM counter.
	GenProgram = "agora:teragen"
	// ValidateProgram is TeraValidate's ValidateMapper and
	// ValidateReducer.
	ValidateProgram = "agora:teravalidate"
)

// TeraGen's checksum counter: the sum of the records' CRC-32s (its low 64
// bits), as Hadoop's TeraGen counts it.
const (
	ChecksumGroup   = "org.apache.hadoop.examples.terasort.TeraGen$Counters"
	ChecksumCounter = "CHECKSUM"
)

// What the validate reduce checks the output against, when set: the row
// count and the checksum (hex) TeraGen reported.
const (
	ExpectRows     = "agora.terasort.validate.rows"
	ExpectChecksum = "agora.terasort.validate.checksum"
)

// Keys of TeraValidate's map output and report (Hadoop's, plus rows).
const (
	keyError    = "error"
	keyChecksum = "checksum"
	keyRows     = "rows"
)

func init() {
	program.Register(GenProgram, program.Program{Map: startGen})
	program.Register(ValidateProgram, program.Program{Map: startValidateMap, Reduce: startValidateReduce})
}

// genMapper generates the records of its rows; the input keys are
// consecutive row numbers, and only the first is read (as SortGenMapper
// skips its random generator ahead to it once).
type genMapper struct {
	t       program.Task
	started bool
	rand    Uint128
	row     Uint128
	total   Uint128
	rec     [RecordLen]byte
}

func startGen(_ context.Context, t program.Task) (program.Processor, error) {
	return &genMapper{t: t}, nil
}

func (g *genMapper) Write(key, _ []byte) error {
	if !g.started {
		n, err := strconv.ParseUint(string(key), 10, 64)
		if err != nil {
			return fmt.Errorf("teragen: row %q: %w", key, err)
		}
		g.row = Uint128{Lo: n}
		g.rand = skipAhead(g.row)
		g.started = true
	}
	g.rand = next(g.rand)
	BinaryRecord(&g.rec, g.rand, g.row)
	g.total = g.total.Add(Uint128{Lo: uint64(crc32.ChecksumIEEE(g.rec[:]))})
	g.row = g.row.Add(Uint128{Lo: 1})
	return g.t.Emit(g.rec[:KeyLen], g.rec[KeyLen:])
}

func (g *genMapper) Close() error {
	if g.started {
		g.t.Counter(ChecksumGroup, ChecksumCounter, int64(g.total.Lo))
	}
	return nil
}

// validateMapper checks the order of its split's keys and emits its first
// and last key (under <file>:begin and <file>:end), misorders (error),
// the checksum of its records and their number.
type validateMapper struct {
	t        program.Task
	name     string
	last     []byte
	sum      Uint128
	rows     uint64
	misorder int
}

func startValidateMap(_ context.Context, t program.Task) (program.Processor, error) {
	name := path.Base(t.Conf.Get(conf.MapInputFile))
	// A file cut into several splits (TeraValidate's own job reads each
	// file whole) names its splits by offset, sorting after the file's
	// first split and before the next file.
	if start, _ := t.Conf.Int(conf.MapInputStart, 0); start > 0 {
		name = fmt.Sprintf("%s~%020d", name, start)
	}
	return &validateMapper{t: t, name: name}, nil
}

func (m *validateMapper) Write(key, value []byte) error {
	if m.last == nil {
		if err := m.t.Emit([]byte(m.name+":begin"), key); err != nil {
			return err
		}
	} else if bytes.Compare(key, m.last) < 0 {
		if err := m.t.Emit([]byte(keyError), []byte("misorder in "+m.name+" between "+textify(m.last)+" and "+textify(key))); err != nil {
			return err
		}
	}
	m.last = append(m.last[:0], key...)
	crc := crc32.Update(crc32.ChecksumIEEE(key), crc32.IEEETable, value)
	m.sum = m.sum.Add(Uint128{Lo: uint64(crc)})
	m.rows++
	return nil
}

func (m *validateMapper) Close() error {
	if m.last == nil {
		return nil
	}
	for _, kv := range [][2]string{{m.name + ":end", string(m.last)}, {keyChecksum, m.sum.String()}, {keyRows, strconv.FormatUint(m.rows, 10)}} {
		if err := m.t.Emit([]byte(kv[0]), []byte(kv[1])); err != nil {
			return err
		}
	}
	return nil
}

// textify is BytesWritable.toString: hex bytes separated by spaces.
func textify(b []byte) string {
	var s []byte
	for i, c := range b {
		if i > 0 {
			s = append(s, ' ')
		}
		s = append(s, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
	}
	return string(s)
}

// validateReducer (the job's one reduce) passes errors on, sums the
// checksums and row counts, and checks the boundaries between splits: a
// split's first key must not be below the previous split's last key. It
// writes Hadoop's report (checksum, then error lines) and the row count.
type validateReducer struct {
	t                  program.Task
	sum                Uint128
	rows               uint64
	checksumOut        bool
	prevKey            []byte // the last file boundary key seen
	lastKey, lastValue []byte // the boundary compared against
	haveSum            bool
}

func startValidateReduce(_ context.Context, t program.Task) (program.Processor, error) {
	return &validateReducer{t: t}, nil
}

func (r *validateReducer) Write(key, value []byte) error {
	switch string(key) {
	case keyChecksum:
		s, err := ParseUint128(string(value))
		if err != nil {
			return fmt.Errorf("teravalidate: checksum %q: %w", value, err)
		}
		r.sum, r.haveSum = r.sum.Add(s), true
		return nil
	case keyRows:
		n, err := strconv.ParseUint(string(value), 10, 64)
		if err != nil {
			return fmt.Errorf("teravalidate: rows %q: %w", value, err)
		}
		r.rows += n
		return nil
	}
	if err := r.flushChecksum(); err != nil {
		return err
	}
	if string(key) == keyError {
		return r.t.Emit(key, value)
	}
	if bytes.Equal(key, r.prevKey) {
		return nil // as Hadoop's reducer, only a key's first value counts
	}
	r.prevKey = append(r.prevKey[:0], key...)
	if r.lastKey != nil && bytes.Compare(r.lastValue, value) > 0 {
		msg := "bad key partitioning:\n  file " + string(r.lastKey) + " key " + textify(r.lastValue) +
			"\n  file " + string(key) + " key " + textify(value)
		if err := r.t.Emit([]byte(keyError), []byte(msg)); err != nil {
			return err
		}
	}
	r.lastKey = append(r.lastKey[:0], key...)
	r.lastValue = append(r.lastValue[:0], value...)
	return nil
}

// flushChecksum writes the checksum line once the checksums are summed
// (their key sorts first).
func (r *validateReducer) flushChecksum() error {
	if r.checksumOut || !r.haveSum {
		return nil
	}
	r.checksumOut = true
	return r.t.Emit([]byte(keyChecksum), []byte(r.sum.String()))
}

func (r *validateReducer) Close() error {
	if err := r.flushChecksum(); err != nil {
		return err
	}
	if v := r.t.Conf.Get(ExpectRows); v != "" {
		if want, err := strconv.ParseUint(v, 10, 64); err == nil && want != r.rows {
			if err := r.t.Emit([]byte(keyError), []byte(fmt.Sprintf("row count %d, expected %d", r.rows, want))); err != nil {
				return err
			}
		}
	}
	if v := r.t.Conf.Get(ExpectChecksum); v != "" {
		if want, err := ParseUint128(v); err == nil && want != r.sum {
			if err := r.t.Emit([]byte(keyError), []byte(fmt.Sprintf("checksum %v, expected %v", r.sum, want))); err != nil {
				return err
			}
		}
	}
	return r.t.Emit([]byte(keyRows), []byte(strconv.FormatUint(r.rows, 10)))
}
