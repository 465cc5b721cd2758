package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/dist"
)

// Without --runtime, `agora storm submit` submits to real Storm when a
// Nimbus is named or a Storm distribution is installed, and otherwise runs
// the topology natively on the cluster of --master (AGORA_MASTER, the
// default agora dev's), saying so on stderr. Nothing listens at the
// addresses, so each choice shows in the error it ends with.
func TestStormSubmitDefaultRuntime(t *testing.T) {
	refused := clustertest.RefusedAddr(t)
	t.Setenv("AGORA_STORM_NIMBUS", "")
	installed := t.TempDir()
	spec, err := dist.Resolve("storm")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(installed, spec.Dir(), "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bin, "storm"), []byte("#!/bin/sh\n"), 0o755)
	// storm.py in the resources, so that a submission to Storm gets as far
	// as Nimbus without a Storm home.
	path := badExample(t, "name: \"wordcount\"", "name: \"wordcount\"")
	os.WriteFile(filepath.Join(filepath.Dir(path), "resources", "storm.py"), []byte("# storm.py\n"), 0o644)
	const native = "running the topology on agora's native runtime on the cluster of "
	for _, tc := range []struct {
		name, distDir, master string
		args                  []string
		want, notWant         string
	}{
		{"no distribution, --master", t.TempDir(), "", []string{"--master", refused}, native + refused, "nimbus at"},
		{"no distribution, AGORA_MASTER", t.TempDir(), refused, nil, native + refused, "nimbus at"},
		{"no distribution, --nimbus", t.TempDir(), "", []string{"--nimbus", refused}, "nimbus at " + refused + " is not reachable", native},
		{"installed, --master", installed, "", []string{"--master", refused}, "find Nimbus through master " + refused, native},
		{"installed, --runtime native", installed, "", []string{"--master", refused, "--runtime", "native"}, "agora storm submit: ", native},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AGORA_DIST_DIR", tc.distDir)
			t.Setenv("AGORA_MASTER", tc.master)
			code, _, stderr := runStormCmd(stormSubmitCmd, append([]string{path}, tc.args...)...)
			if code == 0 || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, tc.notWant) {
				t.Errorf("exit %d, stderr %q; want an error with %q and without %q", code, stderr, tc.want, tc.notWant)
			}
		})
	}
}

// agora dev's banner names the runtime submit takes: native without a
// distribution, real Storm with one.
func TestStormDevLine(t *testing.T) {
	t.Setenv("AGORA_DIST_DIR", t.TempDir())
	if line := stormDevLine(); !strings.Contains(line, "native runtime: no Storm distribution installed") {
		t.Errorf("without a distribution: %q", line)
	}
	installed := t.TempDir()
	spec, _ := dist.Resolve("storm")
	bin := filepath.Join(installed, spec.Dir(), "bin")
	os.MkdirAll(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "storm"), []byte("#!/bin/sh\n"), 0o755)
	t.Setenv("AGORA_DIST_DIR", installed)
	if line := stormDevLine(); !strings.Contains(line, "real Storm from "+filepath.Join(installed, spec.Dir())) {
		t.Errorf("with a distribution: %q", line)
	}
}
