package master

import (
	"net/http"
	"time"
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

// Server returns the master's HTTP server (Handler(ui) with the timeouts
// above); the caller serves it and shuts it down.
func (m *Master) Server(ui http.Handler) *http.Server {
	return &http.Server{
		Handler:           m.Handler(ui),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		IdleTimeout:       IdleTimeout,
	}
}
