package tlsconf

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
)

// Listener serves TLS with cfg on ln; with downgrade, a connection whose
// first byte is not a TLS handshake record is served as plain HTTP
// instead (libprocess's LIBPROCESS_SSL_SUPPORT_DOWNGRADE).
func Listener(ln net.Listener, cfg *tls.Config, downgrade bool) net.Listener {
	if cfg == nil {
		return ln
	}
	if !downgrade {
		return tls.NewListener(ln, cfg)
	}
	// net/http serves HTTP/2 only on a *tls.Conn it sees itself; a
	// sniffed connection is not one, so it is offered HTTP/1.1 alone.
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	return &downgradeListener{Listener: ln, cfg: cfg}
}

type downgradeListener struct {
	net.Listener
	cfg *tls.Config
}

// Accept hands out every connection at once; which protocol it speaks is
// decided on its first Read, so a silent client holds no other.
func (l *downgradeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sniffConn{Conn: c, cfg: l.cfg}, nil
}

// sniffConn peeks at the first byte: 0x16 starts a TLS handshake.
type sniffConn struct {
	net.Conn
	cfg  *tls.Config
	once sync.Once
	r    interface {
		Read([]byte) (int, error)
		Write([]byte) (int, error)
	}
	err error
}

// handshakeRecord is the content type of a TLS handshake record.
const handshakeRecord = 0x16

func (c *sniffConn) sniff() {
	br := bufio.NewReader(c.Conn)
	first, err := br.Peek(1)
	if err != nil {
		c.err = err
		return
	}
	plain := &bufferedConn{Conn: c.Conn, r: br}
	if first[0] == handshakeRecord {
		c.r = tls.Server(plain, c.cfg)
		return
	}
	c.r = plain
}

func (c *sniffConn) Read(b []byte) (int, error) {
	c.once.Do(c.sniff)
	if c.err != nil {
		return 0, c.err
	}
	return c.r.Read(b)
}

func (c *sniffConn) Write(b []byte) (int, error) {
	c.once.Do(c.sniff)
	if c.err != nil {
		return 0, c.err
	}
	return c.r.Write(b)
}

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
