package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/dist"
	"github.com/agora-cluster/agora/dist/disttest"
	"github.com/agora-cluster/agora/hadoop/fs"
)

func TestDistCommandsRefuseBadInput(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"nothing", nil, 2, "name a distribution to install"},
		{"unknown", []string{"hdoop"}, 2, `unknown distribution "hdoop" (known: cassandra@5.0.9, hadoop@1.2.1, hdfs@3.5.0, kafka@4.4.0, spark@3.5.9, storm@2.8.3)`},
		{"unknown version", []string{"hadoop@0.20"}, 2, `unknown version "0.20" of hadoop (known: 1.2.1)`},
	} {
		var out, errOut syncBuffer
		code := distInstall(context.Background(), append([]string{"--dist_dir", t.TempDir()}, c.args...), &out, &errOut)
		if code != c.code || !strings.Contains(errOut.String(), c.want) || out.String() != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d and %q", c.name, code, out.String(), errOut.String(), c.code, c.want)
		}
	}
	var out, errOut syncBuffer
	if code := distList([]string{"--dist_dir", t.TempDir(), "--json"}, &out, &errOut); code != 0 || strings.TrimSpace(out.String()) != "[]" {
		t.Errorf("list of an empty cache: exit %d, %q", code, out.String())
	}
	out = syncBuffer{}
	if code := distKnown([]string{"--json"}, &out, &errOut); code != 0 {
		t.Fatalf("known: exit %d", code)
	}
	var known []dist.Dist
	if err := json.Unmarshal([]byte(out.String()), &known); err != nil || len(known) != len(dist.Known()) {
		t.Errorf("known --json = %q (%v)", out.String(), err)
	}
}

func TestHadoopJobTrackerRefusesBadInput(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no distribution", nil, "no Hadoop distribution: give --hadoop_home"},
		{"address given", []string{"--hadoop_home=/opt/hadoop", "-D", "mapred.job.tracker=a:1"}, "comes from its offer"},
		{"bad memory", []string{"--hadoop_home=/opt/hadoop", "-D", "agora.hadoop.jobtracker.mem=10"}, "at least 64 MB"},
		{"bad cpus", []string{"--hadoop_home=/opt/hadoop", "-D", "agora.hadoop.jobtracker.cpus=0"}, "must be above 0"},
		{"relative home", []string{"--hadoop_home=hadoop"}, "not an absolute path"},
	} {
		var out, errOut syncBuffer
		if code := hadoopJobTracker(context.Background(), c.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 and %q", c.name, code, errOut.String(), c.want)
		}
	}
}

// agora hdfs up starts a real HDFS, prints its NameNode, serves files, and
// stops everything when interrupted.
func TestHDFSUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an HDFS NameNode and DataNodes (JVMs); not in -short")
	}
	tier.Need(t, tier.JVM, tier.JavaErr())
	disttest.Home(t, "hdfs")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- hdfsUp(ctx, []string{"--datanodes", "2", "--hosts", "127.0.0.1,127.0.0.2"}, pw, &errOut)
		pw.Close()
	}()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	var line string
	select {
	case line = <-lines:
	case code := <-done:
		t.Fatalf("hdfs up exited %d before printing the NameNode:\n%s", code, errOut.String())
	case <-time.After(3 * time.Minute):
		stopUp(t, cancel, done)
		t.Fatalf("hdfs up printed nothing in 3 minutes:\n%s", errOut.String())
	}
	f := strings.Fields(line)
	if len(f) != 5 || f[0] != "namenode" || f[3] != "conf" {
		stopUp(t, cancel, done)
		t.Fatalf("hdfs up printed %q", line)
	}
	fsys, p, err := fs.Lookup("hdfs://"+f[1]+"/hello.txt", 0)
	if err == nil {
		err = fs.WriteFile(fsys, p, []byte("hello"))
	}
	if err != nil {
		t.Errorf("write to the HDFS at %s: %v", f[1], err)
	} else if b, err := fs.ReadFile(fsys, p); err != nil || string(b) != "hello" {
		t.Errorf("read back %q, %v", b, err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("hdfs up exited %d:\n%s", code, errOut.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("hdfs up did not stop within a minute of the interrupt")
	}
}

// stopUp interrupts `agora hdfs up` and waits (bounded) for it to stop
// its daemons.
func stopUp(t *testing.T, cancel func(), done <-chan int) {
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Error("hdfs up did not stop within a minute of the interrupt")
	}
}
