// Package hadooptest holds what the Hadoop tests share: the word count
// example's scripts, a corpus generator, and the reference counts of
// `tr -s ' ' '\n' | sort | uniq -c` to hold a job's output against.
package hadooptest

import (
	"bufio"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
)

// Examples is the directory of the word count example's Streaming scripts
// (mapper.py, reducer.py).
func Examples(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "examples", "hadoop-wordcount")
	if _, err := os.Stat(filepath.Join(dir, "mapper.py")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// NeedPython requires the python tier: python3, which the example
// scripts need (the test skips without it, or fails in CI).
func NeedPython(t testing.TB) {
	t.Helper()
	tier.Need(t, tier.Python, tier.PythonErr())
}

// WriteCorpus writes about size bytes of words separated by single
// spaces, in lines, Zipf-distributed over a vocabulary.
func WriteCorpus(t testing.TB, path string, size int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 8))
	zipf := rand.NewZipf(rng, 1.2, 2, 20000)
	var b strings.Builder
	for b.Len() < size {
		n := 1 + rng.IntN(14)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(' ')
			}
			w := zipf.Uint64()
			b.WriteString(strconv.FormatUint(w*7919%99991, 36))
			if w%5 == 0 {
				b.WriteString("Ünï")
			}
		}
		b.WriteByte('\n')
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// UnixCounts counts the words of every file in dir with
// tr -s ' ' '\n' | sort | uniq -c.
func UnixCounts(t testing.TB, dir string) map[string]string {
	t.Helper()
	cmd := exec.Command("sh", "-c", `cat "$0"/* | tr -s ' ' '\n' | LC_ALL=C sort | LC_ALL=C uniq -c`, dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 {
			want[f[1]] = f[0]
		}
	}
	return want
}

// ParseOutput reads part files' contents (key TAB value lines) into key →
// value, failing on a key in two places.
func ParseOutput(t testing.TB, parts map[string][]byte) map[string]string {
	t.Helper()
	if len(parts) == 0 {
		t.Fatal("no part files")
	}
	got := map[string]string{}
	for name, b := range parts {
		if len(b) == 0 {
			continue
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			k, v, _ := strings.Cut(line, "\t")
			if _, dup := got[k]; dup {
				t.Fatalf("key %q in two places (the second in %s)", k, name)
			}
			got[k] = v
		}
	}
	return got
}

// ReadOutput reads every part file of a local output directory into key →
// value.
func ReadOutput(t testing.TB, out string) map[string]string {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(out, "part-*"))
	if len(paths) == 0 {
		t.Fatalf("no part files in %s", out)
	}
	parts := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		parts[p] = b
	}
	return ParseOutput(t, parts)
}

// CompareCounts reports every difference between a job's counts and the
// reference (the first ten).
func CompareCounts(t testing.TB, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d distinct words, want %d", len(got), len(want))
	}
	bad := 0
	for w, n := range want {
		if got[w] != n && bad < 10 {
			bad++
			t.Errorf("count of %q = %q, want %q", w, got[w], n)
		}
	}
}
