// Package fetcher downloads a task's CommandInfo.uris into its sandbox
// before the task starts, as Mesos's fetcher does: http(s), local files
// (file:// or an absolute path) and hdfs:// sources; archives are extracted
// (.tar, .tar.gz, .tgz, .tar.bz2, .tbz2, .zip, and single-file .gz), files
// can be made executable or renamed (output_file), and a size-bounded LRU
// cache under the agent's work directory serves repeated fetches of the
// same URI (cache=true) with one download.
//
// Nothing a URI or an archive names can land outside the sandbox: all
// writes go through an os.Root opened on it, archive entries that climb
// out (absolute names, "..", symlinks pointing outside) fail the fetch.
package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Defaults for Config.
const (
	DefaultCacheSize    = 2 << 30  // 2 GiB, Mesos's --fetcher_cache_size
	DefaultMaxSize      = 32 << 30 // 32 GiB per download or archive
	DefaultMaxEntries   = 200_000  // entries per archive
	DefaultStallTimeout = time.Minute
)

// Config configures a Fetcher. The zero value fetches without a cache.
type Config struct {
	// CacheDir holds cached downloads (Mesos: WORK_DIR/fetcher-cache by
	// default; the agent passes it). "" disables the cache. Cache files
	// left by an earlier agent are removed by New, as Mesos clears its
	// cache on startup.
	CacheDir string
	// CacheSize bounds the cache in bytes (--fetcher_cache_size); 0
	// disables it. Least recently used files are evicted to make room.
	CacheSize int64
	// MaxSize caps each download and the total size of each extracted
	// archive, in bytes (default DefaultMaxSize).
	MaxSize int64
	// MaxEntries caps the entries of each extracted archive (default
	// DefaultMaxEntries): an archive of a million empty files stays
	// under MaxSize yet fills the disk's inodes. Large distributions
	// (a JDK, Hadoop) hold tens of thousands.
	MaxEntries int
	// StallTimeout aborts a network download that has delivered no data
	// for this long (--fetcher_stall_timeout, default 1 minute).
	StallTimeout time.Duration
	// HDFSNamenode ("host:port") serves hdfs:///path URIs that name no
	// namenode. Without it the Hadoop configuration in HADOOP_CONF_DIR
	// (or HADOOP_HOME/etc/hadoop) is consulted. hdfs://host:port/path
	// URIs always go to the namenode they name.
	HDFSNamenode string
	// HTTPClient downloads http(s) URIs (default: a client with dial,
	// TLS and response-header timeouts that honours *_proxy variables).
	HTTPClient *http.Client
	// Logger receives the fetcher's logs (default slog.Default()).
	Logger *slog.Logger
}

// Fetcher fetches URIs into sandboxes. It is safe for concurrent use.
type Fetcher struct {
	cfg   Config
	log   *slog.Logger
	http  *http.Client
	cache *cache // nil: no cache
}

// New returns a Fetcher; with a cache it creates CacheDir and removes the
// cache files an earlier agent left there.
func New(cfg Config) (*Fetcher, error) {
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	if cfg.CacheSize < 0 {
		return nil, fmt.Errorf("fetcher: cache size %d is negative", cfg.CacheSize)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	f := &Fetcher{cfg: cfg, log: cfg.Logger.With("component", "fetcher"), http: cfg.HTTPClient}
	if f.http == nil {
		f.http = defaultHTTPClient()
	}
	if cfg.CacheDir != "" && cfg.CacheSize > 0 {
		c, err := newCache(cfg.CacheDir, cfg.CacheSize)
		if err != nil {
			return nil, fmt.Errorf("fetcher: cache: %w", err)
		}
		f.cache = c
	}
	return f, nil
}

func defaultHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: time.Minute,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}}
}

// Request is one fetch: a task's URIs into its sandbox.
type Request struct {
	// Sandbox is the directory the URIs are fetched into. It must exist.
	Sandbox string
	// URIs are fetched in order; the first failure ends the fetch.
	URIs []mesos.CommandInfo_URI
	// User, if set, owns the fetched files (when the agent runs as root)
	// and separates cache entries, as in Mesos.
	User string
	// Log receives a line per step, for the sandbox's stderr; may be nil.
	Log io.Writer
}

// Error is a failed fetch of one URI.
type Error struct {
	URI string
	Err error
}

func (e *Error) Error() string { return fmt.Sprintf("fetch '%s': %v", e.URI, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Fetch fetches req.URIs into req.Sandbox one after another. The error,
// if any, is an *Error naming the URI that failed and why.
func (f *Fetcher) Fetch(ctx context.Context, req Request) error {
	if len(req.URIs) == 0 {
		return nil
	}
	logw := req.Log
	if logw == nil {
		logw = io.Discard
	}
	root, err := os.OpenRoot(req.Sandbox)
	if err != nil {
		return fmt.Errorf("fetcher: open sandbox: %w", err)
	}
	defer root.Close()
	owner, err := lookupOwner(req.User)
	if err != nil {
		return &Error{URI: req.URIs[0].Value, Err: err}
	}
	for _, u := range req.URIs {
		fmt.Fprintf(logw, "Fetching URI '%s'\n", u.Value)
		if err := f.fetchOne(ctx, root, req.User, owner, u, logw); err != nil {
			fmt.Fprintf(logw, "Failed to fetch '%s': %v\n", u.Value, err)
			f.log.Warn("fetch failed", "uri", u.Value, "sandbox", req.Sandbox, "err", err)
			return &Error{URI: u.Value, Err: err}
		}
	}
	fmt.Fprintf(logw, "Fetched %d URI(s) into the sandbox\n", len(req.URIs))
	return nil
}

// fetchOne fetches one URI into the sandbox rooted at root.
func (f *Fetcher) fetchOne(ctx context.Context, root *os.Root, userName string, owner *uidGid, u mesos.CommandInfo_URI, logw io.Writer) error {
	src, err := parseSource(u.Value)
	if err != nil {
		return err
	}
	name := src.base
	if out := u.GetOutputFile(); out != "" {
		name = out
	}
	name, err = sandboxPath(name)
	if err != nil {
		return err
	}
	executable := u.GetExecutable()
	kind := archiveKind(name)
	extract := u.Extract == nil || u.GetExtract() // Mesos: extract defaults to true
	if executable || kind == notArchive {
		extract = false
	}
	var created []string
	if u.GetCache() && f.cache != nil {
		created, err = f.fetchCached(ctx, root, src, userName, name, extract, kind, logw)
	} else {
		if u.GetCache() {
			fmt.Fprintf(logw, "The fetcher cache is disabled on this agent; fetching directly into the sandbox\n")
		}
		created, err = f.fetchDirect(ctx, root, src, name, extract, kind, logw)
	}
	if err != nil {
		return err
	}
	if executable {
		if err := root.Chmod(name, 0o755); err != nil {
			return fmt.Errorf("make %s executable: %w", name, err)
		}
	}
	if owner != nil {
		for _, p := range created {
			if err := root.Lchown(p, owner.uid, owner.gid); err != nil {
				return fmt.Errorf("hand %s to user %s: %w", p, userName, err)
			}
		}
	}
	return nil
}

// fetchDirect downloads into the sandbox, then extracts next to the file:
// both the archive and its content stay, as in Mesos.
func (f *Fetcher) fetchDirect(ctx context.Context, root *os.Root, src source, name string, extract bool, kind archive, logw io.Writer) ([]string, error) {
	created := parentsToCreate(root, name)
	if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", path.Dir(name), err)
	}
	out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create %s in the sandbox: %w", name, err)
	}
	n, err := f.download(ctx, src, out)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = root.Remove(name)
		return nil, err
	}
	created = append(created, name)
	fmt.Fprintf(logw, "Downloaded %d bytes to '%s'\n", n, name)
	if !extract {
		return created, nil
	}
	in, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	names, err := extractArchive(ctx, in, name, kind, root, path.Dir(name), f.cfg.MaxSize, f.cfg.MaxEntries)
	if err != nil {
		return nil, fmt.Errorf("extract %s: %w", name, err)
	}
	fmt.Fprintf(logw, "Extracted '%s' into '%s'\n", name, path.Dir(name))
	return append(created, names...), nil
}

// fetchCached serves the URI from the cache, downloading it there first
// if needed. An extracted archive is unpacked from the cache file, so
// only its content lands in the sandbox, as in Mesos.
func (f *Fetcher) fetchCached(ctx context.Context, root *os.Root, src source, userName, name string, extract bool, kind archive, logw io.Writer) ([]string, error) {
	if size, ok := f.size(ctx, src); ok && size > f.cache.capacity {
		fmt.Fprintf(logw, "'%s' (%d bytes) does not fit in the fetcher cache (%d bytes); fetching directly into the sandbox\n", src.uri, size, f.cache.capacity)
		return f.fetchDirect(ctx, root, src, name, extract, kind, logw)
	}
	e, hit, err := f.cache.get(ctx, cacheKey(userName, src.uri), func(w io.Writer) (int64, error) {
		return f.download(ctx, src, w)
	})
	if err != nil {
		return nil, err
	}
	defer f.cache.release(e)
	if hit {
		fmt.Fprintf(logw, "Using the cached copy of '%s'\n", src.uri)
	} else {
		fmt.Fprintf(logw, "Downloaded %d bytes into the fetcher cache\n", e.size)
	}
	in, err := os.Open(e.path)
	if err != nil {
		return nil, fmt.Errorf("open cache file: %w", err)
	}
	defer in.Close()
	created := parentsToCreate(root, name)
	if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", path.Dir(name), err)
	}
	if extract {
		names, err := extractArchive(ctx, in, name, kind, root, path.Dir(name), f.cfg.MaxSize, f.cfg.MaxEntries)
		if err != nil {
			return nil, fmt.Errorf("extract the cached %s: %w", name, err)
		}
		fmt.Fprintf(logw, "Extracted the cached '%s' into '%s'\n", name, path.Dir(name))
		return append(created, names...), nil
	}
	out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create %s in the sandbox: %w", name, err)
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("copy from the cache to %s: %w", name, err)
	}
	fmt.Fprintf(logw, "Copied the cached '%s' to '%s'\n", src.uri, name)
	return append(created, name), nil
}

// sandboxPath checks that name is a relative path inside the sandbox and
// returns it cleaned, slash-separated.
func sandboxPath(name string) (string, error) {
	if name == "" {
		return "", errors.New("the URI names no file (give output_file)")
	}
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("output name %q contains a NUL byte", name)
	}
	if path.IsAbs(name) {
		return "", fmt.Errorf("output name %q is absolute; it must be relative to the sandbox", name)
	}
	if len(name) > maxNameLen {
		return "", fmt.Errorf("output name %.64q...: %w", name, errNameTooLong)
	}
	clean := path.Clean(name)
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("output name %q leads outside the sandbox", name)
	}
	if err := checkName(clean); err != nil {
		return "", fmt.Errorf("output name %.64q...: %w", name, err)
	}
	return clean, nil
}

// parentsToCreate lists the missing directories above name, outermost
// first, so they can be handed to the task's user.
func parentsToCreate(root *os.Root, name string) []string {
	var missing []string
	for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
		if _, err := root.Lstat(d); err == nil {
			break
		}
		missing = append(missing, d)
	}
	slices.Reverse(missing)
	return missing
}

type uidGid struct{ uid, gid int }

// lookupOwner resolves the user fetched files are handed to; nil when no
// user is given or the agent cannot change ownership (not root).
func lookupOwner(name string) (*uidGid, error) {
	if name == "" || os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("user %q does not exist on this agent: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %q has a non-numeric uid %q or gid %q", name, u.Uid, u.Gid)
	}
	return &uidGid{uid, gid}, nil
}
