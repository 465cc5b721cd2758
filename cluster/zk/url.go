// Package zk is agora's use of ZooKeeper: the zk:// URLs that masters,
// agents, schedulers and the CLI take (Mesos's --zk and --master=zk://
// forms), leader election among masters through ephemeral sequential
// znodes in Mesos's format, and leader detection for everything that
// follows the leader.
//
// The election group under a URL's path holds one EPHEMERAL|SEQUENCE
// znode per master, named json.info_NNNNNNNNNN and holding the master's
// MasterInfo as JSON; the member with the smallest sequence number leads.
// Mesos masters and Mesos-aware tools (mesos-go's detector, Mesos-DNS,
// Marathon) read the same znodes, so they find an agora leader unchanged.
package zk

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-zookeeper/zk"
)

// URL is a parsed zk://[user:password@]host1:port1,host2:port2/path.
type URL struct {
	Servers  []string // host:port, port 2181 when the URL leaves it out
	Path     string   // the election group's znode, e.g. /agora
	User     string   // digest credentials, empty without
	Password string
}

// DefaultPort is ZooKeeper's client port.
const DefaultPort = 2181

// ParseURL parses a zk:// URL, saying exactly what is wrong with a bad
// one.
func ParseURL(s string) (URL, error) {
	var u URL
	rest, ok := strings.CutPrefix(s, "zk://")
	if !ok {
		return u, fmt.Errorf("zk URL %q: must start with zk:// (zk://host1:2181,host2:2181/path)", s)
	}
	hosts, path, ok := strings.Cut(rest, "/")
	if !ok || strings.Trim(path, "/") == "" {
		return u, fmt.Errorf("zk URL %q: names no znode path (zk://host1:2181,host2:2181/path)", s)
	}
	if auth, h, ok := strings.Cut(hosts, "@"); ok {
		user, pass, ok := strings.Cut(auth, ":")
		if !ok || user == "" {
			return u, fmt.Errorf("zk URL %q: credentials must be user:password@", s)
		}
		u.User, u.Password = user, pass
		if un, err := url.PathUnescape(user); err == nil {
			u.User = un
		}
		if pw, err := url.PathUnescape(pass); err == nil {
			u.Password = pw
		}
		hosts = h
	}
	if hosts == "" {
		return u, fmt.Errorf("zk URL %q: names no ZooKeeper server", s)
	}
	for _, h := range strings.Split(hosts, ",") {
		if h == "" {
			return u, fmt.Errorf("zk URL %q: an empty server in the list", s)
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			if !strings.Contains(h, ":") || strings.HasPrefix(h, "[") {
				host, port = strings.Trim(h, "[]"), strconv.Itoa(DefaultPort)
			} else {
				return u, fmt.Errorf("zk URL %q: server %q: %v", s, h, err)
			}
		}
		if host == "" {
			return u, fmt.Errorf("zk URL %q: server %q has no host", s, h)
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return u, fmt.Errorf("zk URL %q: server %q: port %q is not a number in 1-65535", s, h, port)
		}
		u.Servers = append(u.Servers, net.JoinHostPort(host, port))
	}
	u.Path = "/" + strings.Trim(path, "/")
	for _, seg := range strings.Split(u.Path[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return u, fmt.Errorf("zk URL %q: path %q has an empty, '.' or '..' segment", s, u.Path)
		}
	}
	return u, nil
}

// ACL is the ACL the znodes made through u get: with credentials, as
// Mesos does, all rights for their creator and reading for everyone (so
// tools find the leader without them); without, all rights for everyone.
func (u URL) ACL() []zk.ACL {
	if u.User == "" {
		return zk.WorldACL(zk.PermAll)
	}
	return append(zk.AuthACL(zk.PermAll), zk.WorldACL(zk.PermRead)...)
}

// IsURL reports whether s is meant as a zk:// URL (a --master value may
// be host:port or zk://...).
func IsURL(s string) bool { return strings.HasPrefix(s, "zk://") }

// String gives the URL back, without the password.
func (u URL) String() string {
	auth := ""
	if u.User != "" {
		auth = u.User + ":***@"
	}
	return "zk://" + auth + strings.Join(u.Servers, ",") + u.Path
}
