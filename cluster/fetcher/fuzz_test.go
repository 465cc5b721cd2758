package fetcher

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Bounds of the fuzzed extractions: small, so that a bomb is stopped by
// them within one execution.
const (
	fuzzMaxSize    = 64 << 10
	fuzzMaxEntries = 32
)

// archiveKinds are the fuzzed archive formats, chosen by the input's
// kind byte.
var archiveKinds = []struct {
	kind archive
	name string
}{{archiveTar, "a.tar"}, {archiveTarGz, "a.tar.gz"}, {archiveZip, "a.zip"}, {archiveGz, "a.txt.gz"}, {archiveTarBz2, "a.tar.bz2"}}

// FuzzExtractArchive: whatever a tar, tar.gz, tar.bz2, zip or gzip
// archive holds, extracting it into a sandbox writes nothing outside it —
// not through "..", absolute names, symlinks (one already in the sandbox,
// one the archive makes, one followed by a file written through it) nor
// hard links — and leaves in the sandbox only directories, regular files
// without set-id bits and symlinks that stay inside. What it writes stays
// under the size and entry bounds, and a refusal says why.
func FuzzExtractArchive(f *testing.F) {
	for _, seed := range extractSeeds(f) {
		f.Add(seed.kind, seed.data)
	}
	base := f.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(filepath.Join(outside, "dir"), 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "canary"), []byte("canary"), 0o644); err != nil {
		f.Fatal(err)
	}
	before := snapshotTree(f, outside)
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		k := archiveKinds[int(kind)%len(archiveKinds)]
		sandbox, err := os.MkdirTemp(base, "sandbox")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(sandbox)
		// A link the agent did not make, as if left by an earlier URI:
		// nothing may be written through it either.
		if err := os.Symlink(outside, filepath.Join(sandbox, "up")); err != nil {
			t.Fatal(err)
		}
		in, err := os.CreateTemp(base, "archive")
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(in.Name())
		defer in.Close()
		if _, err := in.Write(data); err != nil {
			t.Fatal(err)
		}
		if _, err := in.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		root, err := os.OpenRoot(sandbox)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		_, xerr := extractArchive(context.Background(), in, k.name, k.kind, root, ".", fuzzMaxSize, fuzzMaxEntries)
		if xerr != nil && strings.TrimSpace(xerr.Error()) == "" {
			t.Fatalf("%s: refused without a reason", k.name)
		}
		if after := snapshotTree(t, outside); after != before {
			t.Fatalf("%s: extraction changed what is outside the sandbox (err %v):\nbefore:\n%s\nafter:\n%s", k.name, xerr, before, after)
		}
		if ents, _ := os.ReadDir(base); countPrefixed(ents, "sandbox", "archive", "outside") != len(ents) {
			t.Fatalf("%s: a file appeared beside the sandbox: %v", k.name, ents)
		}
		checkSandbox(t, sandbox, xerr == nil)
	})
}

// countPrefixed counts the entries named with one of the prefixes.
func countPrefixed(ents []os.DirEntry, prefixes ...string) int {
	n := 0
	for _, e := range ents {
		for _, p := range prefixes {
			if strings.HasPrefix(e.Name(), p) {
				n++
				break
			}
		}
	}
	return n
}

// checkSandbox asserts what an extraction may leave in a sandbox.
func checkSandbox(t *testing.T, sandbox string, succeeded bool) {
	t.Helper()
	inodes := map[uint64]int64{}
	files := 0
	err := filepath.WalkDir(sandbox, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(sandbox, p)
		if rel == "up" {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fi.Mode()
		switch {
		case mode.IsDir():
		case mode.IsRegular():
			files++
			if mode&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
				t.Errorf("%s has the mode %v", rel, mode)
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				inodes[st.Ino] = fi.Size()
			}
		case mode&fs.ModeSymlink != 0:
			files++
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			resolved := path.Join(path.Dir(filepath.ToSlash(rel)), target)
			if path.IsAbs(target) || resolved == ".." || strings.HasPrefix(resolved, "../") {
				t.Errorf("the symlink %s points outside the sandbox, to %q", rel, target)
			}
		default:
			t.Errorf("%s is neither a directory, a regular file nor a symlink: %v", rel, mode)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk the sandbox: %v", err)
	}
	var total int64
	for _, n := range inodes {
		total += n
	}
	if total > fuzzMaxSize {
		t.Errorf("the sandbox holds %d bytes, over the limit of %d", total, fuzzMaxSize)
	}
	if succeeded && files > fuzzMaxEntries {
		t.Errorf("an accepted archive left %d files, over the limit of %d entries", files, fuzzMaxEntries)
	}
}

// snapshotTree describes every entry under dir (name, mode, content or
// link target), to compare before and after.
func snapshotTree(t testing.TB, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d", p, fi.Mode(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode().IsRegular():
			c, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %q", c)
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				fmt.Fprintf(&b, " links=%d", st.Nlink)
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %q", l)
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestArchiveEntryBoundAndDevices(t *testing.T) {
	srv := newFileServer(t)
	f := newTestFetcher(t, Config{MaxEntries: 5})
	for p, body := range map[string][]byte{
		"/many.tar.gz": tarGz(t, manyEntries(6)...),
		"/many.zip":    zipOf(t, manyEntries(6)...),
	} {
		u := srv.put(p, body)
		_, err := fetch(t, f, t.TempDir(), mesos.CommandInfo_URI{Value: u})
		if err == nil || !strings.Contains(err.Error(), "limit of 5") || !strings.Contains(err.Error(), "entries") {
			t.Errorf("%s: six entries under a bound of five: %v", p, err)
		}
	}
	u := srv.put("/five.tar.gz", tarGz(t, manyEntries(5)...))
	if _, err := fetch(t, f, t.TempDir(), mesos.CommandInfo_URI{Value: u}); err != nil {
		t.Errorf("five entries under a bound of five: %v", err)
	}
	// Devices and fifos are skipped: nothing but the archive itself lands.
	sandbox := t.TempDir()
	u = srv.put("/dev.tar", deviceTar(t))
	if _, err := fetch(t, f, sandbox, mesos.CommandInfo_URI{Value: u}); err != nil {
		t.Fatalf("a tar of devices: %v", err)
	}
	ents, _ := os.ReadDir(sandbox)
	if len(ents) != 1 || ents[0].Name() != "dev.tar" {
		t.Errorf("the sandbox holds %v, want only dev.tar", ents)
	}
}

// extractBytes extracts a tar into a fresh sandbox under the given
// bounds and returns the sandbox, what was created and the error.
func extractBytes(t *testing.T, ctx context.Context, tarball []byte, maxEntries int) (string, []string, error) {
	t.Helper()
	sandbox := t.TempDir()
	in, err := os.CreateTemp(t.TempDir(), "archive")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := in.Write(tarball); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(sandbox)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	created, err := extractArchive(ctx, in, "a.tar", archiveTar, root, ".", 1<<20, maxEntries)
	return sandbox, created, err
}

// deepName is an entry name levels directories deep.
func deepName(levels int) string { return strings.Repeat("a/", levels) + "f" }

// The entry limit bounds the work only if one entry cannot stand for
// unbounded work: names are bounded in length and depth, and the
// directories an entry makes count as entries.
func TestArchiveEntryNamesAndDirectoriesAreBounded(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		entryName string
		want      error
	}{
		"too deep": {deepName(maxNameDepth), errNameTooDeep},
		"too long": {strings.Repeat("x", maxNameLen+1), errNameTooLong},
		"512 KiB":  {deepName(1 << 18), errNameTooLong},
	} {
		sandbox, _, err := extractBytes(t, ctx, gunzipBytes(t, tarGz(t, entry{name: tc.entryName, body: "x"})), 0)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", name, err, tc.want)
		}
		if ents, _ := os.ReadDir(sandbox); len(ents) != 0 {
			t.Errorf("%s: the refused entry left %v", name, ents)
		}
	}

	// At the bound, an entry extracts; its directories are reported once
	// each, outermost first, and counted.
	_, created, err := extractBytes(t, ctx, gunzipBytes(t, tarGz(t, entry{name: deepName(maxNameDepth - 1), body: "x"})), 0)
	if err != nil {
		t.Fatalf("an entry %d directories deep: %v", maxNameDepth-1, err)
	}
	if len(created) != maxNameDepth || created[0] != "a" || created[len(created)-1] != deepName(maxNameDepth-1) {
		t.Errorf("created %d paths (first %q), want %d directories, outermost first, then the file", len(created), created[0], maxNameDepth-1)
	}
	_, _, err = extractBytes(t, ctx, gunzipBytes(t, tarGz(t, entry{name: "a/b/c/d/f", body: "x"})), 4)
	if err == nil || !strings.Contains(err.Error(), "limit of 4 entries") {
		t.Errorf("one entry making four directories under a bound of four entries: %v", err)
	}
	_, _, err = extractBytes(t, ctx, gunzipBytes(t, tarGz(t, entry{name: "a/b/c/f", body: "x"}, entry{name: "a/b/c/g", body: "y"})), 5)
	if err != nil {
		t.Errorf("two files in three new directories under a bound of five: %v", err)
	}

	// A cancelled fetch stops extracting.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	sandbox, _, err := extractBytes(t, cctx, gunzipBytes(t, tarGz(t, manyEntries(3)...)), 0)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("extraction under a cancelled context: %v", err)
	}
	if ents, _ := os.ReadDir(sandbox); len(ents) != 0 {
		t.Errorf("the cancelled extraction left %v", ents)
	}
}

type extractSeed struct {
	kind uint8
	data []byte
}

// extractSeeds are the attacks the fuzzer starts from: each escape kind,
// both bombs, and plain archives to mutate.
func extractSeeds(tb testing.TB) []extractSeed {
	gz := func(e ...entry) []byte { return tarGz(tb, e...) }
	plain := func(e ...entry) []byte { return gunzipBytes(tb, tarGz(tb, e...)) }
	var seeds []extractSeed
	add := func(kind uint8, data []byte) { seeds = append(seeds, extractSeed{kind, data}) }
	add(0, plain(entry{name: "d", dir: true}, entry{name: "d/f", body: "ok"}, entry{name: "x.sh", body: "#!/bin/sh", mode: 0o4755}))
	add(0, plain(entry{name: "../outside/evil", body: "evil"}))
	add(0, plain(entry{name: "/abs/evil", body: "evil"}))
	add(0, plain(entry{name: "l", link: "../outside"}, entry{name: "l/evil", body: "evil"}))
	add(0, plain(entry{name: "l", link: "d/../.."}, entry{name: "l/outside/evil", body: "evil"}))
	add(0, plain(entry{name: "up/canary", body: "evil"}))
	add(0, plain(entry{name: "up/dir/evil", body: "evil"}))
	add(0, plain(entry{name: "d/here", link: ".."}, entry{name: "d/here/x", link: "../outside"}))
	add(0, plain(entry{name: "h", link: "../outside/canary", hard: true}, entry{name: "h", body: "evil"}))
	add(0, plain(entry{name: "h", link: "up/canary", hard: true}, entry{name: "h", body: "evil"}))
	add(0, plain(entry{name: "f", body: "a"}, entry{name: "h", link: "f", hard: true}, entry{name: "h", body: "b"}))
	add(0, plain(entry{name: "a/b/l", link: "../../f"}, entry{name: "l", link: "a/b/l", hard: true}))
	add(0, deviceTar(tb))
	add(0, plain(manyEntries(fuzzMaxEntries+1)...))
	add(0, plain(entry{name: deepName(maxNameDepth + 1), body: "deep"}))
	add(0, plain(entry{name: "d/e/f", body: "a"}, entry{name: "d/e/f/../g", body: "b"}, entry{name: "d/l", link: "e"}, entry{name: "d/l/x/y", body: "c"}))
	add(1, gz(entry{name: "zeros", body: strings.Repeat("\x00", fuzzMaxSize+1)}))
	add(1, gz(entry{name: "a", body: "a"}, entry{name: "l", link: "a"}))
	add(2, zipOf(tb, entry{name: "../../evil", body: "evil"}))
	add(2, zipOf(tb, entry{name: "l", link: "/etc"}))
	add(2, zipOf(tb, entry{name: "l", link: "../outside"}, entry{name: "l/evil", body: "evil"}))
	add(2, zipOf(tb, entry{name: "up/evil", body: "evil"}))
	add(2, zipOf(tb, entry{name: "d", dir: true}, entry{name: "d/f", body: strings.Repeat("z", fuzzMaxSize+1)}))
	add(2, zipOf(tb, manyEntries(fuzzMaxEntries+1)...))
	var one bytes.Buffer
	zw := gzip.NewWriter(&one)
	zw.Write([]byte("hello"))
	zw.Close()
	add(3, one.Bytes())
	add(3, []byte{0x1f, 0x8b})
	add(4, []byte("BZh91AY&SY"))
	return seeds
}

func manyEntries(n int) []entry {
	es := make([]entry, n)
	for i := range es {
		es[i] = entry{name: fmt.Sprintf("e%d", i)}
	}
	return es
}

// deviceTar is a tar of a character device, a block device and a fifo.
func deviceTar(tb testing.TB) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666},
		{Name: "sda", Typeflag: tar.TypeBlock, Devmajor: 8, Devminor: 0, Mode: 0o660},
		{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o644},
	} {
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func gunzipBytes(tb testing.TB, b []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// BenchmarkExtractDeepSymlinks extracts symlinks at the deepest level a
// name may reach: each one's parents are looked up once per extraction,
// not once per entry and level (which took minutes for 2,000 entries).
func BenchmarkExtractDeepSymlinks(b *testing.B) {
	const n = 500
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := range n {
		name := strings.Repeat("a/", maxNameDepth-2) + fmt.Sprintf("l%d", i)
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: "f", Mode: 0o777}); err != nil {
			b.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	in, err := os.CreateTemp(b.TempDir(), "archive")
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	if _, err := in.Write(buf.Bytes()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		sandbox, err := os.MkdirTemp(b.TempDir(), "sandbox")
		if err != nil {
			b.Fatal(err)
		}
		root, err := os.OpenRoot(sandbox)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := in.Seek(0, io.SeekStart); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := extractArchive(context.Background(), in, "a.tar", archiveTar, root, ".", 1<<20, DefaultMaxEntries); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		root.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n), "entries/op")
}
