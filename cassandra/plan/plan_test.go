package plan

import (
	"strings"
	"testing"
	"time"
)

func TestParseDefaults(t *testing.T) {
	s, err := Parse([]byte(`{"name":"ring","heap":"auto"}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Nodes != 3 || s.Seeds != 2 || s.Role != "cassandra" || s.NodesPerAgent != 1 || s.NumTokens != 16 || s.Mem != 2048 {
		t.Fatalf("defaults: %+v", s)
	}
	if s.ReplaceTimeout != DefaultReplaceTimeout {
		t.Fatalf("replace_timeout default %v", s.ReplaceTimeout)
	}
	if r, err := Parse([]byte(`{"replace_timeout":"90s"}`)); err != nil || time.Duration(r.ReplaceTimeout) != 90*time.Second {
		t.Fatalf("replace_timeout 90s: %v, %v", r.ReplaceTimeout, err)
	}
	if s.HeapMB() != 1024 {
		t.Fatalf("auto heap of 2048 MB: %d, want 1024", s.HeapMB())
	}
	one, err := Parse([]byte(`{"nodes":1}`))
	if err != nil || one.Seeds != 1 {
		t.Fatalf("one node: seeds %d, %v; want 1", one.Seeds, err)
	}
}

// cassandra-env.sh's formula: max(min(½, 1 GB), min(¼, 8 GB)).
// The health_check block: defaults that outlast a node's join, values
// given, and disabled.
func TestParseHealthCheck(t *testing.T) {
	s, err := Parse([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	want := HealthCheck{Grace: DefaultHealthGrace, Interval: DefaultHealthInterval, ConsecutiveFailures: DefaultHealthFailures}
	if s.HealthCheck != want || time.Duration(s.HealthCheck.Grace) < 24*time.Hour {
		t.Errorf("health_check defaults %+v, want %+v (a grace of a day or more)", s.HealthCheck, want)
	}
	s, err = Parse([]byte(`{"health_check":{"grace":"6h","interval":"10s","consecutive_failures":5}}`))
	want = HealthCheck{Grace: Duration(6 * time.Hour), Interval: Duration(10 * time.Second), ConsecutiveFailures: 5}
	if err != nil || s.HealthCheck != want {
		t.Errorf("health_check given: %+v, %v; want %+v", s.HealthCheck, err, want)
	}
	if s, err = Parse([]byte(`{"health_check":{"disabled":true}}`)); err != nil || !s.HealthCheck.Disabled {
		t.Errorf("health_check disabled: %+v, %v", s.HealthCheck, err)
	}
}

func TestAutoHeap(t *testing.T) {
	for mem, want := range map[float64]int{512: 256, 1536: 768, 2048: 1024, 4096: 1024, 8192: 2048, 24576: 6144, 65536: 8192} {
		if got := AutoHeap(mem); got != want {
			t.Errorf("AutoHeap(%v) = %d, want %d", mem, got, want)
		}
	}
}

func TestValidateRefuses(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		{`{"heap":4096,"mem":2048}`, "heap 4096 MB is larger than the task's memory (mem 2048 MB)"},
		{`{"heap":1900,"mem":2048}`, "leaves less than 256 MB"},
		{`{"yaml":{"concurrent_readz":32}}`, `unknown cassandra.yaml key "concurrent_readz"`},
		{`{"yaml":{"listen_address":"1.2.3.4"}}`, `"listen_address" is set by the framework`},
		{`{"seeds":4,"nodes":3}`, "seeds 4"},
		{`{"name":"bad name"}`, `name "bad name"`},
		{`{"role":"*"}`, `role "*"`},
		{`{"jvm_options":["-Xmx2g"]}`, "set the heap with heap"},
		{`{"jvm_options":["-Dcassandra.ring_delay_ms=1s"]}`, `"-Dcassandra.ring_delay_ms=1s": the ring delay is a whole number of milliseconds`},
		{`{"jvm_options":["-Dcassandra.ring_delay_ms=0"]}`, "from 1 to 2147483647"},
		{`{"jvm_options":["-Dcassandra.ring_delay_ms=2147483648"]}`, "from 1 to 2147483647"},
		{`{"jvm_options":["-Dcassandra.ring_delay_ms"]}`, `"-Dcassandra.ring_delay_ms": the ring delay`},
		{`{"nodez":3}`, `unknown field "nodez"`},
		{`{"heap":"lots"}`, `heap "lots"`},
		{`{"replace_timeout":"soon"}`, `duration "soon"`},
		{`{"replace_timeout":600}`, `duration 600`},
		{`{"replace_timeout":"10ms"}`, `replace_timeout 10ms: at least 1s`},
		{`{"health_check":{"grace":"-1h"}}`, `health_check grace -1h0m0s: not negative`},
		{`{"health_check":{"interval":"100ms"}}`, `health_check interval 100ms: at least 1s`},
		{`{"health_check":{"consecutive_failures":-1}}`, `health_check consecutive_failures -1: at least 1`},
		{`{"health_check":{"grace":48}}`, `duration 48`},
		{`{"health_check":{"timeout":"5s"}}`, `unknown field "timeout"`},
		{`{"yaml":{"authenticator":"PasswordAuthenticator"}}`, `authenticator "PasswordAuthenticator" with health_check on`},
		{`{"yaml":{"authenticator":{"class_name":"org.apache.cassandra.auth.PasswordAuthenticator"}}}`, `the health probe connects without credentials`},
	} {
		_, err := Parse([]byte(c.spec))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%s) = %v, want an error with %q", c.spec, err, c.want)
		}
	}
	// Known keys, and older names Cassandra 5.0 still reads, pass.
	if _, err := Parse([]byte(`{"yaml":{"concurrent_reads":16,"commitlog_sync_period_in_ms":5000,"read_request_timeout":"10s"}}`)); err != nil {
		t.Errorf("known keys refused: %v", err)
	}
	// Logins required are fine once the probe is off, and allowing all
	// is fine with it on.
	for _, spec := range []string{
		`{"yaml":{"authenticator":"PasswordAuthenticator"},"health_check":{"disabled":true}}`,
		`{"yaml":{"authenticator":"AllowAllAuthenticator"}}`,
		`{"yaml":{"authenticator":{"class_name":"org.apache.cassandra.auth.AllowAllAuthenticator"}}}`,
		// Ring delays Cassandra parses (Integer.parseInt takes a sign).
		`{"jvm_options":["-Dcassandra.ring_delay_ms=1000","-Dcassandra.ring_delay_ms=+5000","-Dcassandra.ring_delay_ms=2147483647"]}`,
	} {
		if _, err := Parse([]byte(spec)); err != nil {
			t.Errorf("Parse(%s): %v", spec, err)
		}
	}
}

func TestFit(t *testing.T) {
	s := Spec{Mem: 3000, CPUs: 1, Disk: 100}.WithDefaults()
	agents := []Agent{{ID: "a", CPUs: 2, Mem: 2000, Disk: 1000}, {ID: "b", CPUs: 2, Mem: 2500, Disk: 1000}}
	err := s.Fit(agents)
	if err == nil || !strings.Contains(err.Error(), "more memory than any agent has (the largest has 2500 MB)") {
		t.Fatalf("Fit: %v", err)
	}
	s.Mem = 1000
	if err := s.Fit(agents); err == nil || !strings.Contains(err.Error(), "need 3 agents") {
		t.Fatalf("3 nodes, one per agent, 2 agents: %v", err)
	}
	s.NodesPerAgent = 2
	if err := s.Fit(agents); err != nil {
		t.Fatalf("two per agent: %v", err)
	}
}

func TestYAML(t *testing.T) {
	s, err := Parse([]byte(`{"name":"ring","yaml":{"concurrent_reads":8,"endpoint_snitch":"SimpleSnitch"}}`))
	if err != nil {
		t.Fatal(err)
	}
	y := string(s.NodeYAML(Node{Host: "127.0.0.2", StoragePort: 17000, NativePort: 19042, JMXPort: 17199},
		[]string{"127.0.0.1:17100", "127.0.0.2:17000"}, "/vol"))
	for _, want := range []string{
		`cluster_name: "ring"`, "\nnum_tokens: 16\n", `listen_address: "127.0.0.2"`, `rpc_address: "127.0.0.2"`,
		"\nstorage_port: 17000\n", "\nnative_transport_port: 19042\n",
		`"seeds": "127.0.0.1:17100,127.0.0.2:17000"`, `data_file_directories: ["/vol/data"]`,
		`commitlog_directory: "/vol/commitlog"`, `hints_directory: "/vol/hints"`, `saved_caches_directory: "/vol/saved_caches"`,
		"\nconcurrent_reads: 8\n", `endpoint_snitch: "SimpleSnitch"`,
	} {
		if !strings.Contains(y, want) {
			t.Errorf("the yaml lacks %q:\n%s", want, y)
		}
	}
	if strings.Count(y, "endpoint_snitch:") != 1 {
		t.Errorf("an override must replace the default, not repeat the key:\n%s", y)
	}
}
