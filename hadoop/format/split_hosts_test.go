package format

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/fs"
)

// locatedMem is the in-memory file system with block locations given per
// file, as a namenode would report them (hostnames and addresses).
type locatedMem struct {
	*fs.Mem
	blocks map[string][]fs.Block
}

func (l locatedMem) Blocks(name string) ([]fs.Block, error) {
	if b, ok := l.blocks[name]; ok {
		return b, nil
	}
	return l.Mem.Blocks(name)
}

func block(off, n int64, hosts ...string) fs.Block {
	b := fs.Block{Offset: off, Length: n, Hosts: hosts}
	for _, h := range hosts {
		b.Addrs = append(b.Addrs, "10.0.0."+h[len(h)-1:])
	}
	return b
}

func TestSplitHostsPicksTheHostsHoldingMostOfTheSplit(t *testing.T) {
	blocks := []fs.Block{
		block(0, 100, "dn1", "dn2", "dn3"),
		block(100, 100, "dn3", "dn4", "dn5"),
		block(200, 100, "dn6", "dn7", "dn8"),
	}
	for _, tc := range []struct {
		start, length int64
		want          []string
	}{
		// Inside one block: that block's replicas, in the namenode's order.
		{0, 100, []string{"dn1", "dn2", "dn3", "10.0.0.1", "10.0.0.2", "10.0.0.3"}},
		{120, 50, []string{"dn3", "dn4", "dn5", "10.0.0.3", "10.0.0.4", "10.0.0.5"}},
		// Half in each of two blocks: dn3 holds all 100 bytes, then the
		// others by order of appearance.
		{50, 100, []string{"dn3", "dn1", "dn2", "10.0.0.3", "10.0.0.1", "10.0.0.2"}},
		// Mostly in the second block: its hosts, dn3 first (it also holds
		// the sliver of the first block).
		{90, 110, []string{"dn3", "dn4", "dn5", "10.0.0.3", "10.0.0.4", "10.0.0.5"}},
		// Mostly in the third block.
		{190, 110, []string{"dn6", "dn7", "dn8", "10.0.0.6", "10.0.0.7", "10.0.0.8"}},
		// Past the end: nothing is known.
		{400, 10, nil},
	} {
		if got := SplitHosts(blocks, tc.start, tc.length); !slices.Equal(got, tc.want) {
			t.Errorf("split %d+%d: hosts %v, want %v", tc.start, tc.length, got, tc.want)
		}
	}
	// Blocks without hosts (the local file system) give none.
	if got := SplitHosts([]fs.Block{{Offset: 0, Length: 100}}, 0, 100); got != nil {
		t.Errorf("no locality information: hosts %v, want none", got)
	}
	// A store that knows names but not addresses lists just the names.
	if got := SplitHosts([]fs.Block{{Offset: 0, Length: 100, Hosts: []string{"a", "b"}}}, 0, 100); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("names only: hosts %v", got)
	}
}

func TestSplitsCarryBlockLocations(t *testing.T) {
	m := fs.NewMem()
	fs.WriteFile(m, "/in/a.txt", bytes.Repeat([]byte("x\n"), 150)) // 300 bytes
	fs.WriteFile(m, "/in/b.gz", bytes.Repeat([]byte("y"), 250))
	located := locatedMem{Mem: m, blocks: map[string][]fs.Block{
		"/in/a.txt": {block(0, 100, "dn1", "dn2"), block(100, 100, "dn2", "dn3"), block(200, 100, "dn3", "dn4")},
		"/in/b.gz":  {block(0, 100, "dn5", "dn6"), block(100, 100, "dn6", "dn7"), block(200, 50, "dn7", "dn8")},
	}}
	resolve := func(p string) (fs.FileSystem, string, error) { return located, p, nil }
	splits, err := Splits(resolve, conf.Conf{conf.InputDir: "/in", conf.NumMaps: "1"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range splits {
		got = append(got, fmt.Sprintf("%s %d+%d %v", s.Path, s.Start, s.Length, s.Hosts))
	}
	want := []string{
		// The whole compressed file is one split: dn6 holds 200 of its
		// 250 bytes, dn7 150.
		"/in/b.gz 0+250 [dn6 dn7 10.0.0.6 10.0.0.7]",
		"/in/a.txt 0+100 [dn1 dn2 10.0.0.1 10.0.0.2]",
		"/in/a.txt 100+100 [dn2 dn3 10.0.0.2 10.0.0.3]",
		"/in/a.txt 200+100 [dn3 dn4 10.0.0.3 10.0.0.4]",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("splits:\n%v\nwant\n%v", got, want)
	}
}
