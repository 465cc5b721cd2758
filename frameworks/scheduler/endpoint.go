package scheduler

import (
	"fmt"
	"net/url"
	"strings"
)

// Path is the master's scheduler API endpoint.
const Path = "/api/v1/scheduler"

// Endpoint turns a master address into the URL of its scheduler API.
// It accepts "host:port", "http://host:port", "https://host:port" and a full
// URL that already ends in /api/v1/scheduler. ZooKeeper URLs name no one
// master: the Driver follows the leader they elect (Config.Masters).
func Endpoint(master string) (*url.URL, error) {
	m := strings.TrimSpace(master)
	if m == "" {
		return nil, fmt.Errorf("master address is empty")
	}
	if strings.HasPrefix(m, "zk://") {
		return nil, fmt.Errorf("master %q: a zk:// URL names no one master: give it as the Driver's only master, which follows the leader ZooKeeper elects", master)
	}
	if !strings.Contains(m, "://") {
		m = "http://" + m
	}
	u, err := url.Parse(m)
	if err != nil {
		return nil, fmt.Errorf("master %q: %w", master, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("master %q: scheme %q is neither http nor https", master, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("master %q: no host", master)
	}
	switch p := strings.TrimSuffix(u.Path, "/"); {
	case p == "" || p == "/master":
		u.Path = p + Path
	case strings.HasSuffix(p, Path):
		u.Path = p
	default:
		return nil, fmt.Errorf("master %q: path %q is not the scheduler API %s", master, u.Path, Path)
	}
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// Redirect resolves the Location of a 307 from a master that is not the
// leader. Mesos sends the scheme-relative form "//host:port/path"; absolute
// URLs work too, and the bare "host:port" of the Mesos docs is tolerated.
// The path of the original request is kept when Location has none.
func Redirect(from *url.URL, location string) (*url.URL, error) {
	loc := strings.TrimSpace(location)
	if loc == "" {
		return nil, fmt.Errorf("redirect from %s carries no Location", from.Host)
	}
	if !strings.HasPrefix(loc, "/") && !strings.Contains(loc, "://") {
		loc = "//" + loc
	}
	ref, err := url.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("redirect from %s: bad Location %q: %w", from.Host, location, err)
	}
	u := from.ResolveReference(ref)
	if u.Host == "" {
		return nil, fmt.Errorf("redirect from %s: Location %q names no host", from.Host, location)
	}
	if ref.Path == "" {
		u.Path = from.Path
	}
	return u, nil
}
