package containerizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInitBesideTakesOnlyTheInitItWasBuiltWith: the stand-alone init beside
// the binary is used only when its content is the one the binary names.
func TestInitBesideTakesOnlyTheInitItWasBuiltWith(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "agora")
	if _, err := initBeside(exe, "00"); !os.IsNotExist(err) {
		t.Fatalf("no agora-init beside the binary: got %v, want a not-exist error", err)
	}
	init := filepath.Join(dir, InitBinaryName)
	if err := os.WriteFile(init, []byte("the init of this build"), 0o755); err != nil {
		t.Fatal(err)
	}
	want, err := fileSHA256(init)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := initBeside(exe, want); err != nil || got != init {
		t.Fatalf("the init this binary was built with: got %q, %v; want %q", got, err, init)
	}
	if err := os.WriteFile(init, []byte("the init of another build"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := initBeside(exe, want)
	if err == nil || !strings.Contains(err.Error(), "another build") {
		t.Fatalf("an init of another build: got %q, %v; want an error naming another build", got, err)
	}
}
