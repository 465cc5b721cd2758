package framework_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/terasort"
)

// TestTeraChainOnCluster runs the whole TeraSort benchmark on the
// cluster: TeraGen (a map-only job of 4 maps) writes 200,000 records,
// TeraSort sorts them with a total-order partitioner, TeraValidate (maps
// per file, one reduce) finds them globally sorted, 200,000 rows, with
// the checksum TeraGen counted, which is also the local generator's.
func TestTeraChainOnCluster(t *testing.T) {
	e := startEnv(t)
	dir := t.TempDir()
	gen, out, report := filepath.Join(dir, "gen"), filepath.Join(dir, "out"), filepath.Join(dir, "report")
	const rows = 200000
	want, err := terasort.Generate(io.Discard, 0, rows, false)
	if err != nil {
		t.Fatal(err)
	}
	g := e.submitSpec(terasort.GenSpec(rows, 4, gen))
	if g.Maps.Total != 4 || g.Reduces.Total != 0 || terasort.GenChecksum(g.Counters) != want {
		t.Errorf("teragen: %d maps, %d reduces, checksum %v; want 4, 0 and %v", g.Maps.Total, g.Reduces.Total, terasort.GenChecksum(g.Counters), want)
	}
	sort := terasort.SortSpec(gen, out, 3)
	sort.Conf.Set(conf.SplitMaxSize, "4000000")
	s := e.submitSpec(sort)
	if s.Maps.Total < 5 || s.Reduces.Total != 3 {
		t.Errorf("terasort: %d maps, %d reduces; want at least 5 and 3", s.Maps.Total, s.Reduces.Total)
	}
	v := e.submitSpec(terasort.ValidateSpec(out, report, rows, want))
	if v.Maps.Total != 3 || v.Reduces.Total != 1 {
		t.Errorf("teravalidate: %d maps, %d reduces; want 3 (one per file) and 1", v.Maps.Total, v.Reduces.Total)
	}
	rep, err := terasort.ReadReport(report)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Records != rows || rep.Checksum != want {
		t.Errorf("teravalidate: %d records, checksum %v (want %v), errors %v", rep.Records, rep.Checksum, want, rep.Errors)
	}
	if local, err := terasort.Validate(context.Background(), out); err != nil || !local.OK() || local.Checksum != want {
		t.Errorf("local validation of the sorted output: %+v %v", local, err)
	}
	t.Logf("teragen %.1fs, terasort %.1fs, teravalidate %.1fs", g.Finish.Sub(g.Submitted).Seconds(), s.Finish.Sub(s.Submitted).Seconds(), v.Finish.Sub(v.Submitted).Seconds())
}

// TestTeraChain10M is the TeraSort benchmark at 1 GB on two agents:
// TeraGen of 10,000,000 records, TeraSort, TeraValidate, each on the
// cluster. The report must have no errors, 10,000,000 rows and TeraGen's
// checksum (the one Hadoop's TeraGen gives 10M rows). It takes about half
// a minute on two cores; `agora bench hadoop terachain` times it.
func TestTeraChain10M(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GB of TeraSort: not in -short")
	}
	e := startEnv(t)
	dir, err := os.MkdirTemp("/var/tmp", "agora-terachain-") // tasks may have a /tmp of their own
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	gen, out, report := filepath.Join(dir, "gen"), filepath.Join(dir, "out"), filepath.Join(dir, "report")
	const rows = 10000000
	want := terasort.Uint128{Lo: 0x4c49607ac53602}
	g := e.submitSpec(terasort.GenSpec(rows, 2, gen))
	if got := terasort.GenChecksum(g.Counters); got != want {
		t.Errorf("teragen checksum %v, want %v", got, want)
	}
	s := e.submitSpec(terasort.SortSpec(gen, out, 2))
	os.RemoveAll(gen)
	v := e.submitSpec(terasort.ValidateSpec(out, report, rows, want))
	rep, err := terasort.ReadReport(report)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Records != rows || rep.Checksum != want {
		t.Errorf("teravalidate: %d records, checksum %v (want %v), errors %v", rep.Records, rep.Checksum, want, rep.Errors)
	}
	t.Logf("teragen %.1fs (%d maps), terasort %.1fs (%d maps, %d reduces), teravalidate %.1fs",
		g.Finish.Sub(g.Submitted).Seconds(), g.Maps.Total, s.Finish.Sub(s.Submitted).Seconds(), s.Maps.Total, s.Reduces.Total, v.Finish.Sub(v.Submitted).Seconds())
}

// submitSpec submits a job spec and waits for it to succeed.
func (e *env) submitSpec(spec job.Spec) client.JobInfo {
	e.t.Helper()
	info, err := e.cl.Submit(context.Background(), client.SubmitRequest{Spec: &spec})
	if err != nil {
		e.t.Fatalf("submit %s: %v", spec.Name(), err)
	}
	j := e.wait(info.ID)
	if j.State != jobtracker.JobSucceeded {
		e.t.Fatalf("%s %s: %s", spec.Name(), j.State, j.Error)
	}
	return j
}
