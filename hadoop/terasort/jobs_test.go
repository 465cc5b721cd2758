package terasort_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/hadoop/local"
	"github.com/agora-cluster/agora/hadoop/terasort"
)

// TestTeraGenValidateJobs runs TeraGen and TeraValidate as jobs (the
// built-in programs, in the engine) and checks them against the local
// generator and validator: the same bytes, the same checksum, and
// Hadoop's errors for unsorted data.
func TestTeraGenValidateJobs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const rows = 12345
	res, err := local.Run(ctx, terasort.GenSpec(rows, 4, filepath.Join(dir, "gen")), local.Options{WorkDir: filepath.Join(dir, "tt")})
	if err != nil {
		t.Fatal(err)
	}
	want, err := terasort.GenerateDir(ctx, filepath.Join(dir, "local"), rows, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Splits != 4 || terasort.GenChecksum(res.Counters) != want {
		t.Fatalf("%d maps, checksum %v; want 4 and %v", res.Splits, terasort.GenChecksum(res.Counters), want)
	}
	var joined []byte
	parts, _ := filepath.Glob(filepath.Join(dir, "gen", "part-*"))
	for _, p := range parts {
		b, _ := os.ReadFile(p)
		if len(b) != rows/4*terasort.RecordLen && p != parts[len(parts)-1] {
			t.Errorf("%s has %d bytes; rows split as Hadoop's TeraGen splits them give %d", p, len(b), rows/4*terasort.RecordLen)
		}
		joined = append(joined, b...)
	}
	whole, _ := os.ReadFile(filepath.Join(dir, "local", "part-00000"))
	if len(parts) != 4 || !bytes.Equal(joined, whole) {
		t.Fatalf("TeraGen's job wrote %d files, %d bytes, not the generator's %d bytes", len(parts), len(joined), len(whole))
	}

	// Unsorted: TeraValidate reports misorders, Hadoop's way.
	if _, err := local.Run(ctx, terasort.ValidateSpec(filepath.Join(dir, "gen"), filepath.Join(dir, "report1"), rows, want), local.Options{WorkDir: filepath.Join(dir, "tt")}); err != nil {
		t.Fatal(err)
	}
	rep, err := terasort.ReadReport(filepath.Join(dir, "report1"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Records != rows || rep.Checksum != want || !strings.HasPrefix(rep.Errors[0], "misorder in part-0000") {
		t.Fatalf("report of unsorted data: %d rows, checksum %v, errors %q", rep.Records, rep.Checksum, rep.Errors[:min(len(rep.Errors), 2)])
	}

	// Sorted by TeraSort: no errors.
	if _, err := local.Run(ctx, terasort.SortSpec(filepath.Join(dir, "gen"), filepath.Join(dir, "sorted"), 3), local.Options{WorkDir: filepath.Join(dir, "tt")}); err != nil {
		t.Fatal(err)
	}
	if _, err := local.Run(ctx, terasort.ValidateSpec(filepath.Join(dir, "sorted"), filepath.Join(dir, "report2"), rows, want), local.Options{WorkDir: filepath.Join(dir, "tt")}); err != nil {
		t.Fatal(err)
	}
	rep, err = terasort.ReadReport(filepath.Join(dir, "report2"))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Records != rows || rep.Checksum != want {
		t.Fatalf("report of sorted data: %d rows, checksum %v (want %v), errors %q", rep.Records, rep.Checksum, want, rep.Errors)
	}

	// Files sorted inside but in the wrong order: bad key partitioning,
	// and a row count and checksum that are not what was expected.
	os.Rename(filepath.Join(dir, "sorted", "part-00000"), filepath.Join(dir, "sorted", "part-00009"))
	if _, err := local.Run(ctx, terasort.ValidateSpec(filepath.Join(dir, "sorted"), filepath.Join(dir, "report3"), rows+1, want.Add(terasort.Uint128{Lo: 1})), local.Options{WorkDir: filepath.Join(dir, "tt")}); err != nil {
		t.Fatal(err)
	}
	rep, err = terasort.ReadReport(filepath.Join(dir, "report3"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) != 3 || !strings.HasPrefix(rep.Errors[0], "bad key partitioning:\n  file part-00002:end key ") ||
		!strings.HasPrefix(rep.Errors[1], "row count ") || !strings.HasPrefix(rep.Errors[2], "checksum ") {
		t.Fatalf("errors %q", rep.Errors)
	}
}
