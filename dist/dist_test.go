package dist

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
)

func TestResolve(t *testing.T) {
	for _, tc := range []struct{ spec, want, err string }{
		{spec: "hadoop", want: "hadoop@1.2.1"},
		{spec: "hadoop@1.2.1", want: "hadoop@1.2.1"},
		{spec: " hdfs ", want: "hdfs@3.5.0"},
		{spec: "hadoop@2.7.0", err: `unknown version "2.7.0" of hadoop (known: 1.2.1)`},
		{spec: "storm", want: "storm@2.8.3"},
		{spec: "storm@1.2.3", err: `unknown version "1.2.3" of storm (known: 2.8.3)`},
		{spec: "spark", want: "spark@3.5.9"},
		{spec: "spark@4.0.0", err: `unknown version "4.0.0" of spark (known: 3.5.9)`},
		{spec: "hdoop", err: `unknown distribution "hdoop" (known: cassandra@5.0.9, hadoop@1.2.1, hdfs@3.5.0, kafka@4.4.0, spark@3.5.9, storm@2.8.3)`},
		{spec: "", err: "no distribution named"},
		{spec: "@1.2.1", err: "no distribution named"},
	} {
		d, err := Resolve(tc.spec)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Resolve(%q) = %v, %v; want error containing %q", tc.spec, d, err, tc.err)
			}
			continue
		}
		if err != nil || d.String() != tc.want {
			t.Errorf("Resolve(%q) = %v, %v; want %s", tc.spec, d, err, tc.want)
		}
	}
}

// Every known distribution has one default and a description with a POM
// that pins its versions and a bin/ to launch it.
func TestDescriptions(t *testing.T) {
	defaults := map[string]int{}
	for _, d := range Known() {
		if d.Default {
			defaults[d.Name]++
		}
		desc, err := d.description(nil)
		if err != nil {
			t.Fatal(err)
		}
		pom, _ := fs.ReadFile(desc, "pom.xml")
		if !strings.Contains(string(pom), "<version>"+d.Version+"</version>") {
			t.Errorf("%s: pom.xml does not pin version %s", d, d.Version)
		}
		if !strings.Contains(string(pom), "maven-dependency-plugin") {
			t.Errorf("%s: pom.xml does not pin maven-dependency-plugin", d)
		}
		bins, _ := fs.ReadDir(desc, "bin")
		if len(bins) == 0 {
			t.Errorf("%s: no bin/ launch scripts", d)
		}
	}
	for _, d := range Known() {
		if defaults[d.Name] != 1 {
			t.Errorf("%s has %d default versions, want 1", d.Name, defaults[d.Name])
		}
	}
}

// needMaven requires the jvm tier's Maven; these tests fetch from Maven
// Central (or its local cache), so not in -short.
func needMaven(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs Maven; not in -short")
	}
	_, err := exec.LookPath("mvn")
	if err != nil {
		err = fmt.Errorf("Maven is not installed (make test-deps installs it): %w", err)
	}
	tier.Need(t, tier.JVM, err)
}

// A real install with Maven: the home holds the jars, bin/ and conf/ and a
// manifest; a second install asks no registry (Maven is not even there);
// a changed jar is noticed and the home assembled again.
func TestInstallIsIdempotentAndOffline(t *testing.T) {
	needMaven(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d, _ := Resolve("hadoop")
	dir := t.TempDir()
	in := Installer{Dir: dir}
	home, err := in.Install(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if home != filepath.Join(dir, "hadoop-1.2.1") {
		t.Fatalf("home = %s", home)
	}
	for _, f := range []string{"lib/hadoop-core-1.2.1.jar", "lib/hadoop-streaming-1.2.1.jar", "bin/hadoop", ManifestFile} {
		if _, err := os.Stat(filepath.Join(home, f)); err != nil {
			t.Errorf("the home lacks %s: %v", f, err)
		}
	}
	if st, err := os.Stat(filepath.Join(home, "bin/hadoop")); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("bin/hadoop is not executable: %v %v", st, err)
	}
	if err := Verify(home); err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifest(home)
	if err != nil || m.Version != "1.2.1" || len(m.jars()) < 10 {
		t.Fatalf("manifest %+v, %v", m, err)
	}

	offline := Installer{Dir: dir, Maven: "/nonexistent/mvn"}
	if again, err := offline.Install(ctx, d); err != nil || again != home {
		t.Fatalf("second install without Maven = %s, %v; want %s from the cache", again, err, home)
	}

	jar := filepath.Join(home, "lib/hadoop-core-1.2.1.jar")
	if err := os.WriteFile(jar, []byte("not a jar"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Verify(home); err == nil || !strings.Contains(err.Error(), "lib/hadoop-core-1.2.1.jar") {
		t.Fatalf("Verify after a jar changed = %v; want an error naming the jar", err)
	}
	if _, err := offline.Install(ctx, d); err == nil {
		t.Fatal("a broken home was accepted without Maven to repair it")
	}
	if _, err := in.Install(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := Verify(home); err != nil {
		t.Fatalf("after repair: %v", err)
	}
	list, err := List(dir)
	if err != nil || len(list) != 1 || list[0].Home != home || list[0].Bytes < 1<<20 {
		t.Fatalf("List = %+v, %v", list, err)
	}
}

// An artifact Maven cannot fetch fails the install with its name, and
// leaves no home and no staging directory behind.
func TestInstallNamesMissingArtifact(t *testing.T) {
	needMaven(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pom := `<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>io.agora.dist</groupId><artifactId>broken</artifactId><version>0.0.1</version><packaging>pom</packaging>
<dependencies><dependency><groupId>io.agora.missing</groupId><artifactId>nothing-here</artifactId><version>0.0.1</version></dependency></dependencies>
<build><plugins><plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId><version>3.8.1</version></plugin></plugins></build></project>`
	in := Installer{Dir: t.TempDir(), descriptions: fstest.MapFS{
		"descriptions/broken/0.0.1/pom.xml":  {Data: []byte(pom)},
		"descriptions/broken/0.0.1/bin/true": {Data: []byte("#!/bin/sh\n")},
	}}
	_, err := in.Install(ctx, Dist{Name: "broken", Version: "0.0.1"})
	if err == nil || !strings.Contains(err.Error(), "io.agora.missing:nothing-here") {
		t.Fatalf("install of a missing artifact = %v; want an error naming io.agora.missing:nothing-here", err)
	}
	entries, _ := os.ReadDir(in.Dir)
	for _, e := range entries {
		if e.Name() != ".lock" {
			t.Errorf("left behind in the cache: %s", e.Name())
		}
	}
}

// Storm's home runs Storm: bin/storm starts the JVM with lib/ and the
// home's conf/ on the class path, the log4j2 configurations the daemons and
// workers are started with are there, and -c options are checked.
func TestStormHome(t *testing.T) {
	needMaven(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d, _ := Resolve("storm")
	home, err := Installer{Dir: t.TempDir()}.Install(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"lib/storm-server-2.8.3.jar", "lib/storm-client-2.8.3.jar", "lib/storm-shaded-deps-2.8.3.jar",
		"conf/storm.yaml", "log4j2/cluster.xml", "log4j2/worker.xml"} {
		if _, err := os.Stat(filepath.Join(home, f)); err != nil {
			t.Errorf("the home lacks %s: %v", f, err)
		}
	}
	storm := filepath.Join(home, "bin/storm")
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, storm, args...)
		cmd.WaitDelay = 10 * time.Second
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("version"); err != nil || !strings.HasPrefix(out, "Storm 2.8.3") {
		t.Errorf("bin/storm version = %q, %v; want Storm 2.8.3", out, err)
	}
	if out, err := run("classpath"); err != nil || strings.TrimSpace(out) != home+"/lib/*:"+home+"/conf" {
		t.Errorf("bin/storm classpath = %q, %v", out, err)
	}
	if out, err := run("supervisor", "-c"); err == nil || !strings.Contains(out, "-c needs key=value") {
		t.Errorf("bin/storm supervisor -c = %q, %v; want a refusal", out, err)
	}
}
