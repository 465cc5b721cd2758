package master

import (
	"fmt"
	"net/http"
	"time"

	"github.com/agora-cluster/agora/cluster/httplimit"
	"golang.org/x/net/http2"
)

// Timeouts of the master's HTTP server. Most calls are small requests,
// but SUBSCRIBE (scheduler and operator API) and an agent's REGISTER
// answer with a stream that lasts as long as the subscriber stays, so:
//
//   - ReadHeaderTimeout bounds a client that opens a connection and
//     trickles its headers (slowloris).
//   - ReadTimeout bounds reading a whole request, body included (at most
//     MaxRequestBody): generous for a large call on a slow link, short
//     enough that a client cannot hold a handler by never finishing its
//     body. It does not cut streams: once a handler has read the body,
//     net/http lifts the read deadline for its background read (which
//     only watches for the peer closing), so a stream lives as long as
//     its peer (TestSubscribeOutlivesTheReadTimeout).
//   - IdleTimeout closes keep-alive connections idle between calls (a
//     scheduler's call connection between calls); clients reconnect.
//   - No WriteTimeout: it would cut every stream; a subscriber that does
//     not read is cut by its outbox's bound instead.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	IdleTimeout       = 2 * time.Minute
)

// MaxStreamsPerConn bounds the calls and streams one HTTP/2 connection
// carries at once. Agents and schedulers speak HTTP/1.1 (one connection
// per stream, as Mesos's do); a client that opens with HTTP/2's preface
// (cleartext, prior knowledge) instead multiplexes many agents' or
// frameworks' streams over few connections — a fleet of simulated agents
// does, so that tens of thousands of them fit the open-file limit of one
// process on each side. ReadTimeout applies per stream: it closes a
// request body not read in time, never a response stream.
const MaxStreamsPerConn = 1000

// NewServer is the master's HTTP server for h: the timeouts above, and
// HTTP/1.1 and cleartext HTTP/2 on the same port. The header and idle
// timeouts and the header bound are the process's --http_* settings
// (httplimit.Set, whose defaults are the constants above), taken here,
// not when serving: HTTP/2 copies the idle timeout when it is configured.
func NewServer(h http.Handler) *http.Server {
	srv := &http.Server{
		Handler:     h,
		ReadTimeout: ReadTimeout,
		Protocols:   new(http.Protocols),
		HTTP2:       &http.HTTP2Config{MaxConcurrentStreams: MaxStreamsPerConn},
	}
	httplimit.Apply(srv, httplimit.Config{Name: "master"})
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	// HTTP/2 from golang.org/x/net rather than the copy bundled in
	// net/http, for its choice of write scheduler. The bundled one
	// schedules round-robin over every open stream of a connection, empty
	// or not, at each frame it writes: an agent's event stream stays open,
	// and a connection carrying hundreds of agents' streams (a simulated
	// fleet's) had the master scanning them all for each frame — 6 % of
	// its CPU while 40,000 agents re-registered. The random scheduler
	// holds only the streams with frames queued; each stream's frames
	// still go in order, control frames first. x/net marks its
	// schedulers deprecated: from Go 1.27 its server is net/http's and
	// ignores the choice, so this falls back to net/http's default.
	h2 := &http2.Server{NewWriteScheduler: http2.NewRandomWriteScheduler}
	if err := http2.ConfigureServer(srv, h2); err != nil {
		// Only a TLSConfig with cipher suites HTTP/2 forbids fails, and
		// srv has no TLSConfig yet.
		panic(fmt.Sprintf("master: configuring HTTP/2: %v", err))
	}
	return srv
}

// Server returns the master's HTTP server (Handler(ui), see NewServer);
// the caller serves it and shuts it down.
func (m *Master) Server(ui http.Handler) *http.Server {
	return NewServer(m.Handler(ui))
}
