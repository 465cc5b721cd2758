package servicepage

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
)

// event is one server-sent event of the feed.
type event struct{ name, data string }

// readEvent reads the next event, skipping comments; it fails the test
// when the stream ends or none comes within a minute.
func readEvent(t *testing.T, r *bufio.Reader) event {
	t.Helper()
	got := make(chan event, 1)
	fail := make(chan error, 1)
	go func() {
		var e event
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				fail <- err
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "" && e.name != "":
				got <- e
				return
			case strings.HasPrefix(line, "event: "):
				e.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				e.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	select {
	case e := <-got:
		return e
	case err := <-fail:
		t.Fatalf("the feed ended before an event: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("no event within a minute")
	}
	return event{}
}

// openFeed opens the feed of srv; cancel closes it.
func openFeed(t *testing.T, url string) (*bufio.Reader, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+ChangesPath, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("feed: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return bufio.NewReader(resp.Body), cancel
}

// serve serves c's page; the server closes after the test's feeds
// (cleanups run last first), which it waits for.
func serve(t *testing.T, c *Changes) *httptest.Server {
	srv := httptest.NewServer(Handler(fstest.MapFS{}, c))
	t.Cleanup(srv.Close)
	return srv
}

// waitStreams waits (a minute at most) until c has n feeds open.
func waitStreams(t *testing.T, c *Changes, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for c.Streams() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d feeds open after a minute, want %d", c.Streams(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFeedSendsTheVersionOnOpenAndOnEachBump(t *testing.T) {
	c := NewChanges()
	c.Bump()
	srv := serve(t, c)
	r, _ := openFeed(t, srv.URL)
	if e := readEvent(t, r); e != (event{"change", "1"}) {
		t.Fatalf("first event %+v, want change 1", e)
	}
	c.Bump()
	if e := readEvent(t, r); e != (event{"change", "2"}) {
		t.Fatalf("event after a bump %+v, want change 2", e)
	}
}

func TestFeedSendsHeartbeats(t *testing.T) {
	c := &Changes{Heartbeat: 10 * time.Millisecond}
	srv := serve(t, c)
	r, _ := openFeed(t, srv.URL)
	readEvent(t, r)
	line, err := r.ReadString('\n')
	if err != nil || line != ": heartbeat\n" {
		t.Fatalf("after the first event %q %v, want a heartbeat comment", line, err)
	}
}

// gatedWriter is a streaming ResponseWriter whose every write waits for
// the test to take it.
type gatedWriter struct {
	h      http.Header
	writes chan string
}

func (g *gatedWriter) Header() http.Header         { return g.h }
func (g *gatedWriter) WriteHeader(int)             {}
func (g *gatedWriter) Flush()                      {}
func (g *gatedWriter) Write(b []byte) (int, error) { g.writes <- string(b); return len(b), nil }

func TestFeedCoalescesBumpsWhileAStreamIsBusy(t *testing.T) {
	c := &Changes{Coalesce: -1}
	w := &gatedWriter{h: http.Header{}, writes: make(chan string)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.ServeHTTP(w, httptest.NewRequest("GET", ChangesPath, nil).WithContext(ctx))
	}()
	defer func() {
		cancel()
		// The handler may be in a write: take it so that it sees the end.
		for {
			select {
			case <-w.writes:
			case <-done:
				return
			}
		}
	}()
	take := func() string {
		select {
		case s := <-w.writes:
			return s
		case <-time.After(time.Minute):
			t.Fatal("no write within a minute")
		}
		return ""
	}
	if s := take(); !strings.Contains(s, "data: 0\n") {
		t.Fatalf("first event %q, want version 0", s)
	}
	// 50 bumps while the stream cannot write: it sends at most the one it
	// had started (holding an older version) and then the newest.
	for range 50 {
		c.Bump()
	}
	s := take()
	if !strings.Contains(s, "data: 50\n") {
		if s2 := take(); !strings.Contains(s2, "data: 50\n") {
			t.Fatalf("events after 50 bumps %q then %q, want the second to carry version 50", s, s2)
		}
	}
	select {
	case s := <-w.writes:
		t.Fatalf("another event %q after version 50, with no bump since", s)
	case <-time.After(200 * time.Millisecond):
		// Nothing more: the point is that no write is queued, which a
		// slower machine only makes likelier.
	}
}

func TestFeedEndsWhenTheClientGoes(t *testing.T) {
	c := NewChanges()
	srv := serve(t, c)
	r, cancel := openFeed(t, srv.URL)
	readEvent(t, r)
	waitStreams(t, c, 1)
	cancel()
	waitStreams(t, c, 0)
	c.Bump() // a bump with no stream open neither blocks nor panics
	if c.Version() != 1 {
		t.Fatalf("version %d after one bump, want 1", c.Version())
	}
}

func TestFeedRefusesStreamsPastItsBound(t *testing.T) {
	c := &Changes{MaxStreams: 2}
	srv := serve(t, c)
	for range 2 {
		r, _ := openFeed(t, srv.URL)
		readEvent(t, r)
	}
	resp, err := http.Get(srv.URL + ChangesPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "too many change feeds open (2") {
		t.Fatalf("third feed: %s %q, want 503 naming the bound", resp.Status, body)
	}
}

func TestFeedWithoutNotifierAndOtherMethods(t *testing.T) {
	for _, tc := range []struct {
		c      *Changes
		method string
		code   int
		want   string
	}{
		{nil, "GET", http.StatusNotFound, "no change feed"},
		{NewChanges(), "POST", http.StatusMethodNotAllowed, "GET the change feed"},
	} {
		rec := httptest.NewRecorder()
		Handler(fstest.MapFS{}, tc.c).ServeHTTP(rec, httptest.NewRequest(tc.method, ChangesPath, nil))
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s with notifier %v: %d %q, want %d %q", tc.method, tc.c != nil, rec.Code, rec.Body.String(), tc.code, tc.want)
		}
	}
	var c *Changes
	c.Bump() // a service without a notifier may bump its nil one
	if v := c.Version(); v != 0 {
		t.Fatal(fmt.Sprint("nil notifier version ", v))
	}
}

// TestFeedIsBehindThePageGuard: a service's guard wraps its page, and so
// its feed: no feed without the service's credentials, a feed with them.
func TestFeedIsBehindThePageGuard(t *testing.T) {
	creds, err := auth.ParseUserPassword("ops:s3cret")
	if err != nil {
		t.Fatal(err)
	}
	g, err := auth.NewServiceGuard(auth.ServiceOptions{Credentials: creds, Realm: "svc", Open: []string{"/ping"}})
	if err != nil {
		t.Fatal(err)
	}
	c := NewChanges()
	srv := httptest.NewServer(g.Wrap(Handler(fstest.MapFS{}, c)))
	t.Cleanup(srv.Close)
	for _, user := range []string{"", "ops:wrong"} {
		req, _ := http.NewRequest("GET", srv.URL+ChangesPath, nil)
		if u, p, ok := strings.Cut(user, ":"); ok {
			req.SetBasicAuth(u, p)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") == "text/event-stream" {
			t.Fatalf("feed with credentials %q: %s %q, want 401", user, resp.Status, body)
		}
	}
	if c.Streams() != 0 {
		t.Fatalf("%d feeds open after refused requests", c.Streams())
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+ChangesPath, nil)
	req.SetBasicAuth("ops", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("feed with the credentials: %s", resp.Status)
	}
	if e := readEvent(t, bufio.NewReader(resp.Body)); e != (event{"change", "0"}) {
		t.Fatalf("first event %+v, want change 0", e)
	}
}

func TestCloseEndsTheStreamsAndRefusesNewOnes(t *testing.T) {
	c := NewChanges()
	srv := serve(t, c)
	r, _ := openFeed(t, srv.URL)
	readEvent(t, r)
	c.Close()
	waitStreams(t, c, 0)
	// The handler has returned: the stream ends.
	if rest, err := io.ReadAll(r); err != nil || strings.Contains(string(rest), "event:") {
		t.Fatalf("the closed stream: %q %v, want its end and no event", rest, err)
	}
	resp, err := http.Get(srv.URL + ChangesPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "stopping") {
		t.Fatalf("a feed after Close: %s %q, want 503 saying the service is stopping", resp.Status, body)
	}
	c.Close() // twice is fine
}

// A service that bumps every few milliseconds makes each stream send at
// most one event per MinGap, and the last bump is still sent.
func TestFeedSendsAtMostOneEventPerMinGap(t *testing.T) {
	const gap = 300 * time.Millisecond
	c := &Changes{MinGap: gap}
	srv := serve(t, c)
	start := time.Now()
	r, _ := openFeed(t, srv.URL)
	if e := readEvent(t, r); e.data != "0" {
		t.Fatalf("first event %+v, want version 0", e)
	}
	// 300 bumps, one every 5 ms or slower; the stream's events wait in
	// the connection meanwhile.
	tick := time.NewTicker(5 * time.Millisecond)
	for range 300 {
		<-tick.C
		c.Bump()
	}
	tick.Stop()
	last := fmt.Sprint(c.Version())
	n := 1
	for {
		e := readEvent(t, r)
		n++
		if e.data == last {
			break
		}
	}
	// The server sent its first event after start and each next one at
	// least gap after the one before: at most 1 + elapsed/gap of them.
	if most := 1 + int(time.Since(start)/gap); n > most {
		t.Fatalf("%d events in %v with a %v gap, want at most %d", n, time.Since(start), gap, most)
	}
}
