package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/httplimit"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/registry"
)

// masterWithFlags parses args as `agora master` does and returns its
// config, or the error that names the bad flag.
func masterWithFlags(t *testing.T, args ...string) (master.Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("agora master", flag.ContinueOnError)
	var mf masterFlags
	mf.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { httplimit.Set(httplimit.Config{}) })
	return mf.config(slog.New(slog.DiscardHandler), registry.NewMemory())
}

// A bad --http_* bound is refused at startup, naming the flag.
func TestHTTPLimitFlagsAreChecked(t *testing.T) {
	for _, args := range [][]string{
		{"--http_max_connections=-2"}, {"--http_read_header_timeout=0s"}, {"--http_idle_timeout=-1s"}, {"--http_max_header_bytes=10"},
	} {
		_, err := masterWithFlags(t, args...)
		name := strings.TrimPrefix(strings.SplitN(args[0], "=", 2)[0], "--")
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// A master run by `agora master` keeps --http_max_connections: past it a
// connection gets 503, counted in master/http_connections_refused; a
// connection closed gives its slot back.
func TestMasterRefusesConnectionsPastTheLimit(t *testing.T) {
	cfg, err := masterWithFlags(t, "--http_max_connections=2", "--http_read_header_timeout=1m")
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTestMaster(t, cfg)
	deadline := time.Now().Add(time.Minute)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within a minute", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Two clients that connect and send nothing hold both slots.
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	waitFor("two connections open", func() bool { return httplimit.StatsOf("master").Open == 2 })
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a third connection: %d (Retry-After %q), want 503", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	held[0].Close()
	waitFor("a slot given back", func() bool { return httplimit.StatsOf("master").Open <= 1 })
	resp, err = client.Get("http://" + addr + "/metrics/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var snap map[string]float64
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &snap) != nil {
		t.Fatalf("/metrics/snapshot with a slot free: %d %s", resp.StatusCode, b)
	}
	if snap["master/http_connections_refused"] < 1 || snap["master/http_connections"] < 1 {
		t.Errorf("master/http_connections_refused %v, master/http_connections %v", snap["master/http_connections_refused"], snap["master/http_connections"])
	}
}

// serveTestMaster runs a master as `agora master` does (serveMaster) until the
// test ends, and returns its address.
func serveTestMaster(t *testing.T, cfg master.Config) string {
	t.Helper()
	m, err := master.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveMaster(ctx, m, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("the master did not stop within a minute")
		}
	})
	return ln.Addr().String()
}

// --http_read_header_timeout reaches the master's server: a client that
// sends its headers one byte a second is cut after about a second, not
// after the default ten.
func TestMasterTakesTheHeaderTimeoutFlag(t *testing.T) {
	cfg, err := masterWithFlags(t, "--http_read_header_timeout=1s")
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", serveTestMaster(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c)
		close(closed)
	}()
	req := "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for sent := 0; sent < len(req); {
		select {
		case <-closed:
			if sent > 5 {
				t.Fatalf("cut after %d header bytes sent a second apart, with a 1s header timeout", sent)
			}
			return
		case <-tick.C:
			if _, err := c.Write([]byte{req[sent]}); err != nil {
				return
			}
			sent++
		}
	}
	t.Fatalf("the master read all %d header bytes sent a second apart, past its 1s header timeout", len(req))
}
