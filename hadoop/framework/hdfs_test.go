package framework_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/counters"
	"github.com/agora-cluster/agora/hadoop/fs"
	"github.com/agora-cluster/agora/hadoop/hadooptest"
	"github.com/agora-cluster/agora/hadoop/hdfscluster"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/terasort"
)

// startHDFS runs a real HDFS whose two DataNodes carry the agents' host
// names, with 1 MiB blocks placed at random (not on the writer's node), so
// each agent holds some of a file's blocks.
func startHDFS(t *testing.T) *hdfscluster.Cluster {
	t.Helper()
	return hdfscluster.StartForTest(t, hdfscluster.Config{
		DataNodeHosts: agentHosts, BlockSize: 1 << 20,
		Props: map[string]string{"dfs.namenode.block-placement-policy.default.prefer-local-node": "false"},
	})
}

// putSpread copies the local files of dir into HDFS under to, adding
// copies until blocks lie on every DataNode (random placement may put a
// few blocks on one; the test must not be trivially local). Only blocks of
// at least half a megabyte count: a file's short tail block is read by the
// split before it, whose hosts are those of its larger block, so a tail
// alone on a DataNode gives that node no map.
func putSpread(t *testing.T, c *hdfscluster.Cluster, dir, to string) {
	t.Helper()
	fsys, base, err := fs.Lookup(c.URI(to), 0)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	holders := map[string]bool{}
	for round := 0; round < 10; round++ {
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			name := fs.Join(base, fmt.Sprintf("r%d-%s", round, filepath.Base(f)))
			if err := fs.WriteFile(fsys, name, b); err != nil {
				t.Fatal(err)
			}
			blocks, err := fsys.Blocks(name)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range blocks {
				if b.Length < 1<<19 {
					continue
				}
				for _, h := range b.Hosts {
					holders[h] = true
				}
			}
		}
		if len(holders) == len(agentHosts) {
			return
		}
	}
	t.Fatalf("after 10 rounds every block is on %v", holders)
}

// readHDFSOutput reads the part files of an HDFS output directory.
func readHDFSOutput(t *testing.T, uri string) map[string]string {
	t.Helper()
	fsys, dir, err := fs.Lookup(uri, 0)
	if err != nil {
		t.Fatal(err)
	}
	names, err := fsys.Glob(fs.Join(dir, "part-*"))
	if err != nil || len(names) == 0 {
		t.Fatalf("part files in %s: %v %v", uri, names, err)
	}
	parts := map[string][]byte{}
	for _, n := range names {
		if parts[n], err = fs.ReadFile(fsys, n); err != nil {
			t.Fatal(err)
		}
	}
	return hadooptest.ParseOutput(t, parts)
}

// The native framework's word count reads its input from a real HDFS and
// writes its output there; every map runs on the agent that holds its
// block (delay scheduling waits for such a slot), and the blocks lie on
// both agents.
func TestWordCountOnHDFSRunsMapsWhereTheBlocksAre(t *testing.T) {
	needPython(t)
	c := startHDFS(t)
	e := startEnv(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	writeCorpus(t, filepath.Join(in, "a.txt"), 2<<20, 1)
	writeCorpus(t, filepath.Join(in, "b.txt"), 1<<20, 2)
	putSpread(t, c, in, "/wc/in")

	j := e.run(dir, wordcount(examples(t), c.URI("/wc/in"), c.URI("/wc/out"),
		"-D", conf.LocalityDelay+"=600000")...)
	if j.State != jobtracker.JobSucceeded {
		t.Fatalf("job %s: %s", j.State, j.Error)
	}
	// The output holds the counts of every copy put into HDFS.
	want := unixCounts(t, in)
	copies := 0
	fsys, base, _ := fs.Lookup(c.URI("/wc/in"), 0)
	if names, err := fsys.Glob(fs.Join(base, "*")); err == nil {
		copies = len(names) / 2
	}
	for w, n := range want {
		var k int
		fmt.Sscan(n, &k)
		want[w] = fmt.Sprint(k * copies)
	}
	compareCounts(t, readHDFSOutput(t, c.URI("/wc/out")), want)
	if ok, err := fs.Exists(fsys, "/wc/out/_SUCCESS"); !ok || err != nil {
		t.Errorf("no _SUCCESS on HDFS: %v", err)
	}

	d, err := e.cl.Job(context.Background(), j.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	blockHosts := map[string]bool{}
	maps := 0
	for _, task := range d.Tasks {
		if task.ID.Kind != job.Map {
			continue
		}
		maps++
		if len(task.Hosts) == 0 {
			t.Errorf("map %s has no block hosts", task.ID)
			continue
		}
		for _, h := range task.Hosts {
			blockHosts[h] = true
		}
		for _, a := range task.Attempts {
			if a.State == jobtracker.AttemptSucceeded && (!slices.Contains(task.Hosts, a.Host) || a.Locality != jobtracker.DataLocal) {
				t.Errorf("map %s ran on %s (%s); its block is on %v", task.ID, a.Host, a.Locality, task.Hosts)
			}
		}
	}
	if len(blockHosts) != 2 {
		t.Errorf("the maps' blocks are on %v, want both agents", blockHosts)
	}
	if got := j.Counters.Get(counters.JobGroup, counters.DataLocalMaps); got != int64(maps) {
		t.Errorf("DATA_LOCAL_MAPS = %d, want all %d maps", got, maps)
	}
}

// TeraGen, TeraSort and TeraValidate with every directory on a real HDFS.
func TestTeraChainOnHDFS(t *testing.T) {
	c := startHDFS(t)
	e := startEnv(t)
	const rows = 100000
	want, err := terasort.Generate(io.Discard, 0, rows, false)
	if err != nil {
		t.Fatal(err)
	}
	gen, out, report := c.URI("/tera/gen"), c.URI("/tera/out"), c.URI("/tera/report")
	e.submitSpec(terasort.GenSpec(rows, 3, gen))
	sort := terasort.SortSpec(gen, out, 2)
	sort.Conf.Set(conf.SplitMaxSize, "2000000")
	s := e.submitSpec(sort)
	if s.Maps.Total < 5 || s.Reduces.Total != 2 {
		t.Errorf("terasort: %d maps, %d reduces; want at least 5 and 2", s.Maps.Total, s.Reduces.Total)
	}
	e.submitSpec(terasort.ValidateSpec(out, report, rows, want))
	rep, err := terasort.ReadReport(report)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Records != rows || rep.Checksum != want {
		t.Errorf("teravalidate on HDFS: %d records, checksum %v (want %v), errors %v", rep.Records, rep.Checksum, want, rep.Errors)
	}
}
