package clustertest

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// PortRange is n consecutive ports, first to last, for a test agent to
// offer: a random range below the kernel's ephemeral ports, so that no
// outgoing connection is ever given one of them and concurrent test runs
// rarely pick the same. Nothing can hold them for the tasks that will
// bind them later, so another process may still take one: what a test
// launches on offered ports must bind them itself and, when a port is
// taken, fail and be launched again on other ports of its next offer (as
// the Hadoop frameworks' trackers and JobTracker are). A test server of
// our own should instead be handed a listener on port 0.
func PortRange(n int) (first, last int) {
	const low = 10000
	high := ephemeralLow() - n
	if high <= low {
		high = low + 1
	}
	first = low + rand.IntN(high-low)
	return first, first + n - 1
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default 32768 when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n <= 1024 {
		return 32768
	}
	return n
}

// RefusedAddr is a loopback address where connections are refused, for
// tests of what a client does when nothing is there. Its port is bound
// (never listened on) until the test ends, so no other process can take
// it meanwhile, as one could a port listened on and closed.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}
