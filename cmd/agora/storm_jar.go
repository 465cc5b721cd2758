package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	stormclient "github.com/agora-cluster/agora/storm/client"
)

// stormJarTimeout bounds a JAR's main class: a JVM's start, the
// topology's construction and StormSubmitter's upload and submission.
const stormJarTimeout = 5 * time.Minute

// stormJar is a topology JAR to submit as Storm's `storm jar` does: its
// main class builds the topology and calls StormSubmitter, which uploads
// the JAR (-Dstorm.jar) to the Nimbus named in -Dstorm.options.
type stormJar struct {
	jar, class string
	args       []string // the main class's arguments
	home       string   // the Storm home whose lib/ is the class path
	conf       stormConf
}

// checkStormJar refuses, before any JVM starts, a JAR that is not there
// or not a zip, a missing --class or one the JAR does not hold, and a
// Storm home without the client's classes.
func checkStormJar(j stormJar) error {
	if j.class == "" {
		return errors.New("a JAR needs --class, its main class (the one that calls StormSubmitter)")
	}
	z, err := zip.OpenReader(j.jar)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("JAR %s: no such file", j.jar)
		}
		return fmt.Errorf("JAR %s is not a jar: %v", j.jar, err)
	}
	defer z.Close()
	entry := strings.ReplaceAll(j.class, ".", "/") + ".class"
	if !slices.ContainsFunc(z.File, func(f *zip.File) bool { return f.Name == entry }) {
		return fmt.Errorf("JAR %s holds no class %s (%s)", j.jar, j.class, entry)
	}
	if j.home == "" {
		return errors.New("a JAR's main class runs on a Storm home's classes: none is installed (agora dist install storm; --storm_home)")
	}
	if libs, _ := filepath.Glob(filepath.Join(j.home, "lib", "storm-client-*.jar")); len(libs) == 0 {
		return fmt.Errorf("Storm home %s has no lib/storm-client-*.jar (agora dist install storm)", j.home)
	}
	return nil
}

// stormOptions is -Dstorm.options as upstream's script writes it: each
// key=value URL-encoded, joined by commas; values are JSON, which Storm
// reads back as YAML.
func stormOptions(conf map[string]any) string {
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v, _ := json.Marshal(conf[k])
		parts[i] = url.QueryEscape(k + "=" + string(v))
	}
	return strings.Join(parts, ",")
}

// javaCommand is the JVM that runs the main class: the JAR after the
// home's lib/ and conf/ on the class path, Nimbus's address and the -c
// keys in storm.options (StormSubmitter adds them to the topology's
// configuration), and the JAR as storm.jar.
func (j stormJar) javaCommand(ctx context.Context, nimbus string) (*exec.Cmd, error) {
	host, port, err := net.SplitHostPort(nimbus)
	if err != nil {
		return nil, fmt.Errorf("nimbus %q is not HOST:PORT", nimbus)
	}
	jar, err := filepath.Abs(j.jar)
	if err != nil {
		return nil, err
	}
	opts := map[string]any{}
	for k, v := range j.conf {
		opts[k] = v
	}
	opts["nimbus.seeds"] = []string{host}
	opts["nimbus.thrift.port"] = json.Number(port)
	java := "java"
	if h := os.Getenv("JAVA_HOME"); h != "" {
		java = filepath.Join(h, "bin", "java")
	}
	args := []string{"-client", "-Ddaemon.name=",
		"-Dstorm.options=" + stormOptions(opts),
		"-Dstorm.home=" + j.home, "-Dstorm.log.dir=" + filepath.Join(os.TempDir(), "storm-client-logs"),
		"-Dstorm.conf.file=", "-Dlog4j.configurationFile=" + filepath.Join(j.home, "log4j2", "cluster.xml"),
		"-cp", filepath.Join(j.home, "lib", "*") + ":" + filepath.Join(j.home, "conf") + ":" + jar,
		"-Dstorm.jar=" + jar, "-Dstorm.dependency.jars=", "-Dstorm.dependency.artifacts={}",
		j.class}
	return exec.CommandContext(ctx, java, append(args, j.args...)...), nil
}

// mainError finds why the main class failed in its output: the
// exception that ended it (Nimbus's AlreadyAliveException,
// InvalidTopologyException and the like, with their message).
var mainError = regexp.MustCompile(`(?m)^Exception in thread "main" (.*)$`)

// submitJar runs the JAR's main class against nimbus (Nimbus answering
// first, so that an unreachable one is a plain error rather than a JVM's
// stack trace) and returns the names of the topologies that appeared.
func submitJar(ctx context.Context, c *stormclient.Client, j stormJar, stderr io.Writer) ([]string, error) {
	before, err := c.ClusterInfo(ctx)
	if err != nil {
		return nil, err
	}
	cmd, err := j.javaCommand(ctx, c.Addr())
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(stderr, &out)
	cmd.Stderr = cmd.Stdout
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("main class %s did not end within %s", j.class, stormJarTimeout)
		}
		why := ""
		if m := mainError.FindStringSubmatch(out.String()); m != nil {
			why = ": " + strings.TrimSpace(m[1])
		}
		return nil, fmt.Errorf("main class %s of %s failed (%v)%s", j.class, j.jar, err, why)
	}
	after, err := c.ClusterInfo(ctx)
	if err != nil {
		return nil, err
	}
	var added []string
	for _, t := range after.Topologies {
		if !slices.ContainsFunc(before.Topologies, func(b stormclient.TopologySummary) bool { return b.ID == t.ID }) {
			added = append(added, t.Name)
		}
	}
	return added, nil
}

// stormSubmitJarCmd is `agora storm submit JAR --class MAIN [ARGS...]`.
func stormSubmitJarCmd(j stormJar, nimbus stormTarget, asJSON bool, stdout, stderr io.Writer) int {
	if err := checkStormJar(j); err != nil {
		return stormFailure(stderr, "submit", err)
	}
	c, err := nimbus.client()
	if err != nil {
		return stormFailure(stderr, "submit", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), stormJarTimeout)
	defer cancel()
	names, err := submitJar(ctx, c, j, stderr)
	if err != nil {
		return stormFailure(stderr, "submit", err)
	}
	if asJSON {
		return writeJSON(stdout, map[string]any{"topologies": names, "nimbus": c.Addr(), "jar": j.jar, "class": j.class})
	}
	if len(names) == 0 {
		fmt.Fprintf(stdout, "%s ran and submitted no new topology to %s\n", j.class, c.Addr())
		return 0
	}
	fmt.Fprintf(stdout, "submitted %s from %s to %s\n", strings.Join(names, ", "), filepath.Base(j.jar), c.Addr())
	return 0
}
