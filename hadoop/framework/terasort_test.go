package framework_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/terasort"
)

// TestTeraSortOnCluster: TeraGen writes 200,000 records, TeraSort sorts
// them on the cluster with a total-order partitioner, TeraValidate finds
// the output globally sorted with TeraGen's checksum.
func TestTeraSortOnCluster(t *testing.T) {
	e := startEnv(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	ctx := context.Background()
	sum, err := terasort.GenerateDir(ctx, in, 200000, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	spec := terasort.SortSpec(in, out, 3)
	spec.Conf.Set(conf.SplitMaxSize, "4000000")
	info, err := e.cl.Submit(ctx, client.SubmitRequest{Spec: &spec})
	if err != nil {
		t.Fatal(err)
	}
	j := e.wait(info.ID)
	if j.State != jobtracker.JobSucceeded {
		t.Fatalf("terasort %s: %s", j.State, j.Error)
	}
	if j.Maps.Total < 5 || j.Reduces.Total != 3 {
		t.Errorf("%d maps, %d reduces; want at least 5 and 3", j.Maps.Total, j.Reduces.Total)
	}
	rep, err := terasort.Validate(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Records != 200000 || rep.Checksum != sum {
		t.Errorf("teravalidate: %d records, checksum %v (want %v), errors %v", rep.Records, rep.Checksum, sum, rep.Errors)
	}
}
