package dns

import (
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// records are the answers. A full build makes them from the whole view
// (on every (re)subscription to the master); after that each event
// changes only the records of what it touched: a task, an agent, a
// framework. Every record has owners (the task, agent or framework it
// comes from, or the static part: leader, masters, SOA name) and is
// counted, so that one shared by several owners (two tasks on one agent
// under task.framework.slave) stays until its last owner drops it.
type records struct {
	mu    sync.RWMutex
	dom   string                 // "agora."
	a     map[string][]net.IP    // lower-case FQDN → addresses
	srv   map[string][]srvTarget // lower-case FQDN → targets
	names map[string]int         // every name that exists, records or not (for NOERROR vs NXDOMAIN): its records and child names
	refs  map[string]int         // record key → owners holding it
	pos   map[string]int         // record key → its index in its name's list
	// owned are the records of the static part ("static"), the agents
	// ("agent/ID") and the frameworks ("framework/ID"); tasks those of
	// each published task, by taskKey.
	owned map[string][]rr
	tasks map[string]*taskRecords
	// frameworks are the frameworks' names by ID, for /v1/enumerate.
	frameworks map[string]string
}

type srvTarget struct {
	target string
	port   uint16
}

// rr is one record: an A (or AAAA) record when ip is set, else an SRV.
type rr struct {
	name   string
	ip     net.IP
	target string
	port   uint16
}

func (x rr) key() string {
	if x.ip != nil {
		return x.name + " A " + string(x.ip)
	}
	return x.name + " SRV " + x.target + ":" + strconv.Itoa(int(x.port))
}

// taskRecords are a published task's records, with what /v1/enumerate
// lists them under.
type taskRecords struct {
	id, name, frameworkID, framework string
	rrs                              []rr
}

func newRecords(dom string, n int) *records {
	rs := &records{dom: dom, a: make(map[string][]net.IP, 4*n), srv: make(map[string][]srvTarget, 4*n),
		names: make(map[string]int, 10*n), refs: make(map[string]int, 8*n), pos: make(map[string]int, 8*n), owned: map[string][]rr{},
		tasks: make(map[string]*taskRecords, n), frameworks: map[string]string{}}
	rs.names[dom] = 1 // the apex always exists
	return rs
}

// add takes one owner's hold on x. Call with mu held.
func (rs *records) add(x rr) {
	k := x.key()
	if rs.refs[k]++; rs.refs[k] > 1 {
		return
	}
	if x.ip != nil {
		rs.pos[k] = len(rs.a[x.name])
		rs.a[x.name] = append(rs.a[x.name], x.ip)
	} else {
		rs.pos[k] = len(rs.srv[x.name])
		rs.srv[x.name] = append(rs.srv[x.name], srvTarget{target: x.target, port: x.port})
	}
	rs.walk(x.name, 1)
}

// drop releases one owner's hold on x; the record goes with the last,
// its place in its name's list taken by the list's last record (the
// order is shuffled per answer anyway), so that dropping one instance
// of an app with thousands costs no more than dropping one of a few.
// Readers hold mu for reading while they use a list. Call with mu held.
func (rs *records) drop(x rr) {
	k := x.key()
	if rs.refs[k]--; rs.refs[k] > 0 {
		return
	}
	delete(rs.refs, k)
	i := rs.pos[k]
	delete(rs.pos, k)
	if x.ip != nil {
		l := rs.a[x.name]
		if last := len(l) - 1; i != last {
			l[i] = l[last]
			rs.pos[rr{name: x.name, ip: l[i]}.key()] = i
		}
		if l = l[:len(l)-1]; len(l) == 0 {
			delete(rs.a, x.name)
		} else {
			rs.a[x.name] = l
		}
	} else {
		l := rs.srv[x.name]
		if last := len(l) - 1; i != last {
			l[i] = l[last]
			rs.pos[rr{name: x.name, target: l[i].target, port: l[i].port}.key()] = i
		}
		if l = l[:len(l)-1]; len(l) == 0 {
			delete(rs.srv, x.name)
		} else {
			rs.srv[x.name] = l
		}
	}
	rs.walk(x.name, -1)
}

// walk counts a record in (d = 1) or out (-1) of its name. A name
// counts its records and its child names that exist, so a name's count
// reaches its parent only when the name comes into being or ceases to be.
// Call with mu held.
func (rs *records) walk(n string, d int) {
	for n != "" && n != rs.dom {
		rs.names[n] += d
		if c := rs.names[n]; d > 0 && c > 1 || d < 0 && c > 0 {
			return
		}
		if rs.names[n] <= 0 {
			delete(rs.names, n)
		}
		i := strings.IndexByte(n, '.')
		if i < 0 {
			return
		}
		n = n[i+1:]
	}
}

// set replaces owner's records. Call with mu held.
func (rs *records) set(owner string, xs []rr) {
	for _, x := range rs.owned[owner] {
		rs.drop(x)
	}
	for _, x := range xs {
		rs.add(x)
	}
	if len(xs) == 0 {
		delete(rs.owned, owner)
	} else {
		rs.owned[owner] = xs
	}
}

// setTask replaces a task's records (nil: it has none). Call with mu held.
func (rs *records) setTask(key string, tr *taskRecords) {
	if old := rs.tasks[key]; old != nil {
		for _, x := range old.rrs {
			rs.drop(x)
		}
		delete(rs.tasks, key)
	}
	if tr == nil || len(tr.rrs) == 0 {
		return
	}
	for _, x := range tr.rrs {
		rs.add(x)
	}
	rs.tasks[key] = tr
}

// exists says whether name exists. Call with mu read-held.
func (rs *records) exists(name string) bool { return rs.names[name] > 0 }

// rrList collects one owner's records, without duplicates.
type rrList struct {
	out  []rr
	seen map[string]struct{}
}

func (l *rrList) put(x rr) {
	if l.seen == nil {
		l.seen = map[string]struct{}{}
	}
	k := x.key()
	if _, dup := l.seen[k]; dup {
		return
	}
	l.seen[k] = struct{}{}
	l.out = append(l.out, x)
}

func (l *rrList) addA(name string, ips ...net.IP) {
	for _, ip := range ips {
		if ip == nil {
			continue
		}
		if ip4 := ip.To4(); ip4 != nil {
			ip = ip4
		}
		l.put(rr{name: name, ip: ip})
	}
}

func (l *rrList) addSRV(name, target string, port uint32) {
	if port == 0 || port > 65535 {
		return
	}
	l.put(rr{name: name, target: target, port: uint16(port)})
}

// build makes the records of a view: Mesos-DNS's names (naming.md).
// masters are the configured masters' addresses; self is the DNS
// server's own address (for the SOA's name server).
func build(cfg *Config, v *view, masters []endpoint, self net.IP) *records {
	rs := newRecords(cfg.Domain+".", len(v.tasks)+16)
	rs.set("static", staticRecords(cfg, v, masters, self))
	for _, id := range sortedKeys(v.agents) {
		rs.set("agent/"+id, agentRecords(cfg, v.agents[id]))
	}
	for _, id := range sortedKeys(v.frameworks) {
		rs.set("framework/"+id, frameworkRecords(cfg, v.frameworks[id]))
		rs.frameworks[id] = v.frameworks[id].name
	}
	for k, t := range v.tasks {
		rs.setTask(k, taskRecordsOf(cfg, v, t))
	}
	return rs
}

// apply brings the records of what ch names up to date with the view.
// Call with the view locked.
func (rs *records) apply(cfg *Config, v *view, ch change, masters []endpoint, self net.IP) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if ch.static {
		rs.set("static", staticRecords(cfg, v, masters, self))
	}
	for _, id := range ch.agents {
		var xs []rr
		if a, ok := v.agents[id]; ok {
			xs = agentRecords(cfg, a)
		}
		rs.set("agent/"+id, xs)
	}
	for _, id := range ch.frameworks {
		var xs []rr
		delete(rs.frameworks, id)
		if f, ok := v.frameworks[id]; ok {
			xs = frameworkRecords(cfg, f)
			rs.frameworks[id] = f.name
		}
		rs.set("framework/"+id, xs)
	}
	for _, k := range ch.tasks {
		var tr *taskRecords
		if t := v.tasks[k]; t != nil {
			tr = taskRecordsOf(cfg, v, t)
		}
		rs.setTask(k, tr)
	}
}

// staticRecords are the SOA's name server, the leader and the masters.
func staticRecords(cfg *Config, v *view, masters []endpoint, self net.IP) []rr {
	var l rrList
	dom := cfg.Domain + "."
	l.addA(cfg.SOAMname, self)
	if v.leader.ip != nil {
		l.addA("leader."+dom, v.leader.ip)
		for _, p := range []string{"_tcp.", "_udp."} {
			l.addSRV("_leader."+p+dom, "leader."+dom, uint32(v.leader.port))
		}
	}
	all := append([]endpoint{}, masters...)
	if v.leader.ip != nil && !hasEndpoint(all, v.leader) {
		all = append(all, v.leader)
	}
	for i, m := range all {
		n := "master" + strconv.Itoa(i) + "." + dom
		l.addA("master."+dom, m.ip)
		l.addA(n, m.ip)
		for _, p := range []string{"_tcp.", "_udp."} {
			l.addSRV("_master."+p+dom, n, uint32(m.port))
		}
	}
	return l.out
}

func agentRecords(cfg *Config, a agentRec) []rr {
	var l rrList
	dom := cfg.Domain + "."
	l.addA("slave."+dom, a.ip)
	l.addA("agent."+dom, a.ip)
	port := a.port
	if port == 0 {
		port = 5051
	}
	l.addSRV("_slave._tcp."+dom, "slave."+dom, uint32(port))
	l.addSRV("_agent._tcp."+dom, "agent."+dom, uint32(port))
	return l.out
}

func frameworkRecords(cfg *Config, f frameworkRec) []rr {
	var l rrList
	if fw := frameworkLabels(f.name, cfg.EnforceRFC952); fw != "" {
		l.addA(fw+"."+cfg.Domain+".", f.ip)
	}
	return l.out
}

func hasEndpoint(es []endpoint, e endpoint) bool {
	for _, x := range es {
		if x.ip.Equal(e.ip) && x.port == e.port {
			return true
		}
	}
	return false
}

// taskRecordsOf are a task's records, nil when it is not published: A
// records under the framework (the task's IP by IPSources) and under
// .slave. (the agent's IP), by name and per instance, and SRV records for
// its ports.
func taskRecordsOf(cfg *Config, v *view, t *taskRec) *taskRecords {
	if !t.published() {
		return nil
	}
	f, ok := v.frameworks[t.frameworkID]
	if !ok {
		return nil
	}
	fw := frameworkLabels(f.name, cfg.EnforceRFC952)
	name := t.name
	if t.discovery != nil && t.discovery.GetName() != "" {
		name = t.discovery.GetName()
	}
	tn := taskLabel(name, cfg.EnforceRFC952)
	if fw == "" || tn == "" {
		return nil
	}
	var l rrList
	dom := cfg.Domain + "."
	agentIP := v.agents[t.agentID].ip
	ips := taskIPs(cfg, t, agentIP)
	tail := "." + fw + "." + dom
	slaveTail := "." + fw + ".slave." + dom
	canonical := tn + "-" + taskIDHash(t.id)
	if s := agentIDTail(t.agentID); s != "" {
		canonical += "-" + s
	}
	l.addA(tn+tail, ips...)
	l.addA(canonical+tail, ips...)
	l.addA(tn+slaveTail, agentIP)
	l.addA(canonical+slaveTail, agentIP)

	if t.discovery != nil && t.discovery.Ports != nil && len(t.discovery.Ports.Ports) > 0 {
		for _, p := range t.discovery.Ports.Ports {
			protos := []string{"tcp", "udp"}
			if pr := strings.ToLower(p.GetProtocol()); pr == "tcp" || pr == "udp" {
				protos = []string{pr}
			}
			pn := label(p.GetName(), cfg.EnforceRFC952)
			for _, proto := range protos {
				l.addSRV("_"+tn+"._"+proto+tail, canonical+tail, p.Number)
				if pn != "" {
					l.addSRV("_"+pn+"._"+tn+"._"+proto+tail, canonical+tail, p.Number)
				}
			}
		}
	} else {
		for _, port := range t.ports {
			for _, proto := range []string{"_tcp", "_udp"} {
				l.addSRV("_"+tn+"."+proto+tail, canonical+slaveTail, port)
				l.addSRV("_"+tn+"."+proto+slaveTail, canonical+slaveTail, port)
			}
		}
	}
	return &taskRecords{id: t.id, name: t.name, frameworkID: t.frameworkID, framework: f.name, rrs: l.out}
}

// taskIPs are the task's addresses from the first of IPSources that has
// any; "host" is the agent's.
func taskIPs(cfg *Config, t *taskRec, agentIP net.IP) []net.IP {
	for _, s := range cfg.IPSources {
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
