package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/cluster/zk/zktest"
	"github.com/agora-cluster/agora/dist"
	"github.com/agora-cluster/agora/dist/disttest"
	wordcount "github.com/agora-cluster/agora/examples/storm-wordcount"
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

// agora dev --storm runs real Storm on the dev cluster: its banner names
// the Nimbus task, `agora storm submit --master` (no --nimbus) finds it
// and the example word count's counts come out exact, every sentence
// acked; interrupted, agora dev stops Storm's daemons, their workers and
// its ZooKeeper: no process runs in its work directory after it exits.
func TestDevStormRunsTheWordCount(t *testing.T) {
	tier.Need(t, tier.Python, tier.PythonErr())
	zktest.Need(t)
	disttest.Home(t, "storm") // the one agora dev finds installed
	work, err := os.MkdirTemp("/var/tmp", "agora-dev-storm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	// Ports of its own: Nimbus and the supervisor bind their offered ports,
	// and other tests' agents offer the default 31000-32000 too.
	lowPort, highPort := clustertest.PortRange(100)
	resources := fmt.Sprintf("cpus:2;mem:8000;disk:10000;ports:[%d-%d]", lowPort, highPort)
	dev, master := startBound(t, "dev", "--storm", "--port=0", "--hadoop_port", "0", "--marathon_port", "0",
		"--chronos_port", "0", "--dns_port", "0", "--spark_port", "0", "--resources", resources, "--work_dir", work)
	banner := awaitOutput(t, dev, "agora dev cluster is up", 4*time.Minute)
	if !regexp.MustCompile(`storm +nimbus [^ (]+:\d+ `).MatchString(banner) {
		t.Fatalf("agora dev --storm's banner names no Nimbus:\n%s", lastBytes(banner, 3000))
	}

	// Not under /tmp: a task's /tmp may be its own.
	out := filepath.Join(work, "wordcount-out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runClient(t, master, "storm", "submit", wordcountYAML, "--master", master, "--json", "-c", "wordcount.output.dir="+out)
	var sub struct{ Name, ID string }
	if code != 0 || json.Unmarshal([]byte(stdout), &sub) != nil || sub.Name != "wordcount" {
		t.Fatalf("agora storm submit against agora dev --storm: exit %d, %s %s", code, stdout, stderr)
	}
	want, sentences := wordcount.Counts(), len(wordcount.Sentences())
	var last string
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		got, acked := readCounts(t, out), ackedIDs(out)
		if reflect.DeepEqual(got, want) && len(acked) == sentences {
			break
		}
		last = fmt.Sprintf("counts %v; acked %d of %d", got, len(acked), sentences)
		if time.Now().After(deadline) {
			list, _, _ := runClient(t, master, "storm", "list", "--master", master)
			t.Fatalf("the word count on agora dev --storm: %s\nagora storm list:\n%s", last, list)
		}
	}
	list, stderr, code := runClient(t, master, "storm", "list", "--master", master)
	if code != 0 || !regexp.MustCompile(`wordcount +`+regexp.QuoteMeta(sub.ID)+` +ACTIVE +1 `).MatchString(list) {
		t.Errorf("agora storm list --master: exit %d, %s%s; want wordcount ACTIVE on one worker", code, list, stderr)
	}

	dev.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-dev.done:
		if !dev.cmd.ProcessState.Success() {
			t.Fatalf("agora dev exited with %v", dev.cmd.ProcessState)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("agora dev --storm did not exit within 2 minutes of SIGTERM")
	}
	// A killed process may take a moment to be reaped.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		left := processesIn(work)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after agora dev exited, still running in its work directory:\n%s", strings.Join(left, "\n"))
		}
	}
}

// awaitOutput waits, at most limit, for text in p's output and returns
// the output; it fails the test if p exits first.
func awaitOutput(t *testing.T, p *proc, text string, limit time.Duration) string {
	t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(100 * time.Millisecond) {
		if s := p.out.String(); strings.Contains(s, text) {
			return s
		}
		select {
		case <-p.done:
			t.Fatalf("agora %s exited (%v) before %q", strings.Join(p.cmd.Args[1:], " "), p.cmd.ProcessState, text)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q from agora %s within %s", text, strings.Join(p.cmd.Args[1:], " "), limit)
		}
	}
}

// processesIn lists the processes whose command line names dir or whose
// working directory is under it: a task's (its sandbox), a Storm worker's
// (its supervisor's storm.local.dir) or agora dev's ZooKeeper's (its
// zoo.cfg).
func processesIn(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if strings.Contains(string(cmdline), dir) || strings.HasPrefix(cwd, dir) {
			out = append(out, e.Name()+": "+lastBytes(strings.ReplaceAll(string(cmdline), "\x00", " "), 300))
		}
	}
	return out
}

// agora dev refuses a Storm it cannot run before starting anything:
// --storm_zookeeper without --storm.
func TestDevStormRefusals(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name string
		d    devStorm
		cred auth.Credential
		want string
	}{
		{"--storm_zookeeper alone", devStorm{zk: "127.0.0.1:2181"}, auth.Credential{}, "--storm_zookeeper needs --storm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			_, _, done, err := tc.d.start(context.Background(), nil, "127.0.0.1:1", "127.0.0.1", work, tc.cred, devServiceSecurity{}, logger)
			if err == nil || !strings.Contains(err.Error(), tc.want) || done != nil {
				t.Fatalf("start: %v; want an error with %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(work); len(entries) != 0 {
				t.Errorf("the work directory has %d entries; want none", len(entries))
			}
		})
	}
}

// Under `agora dev --secure` the banner tells `agora storm submit
// --runtime native` the dev certificate's files, which `agora dev` does
// not hand to the user's command itself; without TLS it says nothing.
func TestStormDevSecureLineNamesTheCertificate(t *testing.T) {
	if line := stormDevSecureLine(devServiceSecurity{}); line != "" {
		t.Errorf("without TLS the banner adds %q, want nothing", line)
	}
	sec := devServiceSecurity{tls: &tls.Config{}, certFile: "/w/secure/tls/cert.pem", keyFile: "/w/secure/tls/key.pem", credsFile: "/w/secure/credentials.json"}
	line := stormDevSecureLine(sec)
	if !strings.Contains(line, "--ssl_cert_file=/w/secure/tls/cert.pem --ssl_key_file=/w/secure/tls/key.pem") || !strings.Contains(line, "--credentials=/w/secure/credentials.json") {
		t.Errorf("with TLS the banner adds %q, want the certificate's files and --credentials naming dev's file", line)
	}
	// A password on the command line shows in the process list: the
	// banner never suggests one.
	if strings.Contains(line, "--http_credentials") {
		t.Errorf("the banner suggests --http_credentials: %q", line)
	}
}
