package terasort_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/agora-cluster/agora/hadoop/local"
	"github.com/agora-cluster/agora/hadoop/terasort"
)

// BenchmarkTeraSort sorts 1 million records (100 MB) with the local runner
// on every core; compare with LC_ALL=C sort of the same rows generated with
// ASCII records. Run: go test -run '^$' -bench TeraSort ./hadoop/terasort
func BenchmarkTeraSort(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	in := filepath.Join(dir, "in")
	sum, err := terasort.GenerateDir(ctx, in, 1000000, 4, false)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1000000 * terasort.RecordLen)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out := filepath.Join(dir, fmt.Sprintf("out%d", i))
		if _, err := local.Run(ctx, terasort.SortSpec(in, out, 4), local.Options{WorkDir: filepath.Join(dir, "tt")}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		rep, err := terasort.Validate(ctx, out)
		if err != nil || !rep.OK() || rep.Checksum != sum {
			b.Fatalf("invalid output: %v %v", err, rep.Errors)
		}
		b.StartTimer()
	}
}
