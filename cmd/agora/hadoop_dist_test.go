package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest"
)

// syncBuffer is a bytes.Buffer safe for the command's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestHadoopTaskTrackersRefusesBadInput(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"nothing", nil, "no JobTracker: give --jobtracker"},
		{"no distribution", []string{"--jobtracker=jt:9001"}, "no Hadoop distribution: give --hadoop_uri"},
		{"both", []string{"--jobtracker=jt:9001", "--hadoop_uri=http://h/hadoop.tgz", "--hadoop_home=/opt/hadoop"}, "give --hadoop_uri or --hadoop_home, not both"},
		{"both through -D", []string{"--jobtracker=jt:9001", "--hadoop_home=/opt/hadoop", "-D", "mapred.mesos.executor.uri=x.tgz"}, "not both"},
		{"flag and -D disagree", []string{"--jobtracker=jt:9001", "-D", "mapred.job.tracker=other:9001", "--hadoop_home=/opt/hadoop"}, "disagree"},
		{"bad -D", []string{"--jobtracker=jt:9001", "--hadoop_home=/opt/hadoop", "-D", "novalue"}, "not of the form key=value"},
		{"bad jobtracker", []string{"--jobtracker=jt", "--hadoop_home=/opt/hadoop"}, "not host:port"},
		{"relative home", []string{"--jobtracker=jt:9001", "--hadoop_home=hadoop"}, "not an absolute path"},
		{"bad sizing", []string{"--jobtracker=jt:9001", "--hadoop_home=/opt/hadoop", "-D", "mapred.mesos.slot.cpus=many"}, "mapred.mesos.slot.cpus"},
		{"arguments", []string{"--jobtracker=jt:9001", "--hadoop_home=/opt/hadoop", "extra"}, "unexpected arguments"},
		{"unknown flag", []string{"--hadoop_dir=/opt/hadoop"}, "flag provided but not defined"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out syncBuffer
			code := hadoopTaskTrackers(context.Background(), c.args, &out)
			if code != 2 || !strings.Contains(out.String(), c.want) {
				t.Fatalf("exit %d, output:\n%s\nwant exit 2 and %q", code, out.String(), c.want)
			}
		})
	}
	var out syncBuffer
	if code := hadoopTaskTrackers(context.Background(), []string{"--help"}, &out); code != 0 || !strings.Contains(out.String(), "--hadoop_uri=") {
		t.Errorf("--help: exit %d\n%s", code, out.String())
	}
}

// TestHadoopTaskTrackersLaunchesTrackers runs the command against an
// in-process cluster with a fake Hadoop home (a bin/hadoop script that
// copies its mapred-site.xml and waits): this checks the command's wiring
// of flags and -D properties into the launched tracker, not Hadoop.
func TestHadoopTaskTrackersLaunchesTrackers(t *testing.T) {
	base, err := os.MkdirTemp("/var/tmp", "agora-cli-hadoop-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	home := filepath.Join(base, "hadoop")
	if err := os.MkdirAll(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(base, "mapred-site.xml")
	script := "#!/bin/sh\n[ \"$1\" = tasktracker ] || exit 2\ncp \"$HADOOP_CONF_DIR/mapred-site.xml\" '" + marker + ".tmp'\nmv '" + marker + ".tmp' '" + marker + "'\nexec sleep 600\n"
	if err := os.WriteFile(filepath.Join(home, "bin", "hadoop"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	c := clustertest.Start(t, clustertest.Options{AgentResources: "cpus:4;mem:4096;disk:10000;ports:[31000-31001]"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- hadoopTaskTrackers(ctx, []string{
			"--master=" + c.MasterAddr, "--jobtracker=jt.example.com:9001", "--hadoop_home=" + home,
			"-D", "mapred.mesos.slot.mem=512", "-D", "mapred.mesos.tasktracker.mem=512",
			"-D", "mapred.mesos.slot.disk=0", "-D", "mapred.mesos.tasktracker.disk=0",
			"-D", "fs.default.name=hdfs://nn:8020", "-D", "mapred.map.child.java.opts=-Xmx300m",
		}, &out)
	}()
	deadline := time.Now().Add(60 * time.Second)
	var site []byte
	for {
		if site, err = os.ReadFile(marker); err == nil {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("the command exited %d:\n%s", code, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tracker started; output:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{
		"<name>mapred.job.tracker</name>\n    <value>jt.example.com:9001</value>",
		"<name>fs.default.name</name>\n    <value>hdfs://nn:8020</value>",
		"<name>mapred.map.child.java.opts</name>\n    <value>-Xmx300m</value>",
		"<name>mapred.tasktracker.map.tasks.maximum</name>\n    <value>2</value>",
		"<name>mapred.tasktracker.reduce.tasks.maximum</name>\n    <value>1</value>",
	} {
		if !bytes.Contains(site, []byte(want)) {
			t.Errorf("mapred-site.xml lacks %q:\n%s", want, site)
		}
	}
	// The offer has exactly two ports: both are the tracker's.
	for _, addr := range []string{"localhost:31000", "localhost:31001"} {
		if !bytes.Contains(site, []byte("<value>"+addr+"</value>")) {
			t.Errorf("mapred-site.xml lacks the address %s:\n%s", addr, site)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after the interrupt:\n%s", code, out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the command did not stop")
	}
	c.WaitFor("the tracker to be killed", func(st *clustertest.State) bool {
		for _, f := range st.Frameworks {
			if len(f.Tasks) > 0 {
				return false
			}
		}
		return true
	})
	if !strings.Contains(out.String(), "launching task tracker") {
		t.Errorf("the command did not log the launch:\n%s", out.String())
	}
}
