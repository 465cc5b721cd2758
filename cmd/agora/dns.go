package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/zk"
	agoradns "github.com/agora-cluster/agora/frameworks/dns"
)

func init() {
	register(command{
		name:    "dns",
		summary: "Serve Mesos-DNS's names for the cluster's tasks (agora dns lookup NAME to query)",
		run: func(args []string) int {
			if len(args) > 0 && args[0] == "lookup" {
				return dnsLookupCommand(args[1:], os.Stdout, os.Stderr)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return dnsCommand(ctx, args, os.Stderr)
		},
	})
}

const dnsUsage = `Usage: agora dns --master=HOST:5050|zk://... [--port=53] [--http_port=8123] [--domain=agora]
                 [--resolvers=IP,IP] [--config=config.json]
       agora dns lookup NAME [--server=127.0.0.1:53] [--type=A|SRV|...] [--json]

Serves DNS for what runs on the cluster, with Mesos-DNS's names:

  web.marathon.agora              A    the instances of task "web" of framework "marathon"
  _web._tcp.marathon.agora        SRV  their ports (also _udp; named ports from DiscoveryInfo)
  leader.agora  master.agora  agent.agora  slave.agora

and Mesos-DNS's HTTP API on --http_port (/v1/version, /v1/config,
/v1/hosts/{host}, /v1/services/{service}, /v1/enumerate; a page of the
records at /ui/). It follows the
master's event stream, so answers change within a second of a task
starting, ending or turning unhealthy (a task with a health check is
answered only while healthy): each event changes the records of what it
touched, and the records are built whole only when it (re)subscribes. It
keeps answering with the last known records while the master is away. Other names go to --resolvers, or are REFUSED.

A Mesos-DNS config.json is accepted (its fields that mean something here);
flags given on the command line override it.

  dig @127.0.0.1 -p 8053 _web._tcp.marathon.agora SRV

Flags:
`

// dnsCommand runs `agora dns` until ctx ends. Bad flags or config exit 2;
// a port that cannot be bound, 1.
func dnsCommand(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora dns", flag.ContinueOnError)
	fs.SetOutput(stderr)
	master := fs.String("master", masterAddrDefault(), "master(s) to follow: host:port[,host:port...] or zk://host:2181/path (env AGORA_MASTER)")
	configFile := fs.String("config", "", "a Mesos-DNS config.json (flags override its fields)")
	port := fs.Int("port", 53, "DNS port (UDP and TCP)")
	httpPort := fs.Int("http_port", 8123, "port of the HTTP API; 0 picks one")
	domain := fs.String("domain", "agora", "the domain names are served under")
	listener := fs.String("listener", "0.0.0.0", "address to listen on")
	resolvers := fs.String("resolvers", "", "comma-separated IP[:port] of the servers other names are forwarded to")
	refresh := fs.Int("refresh_seconds", 60, "accepted as Mesos-DNS's refreshSeconds; unused: the records follow the master's event stream, not a poll")
	ttl := fs.Int("ttl", 60, "TTL of the records, in seconds")
	var creds clientOptions // --principal, --secret_file: the master is read with them
	creds.registerCredential(fs)
	var httpSec serviceHTTPFlags // the HTTP API's --http_credentials, --credentials, --ssl_*
	httpSec.register(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), dnsUsage)
		fs.PrintDefaults()
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "agora dns: "+format+"\n", a...)
		fmt.Fprintln(stderr, "Run `agora dns --help` for the flags.")
		return 2
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return fail("unexpected arguments %q", fs.Args())
	}
	cfg := agoradns.DefaultConfig()
	if *configFile != "" {
		var err error
		if cfg, err = agoradns.LoadConfig(*configFile); err != nil {
			return fail("%v", err)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["master"] || (cfg.ZK == "" && len(cfg.Masters) == 0) {
		cfg.ZK, cfg.Masters = splitMasters(*master)
	}
	if set["port"] || *configFile == "" {
		cfg.Port = *port
	}
	if set["http_port"] || *configFile == "" {
		cfg.HTTPPort = *httpPort
	}
	if set["domain"] || *configFile == "" {
		cfg.Domain = *domain
	}
	if set["listener"] || *configFile == "" {
		cfg.Listener = *listener
	}
	if set["resolvers"] {
		cfg.Resolvers = splitList(*resolvers)
	}
	if set["refresh_seconds"] || *configFile == "" {
		cfg.RefreshSeconds = *refresh
	}
	if set["ttl"] || *configFile == "" {
		cfg.TTL = *ttl
	}
	cred, err := creds.credential()
	if err != nil {
		return fail("%v", err)
	}
	cfg.SetCredential(cred.Principal, cred.Secret) // flags (or the environment) override the config's mesosCredentials
	sec, err := httpSec.security("dns", dnsOpenPaths...)
	if err != nil {
		return fail("%v", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel()}))
	r, err := agoradns.New(cfg, agoradns.Options{Logger: log, Version: api.Version, WrapHTTP: sec.handler})
	if err != nil {
		return fail("%v", err)
	}
	ls, err := r.Listen()
	if err != nil {
		fmt.Fprintf(stderr, "agora dns: %v\n", err)
		if errors.Is(err, syscall.EACCES) {
			fmt.Fprintln(stderr, "agora dns: port 53 needs privileges; try --port 8053")
		}
		return 1
	}
	if ls.HTTP != nil {
		ls.HTTP = sec.listener(ls.HTTP)
	}
	cfg = r.Config()
	where := "off"
	if ls.UDP != nil {
		where = ls.UDP.LocalAddr().String() + " (UDP and TCP)"
	}
	httpWhere := "off"
	if ls.HTTP != nil {
		httpWhere = sec.scheme() + "://" + ls.HTTP.Addr().String() + "/v1/" + sec.describe()
	}
	fmt.Fprintf(stderr, "agora dns: domain %s on %s, API %s, following %s; interrupt to stop\n", cfg.Domain, where, httpWhere, *master)
	if err := r.Run(ctx, ls); err != nil {
		fmt.Fprintln(stderr, "agora dns:", err)
		return 1
	}
	return 0
}

// dnsOpenPaths are served without credentials: /v1/version is the
// server's health check.
var dnsOpenPaths = []string{"/v1/version"}

// splitMasters reads --master: one zk:// URL, or host:port list.
func splitMasters(s string) (zkURL string, masters []string) {
	if zk.IsURL(s) {
		return s, nil
	}
	for _, m := range splitList(s) {
		masters = append(masters, strings.TrimPrefix(strings.TrimPrefix(m, "http://"), "https://"))
	}
	return "", masters
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// dnsLookupCommand is `agora dns lookup NAME`: one query, printed as a
// table or JSON. Exit 0 with answers, 1 without (NXDOMAIN, empty or an
// error), 2 on bad flags.
func dnsLookupCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora dns lookup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "127.0.0.1:53", "the DNS server to ask (host[:port])")
	qtype := fs.String("type", "", "record type (default: SRV for names starting with _, else A)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	network := fs.String("net", "udp", "udp or tcp")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: agora dns lookup NAME [--server=HOST:PORT] [--type=A|SRV|...] [--json]\n\nExample:\n  agora dns lookup _web._tcp.marathon.agora --server 127.0.0.1:8053\n\nFlags:\n")
		fs.PrintDefaults()
	}
	// The name may come before the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	} else if fs.NArg() > 0 || name == "" {
		fmt.Fprintln(stderr, "agora dns lookup: give exactly one NAME")
		return 2
	}
	t := strings.ToUpper(*qtype)
	if t == "" {
		t = "A"
		if strings.HasPrefix(name, "_") {
			t = "SRV"
		}
	}
	qt, ok := dns.StringToType[t]
	if !ok {
		fmt.Fprintf(stderr, "agora dns lookup: unknown --type %q\n", *qtype)
		return 2
	}
	addr := *server
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "53")
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qt)
	m.SetEdns0(4096, false)
	in, _, err := (&dns.Client{Net: *network, Timeout: 5 * time.Second, UDPSize: 4096}).Exchange(m, addr)
	if err == nil && in.Truncated && *network == "udp" {
		in, _, err = (&dns.Client{Net: "tcp", Timeout: 5 * time.Second}).Exchange(m, addr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "agora dns lookup: %s: %v\n", addr, err)
		return 1
	}
	type row struct {
		Name   string `json:"name"`
		Type   string `json:"type"`
		TTL    uint32 `json:"ttl"`
		Target string `json:"target,omitempty"`
		IP     string `json:"ip,omitempty"`
		Port   int    `json:"port,omitempty"`
		Value  string `json:"value,omitempty"`
	}
	var rows []row
	for _, rr := range in.Answer {
		h := rr.Header()
		r := row{Name: h.Name, Type: dns.TypeToString[h.Rrtype], TTL: h.Ttl}
		switch v := rr.(type) {
		case *dns.A:
			r.IP = v.A.String()
		case *dns.AAAA:
			r.IP = v.AAAA.String()
		case *dns.SRV:
			r.Target, r.Port = v.Target, int(v.Port)
			for _, x := range in.Extra {
				if a, ok := x.(*dns.A); ok && a.Hdr.Name == v.Target {
					r.IP = a.A.String()
				}
			}
		default:
			r.Value = strings.TrimPrefix(rr.String(), h.String())
		}
		rows = append(rows, r)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Port < rows[j].Port })
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"name": dns.Fqdn(name), "type": t, "rcode": dns.RcodeToString[in.Rcode], "answers": nonNilRows(rows)})
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tTYPE\tTTL\tTARGET\tIP\tPORT")
		for _, r := range rows {
			port := ""
			if r.Port > 0 {
				port = strconv.Itoa(r.Port)
			}
			ip := r.IP
			if ip == "" {
				ip = r.Value
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", r.Name, r.Type, r.TTL, r.Target, ip, port)
		}
		tw.Flush()
		if len(rows) == 0 {
			fmt.Fprintf(stderr, "agora dns lookup: %s %s: %s, no answer\n", name, t, dns.RcodeToString[in.Rcode])
		}
	}
	if len(rows) == 0 {
		return 1
	}
	return 0
}

func nonNilRows[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

// devDNS runs the resolver inside `agora dev`: DNS on --dns_port (8053:
// no privileges needed) and the HTTP API on --dns_http_port (8123). When the default ports
// are taken the cluster comes up without it and says so.
type devDNS struct {
	port, httpPort int
	explicit       bool // --dns_port or --dns_http_port was given: a port in use is an error
}

func (d *devDNS) register(fs *flag.FlagSet) {
	fs.IntVar(&d.port, "dns_port", 8053, "port of the Mesos-DNS-compatible DNS server (UDP and TCP); 0 runs none")
	fs.IntVar(&d.httpPort, "dns_http_port", 8123, "port of the DNS server's Mesos-DNS HTTP API (/v1/services/NAME, /v1/hosts/NAME)")
}

// start starts the resolver and returns the banner line that says where
// it answers ("" when disabled), a warning ("" when none) and a channel
// closed once it has stopped.
func (d *devDNS) start(ctx context.Context, fs *flag.FlagSet, masterAddr, ip, workDir string, cred auth.Credential, svc devServiceSecurity, logger *slog.Logger) (line, warning string, done <-chan struct{}, err error) {
	fs.Visit(func(f *flag.Flag) { d.explicit = d.explicit || f.Name == "dns_port" || f.Name == "dns_http_port" })
	stopped := make(chan struct{})
	if d.port == 0 {
		close(stopped)
		return "", "", stopped, nil
	}
	cfg := agoradns.DefaultConfig()
	cfg.Masters = []string{masterAddr}
	cfg.Listener = ip
	cfg.Port = d.port
	cfg.HTTPPort = d.httpPort
	cfg.SetCredential(cred.Principal, cred.Secret)
	sec, err := svc.security("dns", dnsOpenPaths...)
	if err != nil {
		close(stopped)
		return "", "", nil, fmt.Errorf("dns: %w", err)
	}
	r, err := agoradns.New(cfg, agoradns.Options{Logger: logger.With("component", "dns"), Version: api.Version, WrapHTTP: sec.handler})
	if err == nil {
		var ls agoradns.Listeners
		if ls, err = r.Listen(); err == nil {
			if ls.HTTP != nil {
				ls.HTTP = sec.listener(ls.HTTP)
			}
			go func() {
				defer close(stopped)
				if err := r.Run(ctx, ls); err != nil && ctx.Err() == nil {
					logger.Error("the DNS server stopped", "err", err)
				}
			}()
			addr := net.JoinHostPort(ip, strconv.Itoa(d.port))
			return fmt.Sprintf("  dns         %s   (Mesos-DNS names: dig @%s -p %d _app._tcp.marathon.agora SRV; API %s://%s/v1/, records at /ui/)",
				addr, ip, d.port, sec.scheme(), net.JoinHostPort(ip, strconv.Itoa(d.httpPort))), "", stopped, nil
		}
	}
	close(stopped)
	if d.explicit {
		return "", "", nil, fmt.Errorf("dns: %v (try another --dns_port, or 0 to run none)", err)
	}
	return "", fmt.Sprintf("the DNS server is not running: %v; pick a free port with --dns_port", err), stopped, nil
}
