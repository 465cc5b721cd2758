package fetcher

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// fileServer is a real HTTP server on loopback that serves fixed bodies
// and counts the GETs of each path.
type fileServer struct {
	*httptest.Server
	mu     sync.Mutex
	files  map[string][]byte
	hits   map[string]int
	gate   chan struct{} // if set, GETs wait for it to close
	chunks bool          // send without Content-Length
}

func newFileServer(t *testing.T) *fileServer {
	s := &fileServer{files: map[string][]byte{}, hits: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		body, ok := s.files[r.URL.Path]
		if r.Method == http.MethodGet {
			s.hits[r.URL.Path]++
		}
		gate, chunks := s.gate, s.chunks
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		if gate != nil && r.Method == http.MethodGet {
			<-gate
		}
		if chunks {
			w.WriteHeader(http.StatusOK)
			w.Write(body)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *fileServer) put(p string, body []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[p] = body
	return s.URL + p
}

func (s *fileServer) gets(p string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[p]
}

type entry struct {
	name, body, link string
	mode             int64
	dir, hard        bool
}

func tarGz(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if e.mode != 0 {
			hdr.Mode = e.mode
		}
		switch {
		case e.dir:
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
		case e.hard:
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, e.link, 0
		case e.link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, e.link, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

func zipOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		switch {
		case e.dir:
			h.Name = strings.TrimSuffix(e.name, "/") + "/"
			h.SetMode(fs.ModeDir | 0o755)
		case e.link != "":
			h.SetMode(fs.ModeSymlink | 0o777)
		default:
			h.SetMode(fs.FileMode(max(e.mode, 0o644)))
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if e.link != "" {
			w.Write([]byte(e.link))
		} else if !e.dir {
			w.Write([]byte(e.body))
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func newTestFetcher(t *testing.T, cfg Config) *Fetcher {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func fetch(t *testing.T, f *Fetcher, sandbox string, uris ...mesos.CommandInfo_URI) (string, error) {
	t.Helper()
	var log bytes.Buffer
	err := f.Fetch(context.Background(), Request{Sandbox: sandbox, URIs: uris, Log: &log})
	return log.String(), err
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ptr[T any](v T) *T { return &v }

func TestHTTPArchivesAreExtractedIntoTheSandbox(t *testing.T) {
	srv := newFileServer(t)
	tgz := srv.put("/dist/app-1.0.tar.gz", tarGz(t,
		entry{name: "app/", dir: true},
		entry{name: "app/bin/run.sh", body: "#!/bin/sh\necho run\n", mode: 0o755},
		entry{name: "app/conf/site.xml", body: "<conf/>"},
		entry{name: "app/current", link: "bin"},
		entry{name: "app/conf/copy.xml", link: "app/conf/site.xml", hard: true},
	))
	// The query string is not part of the file's name.
	zp := srv.put("/dist/data.zip", zipOf(t,
		entry{name: "data/", dir: true},
		entry{name: "data/words.txt", body: "alpha beta\n"},
		entry{name: "data/latest", link: "words.txt"},
	)) + "?version=3"

	sandbox := t.TempDir()
	f := newTestFetcher(t, Config{})
	log, err := fetch(t, f, sandbox, mesos.CommandInfo_URI{Value: tgz}, mesos.CommandInfo_URI{Value: zp, Extract: ptr(true)})
	if err != nil {
		t.Fatalf("fetch: %v\nlog:\n%s", err, log)
	}
	for p, want := range map[string]string{
		"app/bin/run.sh":     "#!/bin/sh\necho run\n",
		"app/conf/site.xml":  "<conf/>",
		"app/conf/copy.xml":  "<conf/>",
		"app/current/run.sh": "#!/bin/sh\necho run\n",
		"data/words.txt":     "alpha beta\n",
		"data/latest":        "alpha beta\n",
	} {
		if got := mustRead(t, filepath.Join(sandbox, p)); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(sandbox, "app/bin/run.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("run.sh mode: %v %v; want the archive's 0755", fi.Mode(), err)
	}
	// Without the cache the archive stays beside its content, as in Mesos.
	for _, p := range []string{"app-1.0.tar.gz", "data.zip"} {
		if _, err := os.Stat(filepath.Join(sandbox, p)); err != nil {
			t.Errorf("archive %s not kept in the sandbox: %v", p, err)
		}
	}
	if !strings.Contains(log, "Fetching URI '"+tgz+"'") || !strings.Contains(log, "Extracted") {
		t.Errorf("fetch log lacks the steps:\n%s", log)
	}
}

func TestExecutableOutputFileAndNoExtract(t *testing.T) {
	srv := newFileServer(t)
	bin := srv.put("/tools/helper", []byte("#!/bin/sh\necho helper\n"))
	tgz := srv.put("/pkg.tgz", tarGz(t, entry{name: "inside.txt", body: "x"}))
	plain := srv.put("/download", []byte("payload"))
	sandbox := t.TempDir()
	f := newTestFetcher(t, Config{})
	log, err := fetch(t, f, sandbox,
		mesos.CommandInfo_URI{Value: bin, Executable: ptr(true)},
		// executable wins over extract, as in Mesos.
		mesos.CommandInfo_URI{Value: tgz, Executable: ptr(true), Extract: ptr(true), OutputFile: ptr("bin/pkg.tgz")},
		mesos.CommandInfo_URI{Value: plain, OutputFile: ptr("conf/app.properties")},
		mesos.CommandInfo_URI{Value: tgz, Extract: ptr(false), OutputFile: ptr("raw.tgz")},
	)
	if err != nil {
		t.Fatalf("fetch: %v\n%s", err, log)
	}
	for p, mode := range map[string]fs.FileMode{"helper": 0o755, "bin/pkg.tgz": 0o755, "conf/app.properties": 0o644, "raw.tgz": 0o644} {
		fi, err := os.Stat(filepath.Join(sandbox, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), mode)
		}
	}
	if got := mustRead(t, filepath.Join(sandbox, "conf/app.properties")); got != "payload" {
		t.Errorf("output_file content = %q", got)
	}
	if _, err := os.Stat(filepath.Join(sandbox, "inside.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an archive fetched as executable or with extract=false was extracted (%v)", err)
	}
}

func TestOutputFileMustStayInTheSandbox(t *testing.T) {
	srv := newFileServer(t)
	u := srv.put("/x", []byte("x"))
	outside := t.TempDir()
	sandbox := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(sandbox, "escape")); err != nil {
		t.Fatal(err)
	}
	f := newTestFetcher(t, Config{})
	for _, out := range []string{"../x", "/tmp/x", "a/../../x", "escape/x"} {
		_, err := fetch(t, f, sandbox, mesos.CommandInfo_URI{Value: u, OutputFile: ptr(out)})
		if err == nil {
			t.Errorf("output_file %q was accepted", out)
			continue
		}
		var fe *Error
		if !errors.As(err, &fe) || fe.URI != u {
			t.Errorf("output_file %q: error %v does not name the URI", out, err)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("a file was written outside the sandbox: %v", ents)
	}
}

func TestArchiveEntriesThatEscapeAreRefused(t *testing.T) {
	srv := newFileServer(t)
	outside := t.TempDir()
	cases := map[string][]byte{
		"/dotdot.tar.gz":  tarGz(t, entry{name: "ok.txt", body: "ok"}, entry{name: "../../../../" + outside + "/evil", body: "evil"}),
		"/abs.tar.gz":     tarGz(t, entry{name: outside + "/evil", body: "evil"}),
		"/symlink.tar.gz": tarGz(t, entry{name: "out", link: outside}, entry{name: "out/evil", body: "evil"}),
		"/relink.tar.gz":  tarGz(t, entry{name: "up", link: "../../../../../../.."}, entry{name: "up/evil", body: "evil"}),
		"/viadir.tar.gz":  tarGz(t, entry{name: "d/here", link: ".."}, entry{name: "d/here/x", link: "../sibling"}),
		"/hard.tar.gz":    tarGz(t, entry{name: "pw", link: "../../../../../etc/passwd", hard: true}),
		"/hardsym.tar.gz": tarGz(t, entry{name: "a/b/l", link: "../../f"}, entry{name: "l", link: "a/b/l", hard: true}),
		"/dotdot.zip":     zipOf(t, entry{name: "../../evil", body: "evil"}),
		"/link.zip":       zipOf(t, entry{name: "l", link: "/etc"}),
	}
	f := newTestFetcher(t, Config{})
	for p, body := range cases {
		u := srv.put(p, body)
		sandbox := t.TempDir()
		log, err := fetch(t, f, sandbox, mesos.CommandInfo_URI{Value: u})
		if err == nil {
			t.Errorf("%s: extraction succeeded", p)
			continue
		}
		if !strings.Contains(err.Error(), u) || !strings.Contains(err.Error(), "outside the sandbox") && !strings.Contains(err.Error(), "escapes") && !strings.Contains(err.Error(), "path escapes") {
			t.Errorf("%s: error %q does not name the URI and the escape", p, err)
		}
		if !strings.Contains(log, "Failed to fetch") {
			t.Errorf("%s: the fetch log does not report the failure:\n%s", p, log)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("a file was written outside the sandbox: %v", ents)
	}
}

func TestServerErrorsAndBadURIsNameTheURI(t *testing.T) {
	srv := newFileServer(t)
	closed := "http://" + refusedAddr(t) + "/gone.tgz"
	f := newTestFetcher(t, Config{})
	for uri, want := range map[string]string{
		srv.URL + "/missing.tar.gz":            "404 Not Found",
		closed:                                 "connection refused",
		"ftp://example.com/x":                  "ftp:// scheme is not supported",
		"relative/path":                        "relative paths are not supported",
		"file://otherhost/etc/hosts":           "must name this host",
		"/nonexistent/agora-fetcher-test-file": "no such file",
		srv.URL + "/":                          "names no file",
	} {
		_, err := fetch(t, f, t.TempDir(), mesos.CommandInfo_URI{Value: uri})
		if err == nil {
			t.Errorf("%s: fetched", uri)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "'"+uri+"'") || !strings.Contains(msg, want) {
			t.Errorf("%s: error %q, want the URI and %q", uri, msg, want)
		}
	}
}

func TestLocalFilesAreCopied(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tool.tar.gz")
	if err := os.WriteFile(src, tarGz(t, entry{name: "tool/README", body: "read me"}), 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(filepath.Dir(src), "start.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o600)
	sandbox := t.TempDir()
	f := newTestFetcher(t, Config{})
	if _, err := fetch(t, f, sandbox, mesos.CommandInfo_URI{Value: "file://" + src}, mesos.CommandInfo_URI{Value: script, Executable: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(sandbox, "tool/README")); got != "read me" {
		t.Errorf("README = %q", got)
	}
	if fi, err := os.Stat(filepath.Join(sandbox, "start.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("start.sh: %v %v", fi, err)
	}
	_, err := fetch(t, f, sandbox, mesos.CommandInfo_URI{Value: filepath.Dir(src)})
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("fetching a directory: %v", err)
	}
}

func TestSizeCapStopsLargeDownloads(t *testing.T) {
	srv := newFileServer(t)
	big := srv.put("/big.bin", bytes.Repeat([]byte("x"), 4096))
	bomb := srv.put("/bomb.tar.gz", tarGz(t, entry{name: "zeros", body: strings.Repeat("\x00", 8192)}))
	f := newTestFetcher(t, Config{MaxSize: 1024})
	sandbox := t.TempDir()
	// Announced by Content-Length, then without it (counted while reading).
	for _, chunked := range []bool{false, true} {
		srv.mu.Lock()
		srv.chunks = chunked
		srv.mu.Unlock()
		_, err := fetch(t, f, sandbox, mesos.CommandInfo_URI{Value: big})
		if err == nil || !strings.Contains(err.Error(), "limit of 1024 bytes") {
			t.Errorf("chunked=%v: a 4096-byte download under a 1024-byte cap: %v", chunked, err)
		}
	}
	if _, err := os.Stat(filepath.Join(sandbox, "big.bin")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the partial download was left in the sandbox (%v)", err)
	}
	// A small archive that expands beyond the cap.
	_, err := fetch(t, f, sandbox, mesos.CommandInfo_URI{Value: bomb})
	if err == nil || !strings.Contains(err.Error(), "limit of 1024 bytes") {
		t.Errorf("an archive expanding beyond the cap: %v", err)
	}
	// Local files too.
	local := filepath.Join(t.TempDir(), "big")
	os.WriteFile(local, make([]byte, 2048), 0o644)
	if _, err := fetch(t, f, sandbox, mesos.CommandInfo_URI{Value: local}); err == nil || !strings.Contains(err.Error(), "limit of 1024 bytes") {
		t.Errorf("a local file beyond the cap: %v", err)
	}
}

func TestCacheServesRepeatedFetchesWithOneDownload(t *testing.T) {
	srv := newFileServer(t)
	tgz := srv.put("/lib.tgz", tarGz(t, entry{name: "lib/a.jar", body: "jar"}))
	bin := srv.put("/bin/tool", []byte("tool"))
	cacheDir := filepath.Join(t.TempDir(), "fetcher-cache")
	f := newTestFetcher(t, Config{CacheDir: cacheDir, CacheSize: 1 << 20})
	for i := 0; i < 3; i++ {
		sandbox := t.TempDir()
		log, err := fetch(t, f, sandbox,
			mesos.CommandInfo_URI{Value: tgz, Cache: ptr(true)},
			mesos.CommandInfo_URI{Value: bin, Cache: ptr(true), Executable: ptr(true)})
		if err != nil {
			t.Fatalf("fetch %d: %v\n%s", i, err, log)
		}
		if got := mustRead(t, filepath.Join(sandbox, "lib/a.jar")); got != "jar" {
			t.Errorf("fetch %d: a.jar = %q", i, got)
		}
		if fi, err := os.Stat(filepath.Join(sandbox, "tool")); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("fetch %d: tool: %v %v", i, fi, err)
		}
		// From the cache only the extracted content lands in the sandbox.
		if _, err := os.Stat(filepath.Join(sandbox, "lib.tgz")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("fetch %d: the cached archive was copied into the sandbox", i)
		}
		if i > 0 && !strings.Contains(log, "Using the cached copy") {
			t.Errorf("fetch %d: log does not mention the cache:\n%s", i, log)
		}
	}
	if n := srv.gets("/lib.tgz"); n != 1 {
		t.Errorf("the archive was downloaded %d times, want 1", n)
	}
	if n := srv.gets("/bin/tool"); n != 1 {
		t.Errorf("the tool was downloaded %d times, want 1", n)
	}
	// Cache files are not executable: chmod happens in the sandbox only.
	ents, _ := os.ReadDir(cacheDir)
	for _, e := range ents {
		if fi, _ := e.Info(); fi != nil && fi.Mode().Perm()&0o111 != 0 {
			t.Errorf("cache file %s is executable", e.Name())
		}
	}
	// Without cache=true the URI is downloaded again.
	if _, err := fetch(t, f, t.TempDir(), mesos.CommandInfo_URI{Value: bin}); err != nil {
		t.Fatal(err)
	}
	if n := srv.gets("/bin/tool"); n != 2 {
		t.Errorf("an uncached fetch did not download (%d GETs)", n)
	}
	// A restarted agent starts with an empty cache.
	newTestFetcher(t, Config{CacheDir: cacheDir, CacheSize: 1 << 20})
	if ents, _ := os.ReadDir(cacheDir); len(ents) != 0 {
		t.Errorf("cache not cleared on start: %v", ents)
	}
}

func TestConcurrentFetchesOfOneURIShareOneDownload(t *testing.T) {
	srv := newFileServer(t)
	u := srv.put("/shared.bin", []byte("shared"))
	gate := make(chan struct{})
	srv.mu.Lock()
	srv.gate = gate
	srv.mu.Unlock()
	f := newTestFetcher(t, Config{CacheDir: t.TempDir(), CacheSize: 1 << 20})
	const n = 8
	var wg sync.WaitGroup
	var failed atomic.Int32
	sandboxes := make([]string, n)
	for i := range sandboxes {
		sandboxes[i] = t.TempDir()
		wg.Add(1)
		go func(sb string) {
			defer wg.Done()
			if err := f.Fetch(context.Background(), Request{Sandbox: sb, URIs: []mesos.CommandInfo_URI{{Value: u, Cache: ptr(true)}}}); err != nil {
				t.Error(err)
				failed.Add(1)
			}
		}(sandboxes[i])
	}
	// Let the first GET through once every fetch has joined it: the
	// server has seen one GET and all fetches wait on the cache entry.
	waitUntil(t, func() bool {
		f.cache.mu.Lock()
		defer f.cache.mu.Unlock()
		e := f.cache.entries[cacheKey("", u)]
		return e != nil && e.refs == n && srv.gets("/shared.bin") == 1
	})
	close(gate)
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	if got := srv.gets("/shared.bin"); got != 1 {
		t.Errorf("%d concurrent fetches made %d downloads, want 1", n, got)
	}
	for _, sb := range sandboxes {
		if got := mustRead(t, filepath.Join(sb, "shared.bin")); got != "shared" {
			t.Errorf("%s: %q", sb, got)
		}
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	srv := newFileServer(t)
	a := srv.put("/a", bytes.Repeat([]byte("a"), 400))
	b := srv.put("/b", bytes.Repeat([]byte("b"), 400))
	c := srv.put("/c", bytes.Repeat([]byte("c"), 400))
	huge := srv.put("/huge", bytes.Repeat([]byte("h"), 2000))
	f := newTestFetcher(t, Config{CacheDir: t.TempDir(), CacheSize: 1000})
	get := func(u string) {
		t.Helper()
		if _, err := fetch(t, f, t.TempDir(), mesos.CommandInfo_URI{Value: u, Cache: ptr(true)}); err != nil {
			t.Fatal(err)
		}
	}
	get(a)
	get(b)
	get(a) // a is now more recent than b
	get(c) // 1200 > 1000: evicts b
	if used, files := f.cache.usage(); used != 800 || files != 2 {
		t.Errorf("cache holds %d bytes in %d files, want 800 in 2", used, files)
	}
	get(a)
	get(b)
	if ga, gb, gc := srv.gets("/a"), srv.gets("/b"), srv.gets("/c"); ga != 1 || gb != 2 || gc != 1 {
		t.Errorf("downloads a=%d b=%d c=%d, want 1 2 1 (b evicted as least recently used)", ga, gb, gc)
	}
	// Bigger than the whole cache: fetched directly, the cache is untouched.
	get(huge)
	get(huge)
	if n := srv.gets("/huge"); n != 2 {
		t.Errorf("an oversized URI was downloaded %d times, want 2 (never cached)", n)
	}
	if used, _ := f.cache.usage(); used > 1000 {
		t.Errorf("cache holds %d bytes, over its 1000-byte bound", used)
	}
}

func TestHDFSErrorsAreClear(t *testing.T) {
	// Error paths without a namenode (TestHDFSFetchFromARealNamenode has one).
	t.Setenv("HADOOP_CONF_DIR", t.TempDir())
	t.Setenv("HADOOP_HOME", "")
	addr := refusedAddr(t)
	f := newTestFetcher(t, Config{})
	for uri, want := range map[string]string{
		"hdfs:///user/data/job.jar":      "names no namenode and none is configured",
		"hdfs://" + addr + "/data/x.jar": "connection refused",
		"hdfs://" + addr + "/":           "names no file",
	} {
		_, err := fetch(t, f, t.TempDir(), mesos.CommandInfo_URI{Value: uri})
		if err == nil || !strings.Contains(err.Error(), "'"+uri+"'") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want the URI and %q", uri, err, want)
		}
	}
	// With a configured namenode hdfs:///path goes there.
	f = newTestFetcher(t, Config{HDFSNamenode: addr})
	if _, err := fetch(t, f, t.TempDir(), mesos.CommandInfo_URI{Value: "hdfs:///data/x.jar"}); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("hdfs:/// with --hdfs_namenode: %v, want a connection error naming %s", err, addr)
	}
}

// refusedAddr is a loopback address where connections are refused: its
// port is bound (never listened on) until the test ends, so no other
// process can take it meanwhile, as one could a port listened on and
// closed. (clustertest.RefusedAddr, which this package's tests cannot
// import: clustertest imports the fetcher.)
func refusedAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}

// waitUntil polls cond; the deadline only turns a hang into a failure.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStalledDownloadIsAborted(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Write([]byte("first bytes"))
		w.(http.Flusher).Flush()
		select { // then nothing more
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	f := newTestFetcher(t, Config{StallTimeout: 200 * time.Millisecond})
	sandbox := t.TempDir()
	_, err := fetch(t, f, sandbox, mesos.CommandInfo_URI{Value: srv.URL + "/stuck.bin"})
	if err == nil || !strings.Contains(err.Error(), "the download stalled after 11 bytes") {
		t.Errorf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(sandbox, "stuck.bin")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the partial download was left in the sandbox (%v)", err)
	}
}

func TestSingleGzipFileIsDecompressed(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte("plain notes\n"))
	zw.Close()
	srv := newFileServer(t)
	u := srv.put("/notes.txt.gz", buf.Bytes())
	sandbox := t.TempDir()
	if _, err := fetch(t, newTestFetcher(t, Config{}), sandbox, mesos.CommandInfo_URI{Value: u}); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(sandbox, "notes.txt")); got != "plain notes\n" {
		t.Errorf("notes.txt = %q", got)
	}
}
