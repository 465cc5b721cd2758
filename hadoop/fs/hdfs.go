package fs

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net"
	"os"
	"os/user"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/colinmarc/hdfs/v2"
	"github.com/colinmarc/hdfs/v2/hadoopconf"
)

// DefaultNamenodePort is the namenode RPC port an hdfs:// authority without
// a port means (Hadoop's 8020).
const DefaultNamenodePort = "8020"

// ErrBadHDFSPath marks an hdfs:// URI that names no usable namenode.
var ErrBadHDFSPath = errors.New("bad hdfs path")

func init() { Register("hdfs", OpenHDFS) }

// HDFS is a FileSystem on one HDFS cluster, spoken to through a
// github.com/colinmarc/hdfs/v2 client. Open files seek and read at any
// offset (splits start mid-file); Create writes a new file, replacing an
// old one; Rename is the namenode's atomic rename (rename2, overwriting),
// which task and job commit rely on; Blocks asks the namenode where each
// block's replicas live, so splits carry their datanodes' hosts.
type HDFS struct {
	// Namenode is what the client dials: the URI's authority, or the
	// namenodes of the Hadoop configuration, comma-separated.
	Namenode string
	client   *hdfs.Client
}

var (
	hdfsMu      sync.Mutex
	hdfsClients = map[string]*HDFS{} // by namenodes + user
)

// OpenHDFS is the Opener of hdfs:// URIs. authority is the namenode
// ("nn.example.com:8020"; without a port, 8020), an HA nameservice defined
// in the Hadoop configuration, or empty: then the namenodes come from the
// configuration in $HADOOP_CONF_DIR (or $HADOOP_HOME/conf): fs.defaultFS
// and dfs.namenode.rpc-address.*. The client acts as $HADOOP_USER_NAME, or
// the current user. One client per namenode and user is kept for the
// life of the process; a client whose namenode goes away reconnects on its
// next call.
func OpenHDFS(authority string) (FileSystem, error) {
	hconf, err := hadoopconf.LoadFromEnvironment()
	if err != nil {
		return nil, fmt.Errorf("hdfs: reading the Hadoop configuration ($HADOOP_CONF_DIR): %w", err)
	}
	addrs, err := namenodes(authority, hconf)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(hconf["hadoop.security.authentication"], "kerberos") {
		return nil, fmt.Errorf("hdfs namenode %s: Kerberos authentication (hadoop.security.authentication=kerberos) is not supported; only simple authentication is", strings.Join(addrs, ","))
	}
	userName := os.Getenv("HADOOP_USER_NAME")
	if userName == "" {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("hdfs: no user to act as (set HADOOP_USER_NAME): %w", err)
		}
		userName = u.Username
	}
	key := strings.Join(addrs, ",") + "|" + userName
	hdfsMu.Lock()
	defer hdfsMu.Unlock()
	if h := hdfsClients[key]; h != nil {
		return h, nil
	}
	opts := hdfs.ClientOptionsFromConf(hconf)
	opts.Addresses = addrs
	opts.User = userName
	opts.KerberosClient = nil
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	opts.NamenodeDialFunc = dialer.DialContext
	opts.DatanodeDialFunc = dialer.DialContext
	c, err := hdfs.NewClient(opts)
	if err != nil {
		return nil, fmt.Errorf("hdfs namenode %s (user %s): %w", strings.Join(addrs, ","), userName, err)
	}
	h := &HDFS{Namenode: strings.Join(addrs, ","), client: c}
	hdfsClients[key] = h
	return h, nil
}

// namenodes turns an hdfs:// authority into the addresses to dial.
func namenodes(authority string, hconf hadoopconf.HadoopConf) ([]string, error) {
	if authority == "" {
		if nns := hconf.Namenodes(); len(nns) > 0 {
			return nns, nil
		}
		return nil, fmt.Errorf("%w: hdfs:/// names no namenode: write hdfs://HOST:PORT/..., set fs.defaultFS=hdfs://HOST:PORT, or point HADOOP_CONF_DIR at a core-site.xml that sets it", ErrBadHDFSPath)
	}
	if strings.ContainsAny(authority, "@?#") {
		return nil, fmt.Errorf("%w: authority %q: want HOST[:PORT] or a nameservice", ErrBadHDFSPath, authority)
	}
	// An HA nameservice: dfs.ha.namenodes.<ns> = nn1,nn2 and
	// dfs.namenode.rpc-address.<ns>.<nn> = host:port.
	if ids := hconf["dfs.ha.namenodes."+authority]; ids != "" {
		var out []string
		for _, id := range strings.Split(ids, ",") {
			if a := hconf["dfs.namenode.rpc-address."+authority+"."+strings.TrimSpace(id)]; a != "" {
				out = append(out, a)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: nameservice %s has no dfs.namenode.rpc-address.%s.* in the Hadoop configuration", ErrBadHDFSPath, authority, authority)
		}
		return out, nil
	}
	host, port, err := net.SplitHostPort(authority)
	if err != nil {
		// No port (or a bare IPv6 address): Hadoop's default.
		host, port = strings.Trim(authority, "[]"), DefaultNamenodePort
	}
	if host == "" {
		return nil, fmt.Errorf("%w: authority %q has no host", ErrBadHDFSPath, authority)
	}
	if n, err := net.LookupPort("tcp", port); err != nil || n <= 0 || n > 65535 {
		return nil, fmt.Errorf("%w: authority %q: bad port %q", ErrBadHDFSPath, authority, port)
	}
	return []string{net.JoinHostPort(host, port)}, nil
}

func (h *HDFS) wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var pe *iofs.PathError
	if errors.As(err, &pe) {
		// Keep errors.Is(err, fs.ErrNotExist) working; name the cluster.
		return &iofs.PathError{Op: pe.Op, Path: "hdfs://" + h.Namenode + name, Err: pe.Err}
	}
	return fmt.Errorf("hdfs %s hdfs://%s%s: %w", op, h.Namenode, name, err)
}

func (h *HDFS) Open(name string) (File, error) {
	f, err := h.client.Open(name)
	if err != nil {
		return nil, h.wrap("open", name, err)
	}
	if f.Stat().IsDir() {
		f.Close()
		return nil, &iofs.PathError{Op: "open", Path: "hdfs://" + h.Namenode + name, Err: errors.New("is a directory")}
	}
	return f, nil
}

// Create replaces name with a new, empty file: HDFS files are written
// once, so an existing file is deleted first.
func (h *HDFS) Create(name string) (io.WriteCloser, error) {
	name = path.Clean(name)
	if err := h.client.MkdirAll(path.Dir(name), 0o755); err != nil {
		return nil, h.wrap("mkdir", path.Dir(name), err)
	}
	if fi, err := h.client.Stat(name); err == nil {
		if fi.IsDir() {
			return nil, &iofs.PathError{Op: "create", Path: "hdfs://" + h.Namenode + name, Err: errors.New("is a directory")}
		}
		if err := h.client.Remove(name); err != nil {
			return nil, h.wrap("create", name, err)
		}
	} else if !errors.Is(err, iofs.ErrNotExist) {
		return nil, h.wrap("create", name, err)
	}
	w, err := h.client.Create(name)
	if err != nil {
		return nil, h.wrap("create", name, err)
	}
	return &hdfsWriter{h: h, name: name, w: w}, nil
}

// hdfsWriter retries Close while the namenode says the last block is still
// replicating, as Hadoop's client does.
type hdfsWriter struct {
	h    *HDFS
	name string
	w    *hdfs.FileWriter
	n    int64 // bytes written
}

func (w *hdfsWriter) Write(p []byte) (int, error) {
	// An empty write must not reach the client library: it would allocate
	// a block it never writes to, and the file could then never be closed
	// (the namenode waits for a replica that will not come).
	if len(p) == 0 {
		return 0, nil
	}
	n, err := w.w.Write(p)
	w.n += int64(n)
	return n, w.h.wrap("write", w.name, err)
}

// Close closes the file; while the namenode answers that its blocks are
// still replicating, it asks again with backoff (about 25 s in all),
// naming the last block each time (completeFile, hdfs_blocks.go).
func (w *hdfsWriter) Close() error {
	err := w.w.Close()
	wait := 100 * time.Millisecond
	for try := 0; try < 8 && err != nil && hdfs.IsErrReplicating(err); try++ {
		time.Sleep(wait)
		wait *= 2
		done, cerr := completeFile(w.h.client, w.name, w.n)
		switch {
		case errors.Is(cerr, errNoBlockAPI):
			err = w.w.Close() // the client library's own retry
		case cerr != nil:
			err = cerr
		case done:
			err = nil
		}
	}
	return w.h.wrap("close", w.name, err)
}

func (h *HDFS) Stat(name string) (iofs.FileInfo, error) {
	fi, err := h.client.Stat(name)
	return fi, h.wrap("stat", name, err)
}

func (h *HDFS) ReadDir(name string) ([]iofs.FileInfo, error) {
	fi, err := h.client.Stat(name)
	if err != nil {
		return nil, h.wrap("readdir", name, err)
	}
	if !fi.IsDir() {
		return nil, &iofs.PathError{Op: "readdir", Path: "hdfs://" + h.Namenode + name, Err: errors.New("not a directory")}
	}
	ents, err := h.client.ReadDir(name)
	if err != nil {
		return nil, h.wrap("readdir", name, err)
	}
	slices.SortFunc(ents, func(a, b iofs.FileInfo) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, nil
}

func (h *HDFS) MkdirAll(name string) error {
	return h.wrap("mkdir", name, h.client.MkdirAll(name, 0o755))
}

// Rename moves oldname to newname (replacing a file there), creating
// newname's parent first.
func (h *HDFS) Rename(oldname, newname string) error {
	if err := h.client.MkdirAll(path.Dir(path.Clean(newname)), 0o755); err != nil {
		return h.wrap("mkdir", path.Dir(newname), err)
	}
	return h.wrap("rename", oldname, h.client.Rename(oldname, newname))
}

// RemoveAll deletes name recursively; a missing name is not an error.
func (h *HDFS) RemoveAll(name string) error {
	return h.wrap("remove", name, h.client.RemoveAll(name))
}

func (h *HDFS) Glob(pattern string) ([]string, error) { return walkGlob(h, pattern) }

// Blocks returns the file's blocks and the datanodes holding each, from
// the namenode's block locations.
func (h *HDFS) Blocks(name string) ([]Block, error) {
	fi, err := h.client.Stat(name)
	if err != nil {
		return nil, h.wrap("blocks", name, err)
	}
	if fi.IsDir() {
		return nil, &iofs.PathError{Op: "blocks", Path: "hdfs://" + h.Namenode + name, Err: errors.New("is a directory")}
	}
	blocks, err := blockLocations(h.client, name, fi.Size())
	if err != nil {
		return nil, h.wrap("blocks", name, err)
	}
	return blocks, nil
}
