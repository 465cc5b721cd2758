package fetcher

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/colinmarc/hdfs/v2"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/hadoop/hdfscluster"
)

// hdfs:// URIs against a real NameNode and DataNode: a plain file by its
// full URI, an archive extracted into the sandbox, and hdfs:///path through
// the agent's --hdfs_namenode. A missing file names the URI.
func TestHDFSFetchFromARealNamenode(t *testing.T) {
	c := hdfscluster.StartForTest(t, hdfscluster.Config{})
	client, err := hdfs.NewClient(hdfs.ClientOptions{Addresses: []string{c.NameNode}, User: "agora-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	put := func(name string, body []byte) {
		t.Helper()
		if err := client.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		w, err := client.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(body); err != nil {
			t.Fatal(err)
		}
		// A close right after the write may find the last block still
		// being reported by the DataNode: retry, as Hadoop's client does.
		for try := 0; ; try++ {
			err := w.Close()
			if err == nil {
				break
			}
			if !hdfs.IsErrReplicating(err) || try == 50 {
				t.Fatalf("close %s: %v", name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	put("/dist/job.conf", []byte("threads=4\n"))
	put("/dist/app.tar.gz", tarGz(t, entry{name: "app/run.sh", body: "#!/bin/sh\necho hi\n", mode: 0o755}))

	f := newTestFetcher(t, Config{})
	sandbox := t.TempDir()
	extract := true
	if log, err := fetch(t, f, sandbox,
		mesos.CommandInfo_URI{Value: c.URI("/dist/job.conf")},
		mesos.CommandInfo_URI{Value: c.URI("/dist/app.tar.gz"), Extract: &extract},
	); err != nil {
		t.Fatalf("fetch from HDFS: %v\n%s", err, log)
	}
	if got := mustRead(t, filepath.Join(sandbox, "job.conf")); got != "threads=4\n" {
		t.Errorf("job.conf = %q", got)
	}
	if got := mustRead(t, filepath.Join(sandbox, "app", "run.sh")); got != "#!/bin/sh\necho hi\n" {
		t.Errorf("app/run.sh = %q", got)
	}

	f = newTestFetcher(t, Config{HDFSNamenode: c.NameNode})
	sandbox = t.TempDir()
	if log, err := fetch(t, f, sandbox, mesos.CommandInfo_URI{Value: "hdfs:///dist/job.conf"}); err != nil {
		t.Fatalf("hdfs:/// with --hdfs_namenode: %v\n%s", err, log)
	}
	if got := mustRead(t, filepath.Join(sandbox, "job.conf")); got != "threads=4\n" {
		t.Errorf("job.conf through --hdfs_namenode = %q", got)
	}
	missing := c.URI("/dist/nope.jar")
	if _, err := fetch(t, f, t.TempDir(), mesos.CommandInfo_URI{Value: missing}); err == nil || !containsAll(err.Error(), missing) {
		t.Errorf("a missing HDFS file: %v, want an error naming %s", err, missing)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
