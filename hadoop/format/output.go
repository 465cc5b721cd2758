package format

import (
	"bufio"
	"io"

	"github.com/agora-cluster/agora/hadoop/conf"
)

// RecordWriter writes a task's final output records.
type RecordWriter interface {
	Write(key, value []byte) error
	// Close flushes and closes the underlying file.
	Close() error
}

// NewWriter returns a writer of the job's output format over w, which it
// owns and closes.
func NewWriter(w io.WriteCloser, c conf.Conf) (RecordWriter, error) {
	name, err := OutputFormatName(c.Get(conf.OutputFormat))
	if err != nil {
		w.Close()
		return nil, err
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	if name == TeraOutput {
		return &teraWriter{w: w, bw: bw}, nil
	}
	return &textWriter{w: w, bw: bw, sep: []byte(c.Get(conf.TextOutputSep))}, nil
}

// textWriter is TextOutputFormat: "key<sep>value\n". Streaming always hands
// it a key and a (possibly empty) value, so a line without a separator
// comes out with one appended, exactly as under Hadoop.
type textWriter struct {
	w   io.WriteCloser
	bw  *bufio.Writer
	sep []byte
}

func (t *textWriter) Write(key, value []byte) error {
	t.bw.Write(key)
	t.bw.Write(t.sep)
	t.bw.Write(value)
	return t.bw.WriteByte('\n')
}

func (t *textWriter) Close() error { return closeBoth(t.bw, t.w) }

// teraWriter is TeraOutputFormat: key and value bytes back to back.
type teraWriter struct {
	w  io.WriteCloser
	bw *bufio.Writer
}

func (t *teraWriter) Write(key, value []byte) error {
	t.bw.Write(key)
	_, err := t.bw.Write(value)
	return err
}

func (t *teraWriter) Close() error { return closeBoth(t.bw, t.w) }

func closeBoth(bw *bufio.Writer, w io.Closer) error {
	ferr := bw.Flush()
	cerr := w.Close()
	if ferr != nil {
		return ferr
	}
	return cerr
}
