package local

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// DaemonPIDs are the Cassandra JVMs (CassandraDaemon) on this machine
// whose command line holds s, e.g. a work directory: how tests and the
// benchmark find the nodes left behind under a directory of theirs.
func DaemonPIDs(s string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(s)) && bytes.Contains(b, []byte("CassandraDaemon")) {
			out = append(out, pid)
		}
	}
	return out
}
