package terasort_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/local"
	"github.com/agora-cluster/agora/hadoop/terasort"
)

// TeraGen → TeraSort on the local runner → TeraValidate.
func TestTeraGenSortValidate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "tera-in"), filepath.Join(dir, "tera-out")
	const rows = 100000
	sum, err := terasort.GenerateDir(ctx, in, rows, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	spec := terasort.SortSpec(in, out, 5)
	spec.Conf.Set(conf.SplitMaxSize, "1000000") // about 10 maps
	res, err := local.Run(ctx, spec, local.Options{MapSlots: 4, ReduceSlots: 3, WorkDir: filepath.Join(dir, "tt")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Splits < 10 {
		t.Fatalf("%d maps", res.Splits)
	}
	rep, err := terasort.Validate(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("not sorted: %v", rep.Errors)
	}
	if rep.Records != rows || rep.Checksum != sum || rep.Files != 5 {
		t.Fatalf("report %+v, want %d records and checksum %v", rep, rows, sum)
	}
	// The input really was unsorted, so the check is not vacuous.
	if rep, _ := terasort.Validate(ctx, in); rep.OK() {
		t.Fatal("TeraGen output validated as sorted")
	}
}
