package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

type scheme int

const (
	schemeHTTP scheme = iota
	schemeFile
	schemeHDFS
)

// source is a parsed URI.
type source struct {
	uri    string
	scheme scheme
	url    *url.URL // http(s), hdfs
	file   string   // local path
	base   string   // the file name it is fetched as by default
}

// parseSource recognises the URIs the fetcher serves: http(s)://,
// file:// (local host only), an absolute path, and hdfs://.
func parseSource(uri string) (source, error) {
	s := source{uri: uri}
	if uri == "" {
		return s, errors.New("the URI is empty")
	}
	if strings.HasPrefix(uri, "/") {
		s.scheme, s.file = schemeFile, filepath.Clean(uri)
		s.base = path.Base(s.file)
		return s, nil
	}
	u, err := url.Parse(uri)
	if err != nil {
		return s, fmt.Errorf("not a URI: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host == "" {
			return s, errors.New("the URI names no host")
		}
		s.scheme, s.url = schemeHTTP, u
		s.base = baseName(u.Path)
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return s, fmt.Errorf("file URIs must name this host (file:///path), not %q", u.Host)
		}
		if !strings.HasPrefix(u.Path, "/") {
			return s, errors.New("file URIs need an absolute path (file:///path)")
		}
		s.scheme, s.file = schemeFile, filepath.Clean(u.Path)
		s.base = path.Base(s.file)
	case "hdfs":
		s.scheme, s.url = schemeHDFS, u
		s.base = baseName(u.Path)
	case "":
		return s, errors.New("relative paths are not supported; give an absolute path or a URI with a scheme (http, https, file, hdfs)")
	default:
		return s, fmt.Errorf("the %s:// scheme is not supported (supported: http, https, file, hdfs)", u.Scheme)
	}
	return s, nil
}

// baseName is the last element of a URL path; "" for a path ending in /.
func baseName(p string) string {
	if p == "" || strings.HasSuffix(p, "/") {
		return ""
	}
	return path.Base(p)
}

// download writes the source to w, at most cfg.MaxSize bytes.
func (f *Fetcher) download(ctx context.Context, s source, w io.Writer) (int64, error) {
	switch s.scheme {
	case schemeHTTP:
		return f.downloadHTTP(ctx, s, w)
	case schemeFile:
		return f.copyLocal(ctx, s, w)
	case schemeHDFS:
		return f.downloadHDFS(ctx, s, w)
	}
	return 0, fmt.Errorf("unknown scheme of %s", s.uri)
}

// size reports the source's size when it can be learnt cheaply.
func (f *Fetcher) size(ctx context.Context, s source) (int64, bool) {
	switch s.scheme {
	case schemeFile:
		if fi, err := os.Stat(s.file); err == nil && fi.Mode().IsRegular() {
			return fi.Size(), true
		}
	case schemeHTTP:
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, s.url.String(), nil)
		if err != nil {
			return 0, false
		}
		resp, err := f.http.Do(req)
		if err != nil {
			return 0, false
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && resp.ContentLength > 0 {
			return resp.ContentLength, true
		}
	}
	return 0, false
}

func (f *Fetcher) copyLocal(ctx context.Context, s source, w io.Writer) (int64, error) {
	in, err := os.Open(s.file)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", s.file)
	}
	if fi.Size() > f.cfg.MaxSize {
		return 0, fmt.Errorf("%s is %d bytes, more than the fetcher's limit of %d bytes", s.file, fi.Size(), f.cfg.MaxSize)
	}
	return copyCapped(ctx, w, in, f.cfg.MaxSize)
}

func (f *Fetcher) downloadHTTP(ctx context.Context, s source, w io.Writer) (int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url.String(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := f.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("the server answered %s", resp.Status)
	}
	if resp.ContentLength > f.cfg.MaxSize {
		return 0, fmt.Errorf("the server announces %d bytes, more than the fetcher's limit of %d bytes", resp.ContentLength, f.cfg.MaxSize)
	}
	body := &stallReader{r: resp.Body, timeout: f.cfg.StallTimeout, cancel: cancel}
	body.arm()
	defer body.stop()
	n, err := copyCapped(ctx, w, body, f.cfg.MaxSize)
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
			return n, fmt.Errorf("%w after %d bytes: no data for %v", errStalled, n, f.cfg.StallTimeout)
		}
		return n, err
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("the server announced %d bytes but sent %d", resp.ContentLength, n)
	}
	return n, nil
}

var errStalled = errors.New("the download stalled")

// stallReader cancels its request when no data arrives for timeout.
type stallReader struct {
	r       io.Reader
	timeout time.Duration
	cancel  context.CancelCauseFunc
	mu      sync.Mutex
	timer   *time.Timer
}

func (s *stallReader) arm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer == nil {
		s.timer = time.AfterFunc(s.timeout, func() { s.cancel(errStalled) })
		return
	}
	s.timer.Reset(s.timeout)
}

func (s *stallReader) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.arm()
	}
	return n, err
}

// copyCapped copies at most limit bytes and fails if src holds more; it
// stops when ctx ends.
func copyCapped(ctx context.Context, w io.Writer, src io.Reader, limit int64) (int64, error) {
	n, err := io.Copy(w, &ctxReader{ctx: ctx, r: io.LimitReader(src, limit+1)})
	if err != nil {
		return n, err
	}
	if n > limit {
		return n, fmt.Errorf("the download exceeds the fetcher's limit of %d bytes", limit)
	}
	return n, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		if cause := context.Cause(c.ctx); cause != nil {
			return 0, cause
		}
		return 0, err
	}
	return c.r.Read(p)
}
