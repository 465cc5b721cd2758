package main

import "testing"

// TestNoJournalExt4 reads which file system holds a path from mountinfo
// lines and whether it is ext4 without a journal.
func TestNoJournalExt4(t *testing.T) {
	const mi = `22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683792k
40 27 254:16 / /data rw,relatime - ext4 /dev/vdb rw
41 27 254:32 / /mnt/my\040disk rw - ext4 /dev/vdc rw
42 40 0:50 / /data/scratch rw - tmpfs tmpfs rw
43 27 0:51 / /srv rw - ext4 /dev/vdd rw
44 27 0:52 / /srv rw - xfs /dev/vde rw
45 27 0:53 / /net rw - ext4 server:/export rw`
	journals := []string{"vdb-8"}
	for _, c := range []struct {
		path string
		dev  string // "" : not ext4 without a journal
	}{
		{"/var/tmp", "/dev/vda"},
		{"/", "/dev/vda"},
		{"/dev/shm/x", ""},                // tmpfs
		{"/data/work", ""},                // ext4 with its journal
		{"/datas", "/dev/vda"},            // not below /data
		{"/data/scratch/w", ""},           // tmpfs mounted below the journaled ext4
		{"/mnt/my disk/work", "/dev/vdc"}, // an escaped space
		{"/srv/w", ""},                    // the later mount over /srv is xfs
		{"/net/w", ""},                    // not a local device
	} {
		dev, ok := noJournalExt4(mi, journals, c.path)
		if ok != (c.dev != "") || dev != c.dev {
			t.Errorf("%s: got %q, %v; want %q", c.path, dev, ok, c.dev)
		}
	}
	if _, ok := noJournalExt4("garbage\n\n1 2 3 - \n", nil, "/x"); ok {
		t.Error("lines that are not mountinfo matched")
	}
}
