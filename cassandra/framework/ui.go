package framework

import (
	"embed"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/agora-cluster/agora/frameworks/servicepage"
)

// uiFiles are the ring's web page: its nodes with their state, health,
// host ID, address, agent and volume, and the operations under way (a
// replacement, a repair or cleanup, a rolling restart), served at /ui/
// from the /v1 API, with links to each node's task and sandbox in the
// master's UI.
//
//go:embed ui
var uiFiles embed.FS

// uiHandler serves the page under /ui/.
func uiHandler(changes *servicepage.Changes) http.Handler {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded directory is there at build time
	}
	return servicepage.Handler(sub, changes)
}

// masterURL is the master's web UI: the subscribed master's address (the
// MasterInfo has no scheme: the configured master's), else the first
// master given as host:port or http(s)://; "" when only ZooKeeper names
// them and none has answered yet.
func (f *Framework) masterURL() string {
	f.mu.Lock()
	d := f.driver
	f.mu.Unlock()
	scheme := "http"
	for _, m := range f.cfg.Masters {
		if strings.HasPrefix(m, "https://") {
			scheme = "https"
		}
	}
	if d != nil {
		if m := d.Master(); m != nil && m.GetPort() != 0 {
			host := m.GetHostname()
			if a := m.GetAddress(); a != nil && a.GetIP() != "" {
				host = a.GetIP()
			}
			if host != "" {
				return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(int(m.GetPort())))
			}
		}
	}
	for _, m := range f.cfg.Masters {
		switch {
		case strings.HasPrefix(m, "http://"), strings.HasPrefix(m, "https://"):
			return strings.TrimSuffix(m, "/")
		case !strings.Contains(m, "://"):
			return "http://" + m
		}
	}
	return ""
}
