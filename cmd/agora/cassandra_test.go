package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// A spec with an unknown cassandra.yaml key and a heap larger than its
// task is refused before any master is asked, naming both.
func TestCassandraSchedulerRefusesBadSpec(t *testing.T) {
	spec := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(spec, []byte(`{"name":"ring","mem":1024,"heap":2048,"yaml":{"concurent_reads":8}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	code := cassandraScheduler(context.Background(), []string{"--master", "127.0.0.1:1", "--spec", spec, "--cassandra_home", t.TempDir(), "--api", ""}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), `unknown cassandra.yaml key "concurent_reads"`) ||
		!strings.Contains(errOut.String(), "heap 2048 MB is larger than the task's memory (mem 1024 MB)") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
}

// --health_check_agora must be absolute (the agents run it from the
// nodes' sandboxes), and its default, the binary as invoked, is.
func TestCassandraSchedulerHealthCheckAgora(t *testing.T) {
	spec := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(spec, []byte(`{"name":"ring"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	code := cassandraScheduler(context.Background(), []string{"--master", "127.0.0.1:1", "--spec", spec, "--cassandra_home", t.TempDir(), "--api", "",
		"--health_check_agora", "bin/agora"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), `--health_check_agora "bin/agora": give an absolute path`) {
		t.Errorf("relative --health_check_agora: exit %d, stderr:\n%s", code, errOut.String())
	}
	if p := agoraPath(); !filepath.IsAbs(p) {
		t.Errorf("the default agora path %q is not absolute", p)
	}
}

// status, nodes and endpoints print the scheduler API's answers as tables,
// or as they came with --json.
func TestCassandraGet(t *testing.T) {
	var destroying atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/status":
			if destroying.Load() {
				w.Write([]byte(`{"cluster":"ring","destroying":true,"destroyed":true}`))
				return
			}
			w.Write([]byte(`{"cluster":"ring","framework_id":"fw-1","role":"cassandra","nodes":3,"placed":3,"running":3,"up":2,"heap_mb":640}`))
		case "/v1/nodes":
			w.Write([]byte(`[{"name":"node-0","seed":true,"host":"127.0.0.1","native_port":9042,"storage_port":7000,"jmx_port":7199,"state":"TASK_RUNNING","up":true,"host_id":"h0","volume_id":"v0"}]`))
		case "/v1/nodes/add":
			if r.Method != http.MethodPost || r.URL.Query().Get("count") != "2" {
				http.Error(w, "bad add", http.StatusBadRequest)
				return
			}
			w.Write([]byte(`[{"name":"node-0"},{"name":"node-1"},{"name":"node-2"}]`))
		case "/v1/restart":
			if r.Method == http.MethodPost {
				var req struct {
					YAML map[string]json.RawMessage `json:"yaml"`
				}
				if json.NewDecoder(r.Body).Decode(&req) != nil || string(req.YAML["concurrent_reads"]) != "16" || string(req.YAML["disk_access_mode"]) != `"mmap"` {
					http.Error(w, "bad restart", http.StatusBadRequest)
					return
				}
				w.WriteHeader(http.StatusAccepted)
				w.Write([]byte(`{"pending":["node-0","node-1"],"restarted":[],"started":"2026-12-04T00:00:00Z"}`))
				return
			}
			w.Write([]byte(`{"pending":[],"restarted":["node-0","node-1"],"started":"2026-12-04T00:00:00Z","finished":"2026-12-04T00:01:00Z"}`))
		case "/v1/repair":
			if r.Method != http.MethodPost || r.URL.Query().Get("keyspace") != "kv" {
				http.Error(w, "bad repair", http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusAccepted)
			w.Write([]byte(`{"kind":"repair","keyspace":"kv","pending":["node-1"],"current":"node-0","done":[]}`))
		case "/v1/cleanup":
			http.Error(w, "a repair is under way", http.StatusConflict)
		case "/v1/job":
			w.Write([]byte(`{"kind":"repair","pending":[],"done":["node-0","node-1"],"finished":"2026-12-04T00:01:00Z"}`))
		case "/v1/destroy":
			if r.Method != http.MethodPost || r.URL.Query().Get("cluster") != "ring" {
				http.Error(w, "bad destroy", http.StatusBadRequest)
				return
			}
			destroying.Store(true)
			w.WriteHeader(http.StatusAccepted)
			w.Write([]byte(`{"cluster":"ring","destroying":true}`))
		case "/v1/endpoints":
			w.Write([]byte(`{"cluster":"ring","native":["127.0.0.1:9042","127.0.0.2:9043"],"jmx":[]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	for _, c := range []struct {
		what string
		args []string
		want []string
	}{
		{"status", nil, []string{"CLUSTER", "ring", "fw-1", "640M"}},
		{"nodes", nil, []string{"node-0", "127.0.0.1", "9042", "RUNNING", "h0", "v0"}},
		{"endpoints", nil, []string{"127.0.0.1:9042\n127.0.0.2:9043\n"}},
		{"endpoints", []string{"--json"}, []string{`"native":["127.0.0.1:9042"`}},
	} {
		var out, errOut strings.Builder
		if code := cassandraGet(c.what, append([]string{"--api", srv.URL}, c.args...), &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d: %s", c.what, code, errOut.String())
		}
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s %v: output lacks %q:\n%s", c.what, c.args, w, out.String())
			}
		}
	}
	var added, addErr strings.Builder
	if code := cassandraAddNodes([]string{"--api", srv.URL, "2"}, &added, &addErr); code != 0 || !strings.Contains(added.String(), "ring of 3 nodes") {
		t.Errorf("nodes add 2: exit %d, %q, %q", code, added.String(), addErr.String())
	}
	if code := cassandraAddNodes([]string{"--api", srv.URL, "zero"}, &added, &addErr); code != 2 {
		t.Errorf("nodes add zero: exit %d, want 2", code)
	}
	var restarted, restartErr strings.Builder
	if code := cassandraRestart([]string{"--api", srv.URL, "--set", "concurrent_reads=16", "--set", "disk_access_mode=mmap", "--wait", "30s"}, &restarted, &restartErr); code != 0 ||
		!strings.Contains(restarted.String(), "rolling restart of node-0, node-1") || !strings.Contains(restarted.String(), "done: node-0, node-1 restarted") {
		t.Errorf("restart: exit %d, %q, %q", code, restarted.String(), restartErr.String())
	}
	var repaired, repairErr strings.Builder
	if code := cassandraJob("repair", []string{"--api", srv.URL, "--keyspace", "kv", "--wait", "30s"}, &repaired, &repairErr); code != 0 ||
		!strings.Contains(repaired.String(), "repair of node-0, node-1, one at a time") || !strings.Contains(repaired.String(), "done: node-0, node-1") {
		t.Errorf("repair: exit %d, %q, %q", code, repaired.String(), repairErr.String())
	}
	if code := cassandraJob("cleanup", []string{"--api", srv.URL}, &repaired, &repairErr); code != 1 || !strings.Contains(repairErr.String(), "a repair is under way") {
		t.Errorf("cleanup during a repair: exit %d, %q", code, repairErr.String())
	}
	var destroyed, destroyErr strings.Builder
	if code := cassandraDestroy([]string{"--api", srv.URL}, &destroyed, &destroyErr); code != 2 || !strings.Contains(destroyErr.String(), "--cluster NAME") {
		t.Errorf("destroy without --cluster: exit %d, %q", code, destroyErr.String())
	}
	if code := cassandraDestroy([]string{"--api", srv.URL, "--cluster", "other"}, &destroyed, &destroyErr); code != 1 || destroying.Load() {
		t.Errorf("destroy of another ring: exit %d (destroying %v), %q", code, destroying.Load(), destroyErr.String())
	}
	if code := cassandraDestroy([]string{"--api", srv.URL, "--cluster", "ring", "--wait", "30s"}, &destroyed, &destroyErr); code != 0 ||
		!strings.Contains(destroyed.String(), "done: destroyed") {
		t.Errorf("destroy: exit %d, %q, %q", code, destroyed.String(), destroyErr.String())
	}
	var out, errOut strings.Builder
	if code := cassandraGet("status", []string{"--api", "127.0.0.1:1"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "the scheduler's API at 127.0.0.1:1") {
		t.Errorf("an API that is not there: exit %d, %q", code, errOut.String())
	}
}

// agora cassandra probe, the nodes' health check: a port where nothing
// answers CQL is unhealthy (exit 1, one line naming the address); bad
// flags exit 2.
func TestCassandraProbeUnhealthy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, port, _ := net.SplitHostPort(addr)
	var out, errOut strings.Builder
	code := cassandraProbe(context.Background(), []string{"--host", "127.0.0.1", "--port", port, "--timeout", "5s"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "unhealthy") || !strings.Contains(errOut.String(), addr) ||
		strings.Count(strings.TrimSpace(errOut.String()), "\n") != 0 {
		t.Errorf("probe of %s where nothing listens: exit %d, stdout %q, stderr %q; want exit 1 and one line naming it", addr, code, out.String(), errOut.String())
	}
	for _, args := range [][]string{{"--port", port}, {"--host", "127.0.0.1", "--port", "0"}, {"--host", "127.0.0.1", "extra"}} {
		errOut.Reset()
		if code := cassandraProbe(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("probe %q: exit %d (%s); want 2", args, code, errOut.String())
		}
	}
}
