package master

import (
	"net"
	"net/http"

	"github.com/agora-cluster/agora/cluster/httplimit"
)

// Serve serves srv (NewServer) on ln within the process's --http_* bounds
// (httplimit): its header and idle timeouts become those flags' (the
// constants above are their defaults), its headers are bounded, and at
// most --http_max_connections connections are open at once; the excess
// gets 503 with Retry-After.
func Serve(srv *http.Server, ln net.Listener) error {
	srv.ReadHeaderTimeout, srv.IdleTimeout = 0, 0 // filled from the flags
	return httplimit.Serve(srv, ln, httplimit.Config{Name: "master"})
}
