package hdfscluster_test

import (
	"bytes"
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/agora-cluster/agora/hadoop/fs"
	"github.com/agora-cluster/agora/hadoop/hdfscluster"
)

// Three DataNodes known by three host names: a file written through the
// Go client reads back whole, and each of its blocks is reported on one of
// those hosts.
func TestClusterServesBlocksUnderDataNodeHosts(t *testing.T) {
	hosts := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	c := hdfscluster.StartForTest(t, hdfscluster.Config{DataNodeHosts: hosts, BlockSize: 1 << 20})
	live, safe, err := c.Status(context.Background())
	if err != nil || live != 3 || safe {
		t.Fatalf("status: %d live, safe mode %v, %v", live, safe, err)
	}
	// Every daemon bound port 0; the cluster knows the ports they got.
	seen := map[string]bool{}
	for _, addr := range []string{c.NameNode, c.HTTP, c.DataNodes[0].Addr, c.DataNodes[1].Addr, c.DataNodes[2].Addr} {
		if _, port, _ := net.SplitHostPort(addr); port == "" || port == "0" || seen[addr] {
			t.Fatalf("address %q: want a bound port of its own", addr)
		}
		seen[addr] = true
		conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("nothing listens at %s: %v", addr, err)
		}
		conn.Close()
	}
	fsys, path, err := fs.Lookup(c.URI("/data/three-blocks.bin"), 0)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16)
	if err := fs.WriteFile(fsys, path, data); err != nil {
		t.Fatal(err)
	}
	got, err := fs.ReadFile(fsys, path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v), want %d equal bytes", len(got), err, len(data))
	}
	blocks, err := fsys.Blocks(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 3 {
		t.Fatalf("%d blocks, want 3 of 1 MiB: %+v", len(blocks), blocks)
	}
	for _, b := range blocks {
		if len(b.Hosts) != 1 || !slices.Contains(hosts, b.Hosts[0]) {
			t.Errorf("block at %d on %v, want one of %v", b.Offset, b.Hosts, hosts)
		}
	}
	t.Logf("blocks: %+v", blocks)
}
