package master_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/httplimit"
	"github.com/agora-cluster/agora/cluster/master"
	"golang.org/x/net/http2"
)

// --http_idle_timeout reaches HTTP/2 connections too: x/net's HTTP/2
// takes the idle timeout when it is configured (NewServer), so a setting
// applied only when serving left idle h2c connections open for the
// default two minutes.
func TestIdleHTTP2ConnectionIsClosedAfterTheIdleTimeout(t *testing.T) {
	httplimit.Set(httplimit.Config{IdleTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { httplimit.Set(httplimit.Config{}) })
	srv := master.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- master.Serve(srv, ln) }()
	t.Cleanup(func() {
		srv.Close()
		<-served
	})

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Prior-knowledge h2c: the preface and our settings, then nothing.
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	// Well under the default idle timeout of two minutes, well over the
	// 200ms set: the server must close the connection (after a GOAWAY)
	// before this deadline.
	if err := c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	sawGoAway := false
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("an idle HTTP/2 connection was still open after a minute under an idle timeout of 200ms (GOAWAY seen: %v)", sawGoAway)
			}
			break // closed by the server
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					t.Fatal(err)
				}
			}
		case *http2.GoAwayFrame:
			sawGoAway = true
		}
	}
	if !sawGoAway {
		t.Error("the server closed the idle connection without a GOAWAY")
	}
}
