package fs

import (
	"bytes"
	"fmt"
	"io"
	iofs "io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
)

// Mem is an in-memory file system for tests. Hosts, if set, gives the
// replica hosts of block i of a file, so locality can be tested without a
// cluster. It is safe for concurrent use.
type Mem struct {
	BlockSize int64
	Hosts     func(name string, block int) []string

	mu    sync.Mutex
	files map[string][]byte
	dirs  map[string]bool
}

// NewMem returns an empty in-memory file system.
func NewMem() *Mem {
	return &Mem{files: map[string][]byte{}, dirs: map[string]bool{"/": true}}
}

func clean(name string) string { return path.Clean("/" + name) }

func (m *Mem) Open(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.files[clean(name)]
	if !ok {
		return nil, &iofs.PathError{Op: "open", Path: name, Err: iofs.ErrNotExist}
	}
	return nopCloser{bytes.NewReader(b)}, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

type memWriter struct {
	m    *Mem
	name string
	buf  bytes.Buffer
}

func (w *memWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }

func (w *memWriter) Close() error {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	w.m.files[w.name] = w.buf.Bytes()
	return nil
}

func (m *Mem) Create(name string) (io.WriteCloser, error) {
	n := clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dirs[n] {
		return nil, &iofs.PathError{Op: "create", Path: name, Err: fmt.Errorf("is a directory")}
	}
	m.mkdirs(path.Dir(n))
	m.files[n] = nil
	return &memWriter{m: m, name: n}, nil
}

func (m *Mem) mkdirs(d string) {
	for ; ; d = path.Dir(d) {
		m.dirs[d] = true
		if d == "/" {
			return
		}
	}
}

type memInfo struct {
	name string
	size int64
	dir  bool
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }
func (i memInfo) Mode() iofs.FileMode {
	if i.dir {
		return iofs.ModeDir | 0o755
	}
	return 0o644
}

func (m *Mem) Stat(name string) (iofs.FileInfo, error) {
	n := clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.files[n]; ok {
		return memInfo{name: path.Base(n), size: int64(len(b))}, nil
	}
	if m.dirs[n] {
		return memInfo{name: path.Base(n), dir: true}, nil
	}
	return nil, &iofs.PathError{Op: "stat", Path: name, Err: iofs.ErrNotExist}
}

func (m *Mem) ReadDir(name string) ([]iofs.FileInfo, error) {
	n := clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[n] {
		return nil, &iofs.PathError{Op: "readdir", Path: name, Err: iofs.ErrNotExist}
	}
	var out []iofs.FileInfo
	for f, b := range m.files {
		if path.Dir(f) == n {
			out = append(out, memInfo{name: path.Base(f), size: int64(len(b))})
		}
	}
	for d := range m.dirs {
		if d != n && path.Dir(d) == n {
			out = append(out, memInfo{name: path.Base(d), dir: true})
		}
	}
	slices.SortFunc(out, func(a, b iofs.FileInfo) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

func (m *Mem) MkdirAll(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mkdirs(clean(name))
	return nil
}

func (m *Mem) Rename(oldname, newname string) error {
	o, n := clean(oldname), clean(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.files[o]; ok {
		delete(m.files, o)
		m.mkdirs(path.Dir(n))
		m.files[n] = b
		return nil
	}
	if !m.dirs[o] {
		return &iofs.PathError{Op: "rename", Path: oldname, Err: iofs.ErrNotExist}
	}
	for f, b := range m.files {
		if strings.HasPrefix(f, o+"/") {
			delete(m.files, f)
			m.files[n+strings.TrimPrefix(f, o)] = b
		}
	}
	for d := range m.dirs {
		if d == o || strings.HasPrefix(d, o+"/") {
			delete(m.dirs, d)
			m.dirs[n+strings.TrimPrefix(d, o)] = true
		}
	}
	m.mkdirs(path.Dir(n))
	return nil
}

func (m *Mem) RemoveAll(name string) error {
	n := clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.files, n)
	for f := range m.files {
		if strings.HasPrefix(f, n+"/") {
			delete(m.files, f)
		}
	}
	for d := range m.dirs {
		if d != "/" && (d == n || strings.HasPrefix(d, n+"/")) {
			delete(m.dirs, d)
		}
	}
	return nil
}

func (m *Mem) Glob(pattern string) ([]string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for f := range m.files {
		if ok, _ := path.Match(pattern, f); ok {
			out = append(out, f)
		}
	}
	for d := range m.dirs {
		if ok, _ := path.Match(pattern, d); ok {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (m *Mem) Blocks(name string) ([]Block, error) {
	fi, err := m.Stat(name)
	if err != nil {
		return nil, err
	}
	var hosts func(int) []string
	if m.Hosts != nil {
		hosts = func(i int) []string { return m.Hosts(clean(name), i) }
	}
	return layout(fi.Size(), m.BlockSize, hosts), nil
}
