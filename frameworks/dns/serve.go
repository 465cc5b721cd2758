package dns

import (
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ServeDNS answers one query: names in the domain from the records,
// others forwarded to the resolvers (REFUSED when there are none).
func (r *Resolver) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	switch {
	case req.Response:
		return // never answer an answer
	case req.Opcode != dns.OpcodeQuery:
		m.SetRcode(req, dns.RcodeNotImplemented)
		r.write(w, req, m)
		return
	case len(req.Question) != 1:
		m.SetRcode(req, dns.RcodeFormatError)
		r.write(w, req, m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(dns.Fqdn(q.Name))
	dom := r.cfg.Domain + "."
	if name != dom && !strings.HasSuffix(name, "."+dom) {
		r.forward(w, req, name)
		return
	}
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = r.cfg.RecurseOn && len(r.cfg.Resolvers) > 0
	recs := r.recs.Load()
	if recs == nil {
		// Nothing known yet: SERVFAIL makes clients retry, where an
		// NXDOMAIN would be cached as "no such task".
		m.Rcode = dns.RcodeServerFailure
		r.write(w, req, m)
		return
	}
	recs.mu.RLock()
	r.answer(m, recs, name, q.Qtype)
	exists := recs.exists(name)
	recs.mu.RUnlock()
	if len(m.Answer) == 0 {
		if !exists {
			m.Rcode = dns.RcodeNameError
		}
		m.Ns = []dns.RR{r.soa()}
	}
	r.write(w, req, m)
}

func (r *Resolver) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: uint32(r.cfg.TTL)}
}

func (r *Resolver) soa() dns.RR {
	h := r.hdr(r.cfg.Domain+".", dns.TypeSOA)
	h.Ttl = r.cfg.SOAMinttl
	return &dns.SOA{Hdr: h, Ns: r.cfg.SOAMname, Mbox: r.cfg.SOARname, Serial: uint32(time.Now().Unix()),
		Refresh: r.cfg.SOARefresh, Retry: r.cfg.SOARetry, Expire: r.cfg.SOAExpire, Minttl: r.cfg.SOAMinttl}
}

// answer fills m's answer (and additional) sections for name and type.
// Call with recs read-locked.
func (r *Resolver) answer(m *dns.Msg, recs *records, name string, qtype uint16) {
	apex := name == r.cfg.Domain+"."
	if qtype == dns.TypeA || qtype == dns.TypeAAAA || qtype == dns.TypeANY {
		m.Answer = append(m.Answer, r.addrs(recs, name, qtype)...)
	}
	if qtype == dns.TypeSRV || qtype == dns.TypeANY {
		srvs := shuffled(recs.srv[name])
		if len(srvs) == 0 && qtype == dns.TypeSRV {
			srvs = shuffled(recs.srv[bareSRV(name)])
		}
		seen := map[string]bool{}
		for _, s := range srvs {
			m.Answer = append(m.Answer, &dns.SRV{Hdr: r.hdr(name, dns.TypeSRV), Priority: 0,
				Weight: r.cfg.SRVRecordDefaultWeight, Port: s.port, Target: s.target})
			if !seen[s.target] {
				seen[s.target] = true
				m.Extra = append(m.Extra, r.addrs(recs, s.target, dns.TypeANY)...)
			}
		}
	}
	if apex && (qtype == dns.TypeSOA || qtype == dns.TypeANY) {
		m.Answer = append(m.Answer, r.soa())
	}
	if apex && (qtype == dns.TypeNS || qtype == dns.TypeANY) {
		m.Answer = append(m.Answer, &dns.NS{Hdr: r.hdr(name, dns.TypeNS), Ns: r.cfg.SOAMname})
		m.Extra = append(m.Extra, r.addrs(recs, r.cfg.SOAMname, dns.TypeANY)...)
	}
}

// bareSRV is the SRV name Mesos-DNS keeps for a task's bare name:
// _task._tcp.framework.domain. for task.framework.domain., so that an SRV
// query for the name a user knows (app.marathon.agora) answers the
// instances' ports as the _app._tcp name does; "" for names that already
// start with an underscore label.
func bareSRV(name string) string {
	label, rest, ok := strings.Cut(name, ".")
	if !ok || label == "" || strings.HasPrefix(label, "_") || rest == "" {
		return ""
	}
	return "_" + label + "._tcp." + rest
}

// addrs are the A (and AAAA) records of name, shuffled: several tasks of
// one name share the load.
func (r *Resolver) addrs(recs *records, name string, qtype uint16) []dns.RR {
	var out []dns.RR
	for _, ip := range shuffled(recs.a[name]) {
		if ip4 := ip.To4(); ip4 != nil {
			if qtype != dns.TypeAAAA {
				out = append(out, &dns.A{Hdr: r.hdr(name, dns.TypeA), A: ip4})
			}
		} else if qtype != dns.TypeA {
			out = append(out, &dns.AAAA{Hdr: r.hdr(name, dns.TypeAAAA), AAAA: ip})
		}
	}
	return out
}

func shuffled[T any](xs []T) []T {
	if len(xs) < 2 {
		return xs
	}
	out := append([]T(nil), xs...)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// write sends m, truncated to what the client can take over UDP (512
// bytes, or its EDNS0 buffer size) with the TC flag set when cut.
func (r *Resolver) write(w dns.ResponseWriter, req, m *dns.Msg) {
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		if s := int(opt.UDPSize()); s > size {
			size = s
		}
		m.SetEdns0(uint16(size), false)
	}
	if _, tcp := w.RemoteAddr().(*net.TCPAddr); tcp {
		size = dns.MaxMsgSize
	}
	m.Compress = true
	m.Truncate(size)
	_ = w.WriteMsg(m)
}

// forward sends a query outside the domain to the zone's resolvers or the
// general ones, in turn, and relays the first answer; with none
// configured (or externalon false) it is REFUSED.
func (r *Resolver) forward(w dns.ResponseWriter, req *dns.Msg, name string) {
	servers := r.cfg.Resolvers
	best := ""
	for zone, rs := range r.cfg.ZoneResolvers {
		z := strings.ToLower(dns.Fqdn(zone))
		if (name == z || strings.HasSuffix(name, "."+z)) && len(z) > len(best) {
			best, servers = z, rs
		}
	}
	m := new(dns.Msg)
	if !r.cfg.ExternalOn || !r.cfg.RecurseOn || len(servers) == 0 {
		m.SetRcode(req, dns.RcodeRefused)
		r.write(w, req, m)
		return
	}
	network := "udp"
	if _, tcp := w.RemoteAddr().(*net.TCPAddr); tcp {
		network = "tcp"
	}
	c := &dns.Client{Net: network, Timeout: time.Duration(r.cfg.Timeout) * time.Second}
	for _, s := range servers {
		in, _, err := c.Exchange(req, s)
		if err != nil {
			r.log.Debug("forwarding failed", "name", name, "resolver", s, "err", err)
			continue
		}
		in.Id = req.Id
		_ = w.WriteMsg(in)
		return
	}
	m.SetRcode(req, dns.RcodeServerFailure)
	r.write(w, req, m)
}
