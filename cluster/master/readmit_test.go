package master

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/registry"
)

// TestReadmitPrincipal: who may re-register an agent the registry has.
// A record with a principal takes only that principal back (403 for
// another). A record without one takes the caller's only from the agent
// it describes: hostname and port as recorded (else 409: another agent,
// or this one moved), connecting from the IP in the record's pid, from
// its recorded hostname when that is an IP, or from an address its
// hostname resolves to (else 403: the agent keeps its ID); a hostname
// that had to be looked up and was not, for now (a timeout, SERVFAIL), is
// a 503 with Retry-After, not a refusal; one the resolver says does not
// exist is a 403 naming it (an operator must act).
func TestReadmitPrincipal(t *testing.T) {
	port := int32(5051)
	info := func(host string, port int32) *mesos.AgentInfo {
		return &mesos.AgentInfo{ID: &mesos.AgentID{Value: "S1"}, Hostname: host, Port: &port}
	}
	record := func(principal, pid, host string) registry.AgentRecord {
		return registry.AgentRecord{ID: "S1", State: registry.AgentAdmitted, Info: info(host, port), Principal: principal, PID: pid}
	}
	const pid = "slave(1)@10.0.0.1:5051"
	from := func(remote string) peer { return peer{remote: remote} }
	resolved := func(remote string, addrs ...string) peer {
		return peer{remote: remote, resolved: true, hostAddrs: addrs}
	}
	failed := func(remote string) peer {
		return peer{remote: remote, resolved: true, lookupErr: errors.New("lookup agent.test: server misbehaving")}
	}
	lookupErr := func(remote string, err *net.DNSError) peer {
		return peer{remote: remote, resolved: true, lookupErr: err}
	}
	cases := []struct {
		name      string
		rec       registry.AgentRecord
		got       *mesos.AgentInfo
		principal string
		from      peer
		want      string // the principal admitted, if admitted
		code      int    // else the answer's code (0: errLookupHostname)
		says      []string
	}{
		{name: "its own principal", rec: record("agent", pid, "agent.test"), got: info("elsewhere", 1), principal: "agent", from: from("10.9.9.9:1"), want: "agent"},
		{name: "no principal now keeps the recorded one", rec: record("agent", pid, "agent.test"), got: info("agent.test", port), from: from("10.0.0.1:1"), want: "agent"},
		{name: "another principal", rec: record("agent", pid, "agent.test"), got: info("agent.test", port), principal: "intruder", from: from("10.0.0.1:1"),
			code: http.StatusForbidden, says: []string{"S1", "'intruder'", "'agent'"}},

		{name: "unclaimed, from the pid's IP", rec: record("", pid, "agent.test"), got: info("agent.test", port), principal: "agent", from: from("10.0.0.1:40000"), want: "agent"},
		{name: "unclaimed, from the pid's IP written as IPv4-in-IPv6", rec: record("", pid, "agent.test"), got: info("agent.test", port), principal: "agent", from: from("[::ffff:10.0.0.1]:40000"), want: "agent"},
		{name: "unclaimed, hostname differs", rec: record("", pid, "agent.test"), got: info("moved.test", port), principal: "agent", from: from("10.0.0.1:1"),
			code: http.StatusConflict, says: []string{"S1", "'agent'", `"moved.test"`, `"agent.test"`}},
		{name: "unclaimed, port differs", rec: record("", pid, "agent.test"), got: info("agent.test", 5052), principal: "agent", from: from("10.0.0.1:1"),
			code: http.StatusConflict, says: []string{"S1", "port 5052", "5051"}},
		{name: "unclaimed, no agent info", rec: registry.AgentRecord{ID: "S1", State: registry.AgentAdmitted}, got: info("agent.test", port), principal: "agent", from: from("10.0.0.1:1"),
			code: http.StatusConflict, says: []string{"no agent info"}},
		{name: "unclaimed, another IP: its hostname is looked up", rec: record("", pid, "agent.test"), got: info("agent.test", port), principal: "agent", from: from("10.0.0.2:1")},
		{name: "unclaimed, another IP among the hostname's addresses", rec: record("", pid, "agent.test"), got: info("agent.test", port), principal: "agent",
			from: resolved("10.0.0.2:1", "10.0.0.1", "10.0.0.2"), want: "agent"},
		{name: "unclaimed, dual stack: IPv6 now, an address of the hostname", rec: record("", pid, "agent.test"), got: info("agent.test", port), principal: "agent",
			from: resolved("[2001:db8::7]:1", "10.0.0.1", "2001:db8::7"), want: "agent"},
		{name: "unclaimed, hostname and port match, the IP is neither", rec: record("", pid, "agent.test"), got: info("agent.test", port), principal: "intruder",
			from: resolved("10.0.0.2:1", "10.0.0.1"), code: http.StatusForbidden,
			says: []string{"S1", "'intruder'", "10.0.0.2", pid, `"agent.test"`, "keeps its ID", "--recover=cleanup"}},
		{name: "unclaimed, the lookup failed", rec: record("", pid, "agent.test"), got: info("agent.test", port), principal: "agent", from: failed("10.0.0.2:1"),
			code: http.StatusServiceUnavailable, says: []string{"S1", `"agent.test"`, "10.0.0.2", "server misbehaving", "retry"}},

		{name: "unclaimed, the lookup timed out", rec: record("", pid, "agent.test"), got: info("agent.test", port), principal: "agent",
			from: lookupErr("10.0.0.2:1", &net.DNSError{Err: "i/o timeout", Name: "agent.test", IsTimeout: true}),
			code: http.StatusServiceUnavailable, says: []string{`"agent.test"`, "i/o timeout", "retry"}},
		{name: "unclaimed, the hostname does not exist", rec: record("", pid, "agent.test"), got: info("agent.test", port), principal: "agent",
			from: lookupErr("10.0.0.2:1", &net.DNSError{Err: "no such host", Name: "agent.test", IsNotFound: true}),
			code: http.StatusForbidden, says: []string{"S1", "10.0.0.2", pid, `"agent.test", which does not resolve for the master`, "no such host", "keeps its ID", `"agent.test" resolving to 10.0.0.2`}},

		{name: "no pid, from an address of the hostname", rec: record("", "", "agent.test"), got: info("agent.test", port), principal: "agent",
			from: resolved("10.0.0.1:1", "10.0.0.1"), want: "agent"},
		{name: "no pid, to be looked up", rec: record("", "", "agent.test"), got: info("agent.test", port), principal: "agent", from: from("10.0.0.1:1")},
		{name: "no pid, the lookup failed", rec: record("", "", "agent.test"), got: info("agent.test", port), principal: "agent", from: failed("10.0.0.1:1"),
			code: http.StatusServiceUnavailable, says: []string{"server misbehaving"}},
		{name: "no pid, not an address of the hostname", rec: record("", "", "agent.test"), got: info("agent.test", port), principal: "agent",
			from: resolved("10.0.0.2:1", "10.0.0.1"), code: http.StatusForbidden, says: []string{"10.0.0.2", "10.0.0.1"}},
		{name: "no pid, hostname differs", rec: record("", "", "agent.test"), got: info("moved.test", port), principal: "agent", from: from("10.0.0.1:1"),
			code: http.StatusConflict, says: []string{`"moved.test"`}},
		{name: "no pid, the hostname is the IP it connects from", rec: record("", "", "10.0.0.1"), got: info("10.0.0.1", port), principal: "agent", from: from("10.0.0.1:1"), want: "agent"},
		{name: "no pid, the hostname is another IP: nothing to look up", rec: record("", "", "10.0.0.1"), got: info("10.0.0.1", port), principal: "agent", from: from("10.0.0.2:1"),
			code: http.StatusForbidden, says: []string{"10.0.0.2", "its recorded hostname"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readmitPrincipal(tc.rec, tc.got, tc.principal, tc.from)
			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Fatalf("readmitPrincipal = %q, %v; want %q admitted", got, err, tc.want)
				}
				return
			}
			if tc.code == 0 {
				if !errors.Is(err, errLookupHostname) {
					t.Fatalf("readmitPrincipal = %q, %v; want errLookupHostname (the hostname looked up first)", got, err)
				}
				return
			}
			var he *httpError
			if !errors.As(err, &he) || he.code != tc.code {
				t.Fatalf("readmitPrincipal = %q, %v; want a %d", got, err, tc.code)
			}
			for _, s := range tc.says {
				if !strings.Contains(he.msg, s) {
					t.Errorf("the %d does not name %s: %s", tc.code, s, he.msg)
				}
			}
			if (he.retryAfter > 0) != (tc.code == http.StatusServiceUnavailable) {
				t.Errorf("the %d has Retry-After %v; want one only on a 503", tc.code, he.retryAfter)
			}
		})
	}
}

// TestHostLookupsAreShared: concurrent lookups of one hostname make one
// lookup, its answer (an error too) is kept for hostLookupTTL and then
// asked anew; another hostname is looked up on its own; beyond the bound
// on kept hostnames a lookup is made but not kept.
func TestHostLookupsAreShared(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	release := make(chan struct{})
	fail := false
	h := newHostLookups(func(ctx context.Context, host string) ([]string, error) {
		mu.Lock()
		calls[host]++
		f := fail
		mu.Unlock()
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f {
			return nil, fmt.Errorf("lookup %s: server misbehaving", host)
		}
		return []string{"10.0.0.1"}, nil
	})
	now := time.Unix(1e9, 0)
	h.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	count := func(host string) int { mu.Lock(); defer mu.Unlock(); return calls[host] }

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 50
	type answer struct {
		addrs []string
		err   error
	}
	answers := make(chan answer, n)
	for i := 0; i < n; i++ {
		go func() {
			addrs, err := h.lookup(ctx, "agent.test")
			answers <- answer{addrs, err}
		}()
	}
	// Every caller waits on the one lookup until it is released.
	for deadline := time.Now().Add(time.Minute); count("agent.test") == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no lookup started")
		}
	}
	close(release)
	for i := 0; i < n; i++ {
		a := <-answers
		if a.err != nil || len(a.addrs) != 1 || a.addrs[0] != "10.0.0.1" {
			t.Fatalf("lookup = %v, %v; want [10.0.0.1]", a.addrs, a.err)
		}
	}
	if got := count("agent.test"); got != 1 {
		t.Fatalf("%d concurrent lookups of one hostname made %d lookups, want 1", n, got)
	}
	if _, err := h.lookup(ctx, "agent.test"); err != nil || count("agent.test") != 1 {
		t.Fatalf("a lookup within %s: %v, %d lookups made; want the kept answer", hostLookupTTL, err, count("agent.test"))
	}
	if _, err := h.lookup(ctx, "other.test"); err != nil || count("other.test") != 1 {
		t.Fatalf("another hostname: %v, %d lookups made; want its own", err, count("other.test"))
	}

	// Expired, it is looked up again; a failure is kept too.
	mu.Lock()
	now = now.Add(hostLookupTTL)
	fail = true
	mu.Unlock()
	if _, err := h.lookup(ctx, "agent.test"); err == nil || count("agent.test") != 2 {
		t.Fatalf("after %s: %v, %d lookups made; want a second lookup, failing", hostLookupTTL, err, count("agent.test"))
	}
	if _, err := h.lookup(ctx, "agent.test"); err == nil || count("agent.test") != 2 {
		t.Fatalf("right after a failed lookup: %v, %d lookups made; want the kept failure", err, count("agent.test"))
	}
}

// At the bound on kept hostnames, lookups are still answered, but not
// kept.
func TestHostLookupsBounded(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	h := newHostLookups(func(_ context.Context, host string) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		calls[host]++
		return []string{"10.0.0.1"}, nil
	})
	h.now = func() time.Time { return time.Unix(1e9, 0) }
	h.max = 1
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, host := range []string{"kept.test", "beyond.test", "beyond.test", "kept.test"} {
		if addrs, err := h.lookup(ctx, host); err != nil || len(addrs) != 1 {
			t.Fatalf("lookup %s = %v, %v; want [10.0.0.1]", host, addrs, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if calls["kept.test"] != 1 || calls["beyond.test"] != 2 {
		t.Fatalf("lookups made: %v; want kept.test once (kept) and beyond.test twice (beyond the bound of 1)", calls)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.entries) != 1 {
		t.Fatalf("%d hostnames kept, want the bound, 1", len(h.entries))
	}
}

// At most maxConcurrentHostLookups lookups run at once: one more waits
// for a slot, starts when one is freed, and then has hostLookupTimeout
// of its own (its wait spent none of it); every lookup is answered.
func TestHostLookupsAtMost32AtOnce(t *testing.T) {
	var mu sync.Mutex
	inFlight, most, queued := 0, 0, 0
	deadlines := map[string]time.Time{}
	release := make(chan struct{})
	h := newHostLookups(func(ctx context.Context, host string) ([]string, error) {
		d, _ := ctx.Deadline()
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		deadlines[host] = d
		mu.Unlock()
		defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		select {
		case <-release:
			return []string{"10.0.0.1"}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	h.queued = func(string) { mu.Lock(); queued++; mu.Unlock() }
	state := func() (int, int, int) { mu.Lock(); defer mu.Unlock(); return inFlight, queued, len(deadlines) }

	const n = maxConcurrentHostLookups + 1
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := h.lookup(ctx, fmt.Sprintf("agent-%d.test", i))
			errs <- err
		}()
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		in, q, _ := state()
		if in == maxConcurrentHostLookups && q == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lookups of distinct hostnames: %d in flight and %d waiting; want %d and 1", n, in, q, maxConcurrentHostLookups)
		}
	}
	// The one waiting has not started: every slot is taken.
	if in, _, started := state(); in != maxConcurrentHostLookups || started != maxConcurrentHostLookups {
		t.Fatalf("with every slot taken: %d in flight, %d started; want %d", in, started, maxConcurrentHostLookups)
	}
	freed := time.Now()
	close(release)
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("a lookup: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if most != maxConcurrentHostLookups || len(deadlines) != n {
		t.Fatalf("at most %d lookups ran at once and %d ran; want %d at once and %d", most, len(deadlines), maxConcurrentHostLookups, n)
	}
	// The lookup that waited started after the slots were freed, with a
	// budget of its own.
	var late []string
	for host, d := range deadlines {
		if d.Before(freed.Add(hostLookupTimeout)) {
			late = append(late, host)
		}
	}
	if len(late) != maxConcurrentHostLookups {
		t.Fatalf("%d lookups have a deadline before %s after the slots were freed, want the %d that did not wait: the one that waited has less than its own budget",
			len(late), hostLookupTimeout, maxConcurrentHostLookups)
	}
}

// A caller whose request ends stops waiting; the lookup goes on for the
// others.
func TestHostLookupCallerLeavesEarly(t *testing.T) {
	release := make(chan struct{})
	h := newHostLookups(func(ctx context.Context, host string) ([]string, error) {
		select {
		case <-release:
			return []string{"10.0.0.1"}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.lookup(gone, "agent.test"); !errors.Is(err, context.Canceled) {
		t.Fatalf("lookup for a caller gone: %v, want context.Canceled", err)
	}
	close(release)
	ctx, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	if addrs, err := h.lookup(ctx, "agent.test"); err != nil || len(addrs) != 1 {
		t.Fatalf("lookup after the first caller left: %v, %v; want [10.0.0.1]", addrs, err)
	}
}
