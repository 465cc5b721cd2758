package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// noJournalExt4 names the device of the file system that holds path when
// it is ext4 without a journal. Such a file system avoids reusing an inode
// freed in the last minute (six while its inode table block is dirty),
// walking every recently freed inode of the group at each allocation: a
// launch benchmark run within minutes of removing many files — such as
// the previous run's work_dir — makes its sandboxes several times slower
// (benchmarks/RESULTS.md). mountinfo is /proc/self/mountinfo; journaled
// lists /proc/fs/jbd2, whose entries (DEVICE-INODE) are the journals in use.
func noJournalExt4(mountinfo string, journaled []string, path string) (string, bool) {
	best, fstype, source := "", "", ""
	for _, line := range strings.Split(mountinfo, "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 2 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if !within(path, mp) || len(mp) < len(best) {
			continue
		}
		best, fstype, source = mp, g[0], g[1] // a later mount over the same point hides the earlier
	}
	if fstype != "ext4" || !strings.HasPrefix(source, "/dev/") {
		return "", false
	}
	dev := filepath.Base(source)
	for _, j := range journaled {
		if strings.HasPrefix(j, dev+"-") {
			return "", false
		}
	}
	return source, true
}

// within reports whether path is mountpoint or below it.
func within(path, mountpoint string) bool {
	if mountpoint == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == mountpoint || strings.HasPrefix(path, mountpoint+"/")
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of a
// mountinfo path.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// warnNoJournalExt4 says on stderr, once per run, when dir is on ext4
// without a journal, why runs made within minutes of each other there
// differ.
func warnNoJournalExt4(dir string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var journals []string
	if ents, err := os.ReadDir("/proc/fs/jbd2"); err == nil {
		for _, e := range ents {
			journals = append(journals, e.Name())
		}
	}
	if dev, ok := noJournalExt4(string(mi), journals, abs); ok {
		fmt.Fprintf(os.Stderr, "bench launch: note: %s is on ext4 without a journal (%s), which avoids reusing inodes freed in the last minutes: "+
			"this run removes its work_dir when it ends, and a run started there within about six minutes makes its sandboxes slower. "+
			"Compare runs minutes apart, or give each its own new top-level --work_dir\n", dir, dev)
	}
}
