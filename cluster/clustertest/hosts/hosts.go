// Package hosts makes several hosts on one machine for multi-host tests:
// each host is a network namespace with its own address, joined to the
// others by a veth pair and a bridge that lives in a namespace of its own
// (the switch), so nothing of it touches the machine's own network. Tests
// run processes on a host, and cut a host off (its link down), partition
// two hosts from each other (packets dropped both ways), and heal.
//
// The machine itself is plugged into the switch too (Net.Local), so the
// test process talks to every host directly, as a client on the same
// network would.
//
// It needs root and the ip and iptables commands.
package hosts

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
)

// Net is a switch and the hosts plugged into it.
type Net struct {
	prefix string
	sw     string // the switch's namespace
	Hosts  []*Host
	// Subnet is the network's /24 ("10.X.Y"), picked at random so that
	// nets of tests running at once do not clash: host i (from 1) has
	// Subnet.i and the machine itself Local.
	Subnet string
	Local  string
	local  string // the machine's veth end

	mu         sync.Mutex
	partitions map[[2]int]bool
}

// Host is one host: a network namespace with an address on the switch.
type Host struct {
	Name string // h1, h2, ...
	IP   string
	ns   string
	port string // the veth end plugged into the switch
	net  *Net
	i    int
}

// Err says why hosts cannot be made here, or nil.
func Err() error {
	if err := tier.RootErr(); err != nil {
		return err
	}
	for _, c := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("the %s command is missing (Debian's iproute2 and iptables packages): %w", c, err)
		}
	}
	return nil
}

// New makes n hosts, removed when the test ends.
func New(t testing.TB, n int) *Net {
	t.Helper()
	tier.Need(t, tier.Root, Err())
	b := make([]byte, 5)
	rand.Read(b)
	nt := &Net{prefix: "ag" + hex.EncodeToString(b[:3]), partitions: map[[2]int]bool{}}
	nt.Subnet = fmt.Sprintf("10.%d.%d", 100+int(b[3])%100, b[4])
	nt.Local = nt.Subnet + ".254"
	nt.sw = nt.prefix + "sw"
	nt.local = nt.prefix + "l"
	t.Cleanup(nt.remove)
	steps := [][]string{
		{"netns", "add", nt.sw},
		{"-n", nt.sw, "link", "add", "br0", "type", "bridge"},
		{"-n", nt.sw, "link", "set", "br0", "up"},
		{"link", "add", nt.local, "type", "veth", "peer", "name", nt.prefix + "lp", "netns", nt.sw},
		{"-n", nt.sw, "link", "set", nt.prefix + "lp", "master", "br0"},
		{"-n", nt.sw, "link", "set", nt.prefix + "lp", "up"},
		{"addr", "add", nt.Local + "/24", "dev", nt.local},
		{"link", "set", nt.local, "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			t.Fatalf("hosts: %v", err)
		}
	}
	for i := 1; i <= n; i++ {
		h := &Host{Name: fmt.Sprintf("h%d", i), IP: fmt.Sprintf("%s.%d", nt.Subnet, i), ns: fmt.Sprintf("%sh%d", nt.prefix, i), port: fmt.Sprintf("%sp%d", nt.prefix, i), net: nt, i: i}
		steps := [][]string{
			{"netns", "add", h.ns},
			{"link", "add", h.port, "type", "veth", "peer", "name", "eth0", "netns", h.ns},
			{"link", "set", h.port, "netns", nt.sw},
			{"-n", nt.sw, "link", "set", h.port, "master", "br0"},
			{"-n", nt.sw, "link", "set", h.port, "up"},
			{"-n", h.ns, "addr", "add", h.IP + "/24", "dev", "eth0"},
			{"-n", h.ns, "link", "set", "eth0", "up"},
			{"-n", h.ns, "link", "set", "lo", "up"},
		}
		nt.Hosts = append(nt.Hosts, h) // before it is made, so cleanup removes a half-made one
		for _, s := range steps {
			if err := ip(s...); err != nil {
				t.Fatalf("hosts: make %s: %v", h.Name, err)
			}
		}
	}
	return nt
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// remove deletes the namespaces; their veths go with them.
func (nt *Net) remove() {
	for _, h := range nt.Hosts {
		ip("netns", "del", h.ns)
	}
	ip("link", "del", nt.local)
	ip("netns", "del", nt.sw)
}

// Command is a command to run on the host (in its network namespace).
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.ns, name}, args...)...)
}

// Do runs f with the calling goroutine in the host's network namespace:
// sockets f opens belong to the host and stay there after f returns.
func (h *Host) Do(f func() error) (err error) {
	runtime.LockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer self.Close()
	target, err := os.Open("/var/run/netns/" + h.ns)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("hosts: %s: %w", h.Name, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("hosts: enter %s: %w", h.Name, err)
	}
	defer func() {
		// Even if f panics: the thread goes back to the machine's
		// namespace, or — stuck in the host's — stays locked so that it
		// dies with this goroutine instead of serving others.
		if serr := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); serr != nil {
			if err == nil {
				err = fmt.Errorf("hosts: leave %s: %w", h.Name, serr)
			}
			return
		}
		runtime.UnlockOSThread()
	}()
	return f()
}

// Cut takes the host's link down: it can reach no other host, and no
// other host reaches it, until Heal.
func (nt *Net) Cut(h *Host) error { return ip("-n", nt.sw, "link", "set", h.port, "down") }

// Heal brings the host's link up again.
func (nt *Net) Heal(h *Host) error { return ip("-n", nt.sw, "link", "set", h.port, "up") }

// Partition drops every packet between a and b, both ways; each still
// reaches the other hosts.
func (nt *Net) Partition(a, b *Host) error {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	key := [2]int{min(a.i, b.i), max(a.i, b.i)}
	if nt.partitions[key] {
		return nil
	}
	if err := drop(a, b, "-A"); err != nil {
		return err
	}
	if err := drop(b, a, "-A"); err != nil {
		drop(a, b, "-D")
		return err
	}
	nt.partitions[key] = true
	return nil
}

// Join ends a partition between a and b.
func (nt *Net) Join(a, b *Host) error {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	key := [2]int{min(a.i, b.i), max(a.i, b.i)}
	if !nt.partitions[key] {
		return nil
	}
	if err := drop(a, b, "-D"); err != nil {
		return err
	}
	if err := drop(b, a, "-D"); err != nil {
		return err
	}
	delete(nt.partitions, key)
	return nil
}

func drop(on, from *Host, op string) error {
	out, err := on.Command("iptables", op, "INPUT", "-s", from.IP, "-j", "DROP").CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables on %s %s INPUT from %s: %v: %s", on.Name, op, from.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}
