package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"time"

	"github.com/colinmarc/hdfs/v2"
	"github.com/colinmarc/hdfs/v2/hadoopconf"
)

// downloadHDFS reads an hdfs:// URI through the HDFS client protocol.
// The namenode is the one the URI names (hdfs://host:port/path, port
// 8020 when left out), else Config.HDFSNamenode, else the Hadoop
// configuration found through HADOOP_CONF_DIR or HADOOP_HOME.
func (f *Fetcher) downloadHDFS(ctx context.Context, s source, w io.Writer) (int64, error) {
	if s.url.Path == "" || s.url.Path == "/" {
		return 0, errors.New("the hdfs URI names no file")
	}
	opts, err := f.hdfsOptions(s)
	if err != nil {
		return 0, err
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	dial := func(_ context.Context, network, addr string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addr)
	}
	opts.NamenodeDialFunc, opts.DatanodeDialFunc = dial, dial
	client, err := hdfs.NewClient(opts)
	if err != nil {
		return 0, fmt.Errorf("connect to the HDFS namenode %v: %w", opts.Addresses, err)
	}
	defer client.Close()
	in, err := client.Open(s.url.Path)
	if err != nil {
		return 0, fmt.Errorf("open %s on HDFS: %w", s.url.Path, err)
	}
	defer in.Close()
	fi := in.Stat()
	if fi.IsDir() {
		return 0, fmt.Errorf("%s on HDFS is a directory", s.url.Path)
	}
	if fi.Size() > f.cfg.MaxSize {
		return 0, fmt.Errorf("%s on HDFS is %d bytes, more than the fetcher's limit of %d bytes", s.url.Path, fi.Size(), f.cfg.MaxSize)
	}
	return copyCapped(ctx, w, in, f.cfg.MaxSize)
}

func (f *Fetcher) hdfsOptions(s source) (hdfs.ClientOptions, error) {
	var opts hdfs.ClientOptions
	switch {
	case s.url.Host != "":
		addr := s.url.Host
		if s.url.Port() == "" {
			addr = net.JoinHostPort(s.url.Hostname(), "8020")
		}
		opts.Addresses = []string{addr}
	case f.cfg.HDFSNamenode != "":
		opts.Addresses = []string{f.cfg.HDFSNamenode}
	default:
		conf, err := hadoopconf.LoadFromEnvironment()
		if err != nil {
			return opts, fmt.Errorf("read the Hadoop configuration: %w", err)
		}
		opts = hdfs.ClientOptionsFromConf(conf)
		if len(opts.Addresses) == 0 {
			return opts, fmt.Errorf("%s names no namenode and none is configured (give hdfs://namenode:port/path, set the agent's --hdfs_namenode, or HADOOP_CONF_DIR)", s.uri)
		}
		if opts.KerberosClient != nil {
			return opts, errors.New("the Hadoop configuration asks for Kerberos, which the fetcher does not support")
		}
	}
	opts.User = os.Getenv("HADOOP_USER_NAME")
	if opts.User == "" {
		if u, err := user.Current(); err == nil {
			opts.User = u.Username
		} else {
			opts.User = "root"
		}
	}
	return opts, nil
}
