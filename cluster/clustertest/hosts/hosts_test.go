package hosts_test

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/hosts"
)

// serve listens on the host's address and answers each connection with
// the host's name.
func serve(t *testing.T, h *hosts.Host) string {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() (err error) {
		ln, err = net.Listen("tcp", h.IP+":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, h.Name)
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// reach dials addr from host h and returns what it answered, or an error.
func reach(h *hosts.Host, addr string) (string, error) {
	var got string
	err := h.Do(func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		b, err := io.ReadAll(c)
		got = string(b)
		return err
	})
	return got, err
}

func TestHostsCutPartitionHeal(t *testing.T) {
	nt := hosts.New(t, 3)
	h1, h2, h3 := nt.Hosts[0], nt.Hosts[1], nt.Hosts[2]
	a2, a3 := serve(t, h2), serve(t, h3)

	if got, err := reach(h1, a2); err != nil || got != "h2" {
		t.Fatalf("h1 → h2: %q, %v", got, err)
	}
	// The machine itself is on the switch too.
	if c, err := net.DialTimeout("tcp", a2, 5*time.Second); err != nil {
		t.Fatalf("the machine does not reach h2: %v", err)
	} else {
		c.Close()
	}
	// A second net at the same time gets its own subnet.
	other := hosts.New(t, 1)
	if other.Subnet == nt.Subnet {
		t.Fatalf("two nets share the subnet %s", nt.Subnet)
	}
	out, err := h3.Command("ip", "-o", "-4", "addr", "show", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), h3.IP+"/24") {
		t.Fatalf("a command on h3 sees %q (%v); want its address %s", out, err, h3.IP)
	}

	if err := nt.Partition(h1, h2); err != nil {
		t.Fatal(err)
	}
	if _, err := reach(h1, a2); err == nil {
		t.Fatal("h1 reaches h2 across a partition")
	}
	if got, err := reach(h1, a3); err != nil || got != "h3" {
		t.Fatalf("h1 → h3 beside the h1|h2 partition: %q, %v", got, err)
	}
	if err := nt.Join(h1, h2); err != nil {
		t.Fatal(err)
	}
	if got, err := reach(h1, a2); err != nil || got != "h2" {
		t.Fatalf("h1 → h2 after the partition healed: %q, %v", got, err)
	}

	if err := nt.Cut(h3); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*hosts.Host{h1, h2} {
		if _, err := reach(h, a3); err == nil {
			t.Fatalf("%s reaches h3 while h3's link is down", h.Name)
		}
	}
	if err := nt.Heal(h3); err != nil {
		t.Fatal(err)
	}
	// The link comes back up asynchronously (carrier, bridge port state):
	// poll, bounded.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := reach(h1, a3)
		if err == nil && got == "h3" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("h1 → h3 after the link healed: %q, %v", got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
