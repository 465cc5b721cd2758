package httplimit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// bound is how long any wait of these tests may last; never what they
// assert.
const bound = 30 * time.Second

// serve runs h with cfg on a loopback port until the test ends.
func serve(t *testing.T, h http.Handler, cfg Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { Serve(srv, ln, cfg); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		srv.Shutdown(ctx)
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// poll waits for cond, failing the test after bound.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A client that sends its headers one byte a second is disconnected once
// the header timeout has passed, long before it has sent them all.
func TestSlowHeadersAreCutOff(t *testing.T) {
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), Config{ReadHeaderTimeout: 2 * time.Second})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c) // returns when the server closes
		close(closed)
	}()
	req := "GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: one-byte-a-second\r\nX-Pad: " + strings.Repeat("p", 40) + "\r\n\r\n"
	sent := 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for sent < len(req) {
		select {
		case <-closed:
			if sent >= len(req)/2 {
				t.Fatalf("cut only after %d of %d header bytes", sent, len(req))
			}
			return
		case <-tick.C:
			if _, err := c.Write([]byte{req[sent]}); err != nil {
				return // the server closed the connection
			}
			sent++
		}
	}
	t.Fatalf("the server read all %d header bytes sent one a second, past its 2s header timeout", len(req))
}

// blocker answers every request with a stream that lasts until release.
type blocker struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func newBlocker() *blocker {
	return &blocker{started: make(chan struct{}, 100), release: make(chan struct{})}
}

func (b *blocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	b.started <- struct{}{}
	select {
	case <-b.release:
	case <-r.Context().Done():
	}
}

func (b *blocker) stop() { b.once.Do(func() { close(b.release) }) }

// openStream starts a GET on its own connection and returns once the
// response headers arrived; closing the connection ends it.
func openStream(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(bound))
	fmt.Fprintf(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		c.Close()
		t.Fatalf("a stream within the limit: status %d", resp.StatusCode)
	}
	return c
}

// Past the connection limit a new connection gets a 503 with Retry-After
// and a reason, the refusal is counted, a slot given back is usable
// again, and a flood of refused connections leaves no goroutines behind.
func TestConnectionsPastTheLimitAreRefused(t *testing.T) {
	b := newBlocker()
	defer b.stop()
	addr := serve(t, b, Config{Name: t.Name(), MaxConnections: 3})
	var streams []net.Conn
	for range 3 {
		streams = append(streams, openStream(t, addr))
	}
	defer func() {
		for _, c := range streams {
			c.Close()
		}
	}()

	client := &http.Client{Timeout: bound, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/more")
	if err != nil {
		t.Fatalf("a fourth connection: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "too many connections") {
		t.Fatalf("a fourth connection: %d, Retry-After %q, %q", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if st := StatsOf(t.Name()); st.Refused != 1 || st.Open != 3 || st.Max != 3 {
		t.Fatalf("stats %+v, want 1 refused, 3 open of 3", st)
	}

	// A flood past the limit: every connection is refused, and the
	// refusals' goroutines end.
	runtime.GC()
	before := runtime.NumGoroutine()
	const flood = 200
	var wg sync.WaitGroup
	for range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, bound)
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(bound))
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			io.Copy(io.Discard, c)
		}()
	}
	wg.Wait()
	poll(t, "every flood connection counted", func() bool { return StatsOf(t.Name()).Refused == 1+flood })
	poll(t, fmt.Sprintf("goroutines back to %d (+2)", before), func() bool { return runtime.NumGoroutine() <= before+2 })
	if st := StatsOf(t.Name()); st.Open != 3 {
		t.Fatalf("after the flood: %d open, want the 3 streams", st.Open)
	}

	// A stream that ends gives its slot back.
	streams[0].Close()
	poll(t, "a slot given back", func() bool { return StatsOf(t.Name()).Open == 2 })
	streams[0] = openStream(t, addr)
}

// Two servers under one name (agents in one process) each count their own
// connections; StatsOf sums the open ones, and a closed listener leaves it.
func TestListenersUnderOneNameCountApart(t *testing.T) {
	listen := func() *Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return Limit(ln, Config{Name: t.Name(), MaxConnections: 10, Logger: slog.New(slog.DiscardHandler)})
	}
	b := newBlocker()
	defer b.stop()
	var lns []*Listener
	for range 2 {
		l := listen()
		srv := &http.Server{Handler: b}
		done := make(chan struct{})
		go func() { l.Serve(srv); close(done) }()
		t.Cleanup(func() { srv.Close(); <-done })
		lns = append(lns, l)
	}
	for i, n := range []int{2, 1} {
		for range n {
			c := openStream(t, lns[i].Addr().String())
			defer c.Close()
		}
	}
	poll(t, "2 and 1 connections open", func() bool { return lns[0].Stats().Open == 2 && lns[1].Stats().Open == 1 })
	if st := StatsOf(t.Name()); st.Open != 3 || st.Max != 20 {
		t.Fatalf("StatsOf: %+v, want 3 open of 20 (both listeners)", st)
	}
	lns[1].Close()
	if st := StatsOf(t.Name()); st.Open != 2 || st.Max != 10 {
		t.Fatalf("StatsOf after one listener closed: %+v, want the other's 2 open of 10", st)
	}
}

// A stream outlives the header and idle timeouts: they bound a client
// that has not sent its request, or sends nothing between requests.
func TestStreamsOutliveTheTimeouts(t *testing.T) {
	const events = 10
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range events {
			fmt.Fprintf(w, "event %d\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond) // 1s in all, past both timeouts
		}
	}), Config{ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: 200 * time.Millisecond})
	resp, err := (&http.Client{Timeout: bound}).Get("http://" + addr + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		n++
	}
	if n != events || sc.Err() != nil {
		t.Fatalf("the stream delivered %d of %d events (%v)", n, events, sc.Err())
	}
}

// Headers past MaxHeaderBytes are refused with 431 and change nothing.
func TestOversizedHeadersAreRefused(t *testing.T) {
	var called atomic.Bool // set by the server's goroutine
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called.Store(true) }), Config{MaxHeaderBytes: 4 << 10})
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("b", 64<<10))
	resp, err := (&http.Client{Timeout: bound}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || called.Load() {
		t.Fatalf("64 KiB of headers under a 4 KiB bound: %d (handler called: %v)", resp.StatusCode, called.Load())
	}
}

// The connection limit follows RLIMIT_NOFILE unless set.
func TestSettingsAndDefaults(t *testing.T) {
	if got := resolve(Config{}); got.MaxConnections < minMaxConnections || got.ReadHeaderTimeout != DefaultReadHeaderTimeout ||
		got.IdleTimeout != DefaultIdleTimeout || got.MaxHeaderBytes != DefaultMaxHeaderBytes {
		t.Fatalf("defaults: %+v", got)
	}
	Set(Config{MaxConnections: 7, ReadHeaderTimeout: time.Second})
	defer Set(Config{})
	if got := resolve(Config{}); got.MaxConnections != 7 || got.ReadHeaderTimeout != time.Second {
		t.Fatalf("after Set: %+v", got)
	}
	if got := resolve(Config{MaxConnections: -1}); got.MaxConnections != -1 {
		t.Fatalf("an explicit no-limit: %+v", got)
	}
	srv := &http.Server{IdleTimeout: time.Minute}
	Apply(srv, Config{})
	if srv.ReadHeaderTimeout != time.Second || srv.IdleTimeout != time.Minute || srv.MaxHeaderBytes != DefaultMaxHeaderBytes {
		t.Fatalf("Apply: header timeout %v, idle timeout %v (set by the server), header bytes %d",
			srv.ReadHeaderTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
}
