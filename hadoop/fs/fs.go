// Package fs is the seam between the MapReduce engine and the storage its
// jobs read and write: a small FileSystem interface with the local file
// system (the default), HDFS (hdfs://, through github.com/colinmarc/hdfs/v2)
// and an in-memory one for tests. Other schemes plug in with Register.
package fs

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"strings"
	"sync"
)

// File is an open file for reading.
type File interface {
	io.Reader
	io.ReaderAt
	io.Seeker
	io.Closer
}

// Block is one block of a file and the hosts that hold a replica of it.
type Block struct {
	Offset, Length int64
	// Hosts names the hosts holding a replica (HDFS: the datanodes'
	// hostnames); Addrs, when the store knows them, holds their IP
	// addresses in the same order.
	Hosts []string
	Addrs []string
}

// FileSystem is what the engine needs of a store. Names are slash-separated
// absolute paths within the file system (no scheme).
type FileSystem interface {
	// Open opens a file for reading.
	Open(name string) (File, error)
	// Create creates or truncates a file, creating missing parents.
	Create(name string) (io.WriteCloser, error)
	Stat(name string) (iofs.FileInfo, error)
	// ReadDir lists a directory, sorted by name.
	ReadDir(name string) ([]iofs.FileInfo, error)
	MkdirAll(name string) error
	// Rename moves a file or directory; it is atomic within the file
	// system, which task commit relies on.
	Rename(oldname, newname string) error
	RemoveAll(name string) error
	// Glob returns the names matching a pattern (path.Match syntax), sorted.
	Glob(pattern string) ([]string, error)
	// Blocks returns the block layout of a file and where each block lives;
	// a store without locality information returns blocks with no hosts.
	Blocks(name string) ([]Block, error)
}

// ErrNoFileSystem means a path names a scheme that no file system was
// registered for.
var ErrNoFileSystem = errors.New("no file system for this scheme")

// Opener returns the file system for the authority part of a URI (for
// hdfs://nn:8020/a/b, "nn:8020").
type Opener func(authority string) (FileSystem, error)

var (
	mu      sync.Mutex
	openers = map[string]Opener{}
)

// Register makes scheme:// paths resolve through open.
func Register(scheme string, open Opener) {
	mu.Lock()
	defer mu.Unlock()
	openers[scheme] = open
}

// Resolver finds the file system of a path; Lookup is the default one.
type Resolver func(path string) (FileSystem, string, error)

// Lookup returns the file system a path lives on and the path within it.
// "/a/b" and "file:///a/b" are local; "scheme://authority/a/b" goes to the
// Opener registered for scheme. blockSize is the block size the local file
// system reports (Hadoop's fs.local.block.size); 0 means 32 MiB.
func Lookup(path string, blockSize int64) (FileSystem, string, error) {
	return lookup(path, blockSize, "")
}

// lookup is Lookup with a default file system URI (Hadoop's fs.defaultFS,
// e.g. "hdfs://nn:8020"): a URI of the same scheme with an empty authority
// ("hdfs:///a/b") takes the default's authority. Paths without a scheme
// stay local whatever the default: shipped files (-file) are always local.
func lookup(path string, blockSize int64, defaultFS string) (FileSystem, string, error) {
	scheme, rest, ok := strings.Cut(path, "://")
	if !ok || strings.Contains(scheme, "/") {
		if after, isFile := strings.CutPrefix(path, "file:"); isFile {
			path = after
		}
		return Local{BlockSize: blockSize}, path, nil
	}
	authority, p, _ := strings.Cut(rest, "/")
	p = "/" + p
	if scheme == "file" {
		return Local{BlockSize: blockSize}, p, nil
	}
	if authority == "" {
		if ds, da, ok := strings.Cut(defaultFS, "://"); ok && ds == scheme {
			authority, _, _ = strings.Cut(da, "/")
		}
	}
	mu.Lock()
	open, found := openers[scheme]
	mu.Unlock()
	if !found {
		return nil, "", fmt.Errorf("path %s: %w %q", path, ErrNoFileSystem, scheme)
	}
	fsys, err := open(authority)
	if err != nil {
		return nil, "", fmt.Errorf("path %s: %w", path, err)
	}
	return fsys, p, nil
}

// Join joins a base path (possibly a URI) and a name with a slash.
func Join(base, name string) string {
	return strings.TrimSuffix(base, "/") + "/" + strings.TrimPrefix(name, "/")
}

// ReadFile reads a whole file.
func ReadFile(fsys FileSystem, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// WriteFile creates name with data.
func WriteFile(fsys FileSystem, name string, data []byte) error {
	w, err := fsys.Create(name)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// Exists reports whether name exists; errors other than "not found" are
// returned.
func Exists(fsys FileSystem, name string) (bool, error) {
	_, err := fsys.Stat(name)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, iofs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// ResolverFor returns a Resolver whose local file system reports blockSize
// as its block size (0: 32 MiB).
func ResolverFor(blockSize int64) Resolver {
	return func(p string) (FileSystem, string, error) { return Lookup(p, blockSize) }
}

// ResolverWith returns a Resolver whose local file system reports
// blockSize (0: 32 MiB) and where a URI with an empty authority
// ("hdfs:///a/b") goes to defaultFS's authority (the job's fs.defaultFS).
func ResolverWith(blockSize int64, defaultFS string) Resolver {
	return func(p string) (FileSystem, string, error) { return lookup(p, blockSize, defaultFS) }
}
