// Package dns serves Mesos-DNS's names for what runs on an agora cluster:
// A and SRV records for running tasks, the masters, the leader and the
// agents, and Mesos-DNS's HTTP API on its own port. It is not a framework
// (it launches nothing): it follows the leading master through the
// operator API's event stream, so a task that starts, ends or turns
// unhealthy changes the answers within a second: each event changes the
// records of what it touched, in place. The records are built whole only
// when it (re)subscribes, from /master/state and the stream's snapshot;
// there is no periodic poll (refreshSeconds is accepted, for Mesos-DNS's
// config files, and unused). While the master is away it keeps serving
// the last records it knew.
package dns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/zk"
)

// Config is Mesos-DNS's config.json, with its field names, for the fields
// that mean something here. Load refuses any other field by name.
type Config struct {
	ZK                 string   `json:"zk,omitempty"`
	Masters            []string `json:"masters,omitempty"`
	ZKDetectionTimeout int      `json:"zkDetectionTimeout"` // seconds a leader lookup in ZooKeeper may take
	RefreshSeconds     int      `json:"refreshSeconds"`
	StateTimeout       int      `json:"stateTimeoutSeconds"`
	TTL                int      `json:"ttl"`
	Domain             string   `json:"domain"`
	Port               int      `json:"port"`
	Listener           string   `json:"listener"`
	DNSOn              bool     `json:"dnson"`
	HTTPOn             bool     `json:"httpon"`
	HTTPPort           int      `json:"httpport"`
	ExternalOn         bool     `json:"externalon"`
	RecurseOn          bool     `json:"recurseon"`
	Resolvers          []string `json:"resolvers"`
	// ZoneResolvers forward the names under a zone to its own servers.
	ZoneResolvers          map[string][]string `json:"zoneResolvers,omitempty"`
	Timeout                int                 `json:"timeout"` // seconds a forwarded query may take
	SOAMname               string              `json:"SOAMname"`
	SOARname               string              `json:"SOARname"`
	SOARefresh             uint32              `json:"SOARefresh"`
	SOARetry               uint32              `json:"SOARetry"`
	SOAExpire              uint32              `json:"SOAExpire"`
	SOAMinttl              uint32              `json:"SOAMinttl"`
	SRVRecordDefaultWeight uint16              `json:"srvRecordDefaultWeight"`
	EnforceRFC952          bool                `json:"enforceRFC952"`
	IPSources              []string            `json:"IPSources"`
	// MesosAuthentication is "" (the master is read without credentials)
	// or "basic": /master/state and the operator API's event stream are
	// read with MesosCredentials, for a master with
	// --authenticate_http_readonly and --authenticate_http_readwrite.
	MesosAuthentication string            `json:"mesosAuthentication,omitempty"`
	MesosCredentials    *MesosCredentials `json:"mesosCredentials,omitempty"`
}

// MesosCredentials are the principal and secret Mesos-DNS presents to the
// master (its config.json's mesosCredentials).
type MesosCredentials struct {
	Principal string `json:"principal"`
	Secret    string `json:"secret"`
}

// SetCredential has the master read with HTTP Basic as principal (a
// principal "" leaves the config as it is).
func (c *Config) SetCredential(principal, secret string) {
	if principal != "" {
		c.MesosAuthentication = "basic"
		c.MesosCredentials = &MesosCredentials{Principal: principal, Secret: secret}
	}
}

// redacted is c as /v1/config shows it: the API is unauthenticated, so
// the secret is not in it.
func (c Config) redacted() Config {
	if c.MesosCredentials != nil {
		c.MesosCredentials = &MesosCredentials{Principal: c.MesosCredentials.Principal, Secret: "********"}
	}
	return c
}

// credential is what the master is read with: none unless
// mesosAuthentication is "basic".
func (c Config) credential() auth.Credential {
	if c.MesosAuthentication != "basic" || c.MesosCredentials == nil {
		return auth.Credential{}
	}
	return auth.Credential{Principal: c.MesosCredentials.Principal, Secret: c.MesosCredentials.Secret}
}

// DefaultConfig is Mesos-DNS's defaults with agora's domain.
func DefaultConfig() Config {
	return Config{
		ZKDetectionTimeout: 30, RefreshSeconds: 60, StateTimeout: 300, TTL: 60,
		Domain: "agora", Port: 53, Listener: "0.0.0.0",
		DNSOn: true, HTTPOn: true, HTTPPort: 8123, ExternalOn: true, RecurseOn: true,
		Timeout: 5, SOARefresh: 60, SOARetry: 600, SOAExpire: 86400, SOAMinttl: 60,
		SRVRecordDefaultWeight: 1, IPSources: []string{"netinfo", "mesos", "host"},
	}
}

// LoadConfig reads a config.json over the defaults. A field Mesos-DNS has
// that means nothing here, or one it does not have, is refused by name.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(b)
}

// ParseConfig is LoadConfig for the file's bytes.
func ParseConfig(b []byte) (Config, error) {
	cfg := DefaultConfig()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return Config{}, fmt.Errorf("config: not a JSON object: %v", err)
	}
	known := map[string]bool{}
	for _, f := range jsonFields(cfg) {
		known[f] = true
	}
	var unknown []string
	for k := range fields {
		if !known[k] {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return Config{}, fmt.Errorf("config: unknown or unsupported field %s", strings.Join(unknown, ", "))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("config: %v", err)
	}
	return cfg, cfg.Validate()
}

func jsonFields(c Config) []string {
	t := reflect.TypeOf(c)
	out := make([]string, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		out = append(out, strings.Split(t.Field(i).Tag.Get("json"), ",")[0])
	}
	return out
}

// Validate checks the config and fills the derived defaults (the SOA
// names follow the domain). Each error names the field.
func (c *Config) Validate() error {
	c.Domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(c.Domain)), ".")
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Domain == "" {
		bad("domain: empty")
	} else if _, ok := dns.IsDomainName(c.Domain); !ok || strings.Contains(c.Domain, "..") {
		bad("domain %q: not a domain name", c.Domain)
	}
	if c.ZK == "" && len(c.Masters) == 0 {
		bad("masters: none given, and no zk: say where the master is")
	}
	if c.ZK != "" {
		if _, err := zk.ParseURL(c.ZK); err != nil {
			bad("zk: %v", err)
		}
	}
	for _, m := range c.Masters {
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(m, "https://"), "http://")); err != nil {
			bad("masters: %q is not host:port (or https://host:port)", m)
		}
	}
	if c.Port < 0 || c.Port > 65535 {
		bad("port: %d is not a port", c.Port)
	}
	if c.HTTPPort < 0 || c.HTTPPort > 65535 {
		bad("httpport: %d is not a port", c.HTTPPort)
	}
	if net.ParseIP(c.Listener) == nil {
		bad("listener: %q is not an IP address", c.Listener)
	}
	if c.RefreshSeconds <= 0 {
		bad("refreshSeconds: %d, want > 0", c.RefreshSeconds)
	}
	if c.StateTimeout <= 0 {
		bad("stateTimeoutSeconds: %d, want > 0", c.StateTimeout)
	}
	if c.ZKDetectionTimeout <= 0 {
		bad("zkDetectionTimeout: %d, want > 0", c.ZKDetectionTimeout)
	}
	if c.TTL < 0 {
		bad("ttl: %d, want >= 0", c.TTL)
	}
	if c.Timeout <= 0 {
		bad("timeout: %d, want > 0", c.Timeout)
	}
	for i, r := range c.Resolvers {
		if a, err := resolverAddr(r); err != nil {
			bad("resolvers: %v", err)
		} else {
			c.Resolvers[i] = a
		}
	}
	for zone, rs := range c.ZoneResolvers {
		if _, ok := dns.IsDomainName(zone); !ok {
			bad("zoneResolvers: %q is not a domain name", zone)
		}
		for i, r := range rs {
			if a, err := resolverAddr(r); err != nil {
				bad("zoneResolvers[%s]: %v", zone, err)
			} else {
				rs[i] = a
			}
		}
	}
	if len(c.IPSources) == 0 {
		bad("IPSources: empty; want some of netinfo, mesos, docker, host")
	}
	for _, s := range c.IPSources {
		switch s {
		case "netinfo", "mesos", "docker", "host":
		default:
			bad("IPSources: unknown source %q (want netinfo, mesos, docker or host)", s)
		}
	}
	switch c.MesosAuthentication {
	case "":
	case "basic":
		if c.MesosCredentials == nil || c.MesosCredentials.Principal == "" || c.MesosCredentials.Secret == "" {
			bad("mesosAuthentication: \"basic\" needs mesosCredentials with a principal and a secret")
		}
	default:
		bad("mesosAuthentication: %q is not supported (want \"basic\", or none)", c.MesosAuthentication)
	}
	if c.SOAMname == "" {
		c.SOAMname = "ns1." + c.Domain
	}
	if c.SOARname == "" {
		c.SOARname = "root.ns1." + c.Domain
	}
	for _, n := range []struct{ field, v string }{{"SOAMname", c.SOAMname}, {"SOARname", c.SOARname}} {
		if _, ok := dns.IsDomainName(n.v); !ok {
			bad("%s: %q is not a domain name", n.field, n.v)
		}
	}
	c.SOAMname = dns.Fqdn(strings.ToLower(c.SOAMname))
	c.SOARname = dns.Fqdn(strings.ToLower(c.SOARname))
	return errors.Join(errs...)
}

// resolverAddr turns "ip" or "ip:port" into "ip:port" (port 53 by default).
func resolverAddr(s string) (string, error) {
	if ip := net.ParseIP(s); ip != nil {
		return net.JoinHostPort(s, "53"), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || net.ParseIP(host) == nil {
		return "", fmt.Errorf("%q is not an IP address or IP:port", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return "", fmt.Errorf("%q: bad port", s)
	}
	return s, nil
}
