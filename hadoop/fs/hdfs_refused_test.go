package fs_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/hadoop/fs"
	"github.com/agora-cluster/agora/hadoop/job"
)

// A job whose hdfs:// input and output sit on a namenode that is not there
// is refused before anything runs, each problem naming the namenode.
func TestJobOnUnreachableNamenodeIsRefused(t *testing.T) {
	t.Setenv("HADOOP_CONF_DIR", "")
	t.Setenv("HADOOP_HOME", "")
	addr := clustertest.RefusedAddr(t)
	spec, err := job.ParseStreaming([]string{
		"-input", "hdfs://" + addr + "/user/agora/in",
		"-output", "hdfs:///user/agora/out", // no namenode at all
		"-mapper", job.IdentityMapper, "-reducer", job.IdentityReducer,
	}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	err = job.Validate(spec, fs.ResolverFor(0), nil)
	var refused *job.RefusedError
	if !errors.As(err, &refused) || len(refused.Problems) != 2 {
		t.Fatalf("validation: %v; want two problems", err)
	}
	if p := refused.Problems[0]; !strings.Contains(p, "hdfs://"+addr+"/user/agora/in") || !strings.Contains(p, "namenode "+addr) {
		t.Errorf("input problem %q should name the path and the namenode", p)
	}
	if p := refused.Problems[1]; !strings.Contains(p, "output hdfs:///user/agora/out") || !strings.Contains(p, "names no namenode") {
		t.Errorf("output problem %q should say hdfs:/// names no namenode", p)
	}
	t.Log(err)
}
