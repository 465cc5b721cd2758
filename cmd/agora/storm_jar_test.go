package main

import (
	"archive/zip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/clustertest"
)

// writeJar writes a zip holding the named entries.
func writeJar(t *testing.T, path string, entries ...string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	z := zip.NewWriter(f)
	for _, e := range entries {
		if _, err := z.Create(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// A JAR is refused before any JVM starts when it is not there or not a
// jar, without --class or without that class, with a Storm home lacking
// the client, with --runtime native or --name; an unreachable Nimbus is
// named. Nothing here needs a JVM.
func TestStormSubmitJarRefusals(t *testing.T) {
	refused := clustertest.RefusedAddr(t)
	dir := t.TempDir()
	jar := filepath.Join(dir, "app.jar")
	writeJar(t, jar, "com/x/Main.class")
	notJar := filepath.Join(dir, "text.jar")
	os.WriteFile(notJar, []byte("not a zip"), 0o644)
	home := filepath.Join(dir, "home")
	os.MkdirAll(filepath.Join(home, "lib"), 0o755)
	writeJar(t, filepath.Join(home, "lib", "storm-client-2.8.3.jar"))
	empty := t.TempDir()
	base := []string{"--nimbus", refused, "--storm_home", home}
	for _, tc := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"missing JAR", append([]string{filepath.Join(dir, "none.jar"), "--class", "com.x.Main"}, base...), 1, "none.jar: no such file"},
		{"no --class", append([]string{jar}, base...), 1, "a JAR needs --class"},
		{"not a jar", append([]string{notJar, "--class", "com.x.Main"}, base...), 1, "text.jar is not a jar"},
		{"class not in the JAR", append([]string{jar, "--class", "com.x.Other"}, base...), 1, "holds no class com.x.Other (com/x/Other.class)"},
		{"home without the client", []string{jar, "--class", "com.x.Main", "--nimbus", refused, "--storm_home", empty}, 1, "has no lib/storm-client-*.jar"},
		{"--runtime native", append([]string{jar, "--class", "com.x.Main", "--runtime", "native"}, base...), 2, "a JAR runs on Storm only"},
		{"--name", append([]string{jar, "--class", "com.x.Main", "--name", "n"}, base...), 2, "--name does not apply to a JAR"},
		{"--class with a Flux file", append([]string{wordcountYAML, "--class", "com.x.Main"}, base...), 2, "--class applies to a JAR only"},
		{"Nimbus unreachable", append([]string{jar, "--class", "com.x.Main"}, base...), 1, "agora storm submit: nimbus at " + refused + " is not reachable"},
		{"JAR after the flags", append(append([]string{"--class", "com.x.Main"}, base...), jar, "arg"), 1, "nimbus at " + refused + " is not reachable"},
	} {
		code, _, stderr := runStormCmd(stormSubmitCmd, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.err) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tc.name, code, stderr, tc.code, tc.err)
		}
	}
}

// The JVM gets Nimbus's address and the -c keys in storm.options as
// upstream's script writes it (each key=value URL-encoded, then joined by
// commas), the JAR as storm.jar and after the home's lib/ on the class
// path, and the main class's arguments last.
func TestStormJarJavaCommand(t *testing.T) {
	j := stormJar{jar: "/apps/app.jar", class: "com.x.Main", args: []string{"top", "1"}, home: "/storm",
		conf: stormConf{"topology.workers": float64(2), "a.b": "x,y"}}
	cmd, err := j.javaCommand(t.Context(), "nimbus.example:6627")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(cmd.Args[1:], " ")
	opts := "-Dstorm.options=" + strings.Join([]string{url.QueryEscape(`a.b="x,y"`), url.QueryEscape(`nimbus.seeds=["nimbus.example"]`),
		url.QueryEscape("nimbus.thrift.port=6627"), url.QueryEscape("topology.workers=2")}, ",")
	for _, want := range []string{opts, "-cp /storm/lib/*:/storm/conf:/apps/app.jar", "-Dstorm.jar=/apps/app.jar", "com.x.Main top 1"} {
		if !strings.Contains(got, want) {
			t.Errorf("java %s\nlacks %s", got, want)
		}
	}
	if !strings.HasSuffix(got, "com.x.Main top 1") {
		t.Errorf("java %s: the main class and its arguments should come last", got)
	}
	if _, err := j.javaCommand(t.Context(), "nimbus-without-port"); err == nil {
		t.Error("a Nimbus address without a port was accepted")
	}
}
