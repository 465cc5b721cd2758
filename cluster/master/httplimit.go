package master

import (
	"net"
	"net/http"

	"github.com/agora-cluster/agora/cluster/httplimit"
)

// Serve serves srv (NewServer) on ln within the process's --http_* bounds
// (httplimit): NewServer took its header and idle timeouts and header
// bound from them, and at most --http_max_connections connections are
// open at once; the excess gets 503 with Retry-After.
func Serve(srv *http.Server, ln net.Listener) error {
	return httplimit.Serve(srv, ln, httplimit.Config{Name: "master"})
}
