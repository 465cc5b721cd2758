package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestMarathonAppInDNS runs master, agent, `agora marathon` and `agora
// dns` as processes: an app deployed through Marathon's API is answered
// under its Mesos-DNS names (SRV with the instances' ports, A with the
// agent's address; `agora dns lookup` prints the same), an instance whose
// health check starts failing leaves the SRV answer while it keeps
// running, and is answered again once it passes.
func TestMarathonAppInDNS(t *testing.T) {
	dir := t.TempDir()
	markers, err := os.MkdirTemp("/var/tmp", "agora-dns-health-") // tasks get a private /tmp
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(markers) })
	_, master := startBound(t, "master", "--work_dir="+filepath.Join(dir, "master"), "--port=0",
		"--agent_ping_timeout=1s", "--max_agent_ping_timeouts=30", "--allocation_interval=100ms")
	startBound(t, "agent", "--master="+master, "--work_dir="+filepath.Join(dir, "agent"), "--hostname=127.0.0.1",
		"--port=0", "--resources=cpus:2;mem:1024;disk:1024;ports:[31000-31100]", "--switch_user=false")
	waitState(t, "http://"+master, "agent registered", func(s *masterState) bool { return len(s.Slaves) == 1 })
	_, api := startBound(t, "marathon", "--master="+master, "--work_dir="+filepath.Join(dir, "marathon"),
		"--hostname=127.0.0.1", "--http_port=0")
	resolver := start(t, "dns", "--master="+master, "--listener=127.0.0.1", "--port=0", "--http_port=0")
	server := dnsAddr(t, resolver)

	app := fmt.Sprintf(`{"id":"/web","cmd":"sleep 600","cpus":0.1,"mem":16,"instances":2,
		"healthChecks":[{"protocol":"COMMAND","command":{"value":"test ! -e %s/sick-$PORT0"},
			"delaySeconds":0,"intervalSeconds":0.5,"timeoutSeconds":5,"gracePeriodSeconds":60,"maxConsecutiveFailures":100000}]}`, markers)
	resp, err := http.Post("http://"+api+"/v2/apps", "application/json", strings.NewReader(app))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v2/apps: %d %s", resp.StatusCode, body)
	}
	var ports []int
	waitUntil(t, "two healthy instances with their ports", 90*time.Second, func() bool {
		ports = healthyPorts(t, api)
		return len(ports) == 2
	})
	srv := func() []int { return srvPortsOf(t, server, "_web._tcp.marathon.agora.") }
	waitUntil(t, "the SRV answer to give both instances' ports", 90*time.Second, func() bool { return slices.Equal(srv(), ports) })
	if a := query(t, server, "web.marathon.agora.", dns.TypeA); len(a.Answer) != 1 || a.Answer[0].(*dns.A).A.String() != "127.0.0.1" {
		t.Fatalf("web.marathon.agora A: %v, want 127.0.0.1", a.Answer)
	}
	// The query of the issue, with dig itself: the bare name's SRV answer
	// gives the instances' ports.
	if dig := digSRVPorts(t, server, "web.marathon.agora"); !slices.Equal(dig, ports) {
		t.Fatalf("dig web.marathon.agora SRV: ports %v, want %v", dig, ports)
	}
	out, errOut, code := runClient(t, master, "dns", "lookup", "_web._tcp.marathon.agora", "--server", server, "--json")
	for _, p := range ports {
		if code != 0 || !strings.Contains(out, fmt.Sprintf(`"port": %d`, p)) {
			t.Fatalf("agora dns lookup: exit %d, %q %q; want both ports", code, out, errOut)
		}
	}

	sick := filepath.Join(markers, fmt.Sprintf("sick-%d", ports[0]))
	if err := os.WriteFile(sick, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the failing instance to leave the SRV answer", 90*time.Second, func() bool { return slices.Equal(srv(), ports[1:]) })
	waitUntil(t, "Marathon to count one healthy instance", 90*time.Second, func() bool {
		return slices.Equal(healthyPorts(t, api), ports[1:])
	})
	if got := srv(); !slices.Equal(got, ports[1:]) {
		t.Fatalf("SRV ports %v while one instance fails its check, want %v", got, ports[1:])
	}
	if err := os.Remove(sick); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the instance to come back to the SRV answer", 90*time.Second, func() bool { return slices.Equal(srv(), ports) })
}

// digSRVPorts runs `dig +short @HOST -p PORT name SRV` and returns the
// answer's ports, sorted.
func digSRVPorts(t *testing.T, server, name string) []int {
	t.Helper()
	if _, err := exec.LookPath("dig"); err != nil {
		t.Fatal("dig is not installed: `make test-deps` installs it (Debian package dnsutils)")
	}
	host, port, _ := net.SplitHostPort(server)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "dig", "+short", "+tries=3", "@"+host, "-p", port, name, "SRV").CombinedOutput()
	if err != nil {
		t.Fatalf("dig: %v: %s", err, out)
	}
	var ports []int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line) // priority weight port target
		if len(f) != 4 {
			t.Fatalf("dig printed %q, want SRV lines", out)
		}
		p, err := strconv.Atoi(f[2])
		if err != nil {
			t.Fatalf("dig printed %q: %v", out, err)
		}
		ports = append(ports, p)
	}
	slices.Sort(ports)
	return ports
}

// dnsAddr is the UDP address `agora dns` says it serves on.
func dnsAddr(t *testing.T, p *proc) string {
	t.Helper()
	re := regexp.MustCompile(`on (127\.0\.0\.1:\d+) \(UDP and TCP\)`)
	var addr string
	waitUntil(t, "agora dns to listen", 90*time.Second, func() bool {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			addr = m[1]
		}
		select {
		case <-p.done:
			t.Fatalf("agora dns exited: %s", p.out.String())
		default:
		}
		return addr != ""
	})
	return addr
}

// healthyPorts lists the first port of each instance of /web that runs
// and passes its health check, sorted.
func healthyPorts(t *testing.T, api string) []int {
	t.Helper()
	resp, err := http.Get("http://" + api + "/v2/apps/web/tasks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Tasks []struct {
			State   string `json:"state"`
			Ports   []int  `json:"ports"`
			Results []struct {
				Alive bool `json:"alive"`
			} `json:"healthCheckResults"`
		} `json:"tasks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, tk := range v.Tasks {
		if tk.State == "TASK_RUNNING" && len(tk.Results) > 0 && tk.Results[0].Alive && len(tk.Ports) > 0 {
			out = append(out, tk.Ports[0])
		}
	}
	slices.Sort(out)
	return out
}

// query asks server for name's records of type qtype over UDP.
func query(t *testing.T, server, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := dns.Client{Timeout: 5 * time.Second}
	in, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	return in
}

// srvPortsOf is the sorted ports of name's SRV answer.
func srvPortsOf(t *testing.T, server, name string) []int {
	t.Helper()
	var out []int
	for _, rr := range query(t, server, name, dns.TypeSRV).Answer {
		if s, ok := rr.(*dns.SRV); ok {
			out = append(out, int(s.Port))
		}
	}
	slices.Sort(out)
	return out
}
