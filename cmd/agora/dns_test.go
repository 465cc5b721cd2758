package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestDNSCommandBadInput: a bad config.json, flag or argument is refused
// with exit 2 and a message naming what is wrong; nothing is served.
func TestDNSCommandBadInput(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfg, []byte(`{"masters":["127.0.0.1:5050"],"zkDetectionTimout":30}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", cfg}, `unknown or unsupported field "zkDetectionTimout"`},
		{[]string{"--config", filepath.Join(t.TempDir(), "missing.json")}, "no such file"},
		{[]string{"--resolvers", "dns.example", "--port", "0"}, `resolvers: "dns.example" is not an IP`},
		{[]string{"--domain", "a..b", "--port", "0"}, "domain"},
		{[]string{"--port", "0", "extra"}, "unexpected arguments"},
	} {
		var out bytes.Buffer
		if code := dnsCommand(context.Background(), c.args, &out); code != 2 || !strings.Contains(out.String(), c.want) {
			t.Errorf("agora dns %v: exit %d, %q; want 2 and %q", c.args, code, out.String(), c.want)
		}
	}
}

// TestDNSLookup: `agora dns lookup` prints a server's SRV answer with the
// targets' addresses, as JSON; an empty answer exits 1.
func TestDNSLookup(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		if req.Question[0].Name == "_web._tcp.marathon.agora." {
			m.Answer = append(m.Answer, &dns.SRV{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60},
				Port: 31001, Target: "web-x.marathon.slave.agora."})
			m.Extra = append(m.Extra, &dns.A{Hdr: dns.RR_Header{Name: "web-x.marathon.slave.agora.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.IPv4(127, 0, 0, 9)})
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	var out, errb bytes.Buffer
	if code := dnsLookupCommand([]string{"_web._tcp.marathon.agora", "--server", pc.LocalAddr().String(), "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var got struct {
		Rcode   string `json:"rcode"`
		Answers []struct {
			Type, Target, IP string
			Port             int
		} `json:"answers"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.Rcode != "NOERROR" || len(got.Answers) != 1 ||
		got.Answers[0].Port != 31001 || got.Answers[0].IP != "127.0.0.9" || got.Answers[0].Type != "SRV" {
		t.Errorf("lookup printed %s (%v)", out.String(), err)
	}
	out.Reset()
	if code := dnsLookupCommand([]string{"nosuch.marathon.agora", "--server", pc.LocalAddr().String()}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "NXDOMAIN") {
		t.Errorf("lookup of a missing name: exit %d, stderr %q; want 1 and NXDOMAIN", code, errb.String())
	}
}
