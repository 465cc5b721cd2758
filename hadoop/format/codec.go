package format

import (
	"compress/bzip2"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"strings"
)

// CodecFor names the compression codec a file's extension implies ("" for
// none), as Hadoop's CompressionCodecFactory does. Compressed files are
// read whole by one map. Codecs this build cannot read are an error.
func CodecFor(name string) (string, error) {
	switch {
	case strings.HasSuffix(name, ".gz"):
		return "gzip", nil
	case strings.HasSuffix(name, ".bz2"):
		// Hadoop can split bzip2 at block markers; this engine reads a
		// .bz2 file with one map.
		return "bzip2", nil
	case strings.HasSuffix(name, ".deflate"):
		return "deflate", nil
	}
	for _, ext := range []string{".snappy", ".lz4", ".lzo", ".zst"} {
		if strings.HasSuffix(name, ext) {
			return "", fmt.Errorf("%w: %s: %s compression is not supported (supported: .gz, .bz2, .deflate)", ErrInput, name, ext[1:])
		}
	}
	return "", nil
}

// decompress wraps r in the codec's reader.
func decompress(codec string, r io.Reader) (io.Reader, error) {
	switch codec {
	case "gzip":
		return gzip.NewReader(r)
	case "bzip2":
		return bzip2.NewReader(r), nil
	case "deflate":
		return zlib.NewReader(r)
	}
	return r, nil
}

// countingReader counts the compressed bytes consumed, for progress.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
