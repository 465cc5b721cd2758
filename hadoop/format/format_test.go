package format

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/fs"
)

func memResolver(m *fs.Mem) fs.Resolver {
	return func(p string) (fs.FileSystem, string, error) { return m, p, nil }
}

func readAll(t *testing.T, resolve fs.Resolver, s Split, c conf.Conf) (keys, values []string) {
	t.Helper()
	r, err := Open(resolve, s, c)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		k, v, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		keys, values = append(keys, string(k)), append(values, string(v))
	}
}

// Every line of a file is read by exactly one split, whatever the split
// boundaries: LineRecordReader's rule.
func TestLinesBelongToExactlyOneSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 300; iter++ {
		var buf bytes.Buffer
		var want []string
		for n := rng.IntN(30); n > 0; n-- {
			line := strings.Repeat(string(rune('a'+rng.IntN(26))), rng.IntN(12))
			want = append(want, line)
			buf.WriteString(line)
			if rng.IntN(5) == 0 {
				buf.WriteString("\r\n")
			} else {
				buf.WriteString("\n")
			}
		}
		if len(want) > 0 && want[len(want)-1] != "" && rng.IntN(3) == 0 { // no final newline
			buf.Truncate(buf.Len() - 1)
			if strings.HasSuffix(buf.String(), "\r") {
				buf.Truncate(buf.Len() - 1)
			}
		}
		m := fs.NewMem()
		fs.WriteFile(m, "/in", buf.Bytes())
		size := int64(buf.Len())
		var cuts []int64
		for n := rng.IntN(6); n > 0; n-- {
			if size > 0 {
				cuts = append(cuts, rng.Int64N(size))
			}
		}
		cuts = append(cuts, 0, size)
		slices.Sort(cuts)
		cuts = slices.Compact(cuts)
		var got []string
		var offsets []string
		for i := 0; i+1 < len(cuts); i++ {
			k, v := readAll(t, memResolver(m), Split{Path: "/in", Start: cuts[i], Length: cuts[i+1] - cuts[i]}, conf.New())
			got = append(got, v...)
			offsets = append(offsets, k...)
		}
		if size == 0 {
			_, v := readAll(t, memResolver(m), Split{Path: "/in"}, conf.New())
			got = v
		}
		if !slices.Equal(got, want) {
			t.Fatalf("iteration %d, cuts %v of %q:\n got %q\nwant %q", iter, cuts, buf.String(), got, want)
		}
		// Keys are the byte offsets of the lines.
		for i, off := range offsets {
			var o int
			fmt.Sscan(off, &o)
			if i > 0 && o <= 0 {
				t.Fatalf("offset %d of line %d", o, i)
			}
		}
	}
}

func TestSplitsBySizeAndCompressedFilesWhole(t *testing.T) {
	m := fs.NewMem()
	m.BlockSize = 1000
	m.Hosts = func(name string, block int) []string { return []string{fmt.Sprintf("h%d", block)} }
	fs.WriteFile(m, "/in/a.txt", bytes.Repeat([]byte("x\n"), 1600)) // 3200 bytes
	fs.WriteFile(m, "/in/b.gz", bytes.Repeat([]byte("y"), 2500))
	fs.WriteFile(m, "/in/_SUCCESS", nil)
	fs.WriteFile(m, "/in/.hidden", []byte("z"))
	fs.WriteFile(m, "/in/empty", nil)
	c := conf.Conf{conf.InputDir: "/in", conf.NumMaps: "1"}
	splits, err := Splits(memResolver(m), c)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range splits {
		got = append(got, fmt.Sprintf("%s %d %d %v", s.Path, s.Start, s.Length, s.Hosts))
	}
	// 3200 bytes in 1000-byte blocks: 1000, 1000, 1000, then 200 (1200/1000 > 1.1).
	want := []string{
		"/in/b.gz 0 2500 [h0]",
		"/in/a.txt 0 1000 [h0]",
		"/in/a.txt 1000 1000 [h1]",
		"/in/a.txt 2000 1000 [h2]",
		"/in/a.txt 3000 200 [h3]",
		"/in/empty 0 0 []",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("splits:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	c.Set(conf.SplitMaxSize, "1050")
	c.Set("mapred.min.split.size", "1100") // deprecated name of split.minsize
	splits, err = Splits(memResolver(m), c)
	if err != nil {
		t.Fatal(err)
	}
	// 3200 bytes by 1100: 1100, 1100, then 1000 (1000/1100 is within SPLIT_SLOP).
	if len(splits) != 5 || splits[1].Length != 1100 || splits[2].Length != 1100 || splits[3].Length != 1000 {
		t.Fatalf("min size should win over block and max size: %v", splits)
	}
}

func TestListInputsReportsEveryProblem(t *testing.T) {
	m := fs.NewMem()
	fs.WriteFile(m, "/d/sub/x", []byte("1"))
	_, err := ListInputs(memResolver(m), conf.Conf{conf.InputDir: "/missing,/nothing*,/d"})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"input path does not exist: /missing", "input pattern /nothing* matches 0 files", "not a file: /d/sub"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	files, err := ListInputs(memResolver(m), conf.Conf{conf.InputDir: "/d", conf.InputRecursive: "true"})
	if err != nil || len(files) != 1 || files[0].Path != "/d/sub/x" {
		t.Fatalf("recursive listing: %v %v", files, err)
	}
}

func TestGzipAndKeyValueAndTeraReaders(t *testing.T) {
	dir := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, "a\tb\nc\n")
	zw.Close()
	os.WriteFile(filepath.Join(dir, "in.gz"), gz.Bytes(), 0o644)
	resolve := fs.ResolverFor(0)
	c := conf.Conf{conf.InputFormat: "KeyValueTextInputFormat"}
	k, v := readAll(t, resolve, Split{Path: filepath.Join(dir, "in.gz"), Length: int64(gz.Len())}, c)
	if !slices.Equal(k, []string{"a", "c"}) || !slices.Equal(v, []string{"b", ""}) {
		t.Fatalf("key/value over gzip: %q %q", k, v)
	}

	var recs bytes.Buffer
	for i := 0; i < 10; i++ {
		recs.WriteString(fmt.Sprintf("key%07d", i))
		recs.Write(bytes.Repeat([]byte{byte('0' + i)}, 90))
	}
	os.WriteFile(filepath.Join(dir, "tera"), recs.Bytes(), 0o644)
	c = conf.Conf{conf.InputFormat: TeraInput}
	var all []string
	for _, s := range []Split{{Start: 0, Length: 250}, {Start: 250, Length: 500}, {Start: 750, Length: 250}} {
		s.Path = filepath.Join(dir, "tera")
		k, v := readAll(t, resolve, s, c)
		for i := range k {
			if len(v[i]) != 90 {
				t.Fatalf("value length %d", len(v[i]))
			}
		}
		all = append(all, k...)
	}
	if len(all) != 10 || all[3] != "key0000003" {
		t.Fatalf("tera records across splits: %q", all)
	}
}

func TestTextOutputKeepsStreamingTrailingSeparator(t *testing.T) {
	dir := t.TempDir()
	f, _ := os.Create(filepath.Join(dir, "part-00000"))
	w, err := NewWriter(f, conf.New())
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("k"), []byte("v"))
	w.Write([]byte("lonely"), nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "part-00000"))
	if string(b) != "k\tv\nlonely\t\n" {
		t.Fatalf("got %q", b)
	}
}

func TestCommitterMovesTaskOutputAndMarksSuccess(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	c, err := NewCommitter(fs.ResolverFor(0), out)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetupJob(); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"attempt_1_0001_r_000000_0", "attempt_1_0001_r_000000_1"} {
		fs.WriteFile(c.FS(), filepath.Join(c.TaskDir(a), "part-00000"), []byte(a))
	}
	if err := c.CommitTask("attempt_1_0001_r_000000_1"); err != nil {
		t.Fatal(err)
	}
	if err := c.CommitTask("attempt_1_0001_r_000000_0"); err == nil {
		t.Fatal("a second commit of the same part must fail")
	}
	if err := c.CommitJob(true); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(out, "part-00000"))
	if string(b) != "attempt_1_0001_r_000000_1" {
		t.Fatalf("committed %q", b)
	}
	ents, _ := os.ReadDir(out)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"_SUCCESS", "part-00000"}) {
		t.Fatalf("output dir: %v", names)
	}
}
