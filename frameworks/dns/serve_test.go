package dns

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/miekg/dns"

	"github.com/agora-cluster/agora/cluster/clustertest"
)

// deadMaster is an address nothing listens on: the resolver keeps failing
// to reach it, and the tests set its view themselves.
const deadMaster = "127.0.0.1:1"

// load replaces the resolver's view with v and waits for the records.
func (s *served) load(t *testing.T, v *view) {
	t.Helper()
	s.mu.Lock()
	s.view = v
	s.seq++
	s.mu.Unlock()
	before := s.recs.Load()
	s.changed()
	deadline := time.Now().Add(30 * time.Second)
	for s.recs.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("records were not rebuilt")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeView has a framework "marathon" with n running tasks named name,
// each on its own container IP 10.0.x.y and port 31000+i.
func fakeView(name string, n int) *view {
	v := newView()
	v.leader = endpoint{ip: net.IPv4(127, 0, 0, 1), port: 5050}
	v.agents["a-S0"] = agentRec{id: "a-S0", ip: net.IPv4(127, 0, 0, 1), port: 5051}
	v.frameworks["f1"] = frameworkRec{name: "marathon"}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%s.%d", name, i)
		v.tasks[taskKey("f1", id)] = &taskRec{id: id, name: name, frameworkID: "f1", agentID: "a-S0", state: mesos.TASK_RUNNING,
			ports: []uint32{uint32(31000 + i)}, netIPs: []net.IP{net.IPv4(10, 0, byte(i/250), byte(i%250+1))}}
	}
	return v
}

// TestAnswersInTheDomain: SERVFAIL before anything is known; then
// NXDOMAIN for a name that does not exist and NOERROR with no answer for
// one that exists without records of the type asked, both with the SOA;
// SOA and NS at the apex; container IPs by IPSources.
func TestAnswersInTheDomain(t *testing.T) {
	r := serve(t, testConfig(deadMaster))
	if in := r.query(t, "udp", "web.marathon.agora", dns.TypeA); in.Rcode != dns.RcodeServerFailure {
		t.Errorf("before the first load: %s, want SERVFAIL", dns.RcodeToString[in.Rcode])
	}
	r.load(t, fakeView("web", 2))
	if got := aIPs(r.query(t, "udp", "WEB.Marathon.agora", dns.TypeA)); !reflect.DeepEqual(got, []string{"10.0.0.1", "10.0.0.2"}) {
		t.Errorf("web A %v, want the container IPs", got)
	}
	if got := aIPs(r.query(t, "udp", "web.marathon.slave.agora", dns.TypeA)); !reflect.DeepEqual(got, []string{"127.0.0.1"}) {
		t.Errorf("web under .slave. A %v, want the agent's IP", got)
	}
	for _, c := range []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"nosuch.marathon.agora", dns.TypeA, dns.RcodeNameError},
		{"web.nosuch.agora", dns.TypeSRV, dns.RcodeNameError},
		{"web.marathon.agora", dns.TypeAAAA, dns.RcodeSuccess},
		{"web.marathon.agora", dns.TypeTXT, dns.RcodeSuccess},
		{"_web._tcp.marathon.agora", dns.TypeA, dns.RcodeSuccess},
		{"_tcp.marathon.agora", dns.TypeSRV, dns.RcodeSuccess}, // exists: a name below it does
	} {
		in := r.query(t, "udp", c.name, c.qtype)
		if in.Rcode != c.rcode || len(in.Answer) != 0 || len(in.Ns) != 1 || in.Ns[0].Header().Rrtype != dns.TypeSOA || !in.Authoritative {
			t.Errorf("%s %s: %s with %d answers, authority %v; want %s, no answer, the SOA",
				c.name, dns.TypeToString[c.qtype], dns.RcodeToString[in.Rcode], len(in.Answer), in.Ns, dns.RcodeToString[c.rcode])
		}
	}
	soa := r.query(t, "udp", "agora", dns.TypeSOA)
	if len(soa.Answer) != 1 || soa.Answer[0].(*dns.SOA).Ns != "ns1.agora." || soa.Answer[0].(*dns.SOA).Minttl != 60 {
		t.Errorf("SOA answer:\n%v", soa)
	}
	ns := r.query(t, "tcp", "agora", dns.TypeNS)
	if len(ns.Answer) != 1 || ns.Answer[0].(*dns.NS).Ns != "ns1.agora." || len(ns.Extra) == 0 {
		t.Errorf("NS answer (want ns1.agora. with its address):\n%v", ns)
	}
	if in := r.query(t, "udp", "web.marathon.agora", dns.TypeA); in.Answer[0].Header().Ttl != 60 {
		t.Errorf("TTL %d, want the config's 60", in.Answer[0].Header().Ttl)
	}
}

// TestForwarding: names outside the domain go to the resolvers and their
// answer comes back over UDP and TCP; with no resolvers they are REFUSED.
func TestForwarding(t *testing.T) {
	upstream := startUpstream(t)
	cfg := testConfig(deadMaster)
	cfg.Resolvers = []string{upstream}
	r := serve(t, cfg)
	for _, network := range []string{"udp", "tcp"} {
		in := r.query(t, network, "example.com", dns.TypeA)
		if got := aIPs(in); in.Rcode != dns.RcodeSuccess || !reflect.DeepEqual(got, []string{"192.0.2.7"}) {
			t.Errorf("%s: example.com: %s %v, want the upstream's 192.0.2.7", network, dns.RcodeToString[in.Rcode], got)
		}
	}
	lone := serve(t, testConfig(deadMaster))
	if in := lone.query(t, "udp", "example.com", dns.TypeA); in.Rcode != dns.RcodeRefused {
		t.Errorf("with no resolvers: %s, want REFUSED", dns.RcodeToString[in.Rcode])
	}
}

// startUpstream runs a DNS server answering every A query with 192.0.2.7.
func startUpstream(t *testing.T) string {
	t.Helper()
	// A free UDP port whose TCP twin is free too: another port is
	// tried when something else holds the TCP one.
	var (
		pc  net.PacketConn
		tl  net.Listener
		err error
	)
	for attempt := 1; tl == nil; attempt++ {
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if tl, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
			pc.Close()
			if attempt == 20 {
				t.Fatalf("no port free for both UDP and TCP in 20 tries: %v", err)
			}
		}
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30},
			A: net.IPv4(192, 0, 2, 7)})
		_ = w.WriteMsg(m)
	})
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: tl, Handler: h}} {
		go func() { _ = s.ActivateAndServe() }()
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// TestTruncation: an answer larger than 512 bytes is cut over UDP with TC
// set; over TCP, or with a large EDNS0 buffer, it comes whole.
func TestTruncation(t *testing.T) {
	r := serve(t, testConfig(deadMaster))
	r.load(t, fakeView("big", 200))
	udp := r.query(t, "udp", "big.marathon.agora", dns.TypeA)
	if !udp.Truncated || len(udp.Answer) >= 200 {
		t.Errorf("UDP: truncated=%v with %d answers, want TC and fewer than 200", udp.Truncated, len(udp.Answer))
	}
	if tcp := r.query(t, "tcp", "big.marathon.agora", dns.TypeA); tcp.Truncated || len(tcp.Answer) != 200 {
		t.Errorf("TCP: truncated=%v with %d answers, want all 200", tcp.Truncated, len(tcp.Answer))
	}
	m := new(dns.Msg)
	m.SetQuestion("big.marathon.agora.", dns.TypeA)
	m.SetEdns0(4096, false)
	in, _, err := (&dns.Client{Net: "udp", UDPSize: 4096, Timeout: 5 * time.Second}).Exchange(m, r.udp)
	if err != nil || in.Truncated || len(in.Answer) != 200 {
		t.Errorf("UDP with a 4096-byte EDNS0 buffer: %v, truncated=%v, %d answers; want all 200", err, in != nil && in.Truncated, answers(in))
	}
}

func answers(m *dns.Msg) int {
	if m == nil {
		return 0
	}
	return len(m.Answer)
}

// TestMalformedQueries: garbage, an oversized datagram, a query with two
// questions, a TCP frame that promises more than it sends — none stops
// the server, which answers FORMERR where it can and then a good query.
func TestMalformedQueries(t *testing.T) {
	r := serve(t, testConfig(deadMaster))
	r.load(t, fakeView("web", 1))
	conn, err := net.Dial("udp", r.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	big := make([]byte, 9000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for _, pkt := range [][]byte{{0x12}, []byte("not a dns message at all"), big, make([]byte, 12)} {
		if _, err := conn.Write(pkt); err != nil {
			t.Fatal(err)
		}
		// An answer, if any, must be a FORMERR or an empty reply; none is fine.
		conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 65535)
		if n, err := conn.Read(buf); err == nil {
			var m dns.Msg
			if m.Unpack(buf[:n]) == nil && m.Rcode != dns.RcodeFormatError && len(m.Answer) > 0 {
				t.Errorf("a %d-byte bad packet got an answer:\n%v", len(pkt), &m)
			}
		}
	}
	two := new(dns.Msg)
	two.SetQuestion("web.marathon.agora.", dns.TypeA)
	two.Question = append(two.Question, dns.Question{Name: "x.marathon.agora.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	in, _, err := (&dns.Client{Net: "udp", Timeout: 5 * time.Second}).Exchange(two, r.udp)
	if err != nil || in.Rcode != dns.RcodeFormatError {
		t.Errorf("two questions: %v %v, want FORMERR", err, in)
	}
	tc, err := net.Dial("tcp", r.tcp)
	if err != nil {
		t.Fatal(err)
	}
	var hdr [2]byte
	binary.BigEndian.PutUint16(hdr[:], 60000)
	tc.Write(append(hdr[:], []byte("short")...))
	tc.Close()
	for _, network := range []string{"udp", "tcp"} {
		if got := aIPs(r.query(t, network, "web.marathon.agora", dns.TypeA)); len(got) != 1 {
			t.Errorf("%s after bad input: %v, want web's address", network, got)
		}
	}
}

// TestNames: Mesos-DNS's label rules.
func TestNames(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"web", "web"}, {"My_App.v2", "myapp-v2"}, {"-lead-trail-", "lead-trail"}, {"ünï©ode", "node"},
		{strings.Repeat("a", 70), strings.Repeat("a", 63)}, {"...", ""},
	} {
		if got := taskLabel(c.in, false); got != c.want {
			t.Errorf("taskLabel(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := taskLabel("9lives-"+strings.Repeat("b", 30), true); got != "lives-"+strings.Repeat("b", 18) {
		t.Errorf("RFC 952 label %q, want it to start with a letter and hold 24 characters", got)
	}
	if got := frameworkLabels("Marathon.Prod_1..x", false); got != "marathon.prod1.x" {
		t.Errorf("frameworkLabels = %q", got)
	}
	h := taskIDHash("web.1")
	if len(h) != 5 || strings.Trim(h, zbase32Alphabet) != "" || h != taskIDHash("web.1") || h == taskIDHash("web.2") {
		t.Errorf("taskIDHash = %q", h)
	}
	if got := agentIDTail("4068c5d7-39b4-4730-b3c3-b35ece48c90f-S0001"); got != "s0001" {
		t.Errorf("agentIDTail = %q", got)
	}
	if got := parsePorts("[31000-31002, 31005-31005]"); !reflect.DeepEqual(got, []uint32{31000, 31001, 31002, 31005}) {
		t.Errorf("parsePorts = %v", got)
	}
}

// TestConfigErrors: each bad config.json is refused with the field named.
func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ json, want string }{
		{`[]`, "not a JSON object"},
		{`{"masters":["m:5050"],"bogus":1,"mesosHTTPSOn":true}`, `"bogus", "mesosHTTPSOn"`},
		{`{}`, "masters: none given"},
		{`{"masters":["nohostport"]}`, `masters: "nohostport" is not host:port`},
		{`{"masters":["m:5050"],"domain":"bad..name"}`, "domain"},
		{`{"masters":["m:5050"],"resolvers":["dns.example"]}`, `resolvers: "dns.example" is not an IP`},
		{`{"masters":["m:5050"],"IPSources":["netinfo","carrier-pigeon"]}`, `IPSources: unknown source "carrier-pigeon"`},
		{`{"masters":["m:5050"],"port":70000}`, "port: 70000"},
		{`{"masters":["m:5050"],"refreshSeconds":0}`, "refreshSeconds: 0"},
		{`{"masters":["m:5050"],"zk":"http://x"}`, "zk:"},
		{`{"masters":["m:5050"],"mesosAuthentication":"basic"}`, "mesosAuthentication"},
		{`{"masters":["m:5050"],"mesosAuthentication":"basic","mesosCredentials":{"principal":"dns"}}`, "a principal and a secret"},
		{`{"masters":["m:5050"],"mesosAuthentication":"kerberos"}`, `"kerberos" is not supported`},
		{`{"masters":["m:5050"],"ttl":"sixty"}`, "ttl"},
	} {
		_, err := ParseConfig([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", c.json, err, c.want)
		}
	}
	cfg, err := ParseConfig([]byte(`{"zk":"zk://127.0.0.1:2181/agora","masters":["127.0.0.1:5050"],"domain":"Cluster.Local.","resolvers":["8.8.8.8"],"ttl":5,"IPSources":["host"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Domain != "cluster.local" || cfg.Resolvers[0] != "8.8.8.8:53" || cfg.SOAMname != "ns1.cluster.local." || cfg.HTTPPort != 8123 || cfg.RefreshSeconds != 60 {
		t.Errorf("parsed config %+v", cfg)
	}
}

// TestDiscoveryPorts: a task with DiscoveryInfo ports is answered with
// those ports only, under their protocol, by task name and by port name,
// the target being the task's own name (its container IP).
func TestDiscoveryPorts(t *testing.T) {
	r := serve(t, testConfig(deadMaster))
	v := fakeView("web", 1)
	tk := v.tasks[taskKey("f1", "web.0")]
	tk.discovery = &mesos.DiscoveryInfo{Visibility: mesos.FRAMEWORK, Ports: &mesos.Ports{Ports: []mesos.Port{
		{Number: 8080, Name: strp("http"), Protocol: strp("tcp")}, {Number: 5353, Protocol: strp("udp")}}}}
	r.load(t, v)
	canonical := "web-" + taskIDHash("web.0") + "-s0.marathon.agora."
	for _, c := range []struct {
		name  string
		ports []int
	}{
		{"_web._tcp.marathon.agora", []int{8080}},
		{"_http._web._tcp.marathon.agora", []int{8080}},
		{"_web._udp.marathon.agora", []int{5353}},
		{"web.marathon.agora", []int{8080}}, // the bare name: its _tcp records
	} {
		in := r.query(t, "udp", c.name, dns.TypeSRV)
		if got := srvPorts(in); !reflect.DeepEqual(got, c.ports) || in.Answer[0].(*dns.SRV).Target != canonical {
			t.Errorf("%s: %v, want ports %v to %s", c.name, in.Answer, c.ports, canonical)
		}
	}
	if got := aIPs(r.query(t, "udp", canonical, dns.TypeA)); !reflect.DeepEqual(got, []string{"10.0.0.1"}) {
		t.Errorf("%s A %v, want the container IP", canonical, got)
	}
}

// TestRunStopsAtOnce: a resolver cancelled as soon as it runs stops
// (its servers may not have started yet).
func TestRunStopsAtOnce(t *testing.T) {
	for i := 0; i < 20; i++ {
		cfg := testConfig(deadMaster)
		cfg.Listener, cfg.Port, cfg.HTTPPort = "127.0.0.1", 0, 0
		r, err := New(cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ls, err := r.Listen()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx, ls) }()
		clustertest.AwaitStop(t, "a resolver cancelled at start", done)
	}
}

// TestVersionAndConfig: /v1/version says what answers, /v1/config gives
// the config in effect with the master's secret masked.
func TestVersionAndConfig(t *testing.T) {
	cfg := testConfig("127.0.0.1:1")
	cfg.Domain, cfg.TTL = "example-dc", 15
	cfg.SetCredential("dns", "s3cret")
	cfg.MesosAuthentication = "basic"
	r := serve(t, cfg)
	var v map[string]string
	if code := getJSON(t, r.http+"/v1/version", &v); code != 200 || v["Service"] != "Mesos-DNS" || v["Version"] != "test" {
		t.Errorf("/v1/version: %d %v", code, v)
	}
	var got Config
	if code := getJSON(t, r.http+"/v1/config", &got); code != 200 || got.Domain != "example-dc" || got.TTL != 15 ||
		!slices.Equal(got.Masters, []string{"127.0.0.1:1"}) || got.MesosCredentials == nil ||
		got.MesosCredentials.Principal != "dns" || got.MesosCredentials.Secret != "********" {
		t.Errorf("/v1/config: %d %+v (credentials %+v)", code, got, got.MesosCredentials)
	}
}
