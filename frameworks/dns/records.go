package dns

import (
	"net"
	"sort"
	"strconv"
	"strings"
)

// records are the answers of one moment: built whole from the view after
// each change and swapped in, so queries never wait on the follower.
type records struct {
	a     map[string][]net.IP    // lower-case FQDN → addresses
	srv   map[string][]srvTarget // lower-case FQDN → targets
	names map[string]bool        // every name that exists, records or not (for NOERROR vs NXDOMAIN)
	tasks int                    // tasks published
}

type srvTarget struct {
	target string
	port   uint16
}

type builder struct {
	cfg *Config
	dom string // "agora."
	r   *records
	// seen dedups records in linear time (an app may have thousands of
	// instances under one name).
	seen map[string]struct{}
}

func (b *builder) addA(name string, ips ...net.IP) {
	for _, ip := range ips {
		if ip == nil {
			continue
		}
		if ip4 := ip.To4(); ip4 != nil {
			ip = ip4
		}
		key := name + " A " + string(ip)
		if _, dup := b.seen[key]; dup {
			continue
		}
		b.seen[key] = struct{}{}
		b.r.a[name] = append(b.r.a[name], ip)
		b.name(name)
	}
}

func (b *builder) addSRV(name, target string, port uint32) {
	if port == 0 || port > 65535 {
		return
	}
	key := name + " SRV " + target + ":" + strconv.Itoa(int(port))
	if _, dup := b.seen[key]; dup {
		return
	}
	b.seen[key] = struct{}{}
	b.r.srv[name] = append(b.r.srv[name], srvTarget{target: target, port: uint16(port)})
	b.name(name)
}

// name marks a name and its ancestors up to the domain as existing.
func (b *builder) name(n string) {
	for n != "" && !b.r.names[n] {
		b.r.names[n] = true
		if n == b.dom {
			return
		}
		i := strings.IndexByte(n, '.')
		if i < 0 {
			return
		}
		n = n[i+1:]
	}
}

// build makes the records of a view: Mesos-DNS's names (naming.md).
// masters are the configured masters' addresses; self is the DNS
// server's own address (for the SOA's name server).
func build(cfg *Config, v *view, masters []endpoint, self net.IP) *records {
	// Sized for what each task adds (4 A names, up to 4 SRV names per
	// port): growing maps of this size is most of a build's cost.
	n := len(v.tasks) + 16
	b := &builder{cfg: cfg, dom: cfg.Domain + ".", seen: make(map[string]struct{}, 8*n),
		r: &records{a: make(map[string][]net.IP, 4*n), srv: make(map[string][]srvTarget, 4*n), names: make(map[string]bool, 10*n)}}
	b.name(b.dom)
	b.addA(cfg.SOAMname, self)

	if v.leader.ip != nil {
		b.addA("leader."+b.dom, v.leader.ip)
		for _, p := range []string{"_tcp.", "_udp."} {
			b.addSRV("_leader."+p+b.dom, "leader."+b.dom, uint32(v.leader.port))
		}
	}
	all := append([]endpoint{}, masters...)
	if v.leader.ip != nil && !hasEndpoint(all, v.leader) {
		all = append(all, v.leader)
	}
	for i, m := range all {
		n := "master" + strconv.Itoa(i) + "." + b.dom
		b.addA("master."+b.dom, m.ip)
		b.addA(n, m.ip)
		for _, p := range []string{"_tcp.", "_udp."} {
			b.addSRV("_master."+p+b.dom, n, uint32(m.port))
		}
	}
	for _, id := range sortedKeys(v.agents) {
		a := v.agents[id]
		b.addA("slave."+b.dom, a.ip)
		b.addA("agent."+b.dom, a.ip)
		port := a.port
		if port == 0 {
			port = 5051
		}
		b.addSRV("_slave._tcp."+b.dom, "slave."+b.dom, uint32(port))
		b.addSRV("_agent._tcp."+b.dom, "agent."+b.dom, uint32(port))
	}
	for _, id := range sortedKeys(v.frameworks) {
		f := v.frameworks[id]
		if fw := frameworkLabels(f.name, cfg.EnforceRFC952); fw != "" {
			b.addA(fw+"."+b.dom, f.ip)
		}
	}
	for _, k := range sortedKeys(v.tasks) {
		t := v.tasks[k]
		if t.published() {
			b.task(v, t)
		}
	}
	return b.r
}

func hasEndpoint(es []endpoint, e endpoint) bool {
	for _, x := range es {
		if x.ip.Equal(e.ip) && x.port == e.port {
			return true
		}
	}
	return false
}

// task adds one running task's names: A records under the framework (the
// task's IP by IPSources) and under .slave. (the agent's IP), by name and
// per instance, and SRV records for its ports.
func (b *builder) task(v *view, t *taskRec) {
	f, ok := v.frameworks[t.frameworkID]
	if !ok {
		return
	}
	fw := frameworkLabels(f.name, b.cfg.EnforceRFC952)
	name := t.name
	if t.discovery != nil && t.discovery.GetName() != "" {
		name = t.discovery.GetName()
	}
	tn := taskLabel(name, b.cfg.EnforceRFC952)
	if fw == "" || tn == "" {
		return
	}
	agentIP := v.agents[t.agentID].ip
	taskIPs := b.taskIPs(t, agentIP)
	tail := "." + fw + "." + b.dom
	slaveTail := "." + fw + ".slave." + b.dom
	canonical := tn + "-" + taskIDHash(t.id)
	if s := agentIDTail(t.agentID); s != "" {
		canonical += "-" + s
	}
	b.addA(tn+tail, taskIPs...)
	b.addA(canonical+tail, taskIPs...)
	b.addA(tn+slaveTail, agentIP)
	b.addA(canonical+slaveTail, agentIP)
	b.r.tasks++

	if t.discovery != nil && t.discovery.Ports != nil && len(t.discovery.Ports.Ports) > 0 {
		for _, p := range t.discovery.Ports.Ports {
			protos := []string{"tcp", "udp"}
			if pr := strings.ToLower(p.GetProtocol()); pr == "tcp" || pr == "udp" {
				protos = []string{pr}
			}
			pn := label(p.GetName(), b.cfg.EnforceRFC952)
			for _, proto := range protos {
				b.addSRV("_"+tn+"._"+proto+tail, canonical+tail, p.Number)
				if pn != "" {
					b.addSRV("_"+pn+"._"+tn+"._"+proto+tail, canonical+tail, p.Number)
				}
			}
		}
		return
	}
	for _, port := range t.ports {
		for _, proto := range []string{"_tcp", "_udp"} {
			b.addSRV("_"+tn+"."+proto+tail, canonical+slaveTail, port)
			b.addSRV("_"+tn+"."+proto+slaveTail, canonical+slaveTail, port)
		}
	}
}

// taskIPs are the task's addresses from the first of IPSources that has
// any; "host" is the agent's.
func (b *builder) taskIPs(t *taskRec, agentIP net.IP) []net.IP {
	for _, s := range b.cfg.IPSources {
		switch s {
		case "netinfo":
			if len(t.netIPs) > 0 {
				return t.netIPs
			}
		case "mesos", "docker":
			if ip := t.labelIPs[s]; ip != nil {
				return []net.IP{ip}
			}
		case "host":
			if agentIP != nil {
				return []net.IP{agentIP}
			}
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
