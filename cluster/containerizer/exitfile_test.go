package containerizer

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/agora-cluster/agora/cluster/containerizer/containerinit"
)

// An exit status is only ever read from a whole file the init wrote: a
// missing, empty, torn or damaged file is an unknown exit, never exit 0.
func TestExitFileUnknownUnlessWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, exitFileName)
	for _, tc := range []struct {
		content string // "-" for no file
		want    Exit
		errHas  string
	}{
		{"-", Exit{Unknown: true}, "missing"},
		{"", Exit{Unknown: true}, "torn"},
		{"0", Exit{Unknown: true}, "torn"}, // no newline: cut short
		{"25", Exit{Unknown: true}, "torn"},
		{"x\n", Exit{Unknown: true}, "torn"},
		{string(containerinit.ExitFileContent(0)), Exit{}, ""},
		{string(containerinit.ExitFileContent(3 << 8)), Exit{Code: 3}, ""},
		{string(containerinit.ExitFileContent(uint32(syscall.SIGKILL))), Exit{Signal: syscall.SIGKILL}, ""},
	} {
		os.Remove(path)
		if tc.content != "-" {
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := exitFromFile(path)
		if got != tc.want {
			t.Errorf("file %q: exit %+v, want %+v", tc.content, got, tc.want)
		}
		if tc.errHas == "" && err != nil || tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)) {
			t.Errorf("file %q: error %v, want one saying %q", tc.content, err, tc.errHas)
		}
		if got.Success() && tc.want != (Exit{}) {
			t.Errorf("file %q reads as a clean exit", tc.content)
		}
	}
}

// memory.swap.max is set where the kernel accounts swap; a kernel without
// swap accounting (no such file) is "not supported", and a file that
// cannot be written is an error naming it.
func TestLimitSwap(t *testing.T) {
	dir := t.TempDir()
	if err := limitSwap(dir, "0"); err != nil {
		t.Fatalf("no memory.swap.max (swap not accounted): %v, want nil", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "memory.swap.max")); err == nil {
		t.Fatal("limitSwap created memory.swap.max where the kernel has none")
	}
	file := filepath.Join(dir, "memory.swap.max")
	if err := os.WriteFile(file, []byte("max\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := limitSwap(dir, "0"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); string(b) != "0" {
		t.Fatalf("memory.swap.max = %q, want 0", b)
	}
	os.Remove(file)
	if err := os.Mkdir(file, 0o755); err != nil { // cannot be written
		t.Fatal(err)
	}
	if err := limitSwap(dir, "0"); err == nil || !strings.Contains(err.Error(), "memory.swap.max") {
		t.Fatalf("unwritable memory.swap.max: %v, want an error naming it", err)
	}
}
