package agent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// maxReadLength caps one /files/read answer.
const maxReadLength = 1 << 20

// filesError is an HTTP status with a message for the client.
type filesError struct {
	code int
	msg  string
}

func (e *filesError) Error() string { return e.msg }

func filesErr(code int, format string, args ...any) *filesError {
	return &filesError{code: code, msg: fmt.Sprintf(format, args...)}
}

func writeFilesErr(w http.ResponseWriter, err error) {
	var fe *filesError
	if errors.As(err, &fe) {
		http.Error(w, fe.msg, fe.code)
		return
	}
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

// openSandboxPath opens the ?path= of a /files request. Only paths inside
// WORK_DIR/slaves (where the sandboxes live) are served: ".." components,
// paths outside, and symlinks that lead outside are refused with 403; a
// missing path is 404. The file is opened through an os.Root, so a symlink
// swapped in after the checks cannot escape either. It returns the open
// file, its clean path and what it is; the caller closes the file.
func (a *Agent) openSandboxPath(r *http.Request) (*os.File, string, fs.FileInfo, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return nil, "", nil, filesErr(http.StatusBadRequest, "Expecting 'path=value' in query (an executor's directory from /state)")
	}
	if !filepath.IsAbs(p) {
		return nil, "", nil, filesErr(http.StatusBadRequest, "path %q must be absolute (an executor's directory from /state)", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return nil, "", nil, filesErr(http.StatusForbidden, "path %q must not contain '..'", p)
		}
	}
	root := filepath.Join(a.workDir, "slaves")
	clean := filepath.Clean(p)
	rel, err := filepath.Rel(root, clean)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil, "", nil, filesErr(http.StatusForbidden, "path %q is outside this agent's sandboxes (%s)", p, root)
	}
	if _, err := os.Lstat(clean); err != nil {
		return nil, "", nil, filesErr(http.StatusNotFound, "path %q does not exist", p)
	}
	resolvedRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, "", nil, filesErr(http.StatusNotFound, "path %q does not exist", p)
	}
	resolved, err := filepath.EvalSymlinks(clean)
	if err != nil {
		return nil, "", nil, filesErr(http.StatusNotFound, "path %q is a dangling symlink", p)
	}
	if resolved != resolvedRoot && !strings.HasPrefix(resolved, resolvedRoot+"/") {
		return nil, "", nil, filesErr(http.StatusForbidden, "path %q leads outside this agent's sandboxes through a symlink", p)
	}
	if err := a.authorizeSandbox(r, clean); err != nil { // files_authz.go
		return nil, "", nil, err
	}
	sandboxes, err := os.OpenRoot(root)
	if err != nil {
		return nil, "", nil, fmt.Errorf("open sandbox root: %w", err)
	}
	defer sandboxes.Close()
	f, err := sandboxes.Open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil, filesErr(http.StatusNotFound, "path %q does not exist", p)
	}
	if err != nil {
		return nil, "", nil, filesErr(http.StatusForbidden, "path %q cannot be served: %v", p, err)
	}
	// The check above was on the path asked for; the file served is where
	// its symlinks lead, maybe another framework's sandbox. Check that too,
	// on the path of the file actually open, so a link swapped meanwhile
	// cannot slip past either.
	if err := a.authorizeSandbox(r, a.servedSandboxPath(f, root, resolvedRoot, resolved)); err != nil {
		f.Close()
		return nil, "", nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, "", nil, err
	}
	return f, clean, fi, nil
}

// servedSandboxPath is the path, spelled under root, of the file f that
// was opened under root (whose symlinks resolve to resolvedRoot): from
// the kernel's name for the open file where it has one, else resolved
// (the path's symlinks as they were before opening).
func (a *Agent) servedSandboxPath(f *os.File, root, resolvedRoot, resolved string) string {
	real := resolved
	if p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd())); err == nil && filepath.IsAbs(p) {
		real = p
	}
	rel, err := filepath.Rel(resolvedRoot, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return root // above every sandbox: needs access to all of them
	}
	return filepath.Join(root, rel)
}

// serveBrowse is /files/browse?path=DIR: a JSON array describing DIR's
// entries (or the one file, if path names a file).
func (a *Agent) serveBrowse(w http.ResponseWriter, r *http.Request) {
	f, path, fi, err := a.openSandboxPath(r)
	if err != nil {
		writeFilesErr(w, err)
		return
	}
	defer f.Close()
	names := newOwnerNames()
	listing := []map[string]any{}
	if !fi.IsDir() {
		listing = append(listing, fileInfoJSON(path, fi, names))
		writeJSON(w, r, listing)
		return
	}
	entries, err := f.ReadDir(-1)
	if err != nil {
		writeFilesErr(w, fmt.Errorf("list %s: %w", path, err))
		return
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		info, err := e.Info() // lstat: symlinks are described, not followed
		if err != nil {
			continue // removed meanwhile
		}
		listing = append(listing, fileInfoJSON(filepath.Join(path, e.Name()), info, names))
	}
	writeJSON(w, r, listing)
}

// serveRead is /files/read?path=FILE&offset=N&length=M, answering
// {"data": "...", "offset": N}. offset=-1 returns the file's size as offset
// and no data, so a reader can start tailing at the end.
func (a *Agent) serveRead(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	offset, err := intParam(q.Get("offset"), 0)
	if err != nil || offset < -1 {
		http.Error(w, fmt.Sprintf("offset %q must be a number >= -1", q.Get("offset")), http.StatusBadRequest)
		return
	}
	length, err := intParam(q.Get("length"), -1)
	if err != nil || length < -1 {
		http.Error(w, fmt.Sprintf("length %q must be a number >= 0", q.Get("length")), http.StatusBadRequest)
		return
	}
	f, path, fi, err := a.openSandboxPath(r)
	if err != nil {
		writeFilesErr(w, err)
		return
	}
	defer f.Close()
	if fi.IsDir() {
		http.Error(w, fmt.Sprintf("cannot read %s: it is a directory", path), http.StatusBadRequest)
		return
	}
	size := fi.Size()
	if offset == -1 || offset >= size {
		writeJSON(w, r, map[string]any{"data": "", "offset": size})
		return
	}
	n := size - offset
	if length >= 0 && length < n {
		n = length
	}
	n = min(n, maxReadLength)
	buf := make([]byte, n)
	got, err := f.ReadAt(buf, offset)
	if err != nil && err != io.EOF {
		writeFilesErr(w, fmt.Errorf("read %s: %w", path, err))
		return
	}
	writeJSON(w, r, map[string]any{"data": string(buf[:got]), "offset": offset})
}

func intParam(s string, def int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	return strconv.ParseInt(s, 10, 64)
}

// fileInfoJSON is one entry of /files/browse, with Mesos's fields.
func fileInfoJSON(path string, fi fs.FileInfo, names *ownerNames) map[string]any {
	m := map[string]any{
		"path":  path,
		"size":  fi.Size(),
		"mtime": fi.ModTime().Unix(),
		"mode":  modeString(fi.Mode()),
		"nlink": 1,
		"uid":   "",
		"gid":   "",
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		m["nlink"] = st.Nlink
		m["uid"] = names.user(st.Uid)
		m["gid"] = names.group(st.Gid)
	}
	return m
}

// modeString writes a mode as ls -l does ("-rw-r--r--", "drwxr-xr-x").
func modeString(m fs.FileMode) string {
	b := []byte("----------")
	switch {
	case m.IsDir():
		b[0] = 'd'
	case m&fs.ModeSymlink != 0:
		b[0] = 'l'
	case m&fs.ModeNamedPipe != 0:
		b[0] = 'p'
	case m&fs.ModeSocket != 0:
		b[0] = 's'
	case m&fs.ModeCharDevice != 0:
		b[0] = 'c'
	case m&fs.ModeDevice != 0:
		b[0] = 'b'
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if m&(1<<uint(8-i)) != 0 {
			b[i+1] = rwx[i]
		}
	}
	special := func(i int, set bool, lower, upper byte) {
		if !set {
			return
		}
		if b[i] == '-' {
			b[i] = upper
		} else {
			b[i] = lower
		}
	}
	special(3, m&fs.ModeSetuid != 0, 's', 'S')
	special(6, m&fs.ModeSetgid != 0, 's', 'S')
	special(9, m&fs.ModeSticky != 0, 't', 'T')
	return string(b)
}

// ownerNames caches uid/gid → name lookups for one listing.
type ownerNames struct{ users, groups map[uint32]string }

func newOwnerNames() *ownerNames {
	return &ownerNames{users: map[uint32]string{}, groups: map[uint32]string{}}
}

func (o *ownerNames) user(id uint32) string {
	if n, ok := o.users[id]; ok {
		return n
	}
	n := strconv.FormatUint(uint64(id), 10)
	if u, err := user.LookupId(n); err == nil {
		n = u.Username
	}
	o.users[id] = n
	return n
}

func (o *ownerNames) group(id uint32) string {
	if n, ok := o.groups[id]; ok {
		return n
	}
	n := strconv.FormatUint(uint64(id), 10)
	if g, err := user.LookupGroupId(n); err == nil {
		n = g.Name
	}
	o.groups[id] = n
	return n
}
