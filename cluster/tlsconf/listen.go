package tlsconf

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Listener serves TLS with cfg on ln; with downgrade, a connection whose
// first byte is not a TLS handshake record is served as plain HTTP
// instead (libprocess's LIBPROCESS_SSL_SUPPORT_DOWNGRADE).
//
// With downgrade, Accept returns a *tls.Conn for a TLS connection and the
// plain connection otherwise, so net/http sets Request.TLS exactly for
// requests that came over TLS (a same-origin check must know the scheme).
func Listener(ln net.Listener, cfg *tls.Config, downgrade bool) net.Listener {
	if cfg == nil {
		return ln
	}
	if !downgrade {
		return tls.NewListener(ln, cfg)
	}
	// HTTP/1.1 alone is offered over TLS, as it was when net/http was
	// handed a wrapper instead of the *tls.Conn.
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	return &downgradeListener{
		Listener: ln,
		cfg:      cfg,
		ready:    make(chan net.Conn),
		tempErr:  make(chan error),
		stopped:  make(chan struct{}),
		done:     make(chan struct{}),
		sniffing: map[net.Conn]struct{}{},
	}
}

// sniffTimeout bounds the wait for a connection's first byte; a client
// that sends nothing for this long is closed without being served.
const sniffTimeout = 30 * time.Second

// downgradeListener accepts connections in the background and sniffs
// each in its own goroutine, so a silent client holds no other; Accept
// hands out connections in the order their first byte arrived.
type downgradeListener struct {
	net.Listener
	cfg *tls.Config

	start   sync.Once
	ready   chan net.Conn // sniffed connections
	tempErr chan error    // temporary errors of the underlying Accept
	stopped chan struct{} // closed when the underlying Accept failed for good
	err     error         // that failure, set before stopped is closed

	closeOnce sync.Once
	done      chan struct{} // closed by Close

	mu       sync.Mutex
	sniffing map[net.Conn]struct{} // closed by Close; nil once closed
}

func (l *downgradeListener) Accept() (net.Conn, error) {
	l.start.Do(func() { go l.acceptLoop() })
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.tempErr:
		return nil, err
	case <-l.stopped:
		return nil, l.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes the connections still being sniffed.
func (l *downgradeListener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.mu.Lock()
		for c := range l.sniffing {
			c.Close()
		}
		l.sniffing = nil
		l.mu.Unlock()
	})
	return l.Listener.Close()
}

func (l *downgradeListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if isTemporary(err) {
				// net/http backs off and calls Accept again.
				select {
				case l.tempErr <- err:
					continue
				case <-l.done:
				}
			}
			l.err = err
			close(l.stopped)
			return
		}
		l.mu.Lock()
		if l.sniffing == nil { // closed meanwhile
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.sniffing[c] = struct{}{}
		l.mu.Unlock()
		go l.sniff(c)
	}
}

// isTemporary reports an error net/http retries Accept after (EMFILE and
// the like); net.Error.Temporary is deprecated but is what net/http asks.
func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// handshakeRecord is the content type of a TLS handshake record.
const handshakeRecord = 0x16

// sniff peeks at c's first byte: 0x16 starts a TLS handshake, and c is
// handed out as a *tls.Conn reading the peeked byte again; anything else
// is handed out as plain c, the byte replayed the same way.
func (l *downgradeListener) sniff(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	c.SetReadDeadline(time.Time{})
	l.mu.Lock()
	closed := l.sniffing == nil
	delete(l.sniffing, c)
	l.mu.Unlock()
	if err != nil || closed {
		c.Close()
		return
	}
	var conn net.Conn = &bufferedConn{Conn: c, r: br}
	if first[0] == handshakeRecord {
		conn = tls.Server(conn, l.cfg)
	}
	select {
	case l.ready <- conn:
	case <-l.done:
		c.Close()
	}
}

// bufferedConn is a connection whose first bytes were read into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// VerifyError explains a server certificate that does not verify: host is
// the server, the error says what failed (unknown authority, wrong name,
// expired). It is nil for any other error.
func VerifyError(host string, err error) error {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		cause := err
		if verify != nil {
			cause = verify.Err
		}
		return fmt.Errorf("the certificate of %s does not verify: %w", host, cause)
	}
	return nil
}
