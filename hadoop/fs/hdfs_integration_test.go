package fs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	wordcount "github.com/agora-cluster/agora/examples/hadoop-wordcount"
	"github.com/agora-cluster/agora/hadoop/fs"
	"github.com/agora-cluster/agora/hadoop/hadooptest"
	"github.com/agora-cluster/agora/hadoop/hdfscluster"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/local"
)

// namenode returns the host:port of a real HDFS namenode the test may
// write under /tmp: $AGORA_HDFS_NAMENODE's, or that of a NameNode and a
// DataNode of the HDFS distribution started for the test.
func namenode(t *testing.T) string {
	t.Helper()
	if nn := os.Getenv("AGORA_HDFS_NAMENODE"); nn != "" {
		return nn
	}
	return hdfscluster.StartForTest(t, hdfscluster.Config{}).NameNode
}

// scratch makes a fresh directory on HDFS, removed when the test ends.
func scratch(t *testing.T, nn string) (fs.FileSystem, string, string) {
	t.Helper()
	uri := fmt.Sprintf("hdfs://%s/tmp/agora-test-%d", nn, time.Now().UnixNano())
	fsys, dir, err := fs.Lookup(uri, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := fsys.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.RemoveAll(dir) })
	return fsys, dir, uri
}

func TestHDFSFileSystemAgainstANamenode(t *testing.T) {
	nn := namenode(t)
	fsys, dir, _ := scratch(t, nn)

	data := []byte(strings.Repeat("0123456789", 1000))
	if err := fs.WriteFile(fsys, dir+"/a/b.txt", data); err != nil {
		t.Fatalf("create with missing parents: %v", err)
	}
	// Create replaces.
	if err := fs.WriteFile(fsys, dir+"/a/b.txt", data); err != nil {
		t.Fatalf("create over an existing file: %v", err)
	}
	fs.WriteFile(fsys, dir+"/a/c.txt", []byte("c"))
	fs.WriteFile(fsys, dir+"/a/_SUCCESS", nil)

	ents, err := fsys.ReadDir(dir + "/a")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"_SUCCESS", "b.txt", "c.txt"}) {
		t.Fatalf("listing %v", names)
	}
	if m, err := fsys.Glob(dir + "/*/?.txt"); err != nil || len(m) != 2 {
		t.Fatalf("glob: %v %v", m, err)
	}

	f, err := fsys.Open(dir + "/a/b.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(5005, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(f, buf); err != nil || string(buf) != "5678901234" {
		t.Fatalf("read after seek: %q %v", buf, err)
	}
	if _, err := f.ReadAt(buf, 9990); err != nil || string(buf) != "0123456789" {
		t.Fatalf("read at: %q %v", buf, err)
	}
	f.Close()

	blocks, err := fsys.Blocks(dir + "/a/b.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) == 0 || len(blocks[0].Hosts) == 0 || blocks[0].Offset != 0 {
		t.Fatalf("block locations %+v: want the datanodes of block 0", blocks)
	}
	t.Logf("block locations of a 10 kB file: %+v", blocks)

	if err := fsys.Rename(dir+"/a", dir+"/x/renamed"); err != nil {
		t.Fatalf("rename into a missing parent: %v", err)
	}
	if ok, _ := fs.Exists(fsys, dir+"/a"); ok {
		t.Fatal("rename left the source")
	}
	if got, err := fs.ReadFile(fsys, dir+"/x/renamed/b.txt"); err != nil || len(got) != len(data) {
		t.Fatalf("after rename: %d bytes, %v", len(got), err)
	}
	if _, err := fsys.Stat(dir + "/nope"); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("stat of a missing file: %v, want ErrNotExist", err)
	}
	if err := fsys.RemoveAll(dir + "/x"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.RemoveAll(dir + "/x"); err != nil {
		t.Fatalf("removing what is gone: %v", err)
	}
	if ok, err := fs.Exists(fsys, dir+"/x"); ok || err != nil {
		t.Fatalf("after remove: %v %v", ok, err)
	}
}

func TestWordCountOnHDFS(t *testing.T) {
	nn := namenode(t)
	hadooptest.NeedPython(t)
	fsys, dir, uri := scratch(t, nn)
	fs.WriteFile(fsys, dir+"/in/one.txt", []byte("the quick brown fox\njumps over the lazy dog\n"))
	fs.WriteFile(fsys, dir+"/in/two.txt", []byte("the dog barks\n"))

	local := t.TempDir()
	os.WriteFile(filepath.Join(local, "mapper.py"), wordcount.Mapper, 0o755)
	os.WriteFile(filepath.Join(local, "reducer.py"), wordcount.Reducer, 0o755)
	spec, err := job.ParseStreaming([]string{
		"-D", "mapred.fairscheduler.locality.delay=0",
		"-D", "fs.defaultFS=hdfs://" + nn,
		"-files", "mapper.py,reducer.py",
		"-input", uri + "/in",
		// The output through fs.defaultFS: hdfs:/// takes its namenode.
		"-output", "hdfs://" + strings.TrimPrefix(uri, "hdfs://"+nn) + "/out",
		"-mapper", "mapper.py", "-reducer", "reducer.py", "-numReduceTasks", "2",
	}, local)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := runLocal(ctx, spec, local)
	if err != nil {
		t.Fatal(err)
	}
	// Hadoop's FileInputFormat with two maps: a goal of 29 bytes (58
	// bytes over 2), so one.txt (44 bytes, past the 10% slop) splits in two.
	if res.Splits != 3 {
		t.Errorf("%d splits, want 3 (one.txt in two, two.txt whole)", res.Splits)
	}
	got := map[string]string{}
	parts, _ := fsys.Glob(dir + "/out/part-*")
	if len(parts) != 2 {
		t.Fatalf("part files %v", parts)
	}
	for _, p := range parts {
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if k, v, ok := strings.Cut(line, "\t"); ok {
				got[k] = v
			}
		}
	}
	if got["the"] != "3" || got["dog"] != "2" || got["fox"] != "1" || len(got) != 9 {
		t.Fatalf("counts %v", got)
	}
	if ok, _ := fs.Exists(fsys, dir+"/out/_SUCCESS"); !ok {
		t.Error("no _SUCCESS")
	}

	// The same output again is refused before anything runs; so is a
	// missing input.
	_, err = runLocal(ctx, spec, local)
	if !errors.Is(err, job.ErrRefused) || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("rerun into existing output: %v", err)
	}
	spec.Conf.Set("mapreduce.input.fileinputformat.inputdir", uri+"/missing")
	spec.Conf.Set("mapreduce.output.fileoutputformat.outputdir", uri+"/out2")
	_, err = runLocal(ctx, spec, local)
	if !errors.Is(err, job.ErrRefused) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing hdfs input: %v", err)
	}
}

func runLocal(ctx context.Context, spec job.Spec, dir string) (local.Result, error) {
	return local.Run(ctx, spec, local.Options{MapSlots: 2, ReduceSlots: 2, WorkDir: filepath.Join(dir, "tt"), TrackerID: "hdfstest"})
}

// TestHDFSCloseWhileEarlierBlocksAreUnreported: the namenode commits a
// file's last block only once every earlier block has a reported replica,
// and answers "replication in progress" until then. The DataNode here
// reports the blocks it received at most every 3 s, so a two-block file's
// first block is not yet reported when it is closed. Close must still
// close the file — naming its last block at every attempt — and the file
// must then read back whole.
func TestHDFSCloseWhileEarlierBlocksAreUnreported(t *testing.T) {
	const block = 1 << 20
	c := hdfscluster.StartForTest(t, hdfscluster.Config{BlockSize: block,
		Props: map[string]string{"dfs.blockreport.incremental.intervalMsec": "3000"}})
	fsys, dir, _ := scratch(t, c.NameNode)
	for i, size := range []int{block + 27, 2*block + 1, block} {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte('a' + (i+j)%26)
		}
		name := fmt.Sprintf("%s/f%d", dir, i)
		start := time.Now()
		if err := fs.WriteFile(fsys, name, data); err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		t.Logf("%d bytes written and closed in %v", size, time.Since(start).Round(time.Millisecond))
		f, err := fsys.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		back, err := io.ReadAll(f)
		f.Close()
		if err != nil || len(back) != size || string(back) != string(data) {
			t.Fatalf("%d bytes written, %d read back (%v)", size, len(back), err)
		}
	}
}
