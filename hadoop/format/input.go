package format

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/fs"
)

// Input and output format class names, as Streaming's -inputformat and
// -outputformat take them.
const (
	TextInput     = "org.apache.hadoop.mapred.TextInputFormat"
	KeyValueInput = "org.apache.hadoop.mapred.KeyValueTextInputFormat"
	TeraInput     = "org.apache.hadoop.examples.terasort.TeraInputFormat"
	TextOutput    = "org.apache.hadoop.mapred.TextOutputFormat"
	TeraOutput    = "org.apache.hadoop.examples.terasort.TeraOutputFormat"
)

// Tera record geometry (TeraInputFormat.KEY_LENGTH, VALUE_LENGTH).
const (
	TeraKeyLen    = 10
	TeraRecordLen = 100
)

var inputNames = func() map[string]string {
	m := aliases(TextInput, KeyValueInput, TeraInput, RangeInput)
	m["RangeInputFormat"] = RangeInput
	return m
}()
var outputNames = aliases(TextOutput, TeraOutput)

// aliases accepts a class by its full name, its new-API name
// (org.apache.hadoop.mapreduce.lib.input/output...) or its simple name, as
// Streaming does.
func aliases(classes ...string) map[string]string {
	m := map[string]string{}
	for _, c := range classes {
		simple := c[strings.LastIndexByte(c, '.')+1:]
		m[c], m[simple] = c, c
		for _, pkg := range []string{"org.apache.hadoop.mapreduce.lib.input.", "org.apache.hadoop.mapreduce.lib.output."} {
			m[pkg+simple] = c
		}
	}
	return m
}

// InputFormatName returns the canonical name of an input format ("" means
// TextInputFormat), or an error listing the supported ones.
func InputFormatName(name string) (string, error) {
	if name == "" {
		return TextInput, nil
	}
	if c, ok := inputNames[name]; ok {
		return c, nil
	}
	return "", fmt.Errorf("input format %s is not supported (supported: TextInputFormat, KeyValueTextInputFormat, TeraInputFormat, TeraGen$RangeInputFormat)", name)
}

// OutputFormatName is InputFormatName for output formats.
func OutputFormatName(name string) (string, error) {
	if name == "" {
		return TextOutput, nil
	}
	if c, ok := outputNames[name]; ok {
		return c, nil
	}
	return "", fmt.Errorf("output format %s is not supported (supported: TextOutputFormat, TeraOutputFormat)", name)
}

// RecordReader reads the records of one split. The slices Next returns are
// valid until the next call.
type RecordReader interface {
	// Next returns the next record, or io.EOF after the last.
	Next() (key, value []byte, err error)
	// Progress is the fraction of the split consumed, in [0, 1].
	Progress() float64
	// BytesRead is how many bytes of the file were consumed.
	BytesRead() int64
	Close() error
}

// Open returns a reader of split s in the job's input format.
func Open(resolve fs.Resolver, s Split, c conf.Conf) (RecordReader, error) {
	name, err := InputFormatName(c.Get(conf.InputFormat))
	if err != nil {
		return nil, err
	}
	if name == RangeInput {
		return &rangeReader{s: s}, nil
	}
	fsys, p, err := resolve(s.Path)
	if err != nil {
		return nil, err
	}
	codec, err := CodecFor(s.Path)
	if err != nil {
		return nil, err
	}
	f, err := fsys.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open split %s: %w", s, err)
	}
	switch name {
	case TeraInput:
		if codec != "" {
			f.Close()
			return nil, fmt.Errorf("split %s: TeraInputFormat does not read compressed files", s)
		}
		return newTeraReader(f, s)
	case KeyValueInput:
		lr, err := newLineReader(f, s, codec)
		if err != nil {
			return nil, err
		}
		sep := byte('\t')
		if v := c.Get(conf.KeyValueSep); v != "" {
			sep = v[0]
		}
		return &keyValueReader{lineReader: lr, sep: sep}, nil
	default:
		return newLineReader(f, s, codec)
	}
}

// lineReader is LineRecordReader: the key is the byte offset of the line
// (decimal), the value the line without its "\n" or "\r\n". A split that
// does not start at 0 skips everything up to and including the first
// newline at or after its start; lines that start at or before its end are
// read whole, so every line belongs to exactly one split.
type lineReader struct {
	f      fs.File
	raw    *countingReader
	r      *bufio.Reader
	start  int64
	end    int64
	pos    int64 // offset of the next line
	size   int64 // compressed size, for progress of compressed input
	codec  string
	long   []byte
	keyBuf []byte
	done   bool
}

func newLineReader(f fs.File, s Split, codec string) (*lineReader, error) {
	lr := &lineReader{f: f, start: s.Start, end: s.Start + s.Length, codec: codec, size: s.Length}
	if codec != "" {
		lr.raw = &countingReader{r: f}
		d, err := decompress(codec, bufio.NewReaderSize(lr.raw, 64<<10))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("split %s: %s: %w", s, codec, err)
		}
		lr.r = bufio.NewReaderSize(d, 256<<10)
		lr.start, lr.end = 0, math.MaxInt64
		return lr, nil
	}
	if _, err := f.Seek(s.Start, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("seek split %s: %w", s, err)
	}
	lr.raw = &countingReader{r: f}
	lr.r = bufio.NewReaderSize(lr.raw, 256<<10)
	lr.pos = s.Start
	if s.Start != 0 {
		_, n, err := lr.readLine()
		lr.pos += int64(n)
		if err == io.EOF {
			lr.done = true
		} else if err != nil {
			f.Close()
			return nil, fmt.Errorf("split %s: %w", s, err)
		}
	}
	return lr, nil
}

// readLine returns the next line without its terminator and the number of
// bytes it took in the file.
func (lr *lineReader) readLine() ([]byte, int, error) {
	line, err := lr.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		lr.long = append(lr.long[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = lr.r.ReadSlice('\n')
			lr.long = append(lr.long, line...)
		}
		line = lr.long
	}
	n := len(line)
	if err == io.EOF {
		if n == 0 {
			return nil, 0, io.EOF
		}
		err = nil
	}
	if err != nil {
		return nil, n, err
	}
	line = bytes.TrimSuffix(line, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	return line, n, nil
}

func (lr *lineReader) Next() ([]byte, []byte, error) {
	if lr.done || lr.pos > lr.end {
		return nil, nil, io.EOF
	}
	off := lr.pos
	line, n, err := lr.readLine()
	if err == io.EOF {
		lr.done = true
		return nil, nil, io.EOF
	}
	if err != nil {
		return nil, nil, err
	}
	lr.pos += int64(n)
	lr.keyBuf = strconv.AppendInt(lr.keyBuf[:0], off, 10)
	return lr.keyBuf, line, nil
}

func (lr *lineReader) Progress() float64 {
	if lr.codec != "" {
		if lr.size <= 0 {
			return 1
		}
		return min(1, float64(lr.raw.n)/float64(lr.size))
	}
	if lr.end <= lr.start {
		return 1
	}
	return min(1, float64(lr.pos-lr.start)/float64(lr.end-lr.start))
}

func (lr *lineReader) BytesRead() int64 { return lr.raw.n }
func (lr *lineReader) Close() error     { return lr.f.Close() }

// keyValueReader is KeyValueTextInputFormat: each line splits at the first
// separator byte into key and value (no separator: the line is the key).
type keyValueReader struct {
	*lineReader
	sep byte
}

func (kr *keyValueReader) Next() ([]byte, []byte, error) {
	_, line, err := kr.lineReader.Next()
	if err != nil {
		return nil, nil, err
	}
	if i := bytes.IndexByte(line, kr.sep); i >= 0 {
		return line[:i], line[i+1:], nil
	}
	return line, nil, nil
}

// teraReader is TeraInputFormat's record reader: fixed 100-byte records,
// a 10-byte key and a 90-byte value. A split owns the records that start
// inside it, the first one at the next multiple of 100 from its start.
type teraReader struct {
	f     fs.File
	r     *bufio.Reader
	start int64
	end   int64
	pos   int64
	rec   [TeraRecordLen]byte
	n     int64
}

func newTeraReader(f fs.File, s Split) (*teraReader, error) {
	start := s.Start + (TeraRecordLen-s.Start%TeraRecordLen)%TeraRecordLen
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("seek split %s: %w", s, err)
	}
	return &teraReader{f: f, r: bufio.NewReaderSize(f, 256<<10), start: start, end: s.Start + s.Length, pos: start}, nil
}

func (tr *teraReader) Next() ([]byte, []byte, error) {
	if tr.pos >= tr.end {
		return nil, nil, io.EOF
	}
	n, err := io.ReadFull(tr.r, tr.rec[:])
	tr.n += int64(n)
	if err == io.EOF {
		return nil, nil, io.EOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, nil, fmt.Errorf("tera input: partial record of %d bytes at offset %d", n, tr.pos)
	}
	if err != nil {
		return nil, nil, err
	}
	tr.pos += TeraRecordLen
	return tr.rec[:TeraKeyLen], tr.rec[TeraKeyLen:], nil
}

func (tr *teraReader) Progress() float64 {
	if tr.end <= tr.start {
		return 1
	}
	return min(1, float64(tr.pos-tr.start)/float64(tr.end-tr.start))
}

func (tr *teraReader) BytesRead() int64 { return tr.n }
func (tr *teraReader) Close() error     { return tr.f.Close() }
